//! `agui-bench`: the benchmark's load client, floor server, mock model, JWKS helper and suite
//! driver in one binary (see `bench/README.md`). `bench/run.sh` is the usual entry point.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use agui_bench::{changes, client, floor, httpd, jwks, mock, report, suite};
use clap::{Parser, Subcommand};

/// agui-server's benchmark harness.
#[derive(Debug, Parser)]
#[command(name = "agui-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the suite and write bench/results/latest.md, chart.svg and raw/results.json.
    Suite {
        /// `quick` (about a minute) or `full` (under 20 minutes).
        #[arg(long, default_value = "quick")]
        mode: String,
        /// The repository root.
        #[arg(long, default_value = ".")]
        root: PathBuf,
        /// The agui-server binary.
        #[arg(long)]
        agui_server: Option<PathBuf>,
        /// Only these servers (comma separated slugs: floor, agui-server, python-h11, …).
        #[arg(long, value_delimiter = ',')]
        only: Option<Vec<String>>,
        /// Only this scenario (its id: short, std_c50, agent_c50, …; from the mode's list).
        /// A partial run leaves latest.md, chart.svg and raw/results.json alone: it writes
        /// raw/results-<id>.json and prints the report.
        #[arg(long)]
        scenario: Option<String>,
    },
    /// Re-render the report from raw/results.json.
    Report {
        /// The repository root.
        #[arg(long, default_value = ".")]
        root: PathBuf,
    },
    /// Load one server: C concurrent streaming POSTs, N in all; prints the summary as JSON.
    Load {
        /// Server address (loopback).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Path.
        #[arg(long, default_value = "/chat")]
        path: String,
        /// Concurrent connections.
        #[arg(short, long, default_value_t = 50)]
        concurrency: usize,
        /// Requests.
        #[arg(short = 'n', long, default_value_t = 1000)]
        requests: usize,
        /// File with one bearer token per line (used round-robin).
        #[arg(long)]
        tokens: PathBuf,
        /// The user message.
        #[arg(long, default_value = "/stream 200")]
        message: String,
        /// Expected status (401 for rejection runs).
        #[arg(long, default_value_t = 200)]
        expect_status: u16,
        /// Deadline in seconds.
        #[arg(long, default_value_t = 60)]
        deadline: u64,
    },
    /// The floor server (pre-encoded frames).
    Floor {
        /// Port on 127.0.0.1 (0 = any).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Leave out RUN_FINISHED (the client must count every stream as an error).
        #[arg(long)]
        truncate: bool,
    },
    /// The mock OpenAI-compatible model.
    Mock {
        /// Port on 127.0.0.1 (0 = any).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Content chunks per reply.
        #[arg(long, default_value_t = 200)]
        chunks: usize,
        /// Bytes per chunk.
        #[arg(long, default_value_t = 16)]
        size: usize,
        /// Milliseconds before each content chunk.
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
    },
    /// Generate a key, write jwks.json and token files into DIR, serve discovery + JWKS.
    Jwks {
        /// Output directory.
        #[arg(long)]
        dir: PathBuf,
        /// Port on 127.0.0.1 (0 = any).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Distinct tokens to write to tokens_fresh.txt.
        #[arg(long, default_value_t = 100)]
        fresh: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Suite {
            mode,
            root,
            agui_server,
            only,
            scenario,
        } => run_suite(&mode, root, agui_server, only, scenario.as_deref()),
        Cmd::Report { root } => rerender(&root),
        Cmd::Load {
            addr,
            path,
            concurrency,
            requests,
            tokens,
            message,
            expect_status,
            deadline,
        } => load(
            addr,
            path,
            concurrency,
            requests,
            tokens,
            &message,
            expect_status,
            deadline,
        ),
        Cmd::Floor { port, truncate } => serve(port, move |l| Box::pin(floor::serve(l, truncate))),
        Cmd::Mock {
            port,
            chunks,
            size,
            delay_ms,
        } => serve(port, move |l| {
            Box::pin(mock::serve(
                l,
                mock::MockConfig {
                    chunks,
                    size,
                    delay_ms,
                },
            ))
        }),
        Cmd::Jwks { dir, port, fresh } => serve_jwks(&dir, port, fresh),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("agui-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

type BoxFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    // Worker count follows the CPU affinity mask, so a pinned process gets one worker.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

fn serve(
    port: u16,
    server: impl FnOnce(tokio::net::TcpListener) -> BoxFuture,
) -> std::io::Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let listener = httpd::bind_loopback(port)?;
        httpd::announce(&listener);
        server(listener).await;
        Ok(())
    })
}

fn serve_jwks(dir: &std::path::Path, port: u16, fresh: usize) -> std::io::Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let listener = httpd::bind_loopback(port)?;
        let issuer = jwks::BenchIssuer::generate(listener.local_addr()?.port())?;
        jwks::write_files(&issuer, dir, fresh, Duration::from_secs(3600))?;
        std::fs::write(dir.join("issuer.txt"), issuer.issuer())?;
        httpd::announce(&listener);
        jwks::serve(listener, &issuer).await;
        Ok(())
    })
}

#[allow(clippy::too_many_arguments)]
fn load(
    addr: SocketAddr,
    path: String,
    concurrency: usize,
    requests: usize,
    tokens: PathBuf,
    message: &str,
    expect_status: u16,
    deadline: u64,
) -> std::io::Result<()> {
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::other(
            "the load client only targets loopback addresses",
        ));
    }
    let tokens = Arc::new(jwks::read_tokens(&tokens)?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(client::run(client::LoadSpec {
        addr,
        path,
        concurrency,
        requests,
        tokens,
        bodies: Arc::new(client::run_inputs(message, requests)),
        expect_status,
        deadline: Duration::from_secs(deadline),
    }));
    let valid = result.summary.is_valid(requests as u64);
    println!(
        "{}",
        serde_json::to_string_pretty(&result.summary).map_err(std::io::Error::other)?
    );
    if valid {
        Ok(())
    } else {
        Err(std::io::Error::other(
            "the run is not valid: errors or streams without RUN_FINISHED",
        ))
    }
}

fn parse_server(slug: &str) -> Result<suite::ServerId, String> {
    serde_json::from_value(serde_json::Value::String(slug.to_owned()))
        .map_err(|_| format!("unknown server {slug:?}"))
}

fn run_suite(
    mode: &str,
    root: PathBuf,
    agui_server: Option<PathBuf>,
    only: Option<Vec<String>>,
    scenario: Option<&str>,
) -> std::io::Result<()> {
    if mode != "quick" && mode != "full" {
        return Err(std::io::Error::other("--mode is quick or full"));
    }
    let list = suite::select(mode, scenario).map_err(std::io::Error::other)?;
    let root = root.canonicalize()?;
    let only: Option<Vec<suite::ServerId>> = only
        .map(|list| {
            list.iter()
                .map(|s| parse_server(s))
                .collect::<Result<_, _>>()
        })
        .transpose()
        .map_err(std::io::Error::other)?;
    let paths = suite::Paths {
        agui_server: agui_server.unwrap_or_else(|| root.join("target/release/agui-server")),
        bench: std::env::current_exe()?,
        raw: root.join("bench/results/raw"),
        root: root.clone(),
    };
    let results = suite::run(mode, list, paths, only.as_deref())?;
    if let Some(id) = scenario {
        // One scenario is not the report: the committed latest.md stays a full run's.
        suite::save(
            &results,
            &root.join(format!("bench/results/raw/results-{id}.json")),
        )?;
        println!("{}", report::markdown(&results, "chart.svg"));
        return Ok(());
    }
    suite::save(&results, &root.join("bench/results/raw/results.json"))?;
    write_report(&root, &results)
}

fn rerender(root: &std::path::Path) -> std::io::Result<()> {
    let text = std::fs::read_to_string(root.join("bench/results/raw/results.json"))?;
    let results: suite::Results = serde_json::from_str(&text).map_err(std::io::Error::other)?;
    write_report(root, &results)
}

fn write_report(root: &std::path::Path, results: &suite::Results) -> std::io::Result<()> {
    let dir = root.join("bench/results");
    let mut md = report::markdown(results, "chart.svg");
    // What changed against the report this one replaces (kept as it was when the same run is
    // rendered again).
    let previous = std::fs::read_to_string(dir.join("latest.md")).unwrap_or_default();
    if let Some(section) =
        changes::section(&previous, &md).or_else(|| changes::carry_over(&previous, &md))
    {
        changes::insert(&mut md, &section);
    }
    // The profiler evidence (bench/PROFILE.md) goes into the report beside the figures.
    if let Ok(profile) = std::fs::read_to_string(root.join("bench/PROFILE.md")) {
        report::append_profile(&mut md, &profile);
    }
    std::fs::write(dir.join("latest.md"), &md)?;
    std::fs::write(dir.join("chart.svg"), report::svg(results))?;
    println!("{md}");
    Ok(())
}
