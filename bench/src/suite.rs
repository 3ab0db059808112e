//! The suite behind `bench/run.sh`: which servers, which scenarios, and the measuring loop.
//!
//! For every (server, scenario) pair: a fresh server process pinned to CPU 0, wait until it
//! accepts, a warm-up (one request, then a short burst: [`warm_up`]), then `runs` runs of the
//! load client (this process, pinned to CPU 1 by `run.sh`), each bracketed by the server's CPU
//! seconds, a 50 ms RSS sampler and the kernel's listen-overflow counter
//! (shared/reference/perf-peers.md §6 "Rules").

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::client::{self, LoadSpec};
use crate::jwks::{self, TokenFiles};
use crate::procfs;
use crate::stats::Summary;

/// The servers the suite knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerId {
    /// The pre-encoded-frames floor (client calibration).
    Floor,
    /// agui-server, production defaults, scripted model.
    AguiServer,
    /// The same build with thread history off (`[history] enabled = false`): what storing every
    /// run's events costs.
    AguiServerNoHistory,
    /// agui-server with the OpenAI-compatible provider against the mock.
    AguiServerAgent,
    /// Python peer, uvicorn h11 + asyncio (as the official starter ships).
    PythonH11,
    /// Python peer, uvicorn uvloop + httptools.
    PythonUvloop,
    /// Node peer, node:http.
    Node,
    /// AG2 AGUIStream against the mock model.
    Ag2,
}

impl ServerId {
    /// Column label in the report.
    pub fn label(self) -> &'static str {
        match self {
            Self::Floor => "floor (pre-encoded)",
            Self::AguiServer => "agui-server",
            Self::AguiServerNoHistory => "agui-server (history off)",
            Self::AguiServerAgent => "agui-server (agent)",
            Self::PythonH11 => "Python h11",
            Self::PythonUvloop => "Python uvloop",
            Self::Node => "Node",
            Self::Ag2 => "AG2",
        }
    }

    /// Short id used in file names.
    pub fn slug(self) -> &'static str {
        match self {
            Self::Floor => "floor",
            Self::AguiServer => "agui-server",
            Self::AguiServerNoHistory => "agui-server-no-history",
            Self::AguiServerAgent => "agui-server-agent",
            Self::PythonH11 => "python-h11",
            Self::PythonUvloop => "python-uvloop",
            Self::Node => "node",
            Self::Ag2 => "ag2",
        }
    }

    /// Whether this is one of the peers (whose figures are checked against the reference).
    pub fn is_peer(self) -> bool {
        matches!(
            self,
            Self::PythonH11 | Self::PythonUvloop | Self::Node | Self::Ag2
        )
    }
}

/// Which token a scenario sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenMode {
    /// The same valid token on every request.
    Reused,
    /// A distinct valid token on every request.
    Fresh,
    /// A correctly signed token with the wrong audience (every request must get 401).
    BadAudience,
}

/// What a scenario's headline figure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Headline {
    /// Completed requests per second (higher is better).
    RequestsPerSecond,
    /// Events per second (higher is better).
    EventsPerSecond,
    /// Time to first event, p99 (lower is better).
    TtfeP99,
    /// Rejections (401) per second (higher is better).
    RejectsPerSecond,
    /// RSS per open stream above idle (lower is better).
    RssPerStream,
    /// Request sent → end of the stream, p99 (lower is better): a `connect` replay.
    LatencyP99,
}

/// How a scenario drives the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// `POST /chat` with the scenario's message, `requests` times at `concurrency`.
    #[default]
    Load,
    /// CopilotKit's runtime `connect` (`/copilotkit/agent/default/connect`) of one thread that
    /// [`CONNECT_THREAD_RUNS`] runs of the scenario's message made first, `requests` times at
    /// `concurrency`: the replay of a stored thread.
    Connect,
    /// One run of the message per thread and `concurrency` clients connecting to it while it
    /// streams (the live tail), `requests / concurrency` threads one after the other
    /// ([`client::join`]).
    Join,
}

/// Seconds after the soak's 10,000 streams end at which the server's RSS is read again.
pub const SOAK_SETTLE_S: u64 = 60;

/// Runs in the `connect` scenario's thread.
pub const CONNECT_THREAD_RUNS: usize = 50;

/// One scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scenario {
    /// Id (`short`, `std_c50`, …).
    pub id: String,
    /// What it measures.
    pub title: String,
    /// The user message (`/stream 200`, …).
    pub message: String,
    /// Concurrent connections.
    pub concurrency: usize,
    /// Requests per run.
    pub requests: usize,
    /// Token mode.
    pub token: TokenMode,
    /// Runs (the median is reported).
    pub runs: usize,
    /// Per-run deadline.
    pub deadline_s: u64,
    /// Headline figure.
    pub headline: Headline,
    /// The servers it runs against.
    pub servers: Vec<ServerId>,
    /// How it drives them (`load` unless said: older results files have no such field).
    #[serde(default)]
    pub kind: Kind,
    /// Seconds after a run's streams end at which the server's RSS is read again (0 = not):
    /// whether the memory of a burst is given back (issue #12; the soak: 60).
    #[serde(default)]
    pub settle_s: u64,
}

/// Everything measured in one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunRecord {
    /// The client's figures.
    pub summary: Summary,
    /// Requests asked for.
    pub requested: u64,
    /// Server CPU seconds during the run.
    pub cpu_s: f64,
    /// Server RSS after warm-up, before the first run (KiB).
    pub idle_rss_kib: u64,
    /// Peak server RSS during the run (KiB).
    pub peak_rss_kib: u64,
    /// Listen overflows during the run (kernel-wide counter; nothing else listens here).
    pub listen_overflows: u64,
    /// CPU seconds of the harness process during the run: the load client, plus the issuer and
    /// the mock model (idle except in the agent scenarios).
    #[serde(default)]
    pub client_cpu_s: f64,
    /// Server RSS (KiB) [`Scenario::settle_s`] seconds after the run's streams ended, for the
    /// scenarios that ask for it (None otherwise, and in older results files).
    #[serde(default)]
    pub settled_rss_kib: Option<u64>,
    /// Zero errors and every stream ended in `RUN_FINISHED` (or, for auth-fail, every request got
    /// 401).
    pub valid: bool,
}

/// A (server, scenario) outcome.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cell {
    /// The runs.
    pub runs: Vec<RunRecord>,
    /// Why the pair was not measured, if it was not.
    pub skipped: Option<String>,
}

/// The whole suite's results.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    /// `quick` or `full`.
    pub mode: String,
    /// UTC start time (RFC 3339).
    pub started: String,
    /// Machine description.
    pub machine: String,
    /// agui-server's settings for the run (the bench profile).
    pub profile: Vec<(String, String)>,
    /// The scenarios, in order.
    pub scenarios: Vec<Scenario>,
    /// Outcomes by scenario id, then server.
    pub cells: BTreeMap<String, BTreeMap<ServerId, Cell>>,
    /// Notes (skips, limits) for the report.
    pub notes: Vec<String>,
}

/// Where things are.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The repository root.
    pub root: PathBuf,
    /// `target/release/agui-server`.
    pub agui_server: PathBuf,
    /// This binary.
    pub bench: PathBuf,
    /// `bench/results/raw`.
    pub raw: PathBuf,
}

impl Paths {
    fn venv_python(&self) -> PathBuf {
        self.root.join("bench/peers/.venv/bin/python")
    }
    fn node_dir(&self) -> PathBuf {
        self.root.join("bench/peers/node")
    }
}

const SCRIPTED: &[ServerId] = &[
    ServerId::Floor,
    ServerId::AguiServer,
    ServerId::PythonH11,
    ServerId::PythonUvloop,
    ServerId::Node,
];

/// The scenarios of `mode` (`quick` or `full`).
pub fn scenarios(mode: &str) -> Vec<Scenario> {
    let quick = mode == "quick";
    let runs = if quick { 1 } else { 3 };
    let scripted: Vec<ServerId> = if quick {
        vec![ServerId::Floor, ServerId::AguiServer, ServerId::Node]
    } else {
        SCRIPTED.to_vec()
    };
    let peers_only = |list: &[ServerId]| -> Vec<ServerId> {
        list.iter()
            .copied()
            .filter(|s| *s != ServerId::Floor)
            .collect()
    };
    let s = |id: &str,
             title: &str,
             message: &str,
             c: usize,
             n: usize,
             token,
             deadline_s,
             headline,
             servers: Vec<ServerId>| Scenario {
        id: id.into(),
        title: title.into(),
        message: message.into(),
        concurrency: c,
        requests: n,
        token,
        runs,
        deadline_s,
        headline,
        servers,
        kind: Kind::Load,
        settle_s: 0,
    };
    // std at 50 and long also run against the same build with history off.
    let with_history_off = |list: &[ServerId]| -> Vec<ServerId> {
        let mut list = list.to_vec();
        let at = list
            .iter()
            .position(|s| *s == ServerId::AguiServer)
            .map_or(list.len(), |i| i + 1);
        list.insert(at, ServerId::AguiServerNoHistory);
        list
    };
    let mut list = vec![s(
        "short",
        "short: 5 deltas, 50 concurrent, reused token",
        "/stream 5",
        50,
        if quick { 2000 } else { 5000 },
        TokenMode::Reused,
        60,
        Headline::RequestsPerSecond,
        scripted.clone(),
    )];
    if !quick {
        list.push(s(
            "short_fresh",
            "short: 5 deltas, 50 concurrent, a fresh token per request",
            "/stream 5",
            50,
            5000,
            TokenMode::Fresh,
            60,
            Headline::RequestsPerSecond,
            peers_only(&scripted),
        ));
        list.push(s(
            "std_c1",
            "std: 200 deltas, 1 concurrent",
            "/stream 200",
            1,
            300,
            TokenMode::Reused,
            60,
            Headline::EventsPerSecond,
            scripted.clone(),
        ));
    }
    list.push(s(
        "std_c50",
        "std: 200 deltas, 50 concurrent",
        "/stream 200",
        50,
        if quick { 300 } else { 1500 },
        TokenMode::Reused,
        90,
        Headline::EventsPerSecond,
        with_history_off(&scripted),
    ));
    if !quick {
        list.push(s(
            "std_c500",
            "std: 200 deltas, 500 concurrent",
            "/stream 200",
            500,
            2000,
            TokenMode::Reused,
            90,
            Headline::EventsPerSecond,
            scripted.clone(),
        ));
    }
    list.push(s(
        "long",
        "long: 5,000 deltas, 10 concurrent",
        "/stream 5000",
        10,
        if quick { 10 } else { 40 },
        TokenMode::Reused,
        60,
        Headline::EventsPerSecond,
        with_history_off(&scripted),
    ));
    list.push(s(
        "slow",
        "slow: 200 deltas 50 ms apart, 1,000 streams at once",
        "/stream 200 16 50",
        1000,
        1000,
        TokenMode::Reused,
        60,
        Headline::TtfeP99,
        // The floor shows what the client and the machine allow for paced streams (timer
        // granularity, the 1,000-connection burst).
        scripted.clone(),
    ));
    list.push(s(
        "auth_fail",
        "auth-fail: wrong-audience token, 50 concurrent",
        "/stream 5",
        50,
        if quick { 1000 } else { 5000 },
        TokenMode::BadAudience,
        60,
        Headline::RejectsPerSecond,
        peers_only(&scripted),
    ));
    // The runtime protocol's two reads of stored and live history: agui-server only (no peer
    // keeps threads).
    let mut connect = s(
        "connect",
        "connect: replay of a 50-run thread (CopilotKit runtime protocol), 1 concurrent",
        "/stream 200",
        1,
        if quick { 300 } else { 1000 },
        TokenMode::Reused,
        60,
        Headline::LatencyP99,
        vec![ServerId::AguiServer],
    );
    connect.kind = Kind::Connect;
    list.push(connect);
    let mut join = s(
        "join",
        "join: 20 clients connect to a thread while its run streams (100 deltas 20 ms apart)",
        "/stream 100 16 20",
        20,
        if quick { 100 } else { 400 },
        TokenMode::Reused,
        90,
        Headline::TtfeP99,
        vec![ServerId::AguiServer],
    );
    join.kind = Kind::Join;
    list.push(join);
    if !quick {
        list.push(s(
            "agent_c1",
            "agent: mock model (200 chunks), 1 concurrent",
            "Hello",
            1,
            30,
            TokenMode::Reused,
            120,
            Headline::EventsPerSecond,
            vec![ServerId::AguiServerAgent, ServerId::Ag2],
        ));
        list.push(s(
            "agent_c50",
            "agent: mock model (200 chunks), 50 concurrent",
            "Hello",
            50,
            300,
            TokenMode::Reused,
            180,
            Headline::EventsPerSecond,
            vec![ServerId::AguiServerAgent, ServerId::Ag2],
        ));
        let mut soak = s(
            "soak",
            "soak: 10,000 slow streams at once (200 deltas 50 ms apart)",
            "/stream 200 16 50",
            10_000,
            10_000,
            TokenMode::Reused,
            120,
            Headline::RssPerStream,
            // agui-server alone against the floor, which calibrates what one core and the client
            // allow at 10,000 paced streams.
            vec![ServerId::Floor, ServerId::AguiServer],
        );
        soak.runs = 1;
        // Whether the memory of 10,000 streams is given back: RSS a minute after they end.
        soak.settle_s = SOAK_SETTLE_S;
        list.push(soak);
    }
    list
}

/// agui-server's bench profile: production defaults (a SQLite store with the audit log, auth,
/// limits), with only the open-stream cap and the per-user limits raised (the load client is one
/// user with thousands of streams). Printed in the report.
pub fn agui_profile(
    issuer: &str,
    listen: SocketAddr,
    agent: Option<&str>,
) -> Vec<(String, String)> {
    let database = bench_database(listen);
    let mut env = vec![
        ("AGUI_LISTEN".to_owned(), listen.to_string()),
        ("AGUI_OIDC_ISSUER".to_owned(), issuer.to_owned()),
        ("AGUI_OIDC_AUDIENCE".to_owned(), jwks::AUDIENCE.to_owned()),
        ("AGUI_BACKLOG".to_owned(), "4096".to_owned()),
        ("AGUI_MAX_OPEN_STREAMS".to_owned(), "20000".to_owned()),
        // Raised, not switched off (0 would skip the limiter): the token bucket and the stream
        // counter still run on every request, they just never refuse one.
        ("AGUI_RUNS_PER_MINUTE".to_owned(), "60000000".to_owned()),
        ("AGUI_RUN_BURST".to_owned(), "1000000".to_owned()),
        ("AGUI_MAX_STREAMS_PER_USER".to_owned(), "20000".to_owned()),
        (
            "AGUI_DATABASE_URL".to_owned(),
            format!("sqlite://{}?mode=rwc", database.display()),
        ),
        ("AGUI_LOG_FORMAT".to_owned(), "json".to_owned()),
    ];
    match agent {
        None => {
            env.push(("AGUI_MODEL".to_owned(), "scripted".to_owned()));
            env.push(("AGUI_SCRIPTED_DELAY_MS".to_owned(), "0".to_owned()));
        }
        Some(mock) => {
            env.push(("AGUI_MODEL".to_owned(), "openai".to_owned()));
            env.push(("OPENAI_BASE_URL".to_owned(), mock.to_owned()));
            env.push(("OPENAI_API_KEY".to_owned(), "sk-mock".to_owned()));
            env.push(("AGUI_OPENAI_MODEL".to_owned(), "bench-mock".to_owned()));
        }
    }
    env
}

/// The `agui-server (history off)` server's config file: the production default is on.
pub const HISTORY_OFF_TOML: &str = "[history]\nenabled = false\n";

/// agui-server's store file for a server listening on `listen`: a fresh file per server process,
/// like a first `serve` on a new machine (removed with its WAL when the process is stopped).
pub fn bench_database(listen: SocketAddr) -> PathBuf {
    std::env::temp_dir().join(format!(
        "agui-bench-{}-{}.db",
        std::process::id(),
        listen.port()
    ))
}

/// A running server under test.
struct Running {
    child: Child,
    addr: SocketAddr,
    /// Files to remove once the process has stopped (agui-server's store).
    cleanup: Vec<PathBuf>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for path in &self.cleanup {
            for suffix in ["", "-wal", "-shm"] {
                let mut name = path.clone().into_os_string();
                name.push(suffix);
                let _ = std::fs::remove_file(name);
            }
        }
    }
}

/// Suite-wide settings.
pub struct Suite {
    /// Paths.
    pub paths: Paths,
    /// The issuer URL.
    pub issuer: String,
    /// Token files.
    pub tokens: TokenFiles,
    /// The mock's base URL (`http://127.0.0.1:<port>/v1`), when started.
    pub mock_url: Option<String>,
    /// Clock ticks per second.
    pub ticks: f64,
    /// The soft descriptor limit this process (and the servers it starts) has.
    pub nofile: u64,
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Suite {
    fn command(&self, server: ServerId, port: u16) -> Result<Command, String> {
        let listen = SocketAddr::from(([127, 0, 0, 1], port));
        let peer_env = [
            ("JWKS_FILE", self.tokens.jwks.display().to_string()),
            ("ISSUER", self.issuer.clone()),
            ("AUDIENCE", jwks::AUDIENCE.to_owned()),
        ];
        let mut cmd = Command::new("taskset");
        cmd.arg("-c").arg("0");
        let uvicorn = |cmd: &mut Command, app: &str, tuned: bool| -> Result<(), String> {
            let python = self.paths.venv_python();
            if !python.exists() {
                return Err(format!(
                    "{} is missing: run bench/peers/install.sh",
                    python.display()
                ));
            }
            cmd.arg(python)
                .args(["-m", "uvicorn", app, "--app-dir"])
                .arg(self.paths.root.join("bench/peers/python"))
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args([
                    "--log-level",
                    "warning",
                    "--no-access-log",
                    "--backlog",
                    "4096",
                ]);
            if tuned {
                cmd.args(["--loop", "uvloop", "--http", "httptools"]);
            } else {
                cmd.args(["--loop", "asyncio", "--http", "h11"]);
            }
            cmd.envs(peer_env.clone());
            Ok(())
        };
        match server {
            ServerId::Floor => {
                cmd.arg(&self.paths.bench)
                    .args(["floor", "--port", &port.to_string()]);
            }
            ServerId::AguiServer | ServerId::AguiServerNoHistory | ServerId::AguiServerAgent => {
                if !self.paths.agui_server.exists() {
                    return Err(format!(
                        "{} is missing: cargo build --release -p agui-server",
                        self.paths.agui_server.display()
                    ));
                }
                let agent = match server {
                    ServerId::AguiServerAgent => Some(
                        self.mock_url
                            .as_deref()
                            .ok_or("the mock model is not running")?,
                    ),
                    _ => None,
                };
                cmd.arg(&self.paths.agui_server).arg("serve");
                cmd.envs(agui_profile(&self.issuer, listen, agent));
                if server == ServerId::AguiServerNoHistory {
                    // History is a TOML-only setting; everything else stays the same.
                    let file = self.paths.raw.join("history-off.toml");
                    std::fs::write(&file, HISTORY_OFF_TOML).map_err(|e| e.to_string())?;
                    cmd.env("AGUI_CONFIG", file);
                }
            }
            ServerId::PythonH11 => uvicorn(&mut cmd, "server:app", false)?,
            ServerId::PythonUvloop => uvicorn(&mut cmd, "server:app", true)?,
            ServerId::Ag2 => {
                uvicorn(&mut cmd, "ag2_server:app", false)?;
                cmd.env(
                    "MOCK_URL",
                    self.mock_url
                        .as_deref()
                        .ok_or("the mock model is not running")?,
                );
            }
            ServerId::Node => {
                let dir = self.paths.node_dir();
                if !dir.join("node_modules/@ag-ui/encoder").exists() {
                    return Err(
                        "bench/peers/node/node_modules is missing: run bench/peers/install.sh"
                            .into(),
                    );
                }
                cmd.arg("node").arg(dir.join("server.mjs")).current_dir(dir);
                cmd.env("PORT", port.to_string()).envs(peer_env.clone());
            }
        }
        Ok(cmd)
    }

    /// Starts `server` and waits until it accepts connections.
    fn start(&self, server: ServerId, scenario: &str) -> Result<Running, String> {
        let port = free_port().map_err(|e| e.to_string())?;
        let mut cmd = self.command(server, port)?;
        let log = self
            .paths
            .raw
            .join(format!("{}-{scenario}.log", server.slug()));
        let file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", server.label()))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let cleanup = match server {
            ServerId::AguiServer | ServerId::AguiServerNoHistory | ServerId::AguiServerAgent => {
                vec![bench_database(addr)]
            }
            _ => vec![],
        };
        let mut running = Running {
            child,
            addr,
            cleanup,
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(status)) = running.child.try_wait() {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                let last = tail
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .to_owned();
                return Err(format!(
                    "{} exited at start ({status}): {}",
                    server.label(),
                    truncate(&last, 300)
                ));
            }
            if std::net::TcpStream::connect(running.addr).is_ok() {
                return Ok(running);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = running.child.kill();
        Err(format!("{} did not listen within 60 s", server.label()))
    }

    fn tokens_for(&self, mode: TokenMode) -> std::io::Result<Arc<Vec<String>>> {
        let path = match mode {
            TokenMode::Reused => &self.tokens.token,
            TokenMode::Fresh => &self.tokens.fresh,
            TokenMode::BadAudience => &self.tokens.bad_audience,
        };
        jwks::read_tokens(path).map(Arc::new)
    }

    /// Measures one (server, scenario) pair.
    pub fn measure(
        &self,
        server: ServerId,
        scenario: &Scenario,
        runtime: &tokio::runtime::Runtime,
    ) -> Cell {
        if scenario.concurrency > 1000 {
            let need = scenario.concurrency as u64 + 1024;
            if self.nofile < need {
                return Cell {
                    runs: vec![],
                    skipped: Some(format!(
                        "the descriptor limit is {} but {} concurrent streams need at least {need} (client and server each): raise the hard limit (`ulimit -Hn`, /etc/security/limits.conf or the container's nofile) and rerun",
                        self.nofile, scenario.concurrency
                    )),
                };
            }
        }
        let running = match self.start(server, &scenario.id) {
            Ok(r) => r,
            Err(reason) => {
                return Cell {
                    runs: vec![],
                    skipped: Some(reason),
                };
            }
        };
        let pid = running.child.id();
        let tokens = match self.tokens_for(scenario.token) {
            Ok(t) => t,
            Err(e) => {
                return Cell {
                    runs: vec![],
                    skipped: Some(e.to_string()),
                };
            }
        };
        let expect_status = if scenario.token == TokenMode::BadAudience {
            401
        } else {
            200
        };
        // Warm-up with the reused token: one request (JWKS fetched, code paths taken), then a
        // short burst so that JIT-compiled peers (Node's V8) are measured warm and not flattered
        // by a cold first run; the idle RSS is read after it.
        let warm_tokens = match self.tokens_for(TokenMode::Reused) {
            Ok(t) => t,
            Err(e) => {
                return Cell {
                    runs: vec![],
                    skipped: Some(e.to_string()),
                };
            }
        };
        for (requests, concurrency, message) in warm_up(scenario) {
            let warm = runtime.block_on(client::run(LoadSpec {
                addr: running.addr,
                path: "/chat".into(),
                concurrency,
                requests,
                tokens: warm_tokens.clone(),
                bodies: Arc::new(client::run_inputs(&message, requests)),
                expect_status: 200,
                deadline: Duration::from_secs(60),
            }));
            if !warm.summary.is_valid(requests as u64) {
                return Cell {
                    runs: vec![],
                    skipped: Some(format!(
                        "{}: the warm-up failed ({} of {requests} ok, errors {:?})",
                        server.label(),
                        warm.summary.requests_ok,
                        warm.summary.errors_by_kind
                    )),
                };
            }
        }
        // The connect scenario's thread: its runs, one after the other, before the idle RSS.
        let connect_thread = format!("bench-connect-{}", uuid::Uuid::new_v4().simple());
        if scenario.kind == Kind::Connect {
            let made = runtime.block_on(client::run(LoadSpec {
                addr: running.addr,
                path: "/chat".into(),
                concurrency: 1,
                requests: CONNECT_THREAD_RUNS,
                tokens: warm_tokens.clone(),
                bodies: Arc::new(client::thread_inputs(
                    &scenario.message,
                    &connect_thread,
                    CONNECT_THREAD_RUNS,
                )),
                expect_status: 200,
                deadline: Duration::from_secs(60),
            }));
            if !made.summary.is_valid(CONNECT_THREAD_RUNS as u64) {
                return Cell {
                    runs: vec![],
                    skipped: Some(format!(
                        "{}: the {CONNECT_THREAD_RUNS} runs of the thread failed ({} ok, errors {:?})",
                        server.label(),
                        made.summary.requests_ok,
                        made.summary.errors_by_kind
                    )),
                };
            }
        }
        // Long enough for the last run's history batch (history.flush_ms, 250 ms) to be written.
        std::thread::sleep(Duration::from_millis(400));
        let idle_rss_kib = procfs::rss_kib(pid).unwrap_or(0);
        let mut runs = Vec::new();
        for run in 0..scenario.runs {
            // Fresh tokens: each run gets its own slice, so no token is ever sent twice.
            let run_tokens = match scenario.token {
                TokenMode::Fresh => {
                    let n = scenario.requests;
                    Arc::new(
                        tokens
                            .iter()
                            .skip(run * n)
                            .take(n)
                            .cloned()
                            .collect::<Vec<_>>(),
                    )
                }
                _ => tokens.clone(),
            };
            let (path, bodies) = match scenario.kind {
                Kind::Connect => (
                    client::CONNECT_PATH.to_owned(),
                    vec![client::connect_input(&connect_thread)],
                ),
                _ => (
                    "/chat".to_owned(),
                    client::run_inputs(&scenario.message, scenario.requests),
                ),
            };
            let spec = LoadSpec {
                addr: running.addr,
                path,
                concurrency: scenario.concurrency,
                requests: scenario.requests,
                tokens: run_tokens,
                bodies: Arc::new(bodies),
                expect_status,
                deadline: Duration::from_secs(scenario.deadline_s),
            };
            let join = (scenario.kind == Kind::Join).then(|| client::JoinSpec {
                addr: running.addr,
                token: spec.tokens[0].clone(),
                message: scenario.message.clone(),
                expected: client::scripted_reply(&scenario.message).unwrap_or_default(),
                rounds: scenario.requests / scenario.concurrency.max(1),
                joiners: scenario.concurrency,
                deadline: spec.deadline,
            });
            let overflows = procfs::listen_overflows();
            let cpu = procfs::CpuReading::of(pid, self.ticks).unwrap_or_default();
            let client_cpu =
                procfs::CpuReading::of(std::process::id(), self.ticks).unwrap_or_default();
            let sampler = procfs::RssSampler::start(pid);
            let result = match join {
                Some(join) => runtime.block_on(client::join(join)),
                None => runtime.block_on(client::run(spec)),
            };
            let peak_rss_kib = sampler.finish(pid);
            let cpu_s =
                cpu.seconds_until(&procfs::CpuReading::of(pid, self.ticks).unwrap_or_default());
            let client_cpu_s = client_cpu.seconds_until(
                &procfs::CpuReading::of(std::process::id(), self.ticks).unwrap_or_default(),
            );
            let listen_overflows = procfs::listen_overflows().saturating_sub(overflows);
            // Every stream has ended (the client read each to its end or gave up): what the
            // server still holds after a quiet minute is what it kept of the burst.
            let settled_rss_kib = (scenario.settle_s > 0).then(|| {
                std::thread::sleep(Duration::from_secs(scenario.settle_s));
                procfs::rss_kib(pid).unwrap_or(0)
            });
            let valid = result.summary.is_valid(scenario.requests as u64);
            runs.push(RunRecord {
                summary: result.summary,
                requested: scenario.requests as u64,
                cpu_s,
                idle_rss_kib,
                peak_rss_kib,
                listen_overflows,
                client_cpu_s,
                settled_rss_kib,
                valid,
            });
            // Let closed connections drain before the next run's burst.
            std::thread::sleep(Duration::from_millis(300));
        }
        drop(running);
        Cell {
            runs,
            skipped: None,
        }
    }
}

/// The warm-up before a scenario's runs, as (requests, concurrency, message) steps: one request,
/// then a burst (200 × `/stream 50` at 10 concurrent for the scripted servers, 5 runs of the
/// scenario's message for the agents). Paced messages (`slow`, `soak`) are warmed with unpaced
/// ones so the warm-up stays short.
pub fn warm_up(scenario: &Scenario) -> Vec<(usize, usize, String)> {
    let agent = scenario
        .servers
        .iter()
        .any(|s| matches!(s, ServerId::AguiServerAgent | ServerId::Ag2));
    if agent {
        return vec![
            (1, 1, scenario.message.clone()),
            (5, 1, scenario.message.clone()),
        ];
    }
    let paced = scenario.message.split_whitespace().count() > 3;
    let first = if paced {
        "/stream 200".to_owned()
    } else {
        scenario.message.clone()
    };
    vec![(1, 1, first), (200, 10, "/stream 50".to_owned())]
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The soft `nofile` limit of this process, from `/proc/self/limits`.
pub fn nofile_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(1024)
}

/// A one-line description of the machine: CPU model, cores, memory, kernel.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| procfs_meminfo(&t))
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} × {model}, {:.0} GiB RAM, Linux {}",
        mem_kib as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

fn procfs_meminfo(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The scenarios of `mode`, or only the one whose id is `scenario` (`agui-bench suite
/// --scenario`, to measure one scenario alone).
///
/// # Errors
/// `mode` has no scenario with that id; the message lists the ones it has.
pub fn select(mode: &str, scenario: Option<&str>) -> Result<Vec<Scenario>, String> {
    let list = scenarios(mode);
    let Some(id) = scenario else {
        return Ok(list);
    };
    if list.iter().any(|s| s.id == id) {
        return Ok(list.into_iter().filter(|s| s.id == id).collect());
    }
    let ids: Vec<&str> = list.iter().map(|s| s.id.as_str()).collect();
    Err(format!(
        "no scenario {id:?} in {mode} mode (it has: {})",
        ids.join(", ")
    ))
}

/// Runs `list` (from [`select`]) and returns the results (the caller writes the report).
///
/// # Errors
/// The issuer or token files cannot be set up.
pub fn run(
    mode: &str,
    list: Vec<Scenario>,
    paths: Paths,
    only: Option<&[ServerId]>,
) -> std::io::Result<Results> {
    std::fs::create_dir_all(&paths.raw)?;
    // Helper servers (JWKS issuer, mock model) run on this process's runtime threads, which
    // share CPU 1 with the client as the protocol says.
    let helpers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let issuer_listener = helpers.block_on(async { crate::httpd::bind_loopback(0) })?;
    let issuer_port = issuer_listener.local_addr()?.port();
    let issuer = Arc::new(jwks::BenchIssuer::generate(issuer_port)?);
    let fresh = list
        .iter()
        .filter(|s| s.token == TokenMode::Fresh)
        .map(|s| s.requests * s.runs)
        .max()
        .unwrap_or(0);
    eprintln!("bench: minting {} tokens…", fresh + 2);
    let tokens = jwks::write_files(
        &issuer,
        &paths.raw.join("keys"),
        fresh.max(1),
        Duration::from_secs(3600),
    )?;
    {
        let issuer = issuer.clone();
        helpers.spawn(async move { jwks::serve(issuer_listener, &issuer).await });
    }
    let needs_mock = list.iter().any(|s| {
        s.servers
            .iter()
            .any(|x| matches!(x, ServerId::Ag2 | ServerId::AguiServerAgent))
    });
    let mock_url = if needs_mock {
        let listener = helpers.block_on(async { crate::httpd::bind_loopback(0) })?;
        let port = listener.local_addr()?.port();
        helpers.spawn(crate::mock::serve(
            listener,
            crate::mock::MockConfig {
                chunks: 200,
                size: 16,
                delay_ms: 0,
            },
        ));
        Some(format!("http://127.0.0.1:{port}/v1"))
    } else {
        None
    };
    let suite = Suite {
        issuer: issuer.issuer().to_owned(),
        tokens,
        mock_url,
        ticks: procfs::clock_ticks(),
        nofile: nofile_limit(),
        paths,
    };
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut results = Results {
        mode: mode.to_owned(),
        started: utc_now(),
        machine: machine(),
        profile: agui_profile(
            &suite.issuer,
            "127.0.0.1:0".parse().expect("a literal address"),
            None,
        ),
        scenarios: list.clone(),
        ..Results::default()
    };
    results.notes.push(format!(
        "descriptor limit (soft, inherited by every server): {}",
        suite.nofile
    ));
    for scenario in &list {
        for server in &scenario.servers {
            if only.is_some_and(|o| !o.contains(server)) {
                continue;
            }
            eprintln!("bench: {} × {} …", scenario.id, server.label());
            let cell = suite.measure(*server, scenario, &client_rt);
            match (&cell.skipped, cell.runs.first()) {
                (Some(reason), _) => eprintln!("bench:   skipped: {reason}"),
                (None, Some(_)) => {
                    for run in &cell.runs {
                        let s = &run.summary;
                        eprintln!(
                            "bench:   {:>9.0} req/s {:>10.0} ev/s  ttfe p99 {:>8.1} ms  cpu {:.2} s  rss {} KiB{}  overflows {}  errors {:?}{}",
                            s.requests_per_s,
                            s.events_per_s,
                            s.ttfe_ms.p99,
                            run.cpu_s,
                            run.peak_rss_kib,
                            run.settled_rss_kib.map_or(String::new(), |kib| format!(
                                " (after {} s: {kib} KiB)",
                                scenario.settle_s
                            )),
                            run.listen_overflows,
                            s.errors_by_kind,
                            if run.valid { "" } else { "  INVALID" }
                        );
                    }
                }
                _ => {}
            }
            results
                .cells
                .entry(scenario.id.clone())
                .or_default()
                .insert(*server, cell);
        }
    }
    helpers.shutdown_background();
    Ok(results)
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC` (from `date`, to avoid a time crate).
pub fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Writes `results` as JSON.
///
/// # Errors
/// The file cannot be written.
pub fn save(results: &Results, path: &Path) -> std::io::Result<()> {
    std::fs::write(
        path,
        serde_json::to_string_pretty(results).map_err(std::io::Error::other)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--scenario` keeps exactly the named scenario, with its mode's settings; an id the
    /// mode does not have is refused with the ids it has (no scenario silently measured).
    #[test]
    fn one_scenario_can_be_selected_alone() {
        let agent = select("full", Some("agent_c50")).unwrap();
        assert_eq!(agent.len(), 1);
        assert_eq!(agent[0].id, "agent_c50");
        assert_eq!(agent[0].runs, 3);
        assert_eq!(agent[0].servers, [ServerId::AguiServerAgent, ServerId::Ag2]);
        // The agent scenarios are full-mode only.
        let error = select("quick", Some("agent_c50")).unwrap_err();
        assert!(
            error.contains("no scenario \"agent_c50\" in quick mode"),
            "{error}"
        );
        assert!(
            error.contains("std_c50"),
            "the error lists the mode's ids: {error}"
        );
        // Control: no filter is the whole mode.
        let all = select("full", None).unwrap();
        assert_eq!(all.len(), scenarios("full").len());
        assert!(all.len() > 1);
    }

    #[test]
    fn full_mode_has_every_scenario_of_the_issue() {
        let ids: Vec<String> = scenarios("full").into_iter().map(|s| s.id).collect();
        for id in [
            "short",
            "short_fresh",
            "std_c1",
            "std_c50",
            "std_c500",
            "long",
            "slow",
            "auth_fail",
            "agent_c1",
            "agent_c50",
            "soak",
            "connect",
            "join",
        ] {
            assert!(ids.iter().any(|i| i == id), "{id} missing");
        }
        let all = scenarios("full");
        let soak = all.iter().find(|s| s.id == "soak").unwrap();
        assert_eq!(
            (soak.concurrency, soak.servers.as_slice()),
            (10_000, &[ServerId::Floor, ServerId::AguiServer][..])
        );
        assert!(all.iter().filter(|s| s.id != "soak").all(|s| s.runs == 3));
        // Only the soak waits for its memory to settle (a minute, issue #12).
        assert_eq!(soak.settle_s, 60);
        assert!(
            all.iter()
                .filter(|s| s.id != "soak")
                .all(|s| s.settle_s == 0)
        );
        // Agent-mode agui-server is compared with AG2 only, never with the scripted peers.
        for s in &all {
            let agent = s.servers.contains(&ServerId::AguiServerAgent)
                || s.servers.contains(&ServerId::Ag2);
            assert_eq!(agent, s.id.starts_with("agent"), "{}", s.id);
        }
    }

    #[test]
    fn quick_mode_is_one_run_of_a_subset() {
        let quick = scenarios("quick");
        assert!(quick.iter().all(|s| s.runs == 1));
        assert!(quick.len() < scenarios("full").len());
    }

    #[test]
    fn history_off_runs_beside_history_on_where_the_issue_compares_them() {
        for mode in ["quick", "full"] {
            for s in scenarios(mode) {
                let off = s.servers.contains(&ServerId::AguiServerNoHistory);
                assert_eq!(off, s.id == "std_c50" || s.id == "long", "{mode} {}", s.id);
                if off {
                    assert!(
                        s.servers.contains(&ServerId::AguiServer)
                            && s.servers.contains(&ServerId::Node)
                    );
                }
            }
            let kinds: Vec<Kind> = scenarios(mode).iter().map(|s| s.kind).collect();
            assert!(
                kinds.contains(&Kind::Connect) && kinds.contains(&Kind::Join),
                "{mode}"
            );
        }
        let join = scenarios("quick")
            .into_iter()
            .find(|s| s.id == "join")
            .unwrap();
        // Whole rounds of joiners, and a reply the client can check.
        assert_eq!(join.requests % join.concurrency, 0);
        assert!(client::scripted_reply(&join.message).is_some());
        // The history-off config is one the server accepts, and it switches history off.
        let file = std::env::temp_dir().join(format!(
            "agui-bench-{}-history-off.toml",
            std::process::id()
        ));
        std::fs::write(&file, HISTORY_OFF_TOML).unwrap();
        let config = agui_server::config::Config::from_file(&file);
        let _ = std::fs::remove_file(&file);
        assert!(!config.unwrap().history.enabled);
        assert!(agui_server::config::Config::default().history.enabled);
    }

    #[test]
    fn warm_up_is_short_and_unpaced_for_every_scenario() {
        for s in scenarios("full") {
            let steps = warm_up(&s);
            assert_eq!(steps[0].0, 1, "{}: one request first", s.id);
            for (n, c, message) in &steps {
                assert!(*n <= 200 && *c <= 10, "{}", s.id);
                if message.starts_with("/stream") {
                    assert!(
                        message.split_whitespace().count() <= 3,
                        "{}: {message}",
                        s.id
                    );
                }
            }
        }
        let agent = scenarios("full")
            .into_iter()
            .find(|s| s.id == "agent_c50")
            .unwrap();
        assert!(warm_up(&agent).iter().all(|(_, _, m)| *m == agent.message));
    }

    #[test]
    fn every_load_is_bounded() {
        for s in scenarios("full") {
            assert!(s.requests <= 10_000 && s.deadline_s <= 180, "{}", s.id);
        }
    }

    #[test]
    fn profile_keeps_auth_on() {
        let profile = agui_profile("http://127.0.0.1:1", "127.0.0.1:2".parse().unwrap(), None);
        let get = |k: &str| {
            profile
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("AGUI_OIDC_ISSUER"), Some("http://127.0.0.1:1"));
        assert_eq!(get("AGUI_OIDC_AUDIENCE"), Some(jwks::AUDIENCE));
        assert_eq!(get("AGUI_MODEL"), Some("scripted"));
    }

    #[test]
    fn agent_profile_configures_the_openai_provider_from_its_own_env_names() {
        let mock = "http://127.0.0.1:9100/v1";
        let profile = agui_profile(
            "http://127.0.0.1:1",
            "127.0.0.1:2".parse().unwrap(),
            Some(mock),
        );
        let get = |k: &str| profile.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("AGUI_MODEL").as_deref(), Some("openai"));
        // The server reads the provider's settings with this function at start-up.
        let config = agui_agent::openai::OpenAiConfig::from_env_like(get)
            .expect("the profile names every setting the provider needs");
        config.validate().unwrap();
        assert_eq!(config.base_url, mock);
        // Positive control: without the model name the provider refuses to start.
        let without_model = |k: &str| get(k).filter(|_| k != "AGUI_OPENAI_MODEL");
        assert!(agui_agent::openai::OpenAiConfig::from_env_like(without_model).is_err());
    }
}
