//! Real `agui-server serve` processes sharing a database or Redis: the ownership race across
//! replicas on PostgreSQL, the per-user stream cap across replicas with Redis (and the slots of a
//! replica killed with `kill -9` coming back), and durability of the run records across a
//! `kill -9` during 30 concurrent runs.
//!
//! PostgreSQL and Redis come from `AGUI_TEST_DATABASE_URL` / `AGUI_TEST_REDIS_URL`; unset, those
//! tests print `SKIP` and pass, unless `AGUI_REQUIRE_PG=1` / `AGUI_REQUIRE_REDIS=1` (CI).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::common::*;
use agui_auth::testing::TestIdp;
use agui_server::store::{AuditFilter, AuditKind, RunOutcome, SqliteStore, Store};
use serde_json::{Value, json};

fn service_url(var: &str, require: &str, what: &str) -> Option<String> {
    match std::env::var(var).ok().filter(|v| !v.is_empty()) {
        Some(url) => Some(url),
        None => {
            assert!(
                std::env::var(require).as_deref() != Ok("1"),
                "{require}=1 but {var} is not set"
            );
            eprintln!("SKIP: {what} (set {var})");
            None
        }
    }
}

/// A fresh schema on the test database and a URL whose connections use it: each test's
/// replicas share it, and no test sees another's tables (or another branch's migrations).
async fn isolated_pg(url: &str) -> IsolatedPg {
    let schema = format!("replicas_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(url)
        .await
        .expect("PostgreSQL at AGUI_TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let separator = if url.contains('?') { '&' } else { '?' };
    IsolatedPg {
        url: format!("{url}{separator}options=-c%20search_path%3D{schema}"),
        admin_url: url.to_owned(),
        schema,
    }
}

/// A test's schema; dropped (with its tables) when the test ends.
struct IsolatedPg {
    url: String,
    admin_url: String,
    schema: String,
}

impl std::ops::Deref for IsolatedPg {
    type Target = String;
    fn deref(&self) -> &String {
        &self.url
    }
}

impl Drop for IsolatedPg {
    fn drop(&mut self) {
        let (url, schema) = (self.admin_url.clone(), self.schema.clone());
        // Its own runtime on its own thread: Drop cannot await, and may run inside one.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(admin) = sqlx::PgPool::connect(&url).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                        .execute(&admin)
                        .await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

/// One `agui-server serve` process; killed with SIGKILL when dropped.
struct Replica {
    child: Child,
    url: String,
}

impl Replica {
    /// Starts a replica; async so the test's `TestIdp` (same runtime) can answer its discovery.
    async fn start(idp: &TestIdp, env: &[(&str, &str)]) -> Replica {
        Self::start_in(idp, env, &std::env::temp_dir()).await
    }

    /// Starts a replica in working directory `cwd`.
    async fn start_in(idp: &TestIdp, env: &[(&str, &str)], cwd: &std::path::Path) -> Replica {
        let mut command = Command::new(env!("CARGO_BIN_EXE_agui-server"));
        command
            .arg("serve")
            .current_dir(cwd)
            .env_remove("AGUI_DATABASE_URL")
            .env_remove("AGUI_CONFIG")
            .env("AGUI_LISTEN", "127.0.0.1:0")
            .env("AGUI_OIDC_ISSUER", idp.issuer_url())
            .env("AGUI_OIDC_AUDIENCE", AUDIENCE)
            .env("AGUI_MODEL", "scripted")
            .env("AGUI_LOG", "info")
            .env("AGUI_LOG_FORMAT", "text")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the binary starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("listening on http://") {
                    let _ = tx.send(line[at + "listening on ".len()..].trim().to_owned());
                }
            }
        });
        let url = tokio::task::spawn_blocking(move || rx.recv_timeout(HANG_GUARD))
            .await
            .unwrap()
            .expect("the replica listens");
        Replica { child, url }
    }

    fn kill_9(&mut self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let _ = self.child.wait();
    }

    async fn post(&self, token: &str, body: &Value) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}/chat", self.url))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("the replica answers")
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn on_thread(text: &str, thread: &str) -> Value {
    let mut body = input(text, Some("1.0"));
    body["threadId"] = json!(thread);
    body
}

#[tokio::test]
async fn two_replicas_on_one_postgres_race_new_threads_to_exactly_one_owner() {
    let Some(url) = service_url(
        "AGUI_TEST_DATABASE_URL",
        "AGUI_REQUIRE_PG",
        "two replicas on PostgreSQL",
    ) else {
        return;
    };
    let url = isolated_pg(&url).await;
    let idp = TestIdp::start().await;
    let env = [
        ("AGUI_DATABASE_URL", url.as_str()),
        ("AGUI_RUNS_PER_MINUTE", "0"),
    ];
    let a = Replica::start(&idp, &env).await;
    let b = Replica::start(&idp, &env).await;
    let alice = mint(&idp, "alice", AUDIENCE);
    let bob = mint(&idp, "bob", AUDIENCE);

    for round in 0..20 {
        let thread = format!("race-{}", uuid::Uuid::new_v4());
        let (mine, theirs) = (on_thread("mine", &thread), on_thread("no, mine", &thread));
        let (ra, rb) = tokio::join!(a.post(&alice, &mine), b.post(&bob, &theirs));
        let statuses = [ra.status().as_u16(), rb.status().as_u16()];
        let (winner, loser) = match statuses {
            [200, 404] => (&alice, &bob),
            [404, 200] => (&bob, &alice),
            other => panic!("round {round}: exactly one owner expected, got {other:?}"),
        };
        drop((ra.text().await, rb.text().await));
        // Both replicas agree on the owner afterwards.
        for replica in [&a, &b] {
            assert_eq!(
                replica
                    .post(winner, &on_thread("again", &thread))
                    .await
                    .status(),
                200
            );
            assert_eq!(
                replica
                    .post(loser, &on_thread("again", &thread))
                    .await
                    .status(),
                404
            );
        }
    }
}

#[tokio::test]
async fn the_stream_cap_holds_across_replicas_sharing_redis_and_a_killed_replicas_slot_comes_back()
{
    let Some(redis) = service_url(
        "AGUI_TEST_REDIS_URL",
        "AGUI_REQUIRE_REDIS",
        "stream cap across replicas with Redis",
    ) else {
        return;
    };
    let idp = TestIdp::start().await;
    let env = [
        ("AGUI_DATABASE_URL", "sqlite::memory:"),
        ("AGUI_REDIS_URL", redis.as_str()),
        ("AGUI_REDIS_LEASE_SECS", "3"),
        ("AGUI_MAX_STREAMS_PER_USER", "1"),
        ("AGUI_RUNS_PER_MINUTE", "0"),
    ];
    let mut a = Replica::start(&idp, &env).await;
    let b = Replica::start(&idp, &env).await;
    let alice = mint(&idp, "alice", AUDIENCE);

    // A long stream on replica A takes Alice's one slot …
    let mut open = a
        .post(&alice, &input("/stream 1000 16 100", Some("1.0")))
        .await;
    assert_eq!(open.status(), 200);
    let _ = open.chunk().await.unwrap();
    // … so replica B refuses her second stream.
    let refused = b.post(&alice, &input("hi", Some("1.0"))).await;
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "too_many_streams");
    // Control: Bob is not affected.
    let bob = mint(&idp, "bob", AUDIENCE);
    assert_eq!(b.post(&bob, &input("hi", Some("1.0"))).await.status(), 200);

    // Replica A dies without releasing anything; its lease expires and B serves Alice again.
    a.kill_9();
    drop(open);
    let mut served = false;
    for _ in 0..200 {
        let response = b.post(&alice, &input("hi", Some("1.0"))).await;
        match response.status().as_u16() {
            200 => {
                served = true;
                break;
            }
            429 => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        served,
        "the killed replica's slot was freed by its lease TTL"
    );
}

#[tokio::test]
async fn kill_9_during_30_concurrent_runs_loses_no_record_and_marks_them_abandoned() {
    let idp = TestIdp::start().await;
    let dir = std::env::temp_dir().join(format!("agui-kill9-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}/agui.db?mode=rwc", dir.display());
    let env = [
        ("AGUI_DATABASE_URL", db.as_str()),
        ("AGUI_RUNS_PER_MINUTE", "0"),
        ("AGUI_MAX_STREAMS_PER_USER", "0"),
    ];
    let mut server = Replica::start(&idp, &env).await;

    // Five runs that finish before the crash …
    let mut finished = Vec::new();
    for i in 0..5 {
        let token = mint(&idp, &format!("done-{i}"), AUDIENCE);
        let body = input("hello", Some("1.0"));
        let response = server.post(&token, &body).await;
        assert_eq!(response.status(), 200);
        assert!(response.text().await.unwrap().contains("RUN_FINISHED"));
        finished.push(body);
    }
    // … and 30 concurrent runs streaming when it happens.
    let mut streaming = Vec::new();
    let mut responses = Vec::new();
    for i in 0..30 {
        let token = mint(&idp, &format!("user-{i}"), AUDIENCE);
        let body = input("/stream 1000 16 100", Some("1.0"));
        let mut response = server.post(&token, &body).await;
        assert_eq!(response.status(), 200);
        let _ = response.chunk().await.unwrap();
        streaming.push(body);
        responses.push(response);
    }
    server.kill_9();
    drop(responses);

    // The next start marks what the dead process left open.
    let restarted = Replica::start(&idp, &env).await;
    drop(restarted);
    let store = SqliteStore::connect(&db).await.unwrap();
    for body in &finished {
        let run = store
            .get_run(
                body["threadId"].as_str().unwrap(),
                body["runId"].as_str().unwrap(),
            )
            .await
            .unwrap()
            .expect("a finished run survives the crash");
        assert_eq!(run.outcome, Some(RunOutcome::Success), "{run:?}");
    }
    for body in &streaming {
        let run = store
            .get_run(
                body["threadId"].as_str().unwrap(),
                body["runId"].as_str().unwrap(),
            )
            .await
            .unwrap()
            .expect("every started run is recorded");
        assert_eq!(run.outcome, Some(RunOutcome::Abandoned), "{run:?}");
        assert!(run.ended_at.is_some());
    }
    let started = store
        .query_audit(&AuditFilter {
            kinds: vec![AuditKind::RunStarted],
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(started.len(), 35, "every run_started record survived");
    let ended = store
        .query_audit(&AuditFilter {
            kinds: vec![AuditKind::RunEnded],
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let abandoned = ended
        .iter()
        .filter(|r| r.detail["outcome"] == "abandoned")
        .count();
    assert_eq!(
        abandoned, 30,
        "one run_ended (abandoned) record per cut run"
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `serve` with an issuer and nothing else keeps its data in `./data/agui.db`, and a restart
/// finds it there.
#[tokio::test]
async fn serve_with_only_an_issuer_keeps_its_data_in_a_local_sqlite_file() {
    let idp = TestIdp::start().await;
    let cwd = std::env::temp_dir().join(format!("agui-default-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&cwd).unwrap();
    let alice = mint(&idp, "alice", AUDIENCE);
    let bob = mint(&idp, "bob", AUDIENCE);
    let body = on_thread("hi", "persisted");
    {
        let server = Replica::start_in(&idp, &[], &cwd).await;
        let response = server.post(&alice, &body).await;
        assert_eq!(response.status(), 200);
        let _ = response.text().await;
    }
    assert!(cwd.join("data/agui.db").is_file(), "the default store file");
    // After a restart the thread is still Alice's.
    let server = Replica::start_in(&idp, &[], &cwd).await;
    assert_eq!(
        server
            .post(&bob, &on_thread("mine?", "persisted"))
            .await
            .status(),
        404
    );
    assert_eq!(
        server
            .post(&alice, &on_thread("again", "persisted"))
            .await
            .status(),
        200
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&cwd);
}

/// `POST /copilotkit{path}` on a replica, the token in `forwardedProps` (CopilotKit's
/// `properties`) or, for a stop, as the header.
async fn runtime(replica: &Replica, path: &str, token: &str, body: &Value) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{}/copilotkit{path}", replica.url))
        .json(body);
    if path.contains("/stop/") {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("the replica answers")
}

fn ck_body(thread: &str, run: &str, text: &str, token: &str) -> Value {
    json!({
        "threadId": thread, "runId": run, "tools": [], "context": [], "state": {},
        "messages": if text.is_empty() { json!([]) } else { json!([{"id": format!("{run}-u"), "role": "user", "content": text}]) },
        "forwardedProps": {"authorization": token},
    })
}

/// Text deltas and the terminal event of an SSE body (several runs allowed).
fn replayed(body: &str) -> (String, Vec<Value>) {
    let events: Vec<Value> = body
        .split("\n\n")
        .filter_map(|frame| frame.strip_prefix("data: "))
        .map(|json| serde_json::from_str(json).unwrap())
        .collect();
    let text = events
        .iter()
        .filter(|e| e["type"] == "TEXT_MESSAGE_CONTENT")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    let terminals = events
        .into_iter()
        .filter(|e| e["type"] == "RUN_FINISHED" || e["type"] == "RUN_ERROR")
        .collect();
    (text, terminals)
}

/// The letters `/stream n 4` streams.
fn streamed(n: usize) -> String {
    (0..n)
        .map(|i| ((b'a' + (i % 26) as u8) as char).to_string().repeat(4))
        .collect()
}

/// A TOML file that shortens heartbeats, so a killed replica is known dead in seconds.
fn fast_heartbeat_config(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("agui.toml");
    std::fs::write(
        &path,
        "[store]\nheartbeat_secs = 1\ninstance_timeout_secs = 3\n",
    )
    .unwrap();
    path
}

#[tokio::test]
async fn a_client_on_replica_b_replays_and_follows_a_run_streaming_on_replica_a() {
    let Some(url) = service_url(
        "AGUI_TEST_DATABASE_URL",
        "AGUI_REQUIRE_PG",
        "history across replicas",
    ) else {
        return;
    };
    let url = isolated_pg(&url).await;
    let idp = TestIdp::start().await;
    let env = [
        ("AGUI_DATABASE_URL", url.as_str()),
        ("AGUI_RUNS_PER_MINUTE", "0"),
    ];
    let a = Replica::start(&idp, &env).await;
    let b = Replica::start(&idp, &env).await;
    let alice = mint(&idp, "alice", AUDIENCE);
    let thread = format!("shared-{}", uuid::Uuid::new_v4());
    // A finished run on A: its history is on B.
    let first = runtime(
        &a,
        "/agent/default/run",
        &alice,
        &ck_body(&thread, "r1", "first words", &alice),
    )
    .await;
    let _ = first.text().await.unwrap();
    // A slow run on A; B's client connects mid-run.
    let mut live = runtime(
        &a,
        "/agent/default/run",
        &alice,
        &ck_body(&thread, "r2", "/stream 40 4 50", &alice),
    )
    .await;
    let _ = live.chunk().await.unwrap();
    let follower = runtime(
        &b,
        "/agent/default/connect",
        &alice,
        &ck_body(&thread, "c", "", &alice),
    )
    .await;
    assert_eq!(follower.status(), 200);
    let body = tokio::time::timeout(HANG_GUARD, follower.text())
        .await
        .unwrap()
        .unwrap();
    let (text, terminals) = replayed(&body);
    assert!(text.contains("first words"), "the history: {text}");
    assert!(
        text.ends_with(&streamed(40)),
        "the live tail, whole: {text}"
    );
    assert_eq!(terminals.len(), 2, "both runs end: {terminals:?}");
    assert!(terminals.iter().all(|t| t["type"] == "RUN_FINISHED"));
    // Another user on B gets nothing of it (the control: Alice got all of it).
    let bob = mint(&idp, "bob", AUDIENCE);
    let refused = runtime(
        &b,
        "/agent/default/connect",
        &bob,
        &ck_body(&thread, "c", "", &bob),
    )
    .await;
    assert_eq!(refused.status(), 404);
}

#[tokio::test]
async fn a_stop_sent_to_replica_b_cancels_the_run_on_replica_a() {
    let Some(url) = service_url(
        "AGUI_TEST_DATABASE_URL",
        "AGUI_REQUIRE_PG",
        "stop across replicas",
    ) else {
        return;
    };
    let url = isolated_pg(&url).await;
    let idp = TestIdp::start().await;
    let env = [
        ("AGUI_DATABASE_URL", url.as_str()),
        ("AGUI_RUNS_PER_MINUTE", "0"),
    ];
    let a = Replica::start(&idp, &env).await;
    let b = Replica::start(&idp, &env).await;
    let alice = mint(&idp, "alice", AUDIENCE);
    let thread = format!("stopped-{}", uuid::Uuid::new_v4());
    let mut run = runtime(
        &a,
        "/agent/default/run",
        &alice,
        &ck_body(&thread, "r1", "/stream 400 4 50", &alice),
    )
    .await;
    let _ = run.chunk().await.unwrap();
    let answer: Value = runtime(
        &b,
        &format!("/agent/default/stop/{thread}"),
        &alice,
        &json!({"runId": "r1"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(answer["stopped"], true, "{answer}");
    // A's stream ends with the cancellation, long before its 400 deltas.
    let mut rest = String::new();
    while let Some(chunk) = tokio::time::timeout(HANG_GUARD, run.chunk())
        .await
        .unwrap()
        .unwrap()
    {
        rest.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(rest.contains(r#""code":"cancelled""#), "{rest}");
    let store = agui_server::store::PgStore::connect(&url).await.unwrap();
    let mut outcome = None;
    for _ in 0..200 {
        outcome = store
            .get_run(&thread, "r1")
            .await
            .unwrap()
            .and_then(|r| r.outcome);
        if outcome.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(outcome, Some(RunOutcome::Cancelled));
}

#[tokio::test]
async fn a_follower_of_a_killed_replicas_run_ends_once_the_replica_is_known_dead() {
    let Some(url) = service_url(
        "AGUI_TEST_DATABASE_URL",
        "AGUI_REQUIRE_PG",
        "a killed replica's followers",
    ) else {
        return;
    };
    let url = isolated_pg(&url).await;
    let dir = std::env::temp_dir().join(format!("agui-dead-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = fast_heartbeat_config(&dir);
    let config = config.to_str().unwrap();
    let idp = TestIdp::start().await;
    let env = [
        ("AGUI_DATABASE_URL", url.as_str()),
        ("AGUI_RUNS_PER_MINUTE", "0"),
        ("AGUI_CONFIG", config),
    ];
    let mut a = Replica::start(&idp, &env).await;
    let b = Replica::start(&idp, &env).await;
    let alice = mint(&idp, "alice", AUDIENCE);
    let thread = format!("orphan-{}", uuid::Uuid::new_v4());
    let mut run = runtime(
        &a,
        "/agent/default/run",
        &alice,
        &ck_body(&thread, "r1", "/stream 2000 4 20", &alice),
    )
    .await;
    let _ = run.chunk().await.unwrap();
    let follower = runtime(
        &b,
        "/agent/default/connect",
        &alice,
        &ck_body(&thread, "c", "", &alice),
    )
    .await;
    assert_eq!(follower.status(), 200);
    let reading = tokio::spawn(async move { follower.text().await.unwrap() });
    // Let some chunks reach the store, then kill A without a chance to say anything.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    a.kill_9();
    drop(run);
    let body = tokio::time::timeout(HANG_GUARD, reading)
        .await
        .expect("the follower's stream ends")
        .unwrap();
    let (text, terminals) = replayed(&body);
    assert!(!text.is_empty(), "what A wrote before it died was replayed");
    assert_eq!(terminals.len(), 1, "{terminals:?}");
    assert_eq!(terminals[0]["type"], "RUN_ERROR");
    assert_eq!(terminals[0]["code"], "abandoned");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_run_killed_mid_stream_replays_what_was_written_and_ends_abandoned() {
    let dir = std::env::temp_dir().join(format!("agui-kill-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("agui.db").display());
    let idp = TestIdp::start().await;
    let env = [
        ("AGUI_DATABASE_URL", db.as_str()),
        ("AGUI_RUNS_PER_MINUTE", "0"),
    ];
    let mut a = Replica::start(&idp, &env).await;
    let alice = mint(&idp, "alice", AUDIENCE);
    let mut run = runtime(
        &a,
        "/agent/default/run",
        &alice,
        &ck_body("t-killed", "r1", "/stream 2000 4 20", &alice),
    )
    .await;
    let mut seen = String::new();
    // Past a few flush windows (250 ms each) of streaming.
    while seen.matches("TEXT_MESSAGE_CONTENT").count() < 40 {
        let chunk = run.chunk().await.unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    a.kill_9();
    // The next process on the file marks the run abandoned and replays it.
    let b = Replica::start(&idp, &env).await;
    let replay = runtime(
        &b,
        "/agent/default/connect",
        &alice,
        &ck_body("t-killed", "c", "", &alice),
    )
    .await;
    let (text, terminals) = replayed(&replay.text().await.unwrap());
    // The replay is the run as it was streamed, cut where the process died: what the client
    // read and what was stored agree up to the shorter of the two …
    let (live_text, _) = replayed(&seen);
    let common = text.len().min(live_text.len());
    assert_eq!(text[..common], live_text[..common]);
    // … and at most the last flush window (250 ms: ~13 deltas of 20 ms, 4 bytes each) was lost,
    // with one more window of slack for the commit in flight.
    let window_bytes = 4 * (2 * 250 / 20);
    assert!(
        text.len() + window_bytes >= live_text.len(),
        "more than a window lost: {} stored, {} seen",
        text.len(),
        live_text.len()
    );
    assert_eq!(terminals.len(), 1);
    assert_eq!(terminals[0]["code"], "abandoned");
    let _ = std::fs::remove_dir_all(dir);
}
