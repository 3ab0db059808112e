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
