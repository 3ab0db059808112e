//! SIGTERM (and SIGINT, Ctrl-C, and with `--exit-on-stdin-close` the launcher's pipe closing) to
//! the real binary with a stream open: the stream ends with `RUN_ERROR server_shutdown` (not a
//! truncated body the client would take for success) and the process exits cleanly within its
//! deadline.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common::*;
use agui_auth::testing::TestIdp;

#[tokio::test]
async fn sigterm_ends_open_streams_with_server_shutdown_and_exits() {
    signal_ends_open_streams_with_server_shutdown_and_exits("-TERM").await;
}

#[tokio::test]
async fn sigint_ends_open_streams_with_server_shutdown_and_exits() {
    signal_ends_open_streams_with_server_shutdown_and_exits("-INT").await;
}

/// What `make run` relies on: a launcher that dies (even by SIGKILL) closes agui-server's stdin,
/// and agui-server shuts down as on SIGTERM instead of living on as an orphan.
#[tokio::test]
async fn stdin_closing_ends_open_streams_with_server_shutdown_and_exits() {
    signal_ends_open_streams_with_server_shutdown_and_exits("stdin").await;
}

/// `signal` is a `kill` option (`-TERM`, `-INT`) or `stdin`: close the pipe of a server started
/// with `--exit-on-stdin-close`.
async fn signal_ends_open_streams_with_server_shutdown_and_exits(signal: &str) {
    let idp = TestIdp::start().await;
    let by_stdin = signal == "stdin";
    let mut command = Command::new(env!("CARGO_BIN_EXE_agui-server"));
    command.arg("serve");
    if by_stdin {
        command.arg("--exit-on-stdin-close").stdin(Stdio::piped());
    }
    let mut child = command
        .env("AGUI_LISTEN", "127.0.0.1:0")
        .env("AGUI_OIDC_ISSUER", idp.issuer_url())
        .env("AGUI_OIDC_AUDIENCE", AUDIENCE)
        .env("AGUI_SHUTDOWN_DEADLINE_SECS", "10")
        .env("AGUI_DATABASE_URL", "sqlite::memory:")
        .env("AGUI_LOG", "info")
        .env("AGUI_LOG_FORMAT", "text")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().unwrap();
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("listening on http://") {
                let _ = url_tx.send(line[at + "listening on ".len()..].trim().to_owned());
            }
        }
    });
    let url = tokio::task::spawn_blocking(move || url_rx.recv_timeout(HANG_GUARD))
        .await
        .unwrap()
        .expect("the server listens");

    let token = mint(&idp, "alice", AUDIENCE);
    let mut response = reqwest::Client::new()
        .post(format!("{url}/chat"))
        .bearer_auth(&token)
        .json(&input("/stream 1000 16 100", Some("1.0")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = String::new();
    while !body.contains("TEXT_MESSAGE_CONTENT") {
        body.push_str(&String::from_utf8_lossy(
            &response.chunk().await.unwrap().unwrap(),
        ));
    }

    if by_stdin {
        drop(child.stdin.take().expect("stdin is piped"));
    } else {
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    while let Some(chunk) = tokio::time::timeout(HANG_GUARD, response.chunk())
        .await
        .expect("the stream ends")
        .unwrap()
    {
        body.push_str(&String::from_utf8_lossy(&chunk));
    }
    let events = sse_events(&body);
    let last = terminal(&events);
    assert_eq!(last["type"], "RUN_ERROR");
    assert_eq!(last["code"], "server_shutdown", "after kill {signal}");
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        exit.success(),
        "clean exit after draining (kill {signal}): {exit:?}"
    );
}
