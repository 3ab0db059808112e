//! The small HTTP/1.1 accept loop shared by the floor server, the mock model and the JWKS
//! server: loopback only, backlog 4096 (a `TcpListener::bind` backlog of 128 drops connections in
//! a 1,000-connection burst: shared/reference/perf-peers.md §3), keep-alive, no timeouts beyond
//! what the harness bounds itself.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};

/// Binds `127.0.0.1:port` (0 = any free port) with a backlog of 4096.
///
/// # Errors
/// The port is taken.
pub fn bind_loopback(port: u16) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    socket.listen(4096)
}

/// Serves `handler` on `listener` forever (until the process ends).
pub async fn serve<H, F, B>(listener: TcpListener, handler: H)
where
    H: Fn(http::Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = http::Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let handler = Arc::new(handler);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors: wait for some to close rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = handler(request);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A complete response with `status`, `content_type` and `body`.
pub fn full(
    status: u16,
    content_type: &str,
    body: impl Into<Bytes>,
) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()))
        .unwrap_or_default()
}

/// Prints the line every server of the suite prints when it is ready.
pub fn announce(listener: &TcpListener) {
    if let Ok(addr) = listener.local_addr() {
        eprintln!("listening on http://{addr}");
    }
}
