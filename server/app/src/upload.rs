//! Reading request bodies under a deadline, a minimum rate and server-wide byte budgets.
//!
//! Once a request head is complete, hyper hands the request to a handler, and the body arrives
//! at the client's pace. Left alone, a client that stalls or drip-feeds its body holds its
//! socket and whatever was buffered for as long as it likes. Every body the server buffers is
//! read here instead:
//!
//! - a deadline (`limits.body_read_timeout_secs`) for the whole body, and a minimum average rate
//!   (`limits.min_body_bytes_per_sec`) once a grace period has passed: a stalled or drip-fed
//!   body gets 408 `body_timeout` and its connection is closed. The rate needs no timer of its
//!   own: with `n` bytes received, the body falls behind at `grace + n / rate`, so each wait for
//!   the next frame ends at the earlier of that instant and the deadline.
//! - byte budgets, semaphores of bytes (the [`admission`](crate::admission) pattern): every body
//!   reserves its bytes from `limits.max_buffered_body_bytes` as they arrive, a body whose
//!   caller is not authenticated yet also from `limits.pre_auth_buffer_bytes`. A frame that
//!   does not fit gets 503 `server_busy` before anything more is read. The reservation is
//!   returned when the [`Buffered`] body is dropped (after parsing), however the request ends.
//!
//! When the buffered bytes fall back to zero after a burst, the allocator is asked to return
//! its free memory to the system ([`crate::trim`]).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::LimitsConfig;
use crate::error::ApiError;
use crate::trim::{self, AfterBurst, Trimmer};

/// Which budgets a body draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// The caller was authenticated by a header: the server-wide budget only.
    Authenticated,
    /// The credential travels in the body: the pre-authentication budget as well.
    NotYetAuthenticated,
}

/// The server-wide budgets for buffered request bodies.
#[derive(Debug)]
pub struct BodyBudgets {
    all: Budget,
    pre_auth: Budget,
    /// Trims after a burst of buffered bodies.
    after_burst: AfterBurst,
}

/// A semaphore of bytes and its size.
#[derive(Debug)]
struct Budget {
    bytes: Arc<Semaphore>,
    max: usize,
}

impl Budget {
    fn new(max: usize) -> Self {
        // A semaphore holds at most `Semaphore::MAX_PERMITS` (2^61 - 1) permits.
        let max = max.min(Semaphore::MAX_PERMITS);
        Self {
            bytes: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    fn in_use(&self) -> usize {
        self.max - self.bytes.available_permits()
    }

    /// Adds `n` bytes to `held`, or `None` when they do not fit now.
    fn reserve(&self, held: &mut Option<OwnedSemaphorePermit>, n: usize) -> Option<()> {
        let n = u32::try_from(n).ok()?;
        let more = Arc::clone(&self.bytes).try_acquire_many_owned(n).ok()?;
        match held {
            Some(held) => held.merge(more),
            None => *held = Some(more),
        }
        Some(())
    }
}

impl BodyBudgets {
    /// The budgets of `limits`; the end of a burst of bodies is trimmed through `trimmer`.
    pub(crate) fn new(limits: &LimitsConfig, trimmer: Trimmer) -> Self {
        Self {
            all: Budget::new(limits.max_buffered_body_bytes),
            pre_auth: Budget::new(limits.pre_auth_buffer_bytes),
            after_burst: AfterBurst::new(trim::BODIES, trimmer),
        }
    }

    /// Bytes buffered now from all bodies, and from not-yet-authenticated ones.
    pub fn in_use(&self) -> (usize, usize) {
        (self.all.in_use(), self.pre_auth.in_use())
    }

    /// The gauges for `/metrics`.
    pub(crate) fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let (all, pre_auth) = self.in_use();
        let _ = writeln!(
            out,
            "# HELP agui_buffered_body_bytes Request body bytes buffered now, by budget.\n\
             # TYPE agui_buffered_body_bytes gauge\n\
             agui_buffered_body_bytes{{budget=\"all\"}} {all}\n\
             agui_buffered_body_bytes{{budget=\"pre_auth\"}} {pre_auth}"
        );
    }
}

/// A body read whole, holding its bytes' reservation until it is dropped.
#[derive(Debug)]
pub(crate) struct Buffered {
    bytes: Bytes,
    _reservation: Reservation,
}

impl std::ops::Deref for Buffered {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// The bytes a body holds in the budgets; returned on drop.
#[derive(Debug)]
struct Reservation {
    budgets: Arc<BodyBudgets>,
    all: Option<OwnedSemaphorePermit>,
    pre_auth: Option<OwnedSemaphorePermit>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let held = self.all.as_ref().map_or(0, |p| p.num_permits());
        self.pre_auth.take();
        self.all.take();
        if held > 0 {
            let in_use = self.budgets.all.in_use();
            self.budgets.after_burst.fell(in_use + held, in_use);
        }
    }
}

/// What [`read`] may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    /// Largest body (413 `payload_too_large` beyond it).
    pub(crate) limit: usize,
    /// The whole body's deadline.
    pub(crate) timeout: Duration,
    /// Minimum average rate after `grace`, bytes per second (0 = none).
    pub(crate) min_rate: u64,
    /// When the rate starts to apply.
    pub(crate) grace: Duration,
}

impl Rules {
    /// The limits' rules with `limit` as the largest body.
    pub(crate) fn of(limits: &LimitsConfig, limit: usize) -> Self {
        Self {
            limit,
            timeout: Duration::from_secs(limits.body_read_timeout_secs),
            min_rate: limits.min_body_bytes_per_sec,
            grace: Duration::from_secs(limits.body_rate_grace_secs),
        }
    }

    /// When a body of which `received` bytes have arrived since `started` is cut.
    fn cut_at(&self, started: Instant, received: usize) -> Instant {
        let deadline = started + self.timeout;
        if self.min_rate == 0 {
            return deadline;
        }
        #[allow(clippy::cast_precision_loss)]
        let earned = Duration::from_secs_f64(received as f64 / self.min_rate as f64);
        deadline.min(started + self.grace + earned)
    }
}

/// Reads `body` whole under `rules`, reserving its bytes in `budgets` as they arrive.
///
/// # Errors
/// 413 `payload_too_large` over `rules.limit`, 408 `body_timeout` past the deadline or below the
/// rate, 503 `server_busy` when a budget is spent, 400 `body_unreadable` when the upload broke.
pub(crate) async fn read(
    budgets: &Arc<BodyBudgets>,
    body: Body,
    rules: Rules,
    caller: Caller,
) -> Result<Buffered, ApiError> {
    let started = Instant::now();
    let mut reservation = Reservation {
        budgets: Arc::clone(budgets),
        all: None,
        pre_auth: None,
    };
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut received = 0usize;
    let mut body = body;
    loop {
        let cut_at = rules.cut_at(started, received);
        let frame = match tokio::time::timeout_at(cut_at, body.frame()).await {
            Err(_) => {
                // Debug: a flood of these is an attack, counted by `agui_http_requests_total`.
                tracing::debug!(
                    received,
                    elapsed_ms = started.elapsed().as_millis(),
                    "request body too slow; closing the connection"
                );
                return Err(ApiError::BodyTimeout);
            }
            Ok(None) => break,
            Ok(Some(Err(error))) => return Err(unreadable(&error)),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if data.is_empty() {
            continue;
        }
        if data.len() > rules.limit - received {
            return Err(ApiError::PayloadTooLarge);
        }
        let fits = budgets
            .all
            .reserve(&mut reservation.all, data.len())
            .is_some()
            && (caller == Caller::Authenticated
                || budgets
                    .pre_auth
                    .reserve(&mut reservation.pre_auth, data.len())
                    .is_some());
        if !fits {
            let (all, pre_auth) = budgets.in_use();
            tracing::debug!(
                ?caller,
                buffered = all,
                buffered_pre_auth = pre_auth,
                "request body refused: the server-wide body buffer budget is spent"
            );
            return Err(ApiError::BodyBudgetExhausted);
        }
        received += data.len();
        chunks.push(data);
    }
    let bytes = match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut whole = BytesMut::with_capacity(received);
            for chunk in chunks.drain(..) {
                whole.extend_from_slice(&chunk);
            }
            whole.freeze()
        }
    };
    Ok(Buffered {
        bytes,
        _reservation: reservation,
    })
}

/// A body that broke off: nobody will read the answer, but say what happened. (The limit is
/// checked frame by frame in [`read`]; the body has no length limit of its own that could fail.)
fn unreadable(error: &axum::Error) -> ApiError {
    tracing::debug!(%error, "request body not read");
    ApiError::BodyUnreadable
}
