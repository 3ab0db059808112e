//! What every request meets before the router: the request-head limit and the shutdown answer.
//!
//! - **One head limit.** hyper's own limit is a property of its read buffer: a head that arrives
//!   in one write was parsed up to ~114 KB while the same head in 1 KB pieces got 431 at ~66 KB.
//!   Here the parsed head is measured (request line, each `name: value` line, the final CRLF:
//!   its size on the wire in the usual spelling) and a head over `limits.max_header_bytes` gets
//!   431 `headers_too_large`, whatever the segmentation. hyper's `max_header_size` stays as a
//!   hard ceiling a little above it ([`head_ceiling`]), itself independent of segmentation.
//! - **Shutdown.** From the shutdown signal on, every request (typically one arriving on a
//!   kept-alive connection) gets 503 `shutting_down` with `Connection: close`, so hyper closes
//!   the connection after answering while open runs drain.

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::error::ApiError;

/// Room between `limits.max_header_bytes` and hyper's hard ceiling, for heads spelled with more
/// whitespace than the measure counts; beyond the ceiling hyper answers a bare 431 itself.
const CEILING_ROOM: usize = 16 * 1024;

/// hyper's hard ceiling on a head's raw bytes for `max_header_bytes`.
pub(crate) fn head_ceiling(max_header_bytes: usize) -> usize {
    max_header_bytes.saturating_add(CEILING_ROOM)
}

/// The per-connection front: checks, then the router.
#[derive(Clone)]
pub(crate) struct Front {
    pub(crate) router: Router,
    pub(crate) peer: SocketAddr,
    pub(crate) max_head: usize,
    pub(crate) shutdown: CancellationToken,
}

impl Front {
    /// Answers `request`: a refusal of its own, or the router's answer.
    pub(crate) async fn call(self, mut request: Request<Incoming>) -> Response {
        if head_len(&request) > self.max_head {
            return ApiError::HeadersTooLarge.into_response();
        }
        if self.shutdown.is_cancelled() {
            return ApiError::ShuttingDown.into_response();
        }
        request.extensions_mut().insert(ConnectInfo(self.peer));
        match self.router.oneshot(request).await {
            Ok(response) => response,
            Err(infallible) => match infallible {},
        }
    }
}

/// The head's size as sent in the usual spelling: `METHOD SP target SP HTTP/1.1 CRLF`, then
/// `name: value CRLF` per field, then CRLF (RFC 9112 §2.1, §3, §5).
pub(crate) fn head_len<B>(request: &Request<B>) -> usize {
    let uri = request.uri();
    let path_and_query = uri.path_and_query().map_or(0, |p| p.as_str().len());
    let target = match (uri.scheme_str(), uri.authority()) {
        // absolute-form: `http://host/path?query`
        (Some(scheme), Some(authority)) => {
            scheme.len() + "://".len() + authority.as_str().len() + path_and_query
        }
        // authority-form (CONNECT): `host:port`
        (None, Some(authority)) => authority.as_str().len(),
        // origin-form or `*`
        _ => path_and_query.max(1),
    };
    let request_line = request.method().as_str().len() + 1 + target + 1 + "HTTP/1.1\r\n".len();
    let fields: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + ": ".len() + value.len() + "\r\n".len())
        .sum();
    request_line + fields + "\r\n".len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_len_counts_the_head_as_spelled_on_the_wire() {
        let request = Request::get("/healthz?x=1")
            .header("host", "a")
            .header("x-pad", "bbb")
            .body(())
            .unwrap();
        let wire = "GET /healthz?x=1 HTTP/1.1\r\nhost: a\r\nx-pad: bbb\r\n\r\n";
        assert_eq!(head_len(&request), wire.len());
    }

    #[test]
    fn head_len_counts_an_absolute_target() {
        let request = Request::get("http://example.com/p").body(()).unwrap();
        assert_eq!(
            head_len(&request),
            "GET http://example.com/p HTTP/1.1\r\n\r\n".len()
        );
    }
}
