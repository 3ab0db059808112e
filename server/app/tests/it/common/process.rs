//! The real `agui-server` binary as a child process, for black-box tests (the hostile-input
//! suite, signals): started on 127.0.0.1:0 with the given environment, its stderr captured line
//! by line, its RSS and open descriptors readable from `/proc`, killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use agui_auth::testing::TestIdp;

use super::{AUDIENCE, HANG_GUARD};

/// A running `agui-server serve`.
pub struct Process {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The listening address (for raw sockets).
    pub addr: SocketAddr,
    child: Option<Child>,
    stderr: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Process {
    /// Starts `agui-server serve` listening on 127.0.0.1:0 with an in-memory store and text logs
    /// at `info`, plus `env` (which may override any of those), and waits until it listens.
    pub async fn spawn(env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_agui-server"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AGUI_LISTEN", "127.0.0.1:0")
            .env("AGUI_DATABASE_URL", "sqlite::memory:")
            .env("AGUI_LOG", "info")
            .env("AGUI_LOG_FORMAT", "text");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().expect("stderr is piped");
        let lines = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(at) = line.find("listening on http://") {
                    let _ = url_tx.send(line[at + "listening on ".len()..].trim().to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let url = tokio::task::spawn_blocking(move || url_rx.recv_timeout(HANG_GUARD))
            .await
            .unwrap()
            .unwrap_or_else(|_| panic!("the server listens; stderr: {:?}", stderr.lock()));
        let addr = url
            .trim_start_matches("http://")
            .parse()
            .expect("a socket address");
        Self {
            url,
            addr,
            child: Some(child),
            stderr,
            reader: Some(reader),
        }
    }

    /// [`Process::spawn`] trusting `idp` as its OpenID issuer (`AGUI_OIDC_ISSUER`, audience
    /// [`AUDIENCE`]), plus `extra`.
    pub async fn trusting(idp: &TestIdp, extra: &[(&str, &str)]) -> Self {
        let issuer = idp.issuer_url();
        let mut env = vec![
            ("AGUI_OIDC_ISSUER", issuer.as_str()),
            ("AGUI_OIDC_AUDIENCE", AUDIENCE),
        ];
        env.extend_from_slice(extra);
        Self::spawn(&env).await
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Every stderr line so far (ANSI and control characters as written).
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Resident set size now, in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the process is alive");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    /// Descriptors the process holds open now.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("the process is alive")
            .count()
    }

    /// Sends `signal` (a `kill` option such as `-TERM`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal}");
    }

    /// Waits for the process to exit and returns its status.
    pub async fn wait(self) -> std::process::ExitStatus {
        self.wait_with_stderr().await.0
    }

    /// Waits for the process to exit and for its stderr to end: its status and every line it
    /// wrote (nothing is still in flight).
    pub async fn wait_with_stderr(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let mut child = self.child.take().expect("running");
        let reader = self.reader.take().expect("reading stderr");
        let status = tokio::task::spawn_blocking(move || {
            let status = child.wait().expect("wait");
            reader.join().expect("the stderr reader ends");
            status
        })
        .await
        .unwrap();
        (status, self.stderr())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
