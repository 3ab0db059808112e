//! Memory returned to the system after a burst of buffered request bodies.
//!
//! glibc keeps freed memory in its arenas: after a few hundred large bodies were buffered and
//! dropped, the process stays resident at its peak (issue #12). When the bytes buffered from
//! bodies fall back to zero after having reached [`BURST_BYTES`], the allocator is asked to
//! return its free pages ([`agui_trim::release_free_memory`], on the blocking pool), at most once
//! per [`MIN_INTERVAL`] (a trim walks and locks every arena in turn: cheap for a quiet moment,
//! not for every request). A burst that ends sooner than that is trimmed when the interval is up.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Buffered bytes at which a return to zero counts as the end of a burst.
pub(crate) const BURST_BYTES: usize = 16 * 1024 * 1024;

/// The shortest time between two trims.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_secs(10);

/// Watches the buffered-bytes count and trims after a burst.
#[derive(Debug, Default)]
pub(crate) struct AfterBurst(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    /// The most bytes seen buffered since the last trim.
    peak: AtomicUsize,
    /// A trim is waiting or running.
    scheduled: AtomicBool,
    /// When the last trim ran (held only to read or write the instant).
    last: Mutex<Option<Instant>>,
    /// Trims run so far (for tests and the log).
    trims: AtomicUsize,
}

impl AfterBurst {
    /// A body released `held` bytes, leaving `in_use` buffered.
    pub(crate) fn released(&self, held: usize, in_use: usize) {
        let shared = &self.0;
        shared.peak.fetch_max(in_use + held, Ordering::Relaxed);
        if in_use != 0 || shared.peak.load(Ordering::Relaxed) < BURST_BYTES {
            return;
        }
        if shared.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            shared.scheduled.store(false, Ordering::Release);
            return;
        };
        let last = *shared
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let wait = last.map_or(Duration::ZERO, |at| {
            MIN_INTERVAL.saturating_sub(at.elapsed())
        });
        let shared = Arc::clone(shared);
        runtime.spawn(async move {
            tokio::time::sleep(wait).await;
            let peak = shared.peak.swap(0, Ordering::Relaxed);
            let rss_before = rss_kib();
            let started = Instant::now();
            let released = tokio::task::spawn_blocking(agui_trim::release_free_memory)
                .await
                .unwrap_or(false);
            let took_us = started.elapsed().as_micros();
            let rss_after = rss_kib();
            *shared
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
            shared.trims.fetch_add(1, Ordering::Relaxed);
            shared.scheduled.store(false, Ordering::Release);
            tracing::info!(
                peak_buffered_bytes = peak,
                released,
                rss_before_kib = rss_before,
                rss_after_kib = rss_after,
                took_us,
                "request body burst over; free memory returned to the system"
            );
        });
    }

    /// Trims run so far.
    pub(crate) fn trims(&self) -> usize {
        self.0.trims.load(Ordering::Relaxed)
    }
}

/// This process's resident set, in KiB (0 where `/proc` is not there).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
