//! The benchmark's smoke run, part of `make test`: agui-server in-process (no peers, no installs),
//! driven by the real load client; every stream must end in `RUN_FINISHED`, and the server's own
//! `/metrics` must agree with what the client counted. The floor server's truncating mode proves
//! the client really fails a stream without `RUN_FINISHED`.

use std::sync::Arc;
use std::time::Duration;

use agui_auth::testing::TestIdp;
use agui_bench::{LoadSpec, run_inputs, run_load};
use agui_server::config::Config;
use agui_server::state::AppState;
use serde_json::json;

const AUDIENCE: &str = "agui-bench-smoke";
/// A guard against a hung test, never an assertion on speed.
const DEADLINE: Duration = Duration::from_secs(25);

struct Server {
    addr: std::net::SocketAddr,
    idp: TestIdp,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_agui_server() -> Server {
    let idp = TestIdp::start().await;
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    config.auth =
        agui_auth::AuthConfig::from_env_single_issuer(&idp.issuer_url(), AUDIENCE, "").unwrap();
    // The bench profile: one load-client user runs every stream, so its per-user limits are
    // lifted (the store, audit log and auth stay on).
    config.limits.runs_per_minute = 0;
    config.limits.max_concurrent_streams = 0;
    let listener = agui_server::serve::bind(config.listen, config.backlog).unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::builder(config)
        .build()
        .await
        .expect("a valid config");
    let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agui_server::run(listener, state, async move {
        let _ = rx.await;
    }));
    Server {
        addr,
        idp,
        shutdown,
        task,
    }
}

fn token(idp: &TestIdp, audience: &str) -> String {
    let mut claims = idp.claims("smoke-user");
    claims["aud"] = json!(audience);
    idp.sign("rsa-1", &claims)
}

fn spec(
    addr: std::net::SocketAddr,
    token: String,
    message: &str,
    concurrency: usize,
    requests: usize,
    expect_status: u16,
) -> LoadSpec {
    LoadSpec {
        addr,
        path: "/chat".into(),
        concurrency,
        requests,
        tokens: Arc::new(vec![token]),
        bodies: Arc::new(run_inputs(message, requests)),
        expect_status,
        deadline: DEADLINE,
    }
}

async fn metric(addr: std::net::SocketAddr, name: &str) -> Option<f64> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .ok()?;
    let mut text = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut text)
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_streams_all_end_in_run_finished_and_metrics_agree() {
    let server = start_agui_server().await;
    let good = token(&server.idp, AUDIENCE);
    let (streams, deltas) = (40_usize, 20_u64);
    let result = run_load(spec(
        server.addr,
        good.clone(),
        &format!("/stream {deltas}"),
        8,
        streams,
        200,
    ))
    .await;
    let s = &result.summary;
    assert_eq!(s.errors, 0, "errors: {:?}", s.errors_by_kind);
    assert_eq!(s.requests_ok, streams as u64, "N streams, N RUN_FINISHED");
    assert!(s.is_valid(streams as u64));
    // RUN_STARTED, TEXT_MESSAGE_START, the deltas, TEXT_MESSAGE_END, RUN_FINISHED.
    assert_eq!(s.events, streams as u64 * (deltas + 4));
    assert!(s.ttfe_ms.p50 > 0.0 && s.ttfe_ms.p50 <= s.stream_ms.p50);

    // The server counted the same events (it adds them as each stream's run task finishes, which
    // may trail the client's last read, so wait for it, bounded).
    let mut sent = None;
    for _ in 0..200 {
        sent = metric(server.addr, "agui_events_sent_total").await;
        if sent == Some(s.events as f64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        sent,
        Some(s.events as f64),
        "/metrics agui_events_sent_total"
    );

    // A wrong-audience token is refused on every request: no stream counts as a success …
    let bad = token(&server.idp, "someone-else");
    let rejected = run_load(spec(server.addr, bad.clone(), "/stream 5", 4, 12, 200)).await;
    assert_eq!(rejected.summary.requests_ok, 0);
    assert_eq!(rejected.summary.errors_by_kind.get("status_401"), Some(&12));
    // … and counted as expected rejections in the auth-fail mode.
    let auth_fail = run_load(spec(server.addr, bad, "/stream 5", 4, 12, 401)).await;
    assert!(
        auth_fail.summary.is_valid(12),
        "{:?}",
        auth_fail.summary.errors_by_kind
    );

    let _ = server.shutdown.send(());
    server.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_without_run_finished_make_the_run_invalid() {
    for truncate in [true, false] {
        let listener = agui_bench::httpd::bind_loopback(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let floor = tokio::spawn(agui_bench::floor::serve(listener, truncate));
        let result = run_load(spec(addr, "unused".into(), "/stream 10", 4, 20, 200)).await;
        floor.abort();
        if truncate {
            assert_eq!(result.summary.requests_ok, 0);
            assert_eq!(
                result.summary.errors_by_kind.get("no_run_finished"),
                Some(&20)
            );
            assert!(!result.summary.is_valid(20));
        } else {
            // Positive control: the same floor without truncation gives a valid run.
            assert!(
                result.summary.is_valid(20),
                "{:?}",
                result.summary.errors_by_kind
            );
            assert_eq!(result.summary.events, 20 * 14);
        }
    }
}
