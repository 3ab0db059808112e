//! The `github-standin` process the Node and browser suites launch: it ends on SIGTERM even
//! while it watches its standard input (`--exit-on-stdin-close`), as it does when that pipe
//! closes. It used to read stdin on tokio's blocking pool, whose shutdown waits for that read:
//! a SIGTERM then left it running until its launcher's pipe closed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Only against hanging: each step is awaited on its cause (the ready line, the exit).
const HANG_GUARD: Duration = Duration::from_secs(30);

/// Starts the stand-in watching its stdin (a pipe this test holds open) and waits for its
/// ready line.
fn start() -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_github-standin"))
        .args(["--port", "0", "--exit-on-stdin-close"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the stand-in starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert!(line.contains("\"url\":\"http://127.0.0.1:"), "{line}");
    child
}

/// Waits (bounded by [`HANG_GUARD`]) for the child to exit; `None` if it did not.
fn exit_of(child: &mut Child) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + HANG_GUARD;
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn the_standin_ends_on_sigterm_while_it_watches_its_stdin() {
    let mut child = start();
    // Its stdin stays open (held by `child.stdin`): only the signal can end it.
    assert!(child.try_wait().unwrap().is_none(), "it runs until told");
    kill(&child, "-TERM");
    let exit = exit_of(&mut child);
    if exit.is_none() {
        let _ = child.kill();
    }
    let exit = exit.expect("the stand-in exits on SIGTERM with its stdin open");
    assert!(exit.success(), "{exit:?}");
    drop(child.stdin.take());
}

/// The control: closing its stdin ends it too.
#[test]
fn the_standin_ends_when_its_stdin_closes() {
    let mut child = start();
    drop(child.stdin.take());
    let exit = exit_of(&mut child);
    if exit.is_none() {
        let _ = child.kill();
    }
    assert!(
        exit.expect("the stand-in exits when its stdin closes")
            .success()
    );
}
