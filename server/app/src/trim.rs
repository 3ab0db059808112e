//! Memory returned to the system after a burst: of buffered request bodies, or of open streams.
//!
//! glibc keeps freed memory in its arenas for reuse and returns pages only from the top of each
//! heap, so after a burst the process stays resident near its peak although nothing uses that
//! memory: a few hundred large bodies buffered and dropped (issue #12: 26 MB → 567 MB), or
//! 10,000 streams opened and closed (issue #16: 362 of 388 MiB still resident a minute after the
//! soak's streams ended). Each kind of burst is watched by an [`AfterBurst`]: a level (bytes
//! buffered, streams open) with the peak it reached; when the level falls far enough below a
//! peak that was high enough ([`Burst`]), the burst is over and the one shared [`Trimmer`] asks
//! the allocator to return its free pages ([`agui_trim::release_free_memory`], on the blocking
//! pool), at most once per [`MIN_INTERVAL`] across both kinds (a trim walks and locks every arena
//! in turn: cheap for a quiet moment, not for every request). A burst that ends sooner than that
//! after the last trim is trimmed when the interval is up.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The shortest time between two trims.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_secs(10);

/// Buffered request bodies: a burst reached 16 MiB and is over once nothing is buffered.
pub(crate) const BODIES: Burst = Burst {
    what: "request bodies",
    peak_at_least: 16 * 1024 * 1024,
    fallen_to: Fallen::Zero,
};

/// Open streams: a burst reached 1,000 streams and is over once at most a sixteenth of its peak
/// is still open (the last streams of a burst need not end for the rest's memory to go back,
/// and a server that always has a few streams open would never reach zero).
pub(crate) const STREAMS: Burst = Burst {
    what: "open streams",
    peak_at_least: 1000,
    fallen_to: Fallen::Fraction(16),
};

/// What counts as a burst of one level, and as its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Burst {
    /// For the log: what the level counts.
    pub(crate) what: &'static str,
    /// The peak from which a fall counts.
    pub(crate) peak_at_least: usize,
    /// How far the level must fall.
    pub(crate) fallen_to: Fallen,
}

/// How far a level must fall from its peak for a burst to be over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fallen {
    /// Back to zero.
    Zero,
    /// At most `peak / n`.
    Fraction(usize),
}

impl Burst {
    /// Whether `level` after `peak` ends a burst.
    fn ends(&self, peak: usize, level: usize) -> bool {
        peak >= self.peak_at_least
            && match self.fallen_to {
                Fallen::Zero => level == 0,
                Fallen::Fraction(n) => level.saturating_mul(n) <= peak,
            }
    }
}

/// Watches one level for the end of a [`Burst`] and then asks the [`Trimmer`] for a trim.
#[derive(Debug)]
pub(crate) struct AfterBurst {
    burst: Burst,
    /// The highest level seen since the last burst ended.
    peak: AtomicUsize,
    trimmer: Trimmer,
}

impl AfterBurst {
    /// Watches for `burst`, trimming through `trimmer`.
    pub(crate) fn new(burst: Burst, trimmer: Trimmer) -> Self {
        Self {
            burst,
            peak: AtomicUsize::new(0),
            trimmer,
        }
    }

    /// The level fell from `before` to `after` (a body released its bytes, a stream closed).
    /// The peak is taken here, from `before`, so rises need no call of their own. Returns
    /// whether this fall ended a burst (and a trim was asked for).
    pub(crate) fn fell(&self, before: usize, after: usize) -> bool {
        let seen = self.peak.fetch_max(before, Ordering::Relaxed).max(before);
        if !self.burst.ends(seen, after) {
            return false;
        }
        // One burst, one end: whoever moves the peak down to the level takes it. (A rise racing
        // with this leaves the peak up, and a later fall ends the burst instead.)
        if self
            .peak
            .compare_exchange(seen, after, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        self.trimmer.trim(self.burst.what, seen);
        true
    }
}

/// Returns free memory to the system, at most once per [`MIN_INTERVAL`]; shared by every
/// [`AfterBurst`] of a server.
#[derive(Debug, Clone, Default)]
pub(crate) struct Trimmer(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    /// A trim is waiting for its interval or running.
    scheduled: AtomicBool,
    /// When the last trim ran (held only to read or write the instant).
    last: Mutex<Option<Instant>>,
    /// Trims run so far (for the metric and tests).
    trims: AtomicUsize,
}

impl Trimmer {
    /// A burst of `what` that peaked at `peak` is over: trim now, or when the interval since the
    /// last trim is up (one trim then covers every burst that ended meanwhile). Outside a tokio
    /// runtime, does nothing.
    fn trim(&self, what: &'static str, peak: usize) {
        let shared = &self.0;
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
                after = what,
                peak,
                released,
                rss_before_kib = rss_before,
                rss_after_kib = rss_after,
                took_us,
                "burst over; free memory returned to the system"
            );
        });
    }

    /// Trims run so far.
    pub(crate) fn trims(&self) -> usize {
        self.0.trims.load(Ordering::Relaxed)
    }

    /// The metrics for `/metrics`.
    pub(crate) fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "# HELP agui_memory_trims_total Times free memory was returned to the system after a burst (of request bodies or open streams).\n\
             # TYPE agui_memory_trims_total counter\n\
             agui_memory_trims_total {}\n\
             # HELP agui_memory_trim_pending 1 while a trim waits for its interval or runs.\n\
             # TYPE agui_memory_trim_pending gauge\n\
             agui_memory_trim_pending {}",
            self.trims(),
            u8::from(self.0.scheduled.load(Ordering::Acquire)),
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A watcher whose trims cannot run (no runtime): only the trigger is tested here.
    fn watching(burst: Burst) -> AfterBurst {
        AfterBurst::new(burst, Trimmer::default())
    }

    /// Closes streams one by one from `peak` open down to `to`; returns the levels at which a
    /// close ended a burst. (Opening needs no call: the peak is taken from the level before
    /// each fall.)
    fn closing(watch: &AfterBurst, peak: usize, to: usize) -> Vec<usize> {
        (to..peak)
            .rev()
            .filter(|&after| watch.fell(after + 1, after))
            .collect()
    }

    #[test]
    fn streams_falling_from_a_thousand_to_a_sixteenth_end_one_burst() {
        let watch = watching(STREAMS);
        // 1,000 → 62: 63 is still above 1000 / 16 = 62.5, 62 is not.
        assert_eq!(closing(&watch, 1000, 0), vec![62]);
    }

    #[test]
    fn streams_that_never_reach_a_thousand_are_no_burst() {
        let watch = watching(STREAMS);
        assert_eq!(closing(&watch, 999, 0), Vec::<usize>::new());
        // Positive control: one more stream at the peak makes it a burst.
        assert_eq!(closing(&watch, 1000, 0), vec![62]);
    }

    #[test]
    fn a_second_burst_ends_again_and_a_rise_below_the_mark_does_not() {
        let watch = watching(STREAMS);
        assert_eq!(closing(&watch, 4000, 200), vec![250]);
        // From 200 back up to 900 and down: the peak since the end is 900, no burst.
        assert_eq!(closing(&watch, 900, 0), Vec::<usize>::new());
        assert_eq!(closing(&watch, 1600, 0), vec![100]);
    }

    #[test]
    fn bodies_end_a_burst_only_at_zero() {
        let watch = watching(BODIES);
        let mib = 1024 * 1024;
        // 16 MiB buffered, released 1 MiB at a time: only the last release ends the burst.
        let ends: Vec<usize> = (0..16)
            .rev()
            .filter(|&left| watch.fell((left + 1) * mib, left * mib))
            .collect();
        assert_eq!(ends, vec![0]);
        // Just under the mark, back to zero: no burst.
        assert!(!watch.fell(16 * mib - 1, 0));
    }

    #[test]
    fn bodies_and_streams_share_one_trimmer() {
        let trimmer = Trimmer::default();
        let bodies = AfterBurst::new(BODIES, trimmer.clone());
        let streams = AfterBurst::new(STREAMS, trimmer.clone());
        assert!(bodies.fell(BODIES.peak_at_least, 0));
        assert!(streams.fell(1000, 0));
        // No runtime here, so neither trim ran and none is left scheduled.
        assert_eq!(trimmer.trims(), 0);
        assert!(!trimmer.0.scheduled.load(Ordering::Acquire));
    }
}
