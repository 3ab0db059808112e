//! #12 defect 1 against the real binary (`Process`), over raw sockets: request bodies that stall
//! or drip are cut at the deadline or below the rate (408 `body_timeout`, connection closed) and
//! the process's descriptors go back down; unauthenticated bodies beyond the pre-authentication
//! budget get 503 `server_busy` while normal requests are still served. Settings come from the
//! environment as an operator would set them. Bounded: at most 100 sockets, seconds-long
//! deadlines.

use std::time::Duration;

use agui_auth::testing::TestIdp;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::common::process::Process;
use crate::common::raw::*;
use crate::common::{AUDIENCE, input, mint};

/// A run body carrying `token` in `forwardedProps.authorization`.
fn body_with_token(token: &str) -> Value {
    let mut body = input("hi", None);
    body["forwardedProps"] = json!({ "authorization": format!("Bearer {token}") });
    body
}

/// `POST /chat` declaring `length` bytes, `sent` of them sent (no credential header).
async fn stalled(server: &Process, length: usize, sent: usize) -> TcpStream {
    let mut bytes = post_head("/chat", length, &[]).into_bytes();
    bytes.extend(vec![b' '; sent]);
    open(server.addr, &bytes).await
}

/// A complete run with a header credential and one with the credential in the body: both 200.
async fn normal_runs_are_served(server: &Process, idp: &TestIdp) {
    let http = reqwest::Client::new();
    let header = http
        .post(format!("{}/chat", server.url))
        .bearer_auth(mint(idp, "alice", AUDIENCE))
        .json(&input("hi", None))
        .send()
        .await
        .unwrap();
    assert_eq!(header.status(), 200);
    let _ = header.text().await;
    let body = http
        .post(format!("{}/chat", server.url))
        .json(&body_with_token(&mint(idp, "bob", AUDIENCE)))
        .send()
        .await
        .unwrap();
    assert_eq!(body.status(), 200);
    let _ = body.text().await;
}

/// The server's `agui_buffered_body_bytes{budget="pre_auth"}`.
async fn pre_auth_buffered(server: &Process) -> u64 {
    let text = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("agui_buffered_body_bytes{budget=\"pre_auth\"} "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the pre-auth gauge")
}

#[tokio::test]
async fn stalled_bodies_are_cut_at_the_deadline_and_their_descriptors_return() {
    let idp = TestIdp::start().await;
    let server = Process::trusting(
        &idp,
        &[
            ("AGUI_BODY_READ_TIMEOUT_SECS", "2"),
            ("AGUI_MIN_BODY_BYTES_PER_SEC", "0"),
        ],
    )
    .await;
    normal_runs_are_served(&server, &idp).await;
    let baseline = server.open_fds();

    // 100 connections that declare 1 MiB, send 20 bytes and stop (the 2,000, bounded).
    let mut streams = Vec::new();
    for _ in 0..100 {
        streams.push(stalled(&server, 1024 * 1024, 20).await);
    }
    // (The baseline may still count the two keep-alive connections of the runs above, which
    // close about now: hence 95, not 100.)
    until("the server holds the 100 connections", async || {
        server.open_fds() >= baseline + 95
    })
    .await;
    for stream in &mut streams {
        let response = read_response(stream).await;
        assert_eq!(response.status, 408, "{response:?}");
        assert_eq!(response.code(), "body_timeout");
        assert_eq!(response.headers["connection"], "close");
        assert_closed(stream).await;
    }
    // The server let go of every one of them (the client side is still open here).
    until("the descriptors are back to the baseline", async || {
        server.open_fds() <= baseline + 2
    })
    .await;
    // Positive control: the server still serves both credential kinds.
    normal_runs_are_served(&server, &idp).await;
}

#[tokio::test]
async fn a_body_dripped_below_the_minimum_rate_is_cut_and_a_faster_one_is_served() {
    let idp = TestIdp::start().await;
    let server = Process::trusting(
        &idp,
        &[
            ("AGUI_BODY_READ_TIMEOUT_SECS", "600"),
            ("AGUI_MIN_BODY_BYTES_PER_SEC", "1000"),
            ("AGUI_BODY_RATE_GRACE_SECS", "1"),
        ],
    )
    .await;
    // 20 bytes every 200 ms (100 bytes a second), far below the rate; the deadline is far off.
    let mut slow = stalled(&server, 1024 * 1024, 20).await;
    let (mut reader, mut writer) = slow.split();
    let drip = async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer.write_all(&[b' '; 20]).await.is_err() {
                break;
            }
        }
    };
    let response = tokio::select! {
        biased;
        response = read_response(&mut reader) => response,
        () = drip => panic!("the server stopped reading without answering"),
    };
    assert_eq!(response.status, 408, "{response:?}");
    assert_eq!(response.code(), "body_timeout");
    assert_closed(&mut slow).await;

    // Positive control: a body-credential run dripped at ~4,000 bytes a second is served.
    let mut body = body_with_token(&mint(&idp, "carol", AUDIENCE));
    body["messages"][0]["content"] = json!("a".repeat(4000));
    let body = serde_json::to_vec(&body).unwrap();
    let mut fast = open(server.addr, post_head("/chat", body.len(), &[]).as_bytes()).await;
    for piece in body.chunks(400) {
        fast.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = read_response(&mut fast).await;
    assert_eq!(response.status, 200, "{response:?}");
}

#[tokio::test]
async fn the_pre_auth_budget_gives_503_server_busy_and_normal_requests_are_still_served() {
    let idp = TestIdp::start().await;
    let server = Process::trusting(
        &idp,
        &[
            ("AGUI_PRE_AUTH_BUFFER_BYTES", "1048576"),
            ("AGUI_PRE_AUTH_BODY_BYTES", "262144"),
            ("AGUI_BODY_READ_TIMEOUT_SECS", "600"),
            ("AGUI_MIN_BODY_BYTES_PER_SEC", "0"),
        ],
    )
    .await;
    // Four unauthenticated bodies hold all but 100 bytes of the 1 MiB budget.
    let mut holders = Vec::new();
    for _ in 0..4 {
        holders.push(stalled(&server, 262_144, 262_144 - 25).await);
    }
    until(
        "1 MiB - 100 bytes buffered before authentication",
        async || pre_auth_buffered(&server).await == 1_048_476,
    )
    .await;

    let mut refused = stalled(&server, 2000, 1000).await;
    let response = read_response(&mut refused).await;
    assert_eq!(response.status, 503, "{response:?}");
    assert_eq!(response.code(), "server_busy");
    assert_eq!(response.headers["connection"], "close");
    assert_closed(&mut refused).await;

    // Positive control: a header-authenticated run does not draw on that budget.
    let http = reqwest::Client::new();
    let ok = http
        .post(format!("{}/chat", server.url))
        .bearer_auth(mint(&idp, "alice", AUDIENCE))
        .json(&input("hi", None))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let _ = ok.text().await;

    // The holders go: the budget is returned and body credentials are served again.
    drop(holders);
    until("the pre-auth budget is returned", async || {
        pre_auth_buffered(&server).await == 0
    })
    .await;
    normal_runs_are_served(&server, &idp).await;
}
