//! `github-standin`: the local GitHub of agui-auth's tests (`agui_auth::testing::GitHubStandIn`)
//! as a process, for the Node and browser suites. The same implementation the Rust tests use;
//! no suite reaches github.com.
//!
//! ```sh
//! target/debug/github-standin --port 0 [--fixtures fixtures.json] [--exit-on-stdin-close]
//! # stdout, one line when ready:
//! # {"url":"http://127.0.0.1:PORT","api_url":"http://127.0.0.1:PORT/api/v3","client_id":"Iv1.agui-tests","client_secret":"…"}
//! ```
//!
//! Point agui-server at it as at a GitHub Enterprise Server: `AGUI_GITHUB_WEB_URL=<url>`,
//! `AGUI_GITHUB_API_URL=<api_url>`, `AGUI_GITHUB_CLIENT_ID` / `AGUI_GITHUB_CLIENT_SECRET` from
//! the line. `--fixtures` is a JSON `StandInFixtures` (`users`, `apps`, `auto_approve`); the
//! default has `octocat`, `hubot` and `mona`, our app and another. The control API is under
//! `/__standin/` (`GET state`, `POST fault`, `POST tokens`, `POST auto_approve`, `POST revoke`).

use std::net::SocketAddr;
use std::process::ExitCode;

use agui_auth::testing::{GitHubStandIn, StandInFixtures};

fn usage(message: &str) -> ExitCode {
    eprintln!(
        "github-standin: {message}\nusage: github-standin [--port N] [--fixtures FILE] [--exit-on-stdin-close]"
    );
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut port = 0u16;
    let mut fixtures = StandInFixtures::default();
    let mut exit_on_stdin_close = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => match args.next().and_then(|p| p.parse().ok()) {
                Some(p) => port = p,
                None => return usage("--port needs a number"),
            },
            "--fixtures" => {
                let Some(path) = args.next() else {
                    return usage("--fixtures needs a file");
                };
                let parsed = std::fs::read_to_string(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()));
                match parsed {
                    Ok(f) => fixtures = f,
                    Err(e) => return usage(&format!("cannot read fixtures {path}: {e}")),
                }
            }
            "--exit-on-stdin-close" => exit_on_stdin_close = true,
            other => return usage(&format!("unknown argument {other}")),
        }
    }
    let ours = fixtures
        .apps
        .iter()
        .find(|a| a.client_id == GitHubStandIn::CLIENT_ID)
        .or(fixtures.apps.first())
        .cloned();
    let bind = SocketAddr::from(([127, 0, 0, 1], port));
    let standin = match GitHubStandIn::start_with(fixtures, bind).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("github-standin: cannot listen on {bind}: {e}");
            return ExitCode::from(1);
        }
    };
    let line = serde_json::json!({
        "url": standin.url(),
        "api_url": standin.api_url(),
        "client_id": ours.as_ref().map(|a| a.client_id.clone()),
        "client_secret": ours.as_ref().map(|a| a.client_secret.clone()),
    });
    println!("{line}");
    let stdin_closed = async {
        if exit_on_stdin_close {
            agui_server::cli::commands::stdin_closed().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminated() => {}
        () = stdin_closed => {}
    }
    drop(standin);
    ExitCode::SUCCESS
}

async fn terminated() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        term.recv().await;
        return;
    }
    std::future::pending::<()>().await;
}
