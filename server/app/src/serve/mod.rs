//! Listening and serving: the listen backlog, per-connection limits and graceful shutdown.
//!
//! `TcpListener::bind` (what `axum::serve` examples use) gives a backlog of 128, so bursts of a
//! thousand connections see drops and second-long tails (DESIGN "Listen backlog"); we bind through
//! `TcpSocket` with a configurable backlog. Connections are served by hyper directly so the
//! request-head size and read timeout are bounded, and so shutdown can drain them.
//!
//! Shutdown: the listener closes at once (new connections are refused, a load balancer moves
//! on); runs are told to stop (they end with `RUN_ERROR server_shutdown`); every request that
//! arrives meanwhile on a kept-alive connection gets 503 `shutting_down` with `Connection:
//! close` ([`front`]). The drain lasts until the runs have ended and, for at most
//! `shutdown_grace_secs` from the signal, until the clients have closed their idle
//! connections (so a request already on its way is answered rather than cut); then idle
//! connections are closed, and whatever is still open at `shutdown_deadline_secs` is dropped.
//!
//! # Layout
//!
//! - this file: binding, the accept loop, the drain.
//! - [`front`]: the head limit and the shutdown answer, before the router.
//! - [`linger`]: lingering close, so a client still uploading reads a 413 instead of a reset.

mod front;
mod linger;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket};
use tokio::time::Instant;

use crate::state::AppState;

/// Binds `addr` with a listen backlog of `backlog`.
///
/// # Errors
/// The address is in use or not available.
pub fn bind(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Serves `router` on `listener` until `state.shutdown` fires, then drains within the configured
/// deadline.
pub async fn serve(listener: TcpListener, router: Router, state: AppState) {
    let graceful = GracefulShutdown::new();
    let limits = &state.config.limits;
    // hyper's minimum read buffer is 8 KiB; below it the head limit would be ignored.
    let max_head = limits.max_header_bytes.max(8192);
    let ceiling = front::head_ceiling(max_head);
    let linger_budget = (limits.max_body_bytes as u64)
        .saturating_mul(2)
        .max(linger::MIN_LINGER_BYTES);
    let header_timeout = Duration::from_secs(limits.header_read_timeout_secs.max(1));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of descriptors or similar: back off briefly instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = state.shutdown.cancelled() => break,
        };
        // Events are small and must leave at once.
        let _ = stream.set_nodelay(true);
        let front = front::Front {
            router: router.clone(),
            peer,
            max_head,
            shutdown: state.shutdown.clone(),
        };
        // The request's future is boxed: hyper keeps one slot of the service future's size
        // for the whole connection (its in-flight box), and a stream's connection lives as
        // long as the stream, long after its request's future has finished. Boxed, the slot
        // is a pointer and the request's state is freed when its response head goes out.
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let front = front.clone();
            let call: Pin<Box<dyn Future<Output = _> + Send>> =
                Box::pin(
                    async move { Ok::<_, std::convert::Infallible>(front.call(request).await) },
                );
            call
        });
        let stream = linger::LingeringStream::new(stream, linger_budget);
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            // The hard ceiling, on the head's raw bytes however they arrive (the limit itself is
            // `front`'s); the read buffer may hold it.
            .max_header_size(ceiling)
            .max_buf_size(ceiling)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }

    drop(listener);
    let signalled = Instant::now();
    let deadline = Duration::from_secs(state.config.shutdown_deadline_secs);
    let grace = Duration::from_secs(state.config.shutdown_grace_secs).min(deadline);
    tracing::info!(
        open_streams = state.stream_cap.open(),
        ?deadline,
        "shutting down"
    );
    state.runs.close();
    let drained = async {
        state.runs.wait().await;
        // Idle kept-alive connections may still carry a request (answered 503 + close): wait
        // for their clients to close them, within the grace.
        while graceful.count() > 0 && signalled.elapsed() < grace {
            tokio::time::sleep(IDLE_POLL).await;
        }
        graceful.shutdown().await;
    };
    if tokio::time::timeout(deadline, drained).await.is_err() {
        tracing::warn!("shutdown deadline reached; closing the remaining connections");
    }
    state.auth.shutdown();
    // Every run has ended (or been cut): write what the audit log still holds.
    if let Some(connected) = state.backends.connected() {
        // The runs' history ends are queued without their tasks waiting: write them first.
        if tokio::time::timeout(AUDIT_FLUSH_DEADLINE, state.history.drain(&connected.log))
            .await
            .is_err()
        {
            tracing::error!(target: "agui::history", "run history still unwritten at exit");
        }
        connected.failures.flush_all();
        if tokio::time::timeout(AUDIT_FLUSH_DEADLINE, connected.log.flush())
            .await
            .is_err()
        {
            tracing::error!(target: "agui::audit", "audit records still queued at exit were not written");
        }
    }
}

/// How often the drain looks whether idle connections are gone.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// How long shutdown waits for the audit log's last batch.
const AUDIT_FLUSH_DEADLINE: Duration = Duration::from_secs(5);
