//! Admission: whether a verified caller may open one more stream now. Checks only, no writes:
//! the server-wide cap on open streams, then the principal's run rate and stream slot.
//!
//! The server-wide cap is a semaphore whose permit the response body owns (mini-redis's
//! `limit_connections`): the stream counts as open exactly as long as its body exists, however
//! the body ends, and a refusal anywhere before the body holds nothing open. The open-stream
//! gauge reports the semaphore; it is never the limit. A stream's close is also where the end
//! of a burst of streams is seen ([`crate::trim`]).

use std::sync::Arc;
use std::time::Instant;

use agui_auth::Principal;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::backends::Connected;
use crate::error::ApiError;
use crate::limits::{LimitError, StreamPermit};
use crate::metrics::Histogram;
use crate::metrics::Metrics;
use crate::store::{AuditRecord, PrincipalKey};
use crate::trim::{self, AfterBurst, Trimmer};

/// The server-wide cap on open streams (`limits.max_open_streams`).
#[derive(Debug)]
pub struct StreamCap {
    permits: Arc<Semaphore>,
    max: usize,
    after_burst: Arc<AfterBurst>,
}

impl StreamCap {
    /// A cap of `max` open streams; the end of a burst of streams is trimmed through `trimmer`.
    pub(crate) fn new(max: usize, trimmer: Trimmer) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
            after_burst: Arc::new(AfterBurst::new(trim::STREAMS, trimmer)),
        }
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.max - self.permits.available_permits()
    }

    fn try_open(&self) -> Option<OpenStream> {
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        Some(OpenStream {
            permit: Some(permit),
            max: self.max,
            after_burst: Arc::clone(&self.after_burst),
        })
    }
}

/// A stream's place under the server cap: the stream counts as open until this is dropped.
#[derive(Debug)]
pub(crate) struct OpenStream {
    permit: Option<OwnedSemaphorePermit>,
    max: usize,
    after_burst: Arc<AfterBurst>,
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        let open = self.max - permit.semaphore().available_permits();
        // Before the place is given back, so whoever sees the count fall also sees what the
        // fall decided (the metric's `agui_memory_trim_pending`).
        self.after_burst.fell(open, open.saturating_sub(1));
        drop(permit);
    }
}

/// What an admitted run holds for as long as it runs: its place under the server cap and the
/// principal's stream slot (the run's task owns it; a run ends when its client leaves, unless it
/// outlives its client on purpose, and then it still counts).
#[derive(Debug)]
pub(crate) struct Admitted {
    _server: OpenStream,
    _slot: StreamPermit,
    /// Times the stream's first event (the response body takes it).
    pub(crate) first_event: Option<FirstEvent>,
}

/// Times a stream's first event: request received → first frame handed to the connection.
#[derive(Debug)]
pub(crate) struct FirstEvent {
    received: Instant,
    histogram: Arc<Histogram>,
}

impl FirstEvent {
    /// The first event frame was handed to the connection.
    pub(crate) fn observe(&self) {
        self.histogram.observe(self.received.elapsed());
    }
}

/// A place under the server cap alone (a stream that is not a run: following one).
pub(crate) fn open_stream(cap: &StreamCap) -> Result<OpenStream, ApiError> {
    cap.try_open().ok_or(ApiError::ServerBusy)
}

/// Admits `principal` for one stream: 503 `server_busy` over the server cap, 429 over the
/// principal's limits (audited), 503 `limits_unavailable` when the limiter cannot be asked.
pub(crate) async fn admit(
    cap: &StreamCap,
    metrics: &Metrics,
    connected: &Connected,
    principal: &Principal,
    received: Instant,
) -> Result<Admitted, ApiError> {
    let Some(server) = cap.try_open() else {
        tracing::warn!(
            max = cap.max,
            "run refused: the server is at its maximum of open streams"
        );
        return Err(ApiError::ServerBusy);
    };
    let slot = match connected.limiter.acquire(principal).await {
        Ok(slot) => slot,
        Err(LimitError::Exceeded(exceeded)) => {
            let code = exceeded.kind.code();
            tracing::info!(sub = %principal.subject, limit = code, "run refused by a limit");
            metrics.limited(code);
            connected.log.record(AuditRecord::denial(
                &PrincipalKey::of(principal),
                code,
                Some(&principal.token_fingerprint),
                json!({ "retry_after_secs": exceeded.retry_after_secs }),
            ));
            return Err(ApiError::Limited(exceeded));
        }
        Err(LimitError::Unavailable(error)) => {
            tracing::error!(target: "agui::limits", %error, "limiter unavailable; refusing the run");
            return Err(ApiError::LimitsUnavailable);
        }
    };
    Ok(Admitted {
        _server: server,
        _slot: slot,
        first_event: Some(FirstEvent {
            received,
            histogram: metrics.time_to_first_event.clone(),
        }),
    })
}
