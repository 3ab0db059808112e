//! "Now", injectable so expiry and cache-age tests move time instead of sleeping.

use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The time source of an [`crate::Authenticator`]: wall-clock seconds for token claims, a
/// monotonic instant for cache ages and cooldowns.
pub trait Clock: Send + Sync + Debug + 'static {
    /// Seconds since the Unix epoch (for `exp`, `nbf`, `iat`).
    fn unix_now(&self) -> i64;
    /// A monotonic instant (for TTLs, cooldowns and staleness).
    fn instant_now(&self) -> Instant;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix_now(&self) -> i64 {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
    }

    fn instant_now(&self) -> Instant {
        Instant::now()
    }
}

/// The real clock plus an offset that only moves forward when told to: for tests.
///
/// Both readings move together, so "advance 31 s" passes a cooldown and ages tokens alike.
#[derive(Debug, Default)]
pub struct ManualClock {
    offset: Mutex<Duration>,
}

impl ManualClock {
    /// Starts at the real time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time forward.
    pub fn advance(&self, by: Duration) {
        // A std Mutex: held for an addition, never across an await.
        *self
            .offset
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += by;
    }

    fn offset(&self) -> Duration {
        *self
            .offset
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn unix_now(&self) -> i64 {
        SystemClock.unix_now() + i64::try_from(self.offset().as_secs()).unwrap_or(i64::MAX / 2)
    }

    fn instant_now(&self) -> Instant {
        Instant::now() + self.offset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_both_readings() {
        let clock = ManualClock::new();
        let (u, i) = (clock.unix_now(), clock.instant_now());
        clock.advance(Duration::from_secs(3_600));
        assert!(clock.unix_now() >= u + 3_600);
        assert!(clock.instant_now() >= i + Duration::from_secs(3_600));
    }
}
