//! Issue #12, the connection layer, against the real binary: a 413 that Node's `fetch` can read
//! (lingering close) and a close that still comes when the client never stops sending; one
//! request-head limit whatever the segmentation; requests arriving during the shutdown drain get
//! 503 `shutting_down` + `Connection: close`, and idle connections close when the drain ends.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::common::process::Process;
use crate::common::*;
use agui_auth::testing::TestIdp;

/// `limits.max_header_bytes`' default, which the README documents.
const HEAD_LIMIT: usize = 65_536;

/// An answer read off a raw socket.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "a JSON body ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Reads one answer with a `Content-Length` body (every non-stream answer here has one).
async fn read_answer(reader: &mut BufReader<TcpStream>) -> Raw {
    tokio::time::timeout(HANG_GUARD, async {
        let mut line = String::new();
        reader.read_line(&mut line).await.expect("a status line");
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("a status line, got {line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            reader.read_line(&mut line).await.expect("a header line");
            let field = line.trim_end();
            if field.is_empty() {
                break;
            }
            let (name, value) = field.split_once(':').expect("name: value");
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().expect("a length"));
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await.expect("the body");
        Raw {
            status,
            headers,
            body,
        }
    })
    .await
    .expect("an answer")
}

/// Reads until the server closes the connection; returns what came (nothing, for a close
/// without an answer).
async fn read_to_close(reader: &mut BufReader<TcpStream>) -> Vec<u8> {
    let mut rest = Vec::new();
    tokio::time::timeout(HANG_GUARD, reader.read_to_end(&mut rest))
        .await
        .expect("the server closes the connection")
        .expect("a clean close, not a reset");
    rest
}

async fn connect(process: &Process) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(process.addr).await.expect("connects");
    stream.set_nodelay(true).unwrap();
    BufReader::new(stream)
}

// --- 5. a 413 a browser can read -----------------------------------------------------------

/// Runs `fetch_post.mjs`: Node's own `fetch` posting about `bytes` bytes to `/chat`.
async fn node_fetch(process: &Process, token: &str, bytes: usize, mode: &str) -> Option<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fetch_post.mjs");
    let run = tokio::process::Command::new("node")
        .arg(script)
        .arg(format!("{}/chat", process.url))
        .arg(token)
        .arg(bytes.to_string())
        .arg(mode)
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(HANG_GUARD, run)
        .await
        .expect("node ends")
    {
        Ok(output) => output,
        Err(error) => {
            println!("skipped: `node` cannot run here ({error})");
            return None;
        }
    };
    assert!(
        output.status.success(),
        "node: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = String::from_utf8_lossy(&output.stdout);
    Some(serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}")))
}

#[tokio::test]
async fn node_fetch_reads_the_413_for_a_body_over_the_limit() {
    let idp = TestIdp::start().await;
    // The default limit (8 MiB): an excess of 4 MiB is more than loopback's socket buffers hold,
    // so without the lingering close the reset reaches fetch before the answer (EPIPE).
    let limit = 8 * 1024 * 1024;
    let process = Process::trusting(&idp, &[]).await;
    let token = mint(&idp, "alice", AUDIENCE);

    for mode in ["length", "stream"] {
        // Positive control: under the limit, the run streams.
        let Some(ok) = node_fetch(&process, &token, 64 * 1024, mode).await else {
            return;
        };
        assert_eq!(ok["status"], 200, "{mode}: {ok}");
        assert!(
            ok["body"].as_str().unwrap().contains("RUN_FINISHED"),
            "{mode}: {ok}"
        );

        // Half as much again over the limit (a long CopilotKit thread): declared by
        // Content-Length (refused before reading) or found while reading a chunked body.
        let over = node_fetch(&process, &token, limit + limit / 2, mode)
            .await
            .unwrap();
        assert_eq!(
            over["status"], 413,
            "{mode}: fetch must read the answer, got {over}"
        );
        assert_eq!(over["connection"], "close", "{mode}: {over}");
        let body: Value = serde_json::from_str(over["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"], "payload_too_large", "{mode}: {over}");
    }
}

/// The lingering is bounded: a client that declares 1 GiB and never stops sending is closed
/// after the linger budget (2 × `max_body_bytes`, at least 1 MiB), not after reading it all.
#[tokio::test]
async fn a_client_that_never_stops_sending_is_closed_after_the_linger_budget() {
    let idp = TestIdp::start().await;
    let process = Process::trusting(&idp, &[("AGUI_MAX_BODY_BYTES", "65536")]).await;
    let token = mint(&idp, "alice", AUDIENCE);
    let stream = TcpStream::connect(process.addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    let head = format!(
        "POST /chat HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        1u64 << 30
    );
    write.write_all(head.as_bytes()).await.unwrap();
    let sender = tokio::spawn(async move {
        let chunk = vec![b' '; 64 * 1024];
        let mut sent: u64 = 0;
        // Until the server closes: the write fails (reset or broken pipe).
        while write.write_all(&chunk).await.is_ok() {
            sent += chunk.len() as u64;
            assert!(sent < 1 << 30, "the server read the whole declared body");
        }
        sent
    });
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    tokio::time::timeout(HANG_GUARD, reader.read_line(&mut line))
        .await
        .expect("an answer")
        .unwrap();
    assert!(line.starts_with("HTTP/1.1 413"), "{line:?}");
    let sent = tokio::time::timeout(HANG_GUARD, sender)
        .await
        .expect("the server closes the connection")
        .unwrap();
    // The budget (1 MiB) plus what the kernel's socket buffers on both sides hold.
    let bound = (1 << 20) + (32 << 20);
    println!("sent {sent} bytes before the close");
    assert!(
        sent < bound,
        "sent {sent} bytes before the close; bound {bound}"
    );
}

// --- 6. one head limit whatever the segmentation --------------------------------------------

/// A `GET /healthz` head of exactly `len` bytes, padded with `x-pad-<i>` fields.
fn head_of(len: usize) -> Vec<u8> {
    let start = "GET /healthz HTTP/1.1\r\nhost: x\r\n";
    let mut head = String::from(start);
    let mut i = 0;
    // Each pad line: `x-pad-<i>: <a...>\r\n`; the last one takes what is left.
    loop {
        let name = format!("x-pad-{i}: ");
        let left = len - head.len() - 2; // the final CRLF
        let full = name.len() + 4000 + 2;
        if left >= full + name.len() + 1 + 2 + 4 {
            head.push_str(&name);
            head.push_str(&"a".repeat(4000));
            head.push_str("\r\n");
            i += 1;
        } else {
            let value = left - name.len() - 2;
            head.push_str(&name);
            head.push_str(&"a".repeat(value));
            head.push_str("\r\n");
            break;
        }
    }
    head.push_str("\r\n");
    assert_eq!(head.len(), len);
    head.into_bytes()
}

/// Sends `head` in one write or in 1 KiB pieces (each its own segment: no Nagle, a pause
/// between) and returns the answer.
async fn send_head(process: &Process, head: &[u8], pieces: bool) -> Raw {
    let mut conn = connect(process).await;
    if pieces {
        for piece in head.chunks(1024) {
            // A refusal may close the connection before the last piece; the answer says why.
            if conn.get_mut().write_all(piece).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    } else {
        conn.get_mut().write_all(head).await.unwrap();
    }
    read_answer(&mut conn).await
}

#[tokio::test]
async fn a_head_under_the_limit_is_served_and_over_it_gets_431_however_it_is_segmented() {
    let idp = TestIdp::start().await;
    let process = Process::trusting(&idp, &[]).await;
    for pieces in [false, true] {
        let how = if pieces { "1 KiB pieces" } else { "one write" };
        let under = send_head(&process, &head_of(HEAD_LIMIT - 100), pieces).await;
        assert_eq!(under.status, 200, "limit - 100 in {how}: {under:?}");

        let over = send_head(&process, &head_of(HEAD_LIMIT + 100), pieces).await;
        assert_eq!(over.status, 431, "limit + 100 in {how}: {over:?}");
        assert_eq!(over.json()["error"], "headers_too_large", "{how}");
        assert_eq!(over.header("connection"), Some("close"), "{how}");

        // Far over (past hyper's ceiling, limit + 16 KiB): still 431.
        let far = send_head(&process, &head_of(HEAD_LIMIT * 2), pieces).await;
        assert_eq!(far.status, 431, "2 × limit in {how}: {far:?}");
    }
}

// --- 8. shutdown ------------------------------------------------------------------------------

/// A stream open, an idle kept-alive connection, SIGTERM: the stream ends with `RUN_ERROR
/// server_shutdown`, a request then sent on the idle connection gets 503 `shutting_down` with
/// `Connection: close` and the connection closes, and the process exits cleanly once the
/// clients have closed (the grace is long, so only that can end the drain).
#[tokio::test]
async fn a_request_during_the_drain_gets_503_shutting_down_and_connection_close() {
    let idp = TestIdp::start().await;
    let process = Process::trusting(
        &idp,
        &[
            ("AGUI_SHUTDOWN_DEADLINE_SECS", "60"),
            ("AGUI_SHUTDOWN_GRACE_SECS", "60"),
        ],
    )
    .await;
    let token = mint(&idp, "alice", AUDIENCE);

    // The idle kept-alive connection, proven reusable before the signal (positive control).
    let mut idle = connect(&process).await;
    let healthz = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";
    idle.get_mut().write_all(healthz).await.unwrap();
    let before = read_answer(&mut idle).await;
    assert_eq!(before.status, 200);
    assert_ne!(before.header("connection"), Some("close"));

    // The open stream.
    let mut stream = connect(&process).await;
    let body = serde_json::to_string(&input("/stream 1000 16 100", Some("1.0"))).unwrap();
    let request = format!(
        "POST /chat HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("TEXT_MESSAGE_CONTENT") {
        let n = tokio::time::timeout(HANG_GUARD, stream.read(&mut buf))
            .await
            .expect("the stream runs")
            .unwrap();
        assert!(n > 0, "the stream ended early");
        seen.extend_from_slice(&buf[..n]);
    }

    process.signal("-TERM");

    // The stream ends with RUN_ERROR server_shutdown and its chunked terminator.
    while !seen.ends_with(b"0\r\n\r\n") {
        let n = tokio::time::timeout(HANG_GUARD, stream.read(&mut buf))
            .await
            .expect("the stream ends")
            .unwrap();
        assert!(
            n > 0,
            "the stream was cut: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.contains("\"RUN_ERROR\""), "{seen}");
    assert!(seen.contains("server_shutdown"), "{seen}");
    drop(stream);

    // The request on the idle connection, after the signal.
    idle.get_mut().write_all(healthz).await.unwrap();
    let during = read_answer(&mut idle).await;
    assert_eq!(during.status, 503, "{during:?}");
    assert_eq!(during.json()["error"], "shutting_down");
    assert_eq!(during.header("connection"), Some("close"));
    assert!(read_to_close(&mut idle).await.is_empty());
    drop(idle);

    let exit = tokio::time::timeout(HANG_GUARD, process.wait())
        .await
        .expect("the process exits once its clients are gone");
    assert!(exit.success(), "clean exit: {exit:?}");
}

/// Nothing to drain: an idle kept-alive connection that sends nothing is closed by the server
/// once the grace ends (without an answer: there was no request), and the process exits.
#[tokio::test]
async fn an_idle_connection_is_closed_when_the_grace_ends() {
    let idp = TestIdp::start().await;
    let process = Process::trusting(&idp, &[("AGUI_SHUTDOWN_GRACE_SECS", "1")]).await;
    let mut idle = connect(&process).await;
    idle.get_mut()
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_answer(&mut idle).await.status, 200);

    process.signal("-TERM");
    assert!(read_to_close(&mut idle).await.is_empty());
    drop(idle);
    let exit = tokio::time::timeout(HANG_GUARD, process.wait())
        .await
        .expect("the process exits");
    assert!(exit.success(), "clean exit: {exit:?}");
}
