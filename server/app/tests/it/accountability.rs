//! Thread ownership, run records, the audit trail of denials, per-principal limits and the
//! store's availability, through `POST /chat` and `GET /threads` of a real server.

use std::time::Duration;

use crate::common::*;
use agui_server::store::{AuditFilter, AuditKind, AuditRecord, RunOutcome};
use serde_json::{Value, json};

fn on_thread(text: &str, thread: &str) -> Value {
    let mut body = input(text, Some("1.0"));
    body["threadId"] = json!(thread);
    body
}

async fn audit(server: &TestServer, kind: AuditKind) -> Vec<AuditRecord> {
    let ready = server.state.accountability.ready().expect("store ready");
    ready.log.flush().await;
    ready
        .store()
        .query_audit(&AuditFilter {
            kinds: vec![kind],
            ..AuditFilter::default()
        })
        .await
        .unwrap()
}

/// A scratch directory for a test's database files, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("agui-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// A SQLite file in it, and the store URL that opens (and creates) it.
    fn database(&self) -> (std::path::PathBuf, String) {
        let path = self.0.join("agui.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        (path, url)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Makes every insert into `audit` fail while the database stays reachable.
const BREAK_AUDIT: &str =
    "CREATE TRIGGER audit_fail BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'injected'); END";

/// Runs one statement on the SQLite file at `path` through a fresh connection (fault
/// injection from outside the server's pool).
async fn sqlite_exec(path: &std::path::Path, sql: &str) {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query(sql)
        .persistent(false)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

async fn error_of(response: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = response.json().await.unwrap();
    (status, retry_after, body)
}

#[tokio::test]
async fn another_principals_thread_is_404_before_any_stream_and_the_denial_is_audited() {
    let server = start().await;
    let alice = server.token("alice");
    let bob = server.token("bob");
    server
        .run_as("/chat", &alice, &on_thread("hi", "shared"))
        .await;

    let (status, _, body) = error_of(
        server
            .post("/chat", Some(&bob), &on_thread("hi", "shared"))
            .await,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "thread_not_found");
    assert!(
        !body.to_string().contains("alice"),
        "the owner is not revealed: {body}"
    );

    // Controls: Bob on his own thread, and Alice on hers again, are served.
    server.run_as("/chat", &bob, &on_thread("hi", "bobs")).await;
    server
        .run_as("/chat", &alice, &on_thread("again", "shared"))
        .await;

    let denials = audit(&server, AuditKind::AccessDenied).await;
    assert_eq!(denials.len(), 1, "{denials:?}");
    let denial = &denials[0];
    assert_eq!(denial.subject.as_deref(), Some("bob"));
    assert_eq!(denial.thread_id.as_deref(), Some("shared"));
    assert_eq!(denial.detail["reason"], "thread_ownership");
    assert_eq!(denial.detail["owner_subject"], "alice");
    assert_eq!(
        denial.detail["token_fingerprint"],
        agui_auth::token_fingerprint(&bob)
    );
    server.stop().await;
}

#[tokio::test]
async fn the_thread_admin_role_may_run_on_any_thread_and_every_such_access_is_audited() {
    let server = start_with(
        |c| c.store.thread_admin_role = Some("support".into()),
        |b| b,
    )
    .await;
    let alice = server.token("alice");
    server
        .run_as("/chat", &alice, &on_thread("hi", "t-a"))
        .await;

    let admin = mint_with_roles(&server.idp, "sam", AUDIENCE, &["support"]);
    server
        .run_as("/chat", &admin, &on_thread("checking", "t-a"))
        .await;
    // Control: the same principal without the role is refused.
    let plain = mint_with_roles(&server.idp, "sam", AUDIENCE, &["viewer"]);
    let response = server
        .post("/chat", Some(&plain), &on_thread("x", "t-a"))
        .await;
    assert_eq!(response.status(), 404);

    let accesses = audit(&server, AuditKind::AdminAccess).await;
    assert_eq!(accesses.len(), 1, "{accesses:?}");
    assert_eq!(accesses[0].subject.as_deref(), Some("sam"));
    assert_eq!(accesses[0].thread_id.as_deref(), Some("t-a"));
    assert_eq!(accesses[0].detail["owner_subject"], "alice");
    assert_eq!(accesses[0].detail["role"], "support");
    assert_eq!(
        accesses[0].detail["token_fingerprint"],
        agui_auth::token_fingerprint(&admin)
    );
    server.stop().await;
}

#[tokio::test]
async fn get_threads_lists_only_the_callers_threads() {
    let server = start().await;
    let alice = server.token("alice");
    let bob = server.token("bob");
    for thread in ["a-1", "a-2"] {
        server
            .run_as("/chat", &alice, &on_thread("hi", thread))
            .await;
    }
    server.run_as("/chat", &bob, &on_thread("hi", "b-1")).await;

    let list = |token: String| {
        let http = server.http.clone();
        let url = format!("{}/threads", server.url);
        async move {
            let response = http.get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            let mut ids: Vec<String> = body["threads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["thread_id"].as_str().unwrap().to_owned())
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(list(alice).await, ["a-1", "a-2"]);
    assert_eq!(list(bob).await, ["b-1"]);
    let anonymous = server
        .http
        .get(format!("{}/threads", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    server.stop().await;
}

#[tokio::test]
async fn every_run_is_recorded_with_its_principal_source_and_outcome() {
    let server = start().await;
    let token = server.token("alice");
    let ok = on_thread("/tool whoami {}", "rec-1");
    server.run_as("/chat", &token, &ok).await;
    let failing = on_thread("/fail", "rec-1");
    server.run_as("/chat", &token, &failing).await;

    let ready = server.state.accountability.ready().unwrap();
    ready.log.flush().await;
    let run = ready
        .store()
        .get_run("rec-1", ok["runId"].as_str().unwrap())
        .await
        .unwrap()
        .expect("the run is recorded");
    assert_eq!(run.subject, "alice");
    assert_eq!(run.issuer, server.idp.issuer_url());
    assert_eq!(run.agent, "default");
    assert_eq!(run.credential_source, "header");
    assert_eq!(run.outcome, Some(RunOutcome::Success));
    assert_eq!(run.tool_calls, 1);
    assert!(run.ended_at.is_some());

    let failed = ready
        .store()
        .get_run("rec-1", failing["runId"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.outcome, Some(RunOutcome::Error));
    assert_eq!(failed.error_code.as_deref(), Some("model_error"));

    let started = audit(&server, AuditKind::RunStarted).await;
    assert_eq!(started.len(), 2, "one run_started record per run");
    let tools = audit(&server, AuditKind::ToolCall).await;
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].detail["tool"], "whoami");
    server.stop().await;
}

#[tokio::test]
async fn runs_beyond_the_burst_get_429_with_retry_after_and_other_users_are_unaffected() {
    let server = start_with(
        |c| {
            c.limits.runs_per_minute = 1;
            c.limits.burst = 2;
        },
        |b| b,
    )
    .await;
    let alice = server.token("alice");
    for _ in 0..2 {
        server
            .run_as("/chat", &alice, &input("hi", Some("1.0")))
            .await;
    }
    let (status, retry_after, body) = error_of(
        server
            .post("/chat", Some(&alice), &input("hi", Some("1.0")))
            .await,
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(body["error"], "rate_limited");
    let retry_after: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Control: another principal still has its own bucket.
    let bob = server.token("bob");
    server
        .run_as("/chat", &bob, &input("hi", Some("1.0")))
        .await;
    server.stop().await;
}

#[tokio::test]
async fn a_role_override_raises_the_per_user_limit() {
    let server = start_with(
        |c| {
            c.limits.runs_per_minute = 1;
            c.limits.burst = 1;
            c.limits.roles.insert(
                "power".into(),
                agui_server::limits::RoleLimits {
                    runs_per_minute: Some(0),
                    ..Default::default()
                },
            );
        },
        |b| b,
    )
    .await;
    let power = mint_with_roles(&server.idp, "pat", AUDIENCE, &["power"]);
    for _ in 0..5 {
        server
            .run_as("/chat", &power, &input("hi", Some("1.0")))
            .await;
    }
    let plain = server.token("quinn");
    server
        .run_as("/chat", &plain, &input("hi", Some("1.0")))
        .await;
    let response = server
        .post("/chat", Some(&plain), &input("hi", Some("1.0")))
        .await;
    assert_eq!(response.status(), 429);
    server.stop().await;
}

#[tokio::test]
async fn the_per_user_stream_cap_refuses_a_second_open_stream_until_the_first_closes() {
    let server = start_with(
        |c| {
            c.limits.max_concurrent_streams = 1;
            c.limits.runs_per_minute = 0;
        },
        |b| b.model(model(HangingModel)),
    )
    .await;
    let alice = server.token("alice");
    let mut first = server
        .post("/chat", Some(&alice), &input("hi", Some("1.0")))
        .await;
    assert_eq!(first.status(), 200);
    let _ = first.chunk().await.unwrap();

    let (status, retry_after, body) = error_of(
        server
            .post("/chat", Some(&alice), &input("hi", Some("1.0")))
            .await,
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(body["error"], "too_many_streams");
    assert!(retry_after.is_some());
    // Control: another principal is not affected by Alice's cap.
    let bob = server.token("bob");
    let other = server
        .post("/chat", Some(&bob), &input("hi", Some("1.0")))
        .await;
    assert_eq!(other.status(), 200);
    drop(other);

    // Closing the first stream frees the slot (the run sees the client go and ends).
    drop(first);
    let mut freed = false;
    for _ in 0..600 {
        let response = server
            .post("/chat", Some(&alice), &input("hi", Some("1.0")))
            .await;
        if response.status() == 200 {
            freed = true;
            break;
        }
        assert_eq!(response.status(), 429);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(freed, "the slot was released after the client closed");
    server.stop().await;
}

#[tokio::test]
async fn an_auth_failure_flood_becomes_aggregated_records_not_one_per_request() {
    let server = start().await;
    let good = server.token("alice");
    let bad = mint(&server.idp, "mallory", "someone-else");
    for _ in 0..40 {
        let response = server
            .post("/chat", Some(&bad), &input("hi", Some("1.0")))
            .await;
        assert_eq!(response.status(), 401);
    }
    for _ in 0..10 {
        let response = server.post("/chat", None, &input("hi", Some("1.0"))).await;
        assert_eq!(response.status(), 401);
    }
    // Control: a good token is not counted as a failure.
    server
        .run_as("/chat", &good, &input("hi", Some("1.0")))
        .await;

    let ready = server.state.accountability.ready().unwrap().clone();
    ready.failures.flush_all();
    let records = audit(&server, AuditKind::AuthFailure).await;
    assert_eq!(records.len(), 2, "one record per reason: {records:?}");
    let count_of = |reason: &str| {
        records
            .iter()
            .find(|r| r.detail["reason"] == reason)
            .map(|r| r.detail["count"].as_u64().unwrap())
    };
    assert_eq!(count_of("bad_audience"), Some(40), "{records:?}");
    assert_eq!(count_of("missing_credentials"), Some(10), "{records:?}");
    let wrong = records
        .iter()
        .find(|r| r.detail["reason"] == "bad_audience")
        .unwrap();
    assert_eq!(wrong.detail["source"], "127.0.0.1");
    assert_eq!(
        wrong.issuer.as_deref(),
        Some(server.idp.issuer_url().as_str())
    );
    assert_eq!(
        wrong.detail["token_fingerprints"],
        json!([agui_auth::token_fingerprint(&bad)])
    );
    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_store_is_503_and_not_ready_then_the_server_recovers() {
    // A database file whose directory cannot be created (its parent is a regular file).
    let scratch = Scratch::new("unreachable");
    let blocker = scratch.0.join("data");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let url = format!("sqlite://{}/agui.db?mode=rwc", blocker.display());

    let server = start_with(move |c| c.store.database_url = Some(url), |b| b).await;
    let token = server.token("alice");
    let ready = server
        .http
        .get(format!("{}/readyz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let (status, retry_after, body) = error_of(
        server
            .post("/chat", Some(&token), &input("hi", Some("1.0")))
            .await,
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "store_unavailable");
    assert_eq!(retry_after.as_deref(), Some("5"));
    // Authentication still comes first: no token is 401, not 503.
    let anonymous = server.post("/chat", None, &input("hi", Some("1.0"))).await;
    assert_eq!(anonymous.status(), 401);

    // The operator fixes the path; the server connects on its own (backoff) and serves.
    std::fs::remove_file(&blocker).unwrap();
    let mut recovered = false;
    for _ in 0..400 {
        if server.state.accountability.ready().is_some() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recovered, "the store connected after the fix");
    let ready = server
        .http
        .get(format!("{}/readyz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    server
        .run_as("/chat", &token, &input("hi", Some("1.0")))
        .await;
    server.stop().await;
}

#[tokio::test]
async fn a_failing_audit_write_refuses_the_run_with_503_and_nothing_runs_unrecorded() {
    let scratch = Scratch::new("auditfail");
    let (path, url) = scratch.database();
    let server = start_with(move |c| c.store.database_url = Some(url), |b| b).await;
    let token = server.token("alice");
    server
        .run_as("/chat", &token, &input("control", Some("1.0")))
        .await;

    sqlite_exec(&path, BREAK_AUDIT).await;
    let refused = input("refused", Some("1.0"));
    let (status, _, body) = error_of(server.post("/chat", Some(&token), &refused).await).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "audit_unavailable");
    let ready = server.state.accountability.ready().unwrap();
    assert!(
        ready
            .store()
            .get_run(
                refused["threadId"].as_str().unwrap(),
                refused["runId"].as_str().unwrap()
            )
            .await
            .unwrap()
            .is_none(),
        "the refused run left no run record"
    );

    sqlite_exec(&path, "DROP TRIGGER audit_fail").await;
    server
        .run_as("/chat", &token, &input("recovered", Some("1.0")))
        .await;
    server.stop().await;
}

#[tokio::test]
async fn with_fail_closed_off_a_failing_audit_write_is_logged_and_the_run_goes_on() {
    let scratch = Scratch::new("auditopen");
    let (path, url) = scratch.database();
    let server = start_with(
        move |c| {
            c.store.database_url = Some(url);
            c.audit.fail_closed = false;
        },
        |b| b,
    )
    .await;
    let token = server.token("alice");
    sqlite_exec(&path, BREAK_AUDIT).await;
    server
        .run_as("/chat", &token, &input("served", Some("1.0")))
        .await;
    server.stop().await;
}

/// After a server's worth of traffic (accepted header and body tokens, refused tokens of every
/// kind, a tool call, a thread denial), none of the three JWT segments of any token used is in
/// the SQLite file, its WAL or the JSON-lines mirror; their fingerprints are (the positive
/// control that the scan reads what was written).
#[tokio::test]
async fn no_part_of_any_token_reaches_the_database_its_wal_or_the_mirror() {
    let scratch = Scratch::new("notoken");
    let (db, url) = scratch.database();
    let mirror = scratch.0.join("audit.jsonl");
    let mirror_path = mirror.display().to_string();
    let server = start_with(
        move |c| {
            c.store.database_url = Some(url);
            c.audit.mirror = Some(mirror_path);
            c.audit.auth_failure_window_secs = 1;
        },
        |b| b,
    )
    .await;
    let alice = server.token("alice");
    let bob = server.token("bob");
    let mut expired_claims = server.idp.claims("eve");
    expired_claims["aud"] = json!(AUDIENCE);
    expired_claims["exp"] = json!(1_000);
    expired_claims["iat"] = json!(900);
    let expired = server.idp.sign("rsa-1", &expired_claims);
    let wrong_audience = mint(&server.idp, "mallory", "elsewhere");
    let mut tampered = alice.clone();
    tampered.replace_range(tampered.len() - 4.., "AAAA");

    server
        .run_as("/chat", &alice, &on_thread("/tool whoami {}", "nt-1"))
        .await;
    let mut in_body = on_thread("hi", "nt-2");
    in_body["forwardedProps"] = json!({"authorization": format!("Bearer {bob}")});
    let response = server.post("/chat", None, &in_body).await;
    assert_eq!(response.status(), 200);
    let _ = response.text().await;
    assert_eq!(
        server
            .post("/chat", Some(&bob), &on_thread("x", "nt-1"))
            .await
            .status(),
        404
    );
    for bad in [&expired, &wrong_audience, &tampered] {
        let response = server
            .post("/chat", Some(bad), &input("x", Some("1.0")))
            .await;
        assert_eq!(response.status(), 401);
    }
    let ready = server.state.accountability.ready().unwrap().clone();
    ready.failures.flush_all();
    ready.log.flush().await;
    server.stop().await;

    let mut written = Vec::new();
    for file in [db.clone(), scratch.0.join("agui.db-wal"), mirror.clone()] {
        if let Ok(bytes) = std::fs::read(&file) {
            written.extend_from_slice(&bytes);
        }
    }
    let haystack = String::from_utf8_lossy(&written);
    for token in [&alice, &bob, &expired, &wrong_audience, &tampered] {
        for segment in token.split('.') {
            assert!(
                !haystack.contains(segment),
                "a token segment was stored: {segment}"
            );
        }
    }
    let mirrored = std::fs::read_to_string(&mirror).unwrap();
    for token in [&alice, &bob, &wrong_audience] {
        let fingerprint = agui_auth::token_fingerprint(token);
        assert!(
            haystack.contains(&fingerprint) && mirrored.contains(&fingerprint),
            "the fingerprint of every token used is recorded"
        );
    }
}

/// Redis going away after start-up: runs are refused with 503 `limits_unavailable` (never run
/// unlimited), and served again once it is back. Redis is reached through a proxy the test cuts.
#[tokio::test]
async fn a_limiter_that_loses_redis_refuses_runs_with_503_then_recovers() {
    let Some(redis) = std::env::var("AGUI_TEST_REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        assert!(
            std::env::var("AGUI_REQUIRE_REDIS").as_deref() != Ok("1"),
            "AGUI_REQUIRE_REDIS=1 but AGUI_TEST_REDIS_URL is not set"
        );
        eprintln!("SKIP: limiter outage over HTTP (set AGUI_TEST_REDIS_URL)");
        return;
    };
    let upstream = redis
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = listener.local_addr().unwrap();
    let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    // Cancelling the current token cuts the open connections; a fresh one serves new ones.
    let cut = std::sync::Arc::new(std::sync::Mutex::new(
        tokio_util::sync::CancellationToken::new(),
    ));
    let proxy = {
        let (up, cut) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !up.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the connection is refused by closing it
                }
                let (upstream, cut) = (upstream.clone(), cut.lock().unwrap().clone());
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = cut.cancelled() => {}
                    }
                });
            }
        })
    };
    let server = start_with(
        move |c| {
            c.limits.redis_url = Some(format!("redis://{proxy_addr}"));
            c.limits.runs_per_minute = 1_000;
            c.limits.burst = 1_000;
        },
        |b| b,
    )
    .await;
    let token = server.token("alice");
    server
        .run_as("/chat", &token, &input("control", Some("1.0")))
        .await;

    up.store(false, std::sync::atomic::Ordering::SeqCst);
    cut.lock().unwrap().cancel();
    let (status, retry_after, body) = error_of(
        server
            .post("/chat", Some(&token), &input("hi", Some("1.0")))
            .await,
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "limits_unavailable");
    assert_eq!(retry_after.as_deref(), Some("5"));

    *cut.lock().unwrap() = tokio_util::sync::CancellationToken::new();
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut recovered = false;
    for _ in 0..100 {
        let response = server
            .post("/chat", Some(&token), &input("hi", Some("1.0")))
            .await;
        if response.status() == 200 {
            recovered = true;
            break;
        }
        assert_eq!(response.status(), 503);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "served again once Redis is reachable");
    server.stop().await;
    proxy.abort();
}
