//! Memory given back after a burst of open streams (issue #16): once 1,000 open streams have
//! fallen to a sixteenth of that peak, the allocator is asked to return its free pages, once
//! (`agui_memory_trims_total`), and not while more are open. Real streams over real sockets,
//! held open by a model that never finishes, closed by their clients.

use tokio::net::TcpStream;

use crate::common::raw::*;
use crate::common::*;

/// The streams the burst opens: the burst mark itself.
const BURST: usize = 1000;

/// The value of the unlabelled metric `name`.
fn metric(server: &TestServer, name: &str) -> String {
    server
        .state
        .metrics_text()
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} is exported"))
        .trim()
        .to_owned()
}

/// Opens one `/chat` stream as `token`, on a thread of its own.
async fn open_stream(server: &TestServer, token: &str) -> TcpStream {
    let body = serde_json::to_vec(&input("hi", None)).unwrap();
    let bearer = format!("Bearer {token}");
    let mut bytes = post_head("/chat", body.len(), &[("authorization", &bearer)]).into_bytes();
    bytes.extend(body);
    open(addr_of(&server.url), &bytes).await
}

/// Waits until the server counts exactly `n` open streams.
async fn open_streams(server: &TestServer, n: usize) {
    until(&format!("{n} open streams"), async || {
        server.state.stream_cap.open() == n
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_memory_is_returned_once_a_burst_of_streams_has_closed_and_not_before() {
    let server = start_with(
        |c| {
            // One user opens the whole burst: its own limits stay out of the way.
            c.limits.max_concurrent_streams = 0;
            c.limits.runs_per_minute = 0;
        },
        |b| b.model(model(HangingModel)),
    )
    .await;
    let token = server.token("alice");
    server.run_warmup(&token).await;

    // Negative control: a few streams open and closed are no burst.
    let few: Vec<TcpStream> =
        futures::future::join_all((0..20).map(|_| open_stream(&server, &token))).await;
    open_streams(&server, 20).await;
    drop(few);
    open_streams(&server, 0).await;
    assert_eq!(metric(&server, "agui_memory_trim_pending"), "0");
    assert_eq!(metric(&server, "agui_memory_trims_total"), "0");

    let mut streams = Vec::with_capacity(BURST);
    for _ in 0..BURST / 100 {
        let batch = (0..100).map(|_| open_stream(&server, &token));
        streams.extend(futures::future::join_all(batch).await);
    }
    open_streams(&server, BURST).await;
    assert_eq!(metric(&server, "agui_memory_trims_total"), "0");

    // Down to 63 open: still above 1,000 / 16, so the burst is not over. A close decides before
    // it is counted as closed, so once the count is 63 nothing is pending either.
    streams.truncate(63);
    open_streams(&server, 63).await;
    assert_eq!(metric(&server, "agui_memory_trim_pending"), "0");
    assert_eq!(metric(&server, "agui_memory_trims_total"), "0");

    // The one more close that ends it: one trim.
    streams.truncate(62);
    open_streams(&server, 62).await;
    until("one trim after the burst", async || {
        metric(&server, "agui_memory_trims_total") == "1"
    })
    .await;

    // The rest closing is the same burst's tail, not another burst: no second trim asked for
    // (one would wait out the interval as pending, then count).
    drop(streams);
    open_streams(&server, 0).await;
    until("no trim pending", async || {
        metric(&server, "agui_memory_trim_pending") == "0"
    })
    .await;
    assert_eq!(metric(&server, "agui_memory_trims_total"), "1");
    server.stop().await;
}
