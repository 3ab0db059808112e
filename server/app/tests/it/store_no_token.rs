//! No token anywhere: after exercising every write path with principals whose tokens we know,
//! none of the three JWT segments of any token appears in the SQLite file, its WAL, the
//! JSON-lines mirror, or (with `AGUI_TEST_DATABASE_URL`) any PostgreSQL row. The token
//! fingerprint DOES appear: the positive control that the scan reads the written data.

use std::sync::Arc;
use std::time::Duration;

use agui_agent::{AuditEvent, AuditSink};
use agui_auth::{Principal, token_fingerprint};
use agui_server::store::{
    AuditKind, AuditLog, AuditLogOptions, AuditRecord, AuthFailureAggregator, AuthFailureKey,
    Mirror, PgStore, PrincipalKey, SqliteStore, Store,
};
use serde_json::json;

/// A compact JWS shaped like a real access token, with random payload and signature.
fn sample_token() -> String {
    let random = || {
        format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )
    };
    format!(
        "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ.eyJ{}.{}",
        random(),
        random()
    )
}

fn principal(subject: &str, token: &str) -> Principal {
    Principal {
        name: Some("Test User".into()),
        roles: vec!["user".into()],
        scopes: vec!["agui:run".into()],
        token_fingerprint: token_fingerprint(token),
        ..agui_auth::testing::principal("https://idp.test", subject)
    }
}

/// Every write path: ownership, durable run start, run-loop events, an authorization denial,
/// aggregated authentication failures.
async fn exercise(store: Arc<dyn Store>, log: &AuditLog, tokens: &[String]) {
    for (i, token) in tokens.iter().enumerate() {
        let p = principal(&format!("user-{i}"), token);
        let thread = format!("thread-{i}");
        store
            .claim_thread(&PrincipalKey::of(&p), &thread, 1)
            .await
            .unwrap();
        log.run_started(&p, &thread, "run-1", "default")
            .await
            .unwrap();
        AuditSink::record(
            log,
            AuditEvent::ToolCall {
                issuer: p.issuer.clone(),
                subject: p.subject.clone(),
                thread_id: thread.clone(),
                run_id: "run-1".into(),
                tool: "whoami".into(),
                decision: "allowed",
                outcome: "ok",
            },
        );
        AuditSink::record(
            log,
            AuditEvent::RunEnded {
                issuer: p.issuer.clone(),
                subject: p.subject.clone(),
                thread_id: thread.clone(),
                run_id: "run-1".into(),
                outcome: "success",
                code: None,
            },
        );
        log.record(
            AuditRecord::now(AuditKind::AccessDenied)
                .principal(&PrincipalKey::of(&p))
                .thread("someone-elses")
                .detail(
                    json!({ "reason": "thread_owner", "token_fingerprint": p.token_fingerprint }),
                ),
        );
        let failures = AuthFailureAggregator::new(log.clone(), Duration::from_secs(60));
        for _ in 0..3 {
            failures.record(
                AuthFailureKey {
                    source: "198.51.100.7".parse().unwrap(),
                    reason: "invalid_token".into(),
                    issuer: Some("https://idp.test".into()),
                },
                Some(&p.token_fingerprint),
            );
        }
        failures.flush_all();
    }
    log.flush().await;
}

fn assert_clean(label: &str, haystack: &[u8], tokens: &[String]) {
    let text = String::from_utf8_lossy(haystack);
    for token in tokens {
        for (n, segment) in token.split('.').enumerate() {
            assert!(!text.contains(segment), "JWT segment {n} found in {label}");
        }
        // Positive control: what IS recorded (the fingerprint) is found by the same scan.
        assert!(
            text.contains(&token_fingerprint(token)),
            "fingerprint missing from {label}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_file_wal_and_mirror_hold_no_token() {
    let dir = std::env::temp_dir().join(format!("agui-notoken-{}", uuid::Uuid::new_v4().simple()));
    let db = dir.join("agui.db");
    let mirror = dir.join("audit.jsonl");
    let store = Arc::new(
        SqliteStore::connect(&format!("sqlite://{}?mode=rwc", db.display()))
            .await
            .unwrap(),
    );
    let log = AuditLog::start(
        store.clone(),
        AuditLogOptions {
            mirror: Some(Mirror::File(mirror.clone())),
            ..Default::default()
        },
    );
    let tokens: Vec<String> = (0..3).map(|_| sample_token()).collect();
    exercise(store.clone(), &log, &tokens).await;

    // Read the file AND the write-ahead log while the database is open (the WAL holds the
    // recent commits until a checkpoint).
    let mut bytes = std::fs::read(&db).unwrap();
    let wal = std::fs::read(dir.join("agui.db-wal")).unwrap_or_default();
    assert!(
        !wal.is_empty(),
        "WAL mode: recent commits are in the -wal file"
    );
    bytes.extend_from_slice(&wal);
    assert_clean("the SQLite file + WAL", &bytes, &tokens);
    assert_clean(
        "the JSON-lines mirror",
        &std::fs::read(&mirror).unwrap(),
        &tokens,
    );

    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_rows_hold_no_token() {
    let Some(url) = std::env::var("AGUI_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var("AGUI_REQUIRE_PG").as_deref() != Ok("1"),
            "AGUI_REQUIRE_PG=1 but AGUI_TEST_DATABASE_URL is not set"
        );
        eprintln!("SKIP: PostgreSQL no-token scan (set AGUI_TEST_DATABASE_URL)");
        return;
    };
    let schema = format!("test_{}", uuid::Uuid::new_v4().simple());
    let store = Arc::new(PgStore::connect_in_schema(&url, &schema).await.unwrap());
    let log = AuditLog::start(store.clone(), AuditLogOptions::default());
    let tokens: Vec<String> = (0..3).map(|_| sample_token()).collect();
    exercise(store.clone(), &log, &tokens).await;

    let mut dump = String::new();
    for table in ["threads", "runs", "audit", "instances"] {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT row_to_json(t)::text FROM {table} t"))
                .fetch_all(store.pool())
                .await
                .unwrap();
        dump.push_str(&rows.join("\n"));
    }
    assert_clean("the PostgreSQL rows", dump.as_bytes(), &tokens);

    store.pool().close().await;
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
}
