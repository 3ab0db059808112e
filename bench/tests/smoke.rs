//! The benchmark's smoke run, part of `make test`: agui-server in-process (no peers, no installs),
//! driven by the real load client; every stream must end in `RUN_FINISHED`, and the server's own
//! `/metrics` must agree with what the client counted. The floor server's truncating mode proves
//! the client really fails a stream without `RUN_FINISHED`.
//!
//! It also holds #16's allocation guard (not a timed test): heap allocations per short run,
//! counted by a counting global allocator. The allocator is this binary's (the crate's one
//! integration-test binary; a `#[global_allocator]` must sit in a binary, and the workspace
//! forbids `unsafe`, so the counting wrapper is `stats_alloc`'s). The guard runs its measurement
//! in a child process of this binary running only itself, so other tests running in parallel
//! (under `cargo test`) cannot add to its count.

use std::sync::Arc;
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Counts every allocation of this test binary (a few atomic additions per call).
#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

use agui_auth::testing::TestIdp;
use agui_bench::client::{CONNECT_PATH, connect_input, thread_inputs};
use agui_bench::{LoadSpec, run_inputs, run_load};
use agui_server::config::Config;
use agui_server::state::AppState;
use serde_json::json;

const AUDIENCE: &str = "agui-bench-smoke";
/// A guard against a hung test, never an assertion on speed.
const DEADLINE: Duration = Duration::from_secs(25);

struct Server {
    addr: std::net::SocketAddr,
    state: AppState,
    idp: TestIdp,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_agui_server() -> Server {
    start_agui_server_with(None).await
}

/// The smoke profile's server, its store at `database_url` (`None`: SQLite in memory).
async fn start_agui_server_with(database_url: Option<String>) -> Server {
    start_agui_server_history(database_url, true).await
}

/// [`start_agui_server_with`], thread history on or off.
async fn start_agui_server_history(database_url: Option<String>, history: bool) -> Server {
    let idp = TestIdp::start().await;
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    config.store.database_url = database_url;
    config.auth =
        agui_auth::AuthConfig::from_env_single_issuer(&idp.issuer_url(), AUDIENCE, "").unwrap();
    // The bench profile: one load-client user runs every stream, so its per-user limits are
    // lifted (the store, audit log and auth stay on).
    config.limits.runs_per_minute = 0;
    config.limits.max_concurrent_streams = 0;
    config.history.enabled = history;
    let listener = agui_server::serve::bind(config.listen, config.backlog).unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::builder(config)
        .build()
        .await
        .expect("a valid config");
    let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agui_server::run(listener, state.clone(), async move {
        let _ = rx.await;
    }));
    Server {
        addr,
        state,
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

/// Heap allocations per short run (`/stream 5`, reused token, the smoke profile: SQLite store,
/// audit log, history on, auth, limits) in this process — the server and a client that
/// allocates nothing per request — measured on 2026-12-02: 360.5–360.8 in four runs (about
/// 56 KB a run), then 345.9 once the limiter key stopped allocating per hex digit; on
/// 2026-12-03 299.9 (55 KB) once a valid body was parsed straight into `RunAgentInput` (no
/// `Value` of it), the token fingerprint stopped allocating per hex digit and log lines stopped
/// going through a channel one `Vec` each; on 2026-12-07 296.1 (61 KB) once the scripted
/// model built each delta with one allocation (five deltas a run). SQLite's own C allocations
/// do not go through Rust's allocator and are not counted. On 2026-12-07 (later) 254.1 (58 KB)
/// once a group commit stopped copying every run start it carries (−21), a run's end was moved
/// into the store's queue instead of copied for a retry (−10), and its stored `RUN_STARTED`
/// was no longer copied twice (−11); 245.1 once message and tool-call ids were shared instead
/// of copied into every delta (a std run of 200 deltas: 620 → 420); 244.1 once a JSON id was
/// read straight into its shared text.
const ALLOCATIONS_PER_SHORT_RUN: f64 = 244.0;
/// How far above today's figure the count may go before the guard fails.
const MARGIN: f64 = 0.10;
const CHILD: &str = "AGUI_BENCH_ALLOCATION_CHILD";
const FIGURE: &str = "allocations per short run: ";
const GUARD: &str = "allocations_per_short_run_stay_within_todays_figure";

#[test]
fn allocations_per_short_run_stay_within_todays_figure() {
    if std::env::var_os(CHILD).is_some() {
        let (allocations, bytes) = in_runtime(count_short_runs());
        println!("{FIGURE}{allocations:.1} ({bytes:.0} bytes)");
        return;
    }
    let (allocations, line) = figure_of_child(GUARD, FIGURE);
    println!("{FIGURE}{line}; today's figure {ALLOCATIONS_PER_SHORT_RUN}, margin {MARGIN}");
    // Positive control: the count is a real one (a run cannot take no allocation at all).
    assert!(allocations > 10.0, "{line}");
    assert_within_todays_figure(
        allocations,
        ALLOCATIONS_PER_SHORT_RUN,
        "ALLOCATIONS_PER_SHORT_RUN",
        &line,
    );
}

/// What thread history itself allocates per std run (`/stream 200`, 200 deltas compacted into
/// one stored chunk): allocations per run with history on minus the same with it off, both
/// counted in one process, one after the other. Measured on 2026-12-07: 59.0 (22 KB) when the
/// tap copied the run's `RUN_STARTED` twice, its end was copied for a retry and the chunk's
/// JSON grew by doubling; 38.0 (18 KB) after; 34.0 once ids were shared.
const HISTORY_ALLOCATIONS_PER_STD_RUN: f64 = 34.0;
const HISTORY_FIGURE: &str = "history allocations per std run: ";
const HISTORY_GUARD: &str = "history_allocations_per_std_run_stay_within_todays_figure";

#[test]
fn history_allocations_per_std_run_stay_within_todays_figure() {
    if std::env::var_os(CHILD).is_some() {
        let ((on, on_bytes), (off, off_bytes)) = in_runtime(async {
            (
                count_runs("/stream 200", true).await,
                count_runs("/stream 200", false).await,
            )
        });
        println!(
            "{HISTORY_FIGURE}{:.1} ({:.0} bytes; on {on:.1}, off {off:.1})",
            on - off,
            on_bytes - off_bytes
        );
        return;
    }
    let (history, line) = figure_of_child(HISTORY_GUARD, HISTORY_FIGURE);
    println!(
        "{HISTORY_FIGURE}{line}; today's figure {HISTORY_ALLOCATIONS_PER_STD_RUN}, margin {MARGIN}"
    );
    // Positive control: history on does allocate (its chunk at least): a history silently off
    // would read as free.
    assert!(history >= 3.0, "{line}");
    assert_within_todays_figure(
        history,
        HISTORY_ALLOCATIONS_PER_STD_RUN,
        "HISTORY_ALLOCATIONS_PER_STD_RUN",
        &line,
    );
}

/// Heap allocations per CopilotKit `connect` of a thread of [`CONNECT_RUNS`] runs of
/// `/stream 200` (the benchmark's `connect` scenario: 250 replayed events, about 200 KB), on the
/// smoke profile with its store in a SQLite file, as `serve` runs it. Measured on 2026-12-03:
/// 2,637.6 (1.67 MB allocated for a 200 KB replay) when every stored event was decoded,
/// adapted and encoded again and a connect made three store reads; 1,551.3 (1.36 MB) with one
/// read and stored events framed as they are; 1,275.3 (1.34 MB) once a 0.0.x client's
/// `RUN_STARTED` input was no longer cloned; 347.2 (0.62 MB) once the events such a client
/// reads as stored were no longer decoded and the body stopped copying a replay's large writes;
/// 315.1 once the connect's body was parsed in one pass and the fingerprint no longer
/// allocated per hex digit.
const ALLOCATIONS_PER_CONNECT: f64 = 316.0;
/// Runs in the connect guard's thread.
const CONNECT_RUNS: usize = 50;
const CONNECT_FIGURE: &str = "allocations per connect of a 50-run thread: ";
const CONNECT_GUARD: &str = "allocations_per_connect_replay_stay_within_todays_figure";

#[test]
fn allocations_per_connect_replay_stay_within_todays_figure() {
    if std::env::var_os(CHILD).is_some() {
        let (allocations, bytes) = in_runtime(count_connects());
        println!("{CONNECT_FIGURE}{allocations:.1} ({bytes:.0} bytes)");
        return;
    }
    let (allocations, line) = figure_of_child(CONNECT_GUARD, CONNECT_FIGURE);
    println!("{CONNECT_FIGURE}{line}; today's figure {ALLOCATIONS_PER_CONNECT}, margin {MARGIN}");
    // Positive control: a replay of 250 events cannot take fewer allocations than it has runs.
    assert!(allocations > CONNECT_RUNS as f64, "{line}");
    assert_within_todays_figure(
        allocations,
        ALLOCATIONS_PER_CONNECT,
        "ALLOCATIONS_PER_CONNECT",
        &line,
    );
}

/// Fails when a guard's `figure` grew past `today` (the constant named `name`) by more than
/// [`MARGIN`].
fn assert_within_todays_figure(figure: f64, today: f64, name: &str, line: &str) {
    assert!(
        figure <= today * (1.0 + MARGIN),
        "grew to {line}, past {today} + {:.0} %: find the new allocation (or, for a deliberate change, update {name} with the reason)",
        MARGIN * 100.0
    );
}

fn in_runtime<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(work)
}

/// Runs this binary again with only the test `name` (libtest's and nextest's `--exact`), as the
/// measuring child, and returns the figure it printed after `prefix` (and the rest of its line).
fn figure_of_child(name: &str, prefix: &str) -> (f64, String) {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the measuring child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        // libtest prints the child's output after "test <name> ... " on the same line.
        .find_map(|l| l.split_once(prefix).map(|(_, figure)| figure))
        .unwrap_or_else(|| panic!("the child printed no figure: {stdout}"));
    let figure: f64 = line.split_whitespace().next().unwrap().parse().unwrap();
    (figure, line.to_owned())
}

/// Warm-up runs (JWKS fetched, the token cached, statements prepared, maps grown), then the
/// counted ones; returns allocations and bytes allocated per counted run. Each run's work is
/// counted to its end: the run tasks have finished (their history written) and the audit
/// log has flushed before the count is read.
async fn count_short_runs() -> (f64, f64) {
    count_runs("/stream 5", true).await
}

/// Allocations and bytes allocated per run of `message` through `/chat`, one after another
/// on one connection, with thread history on or off, after a warm-up.
async fn count_runs(message: &str, history: bool) -> (f64, f64) {
    const WARM: usize = 100;
    const COUNTED: usize = 300;
    let server = start_agui_server_history(None, history).await;
    let token = token(&server.idp, AUDIENCE);
    let requests = run_inputs(message, WARM + COUNTED);
    let requests: Vec<Vec<u8>> = requests
        .iter()
        .map(|body| raw_request(&server, "/chat", &token, body))
        .collect();
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    // Large enough for any response here, so reading never grows it.
    let mut response = Vec::with_capacity(256 * 1024);
    for request in &requests[..WARM] {
        raw_run(&mut stream, request, &mut response).await;
    }
    settle(&server).await;
    let region = Region::new(GLOBAL);
    for request in &requests[WARM..] {
        raw_run(&mut stream, request, &mut response).await;
    }
    settle(&server).await;
    let change = region.change();
    let _ = server.shutdown.send(());
    server.task.await.unwrap();
    (
        change.allocations as f64 / COUNTED as f64,
        change.bytes_allocated as f64 / COUNTED as f64,
    )
}

/// Connects to a thread of [`CONNECT_RUNS`] runs (made through `/chat`, their history written)
/// after a few warm-up connects; returns allocations and bytes allocated per counted connect,
/// each counted to the end of its replay task.
async fn count_connects() -> (f64, f64) {
    const WARM: usize = 5;
    const COUNTED: usize = 40;
    let file = std::env::temp_dir().join(format!(
        "agui-connect-guard-{}.db",
        uuid::Uuid::new_v4().simple()
    ));
    let server =
        start_agui_server_with(Some(format!("sqlite://{}?mode=rwc", file.display()))).await;
    let token = token(&server.idp, AUDIENCE);
    let thread = format!("connect-guard-{}", uuid::Uuid::new_v4().simple());
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    // Large enough for any response here (a replay is about 200 KB), so reading never grows it.
    let mut response = Vec::with_capacity(1024 * 1024);
    for body in thread_inputs("/stream 200", &thread, CONNECT_RUNS) {
        raw_run(
            &mut stream,
            &raw_request(&server, "/chat", &token, &body),
            &mut response,
        )
        .await;
    }
    settle(&server).await;
    let connects: Vec<Vec<u8>> = (0..WARM + COUNTED)
        .map(|_| raw_request(&server, CONNECT_PATH, &token, &connect_input(&thread)))
        .collect();
    let replayed = |response: &[u8]| {
        response
            .windows(12)
            .filter(|w| *w == b"RUN_FINISHED")
            .count()
    };
    for request in &connects[..WARM] {
        raw_run(&mut stream, request, &mut response).await;
        assert_eq!(replayed(&response), CONNECT_RUNS, "every run replayed");
    }
    settle(&server).await;
    let region = Region::new(GLOBAL);
    for request in &connects[WARM..] {
        raw_run(&mut stream, request, &mut response).await;
    }
    settle(&server).await;
    let change = region.change();
    assert_eq!(replayed(&response), CONNECT_RUNS, "every run replayed");
    let _ = server.shutdown.send(());
    server.task.await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    (
        change.allocations as f64 / COUNTED as f64,
        change.bytes_allocated as f64 / COUNTED as f64,
    )
}

/// A keep-alive HTTP/1.1 POST of `body` to `path` with the bearer token, asking for SSE.
fn raw_request(server: &Server, path: &str, token: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: {}\r\n\r\n",
        server.addr,
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// One run on a keep-alive connection, read to the end of its chunked body; it must be a 200
/// stream ending in `RUN_FINISHED`. Allocates nothing when it passes.
async fn raw_run(stream: &mut tokio::net::TcpStream, request: &[u8], response: &mut Vec<u8>) {
    response.clear();
    stream.write_all(request).await.unwrap();
    while !response.ends_with(b"\r\n0\r\n\r\n") {
        assert!(response.len() < response.capacity(), "a response too large");
        let read = stream.read_buf(response).await.unwrap();
        assert!(read > 0, "the server closed the connection");
    }
    assert!(response.starts_with(b"HTTP/1.1 200"));
    assert!(
        response.windows(12).any(|w| w == b"RUN_FINISHED"),
        "{}",
        String::from_utf8_lossy(response)
    );
}

/// Until every run task has ended (its history written through the log) and the log flushed.
async fn settle(server: &Server) {
    for _ in 0..10_000 {
        if server.state.runs.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(server.state.runs.is_empty(), "run tasks still running");
    server
        .state
        .backends
        .connected()
        .expect("the store is connected")
        .log
        .flush()
        .await;
}
