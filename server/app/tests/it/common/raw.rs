//! HTTP/1.1 over a raw `TcpStream`, for tests where how the bytes arrive matters (a body that
//! stalls, drips or stops half way): write a head and part of a body, then read what the server
//! answers and whether it closed the connection.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::HANG_GUARD;

/// What the server answered on a raw connection.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body as text (not de-chunked: error bodies here carry a Content-Length).
    pub body: String,
}

impl RawResponse {
    /// The JSON error body's `error` code.
    pub fn code(&self) -> String {
        let json: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("an error body, got {:?}: {e}", self.body));
        json["error"].as_str().unwrap_or_default().to_owned()
    }
}

/// `http://127.0.0.1:<port>` → the socket address.
pub fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .parse()
        .expect("a socket address")
}

/// A `POST path` head with a JSON `Content-Length: length` body to come, plus `headers`.
pub fn post_head(path: &str, length: usize, headers: &[(&str, &str)]) -> String {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Connects and writes `bytes` (a head and, maybe, the start of its body).
pub async fn open(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("the server accepts");
    stream.write_all(bytes).await.expect("the head is written");
    stream
}

/// Reads one response (its head and a Content-Length body, or up to the end of the
/// connection); panics if none is complete after [`HANG_GUARD`].
pub async fn read_response(stream: &mut (impl AsyncRead + Unpin)) -> RawResponse {
    let mut bytes = Vec::new();
    let read = async {
        let mut buf = [0u8; 8192];
        loop {
            if let Some(length) = complete(&bytes) {
                bytes.truncate(length);
                break;
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(HANG_GUARD, read)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no complete response; got {:?}",
                String::from_utf8_lossy(&bytes)
            )
        });
    parse(&bytes)
}

/// Waits for the server to close the connection (EOF or reset). Panics if it is still open after
/// [`HANG_GUARD`]: that is the defect these tests look for, a server that holds a socket for a
/// client that stopped sending.
pub async fn assert_closed(stream: &mut TcpStream) {
    let wait = async {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(HANG_GUARD, wait)
        .await
        .expect("the server closes the connection");
}

/// The length of the first complete response in `bytes`, if there is one.
fn complete(bytes: &[u8]) -> Option<usize> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match length {
        Some(length) if bytes.len() >= end + length => Some(end + length),
        Some(_) => None,
        // A streamed (SSE) answer: the head is what the tests read.
        None => Some(end),
    }
}

/// Parses one response with a Content-Length (or to the end of the bytes).
pub fn parse(bytes: &[u8]) -> RawResponse {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("a complete response head, got {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("a status line, got {head:?}"));
    let headers: BTreeMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let body = match headers
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(length) => body.get(..length).unwrap_or(body).to_owned(),
        None => body.to_owned(),
    };
    RawResponse {
        status,
        headers,
        body,
    }
}

/// Polls `probe` until it holds (every 20 ms), or panics after [`HANG_GUARD`] with `what`.
pub async fn until(what: &str, mut probe: impl AsyncFnMut() -> bool) {
    let wait = async {
        while !probe().await {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(HANG_GUARD, wait)
        .await
        .unwrap_or_else(|_| panic!("never happened: {what}"));
}
