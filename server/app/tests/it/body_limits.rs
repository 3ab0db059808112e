//! Request bodies cannot hold the server's memory or sockets (#12 defect 1), in process: the body
//! deadline and minimum rate (408 `body_timeout`, connection closed), the pre-authentication and
//! server-wide byte budgets (503 `server_busy` before reading more, returned when the body goes),
//! the per-user stream cap applied before an authenticated body is read, and the allocator trim
//! after a burst. Raw sockets, since how the bytes arrive is the point; each refusal has a
//! positive control on the same server.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::common::raw::*;
use crate::common::*;

/// A run body carrying `token` in `forwardedProps.authorization` (the pre-authentication path).
fn body_with_token(token: &str) -> Value {
    let mut body = input("hi", None);
    body["forwardedProps"] = json!({ "authorization": format!("Bearer {token}") });
    body
}

/// `n` bytes of filler (the start of a body that never completes).
fn filler(n: usize) -> Vec<u8> {
    vec![b' '; n]
}

/// Opens `POST path` declaring `length` body bytes and sends `sent` of them.
async fn stalled(
    server: &TestServer,
    path: &str,
    length: usize,
    sent: usize,
    headers: &[(&str, &str)],
) -> tokio::net::TcpStream {
    let mut bytes = post_head(path, length, headers).into_bytes();
    bytes.extend(filler(sent));
    open(addr_of(&server.url), &bytes).await
}

/// Waits until the server buffers exactly `all` bytes from bodies, `pre_auth` of them
/// unauthenticated.
async fn buffered(server: &TestServer, all: usize, pre_auth: usize) {
    until(
        &format!("{all} bytes buffered ({pre_auth} pre-auth)"),
        async || server.state.body_budgets.in_use() == (all, pre_auth),
    )
    .await;
}

fn assert_refusal(response: &RawResponse, status: u16, code: &str) {
    assert_eq!(response.status, status, "{response:?}");
    assert_eq!(response.code(), code, "{response:?}");
}

#[tokio::test]
async fn a_stalled_body_gets_408_body_timeout_and_its_connection_is_closed() {
    let server = start_with(|c| c.limits.body_read_timeout_secs = 1, |b| b).await;
    let bearer = format!("Bearer {}", server.token("alice"));
    // Before authentication (credential in the body), after it (header), and the CopilotKit
    // single route, which reads its envelope through the same path.
    let cases: [(&str, &[(&str, &str)]); 3] = [
        ("/chat", &[]),
        ("/chat", &[("authorization", &bearer)]),
        ("/copilotkit", &[("authorization", &bearer)]),
    ];
    for (path, headers) in cases {
        let mut stream = stalled(&server, path, 1000, 20, headers).await;
        let response = read_response(&mut stream).await;
        assert_refusal(&response, 408, "body_timeout");
        assert_eq!(response.headers["connection"], "close");
        assert_closed(&mut stream).await;
    }
    assert_eq!(server.state.body_budgets.in_use(), (0, 0));
    // Positive control: bodies that arrive are served, by either credential.
    let ok = server
        .post("/chat", None, &body_with_token(&server.token("alice")))
        .await;
    assert_eq!(ok.status(), 200);
    let ok = server
        .post("/chat", Some(&server.token("alice")), &input("hi", None))
        .await;
    assert_eq!(ok.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn a_body_dripped_below_the_minimum_rate_is_cut_and_a_faster_one_is_served() {
    // The deadline is far away: only the rate can cut.
    let server = start_with(
        |c| {
            c.limits.body_read_timeout_secs = 600;
            c.limits.min_body_bytes_per_sec = 1000;
            c.limits.body_rate_grace_secs = 1;
        },
        |b| b,
    )
    .await;
    let token = server.token("alice");
    let bearer = format!("Bearer {token}");
    let headers = [("authorization", bearer.as_str())];

    // 100 bytes a second: cut once the grace is over.
    let mut slow = stalled(&server, "/chat", 100_000, 10, &[]).await;
    let (mut reader, mut writer) = slow.split();
    let drip = async {
        while writer.write_all(&filler(10)).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let response = tokio::select! {
        biased;
        response = read_response(&mut reader) => response,
        () = drip => panic!("the server stopped reading without answering"),
    };
    assert_refusal(&response, 408, "body_timeout");

    // Positive control: a body dripped at ~4,000 bytes a second, well above the rate, is served.
    let mut body = input(&"a".repeat(4000), None);
    body["threadId"] = json!("dripped");
    let body = serde_json::to_vec(&body).unwrap();
    let mut fast = open(
        addr_of(&server.url),
        post_head("/chat", body.len(), &headers).as_bytes(),
    )
    .await;
    for piece in body.chunks(400) {
        fast.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(read_response(&mut fast).await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn the_pre_auth_budget_answers_503_before_reading_more_and_is_returned() {
    let server = start_with(
        |c| {
            c.limits.pre_auth_buffer_bytes = 65_536;
            c.limits.pre_auth_body_bytes = 65_536;
            c.limits.body_read_timeout_secs = 600;
            c.limits.min_body_bytes_per_sec = 0;
        },
        |b| b,
    )
    .await;
    // One unauthenticated body holds all but 100 bytes of the budget.
    let holder = stalled(&server, "/chat", 65_536, 65_436, &[]).await;
    buffered(&server, 65_436, 65_436).await;

    let mut refused = stalled(&server, "/chat", 2000, 1000, &[]).await;
    let response = read_response(&mut refused).await;
    assert_refusal(&response, 503, "server_busy");
    assert_eq!(response.headers["connection"], "close");
    assert_eq!(response.headers["retry-after"], "1");
    assert_closed(&mut refused).await;
    // The refused body reserved nothing.
    assert_eq!(server.state.body_budgets.in_use(), (65_436, 65_436));

    // Positive control: a header-authenticated caller does not draw on the pre-auth budget.
    let ok = server
        .post("/chat", Some(&server.token("alice")), &input("hi", None))
        .await;
    assert_eq!(ok.status(), 200);

    // The holder goes: its reservation is returned and body credentials are served again.
    drop(holder);
    buffered(&server, 0, 0).await;
    let ok = server
        .post("/chat", None, &body_with_token(&server.token("bob")))
        .await;
    assert_eq!(ok.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn the_server_wide_budget_bounds_authenticated_uploads() {
    let server = start_with(
        |c| {
            c.limits.max_buffered_body_bytes = 65_536;
            c.limits.max_body_bytes = 65_536;
            c.limits.pre_auth_body_bytes = 65_536;
            c.limits.body_read_timeout_secs = 600;
            c.limits.min_body_bytes_per_sec = 0;
        },
        |b| b,
    )
    .await;
    let alice = format!("Bearer {}", server.token("alice"));
    let bob = format!("Bearer {}", server.token("bob"));
    let holder = stalled(
        &server,
        "/chat",
        65_536,
        65_436,
        &[("authorization", &alice)],
    )
    .await;
    buffered(&server, 65_436, 0).await;

    // Another user, then an unauthenticated body: both beyond the server-wide budget.
    for headers in [&[("authorization", bob.as_str())][..], &[]] {
        let mut refused = stalled(&server, "/chat", 2000, 1000, headers).await;
        let response = read_response(&mut refused).await;
        assert_refusal(&response, 503, "server_busy");
        assert_closed(&mut refused).await;
    }

    // Positive control: once the holder goes, the same upload is served.
    drop(holder);
    buffered(&server, 0, 0).await;
    let ok = server
        .post("/chat", Some(&server.token("bob")), &input("hi", None))
        .await;
    assert_eq!(ok.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn the_per_user_stream_cap_refuses_the_ninth_upload_before_its_body_is_read() {
    let server = start_with(
        |c| {
            c.limits.max_concurrent_streams = 8;
            c.limits.body_read_timeout_secs = 600;
            c.limits.min_body_bytes_per_sec = 0;
        },
        |b| b,
    )
    .await;
    let alice = format!("Bearer {}", server.token("alice"));
    let headers = [("authorization", alice.as_str())];
    let mut uploads = Vec::new();
    for _ in 0..8 {
        uploads.push(stalled(&server, "/chat", 10_000, 100, &headers).await);
    }
    buffered(&server, 800, 0).await;

    // The ninth sends its head and not one body byte: the answer cannot have waited for it.
    let mut ninth = stalled(&server, "/chat", 10_000, 0, &headers).await;
    let response = read_response(&mut ninth).await;
    assert_refusal(&response, 429, "too_many_streams");
    assert_eq!(server.state.body_budgets.in_use(), (800, 0));

    // Positive controls: another user is served meanwhile, and alice is once her uploads go.
    let ok = server
        .post("/chat", Some(&server.token("bob")), &input("hi", None))
        .await;
    assert_eq!(ok.status(), 200);
    drop(uploads);
    buffered(&server, 0, 0).await;
    let token = server.token("alice");
    let ok = server.post("/chat", Some(&token), &input("hi", None)).await;
    assert_eq!(ok.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn free_memory_is_returned_to_the_system_after_a_burst_of_bodies() {
    let server = start_with(
        |c| {
            c.limits.body_read_timeout_secs = 600;
            c.limits.min_body_bytes_per_sec = 0;
        },
        |b| b,
    )
    .await;
    let trims = |text: String| {
        text.lines()
            .find_map(|line| line.strip_prefix("agui_memory_trims_total "))
            .map(|n| n.trim().to_owned())
    };
    // Negative control: ordinary small runs are no burst.
    let token = server.token("alice");
    for _ in 0..3 {
        let ok = server.post("/chat", Some(&token), &input("hi", None)).await;
        assert_eq!(ok.status(), 200);
        let _ = ok.text().await;
    }
    assert_eq!(trims(server.state.metrics_text()).as_deref(), Some("0"));

    // Three uploads of 6 MiB each held at once (18 MiB, over the 16 MiB burst mark), then gone.
    let bearer = format!("Bearer {token}");
    let mut uploads = Vec::new();
    for _ in 0..3 {
        uploads.push(
            stalled(
                &server,
                "/chat",
                8 * 1024 * 1024,
                6 * 1024 * 1024,
                &[("authorization", &bearer)],
            )
            .await,
        );
    }
    buffered(&server, 18 * 1024 * 1024, 0).await;
    drop(uploads);
    buffered(&server, 0, 0).await;
    until("one trim after the burst", async || {
        trims(server.state.metrics_text()).as_deref() == Some("1")
    })
    .await;
    server.stop().await;
}
