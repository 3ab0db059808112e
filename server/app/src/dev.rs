//! `agui-server dev`: a complete local server in one command.
//!
//! An ephemeral signing key and an issuer served over HTTP on loopback from inside the process
//! (so the real discovery and JWKS path runs), the scripted model, and a ready-to-paste `curl -N`
//! with a freshly minted token. It trusts only its own issuer and refuses non-loopback addresses.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use agui_auth::dev::{DevIssuer, TokenSpec};

use crate::cli::DevArgs;
use crate::config::{Config, LogFormat};
use crate::state::AppState;

/// The audience `dev` tokens carry.
pub const DEV_AUDIENCE: &str = DevIssuer::AUDIENCE;

/// Runs `agui-server dev`.
pub async fn run(args: DevArgs) -> ExitCode {
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "agui-server dev: refusing to listen on {}: dev mode is loopback only",
            args.listen
        );
        return ExitCode::from(2);
    }
    let _log_guard = crate::telemetry::init(LogFormat::Text, "info");
    let issuer = match DevIssuer::start(SocketAddr::from(([127, 0, 0, 1], 0))).await {
        Ok(issuer) => issuer,
        Err(error) => {
            eprintln!("agui-server dev: cannot start the local issuer: {error}");
            return ExitCode::from(1);
        }
    };
    let mut config = Config {
        listen: args.listen,
        ..Config::default()
    };
    config.model.scripted_delay_ms = args.scripted_delay_ms;
    config.auth =
        match agui_auth::AuthConfig::from_env_single_issuer(&issuer.issuer_url(), DEV_AUDIENCE, "")
        {
            Ok(auth) => auth,
            Err(error) => {
                eprintln!("agui-server dev: {error}");
                return ExitCode::from(1);
            }
        };
    let listener = match crate::serve::bind(config.listen, config.backlog) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "agui-server dev: cannot listen on {}: {error}",
                config.listen
            );
            return ExitCode::from(1);
        }
    };
    let addr = listener.local_addr().unwrap_or(config.listen);
    let state = match AppState::builder(config).build().await {
        Ok(state) => state,
        Err(error) => {
            eprintln!("agui-server dev: {error}");
            return ExitCode::from(1);
        }
    };
    let token = issuer.mint(
        TokenSpec::new(args.user.clone())
            .name(args.name.clone())
            .email(args.email.clone())
            .roles(args.roles.clone())
            .audience([DEV_AUDIENCE])
            .ttl(Duration::from_secs(12 * 3600)),
    );
    print_banner(addr, &issuer.issuer_url(), &args, &token);
    crate::run(listener, state, crate::shutdown_signal()).await;
    drop(issuer);
    ExitCode::SUCCESS
}

fn print_banner(addr: SocketAddr, issuer: &str, args: &DevArgs, token: &str) {
    println!(
        r#"
================================================================================
  agui-server DEV MODE: a local issuer with an ephemeral key, the scripted model.
  Loopback only. Never expose this: anyone with the printed token is {user}.
================================================================================
  server : http://{addr}
  issuer : {issuer}   (audience {aud})
  user   : {user} ({name}, {email}, roles: {roles})

  Try it:

curl -N http://{addr}/chat \
  -H 'Authorization: Bearer {token}' \
  -H 'Content-Type: application/json' \
  -d '{{"threadId":"t1","runId":"r1","messages":[{{"id":"m1","role":"user","content":"hello"}}]}}'

  Other users: agui-server dev --user alice --name Alice --roles admin,viewer
================================================================================
"#,
        user = args.user,
        name = args.name,
        email = args.email,
        roles = args.roles.join(","),
        aud = DEV_AUDIENCE,
    );
}
