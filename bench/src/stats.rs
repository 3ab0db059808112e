//! Per-run statistics: what each stream measured, errors by kind, percentiles, and the validity
//! rule (zero errors, every stream ended in `RUN_FINISHED`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What went wrong with one request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The TCP connection or HTTP handshake failed.
    Connect,
    /// The response status was not the expected one.
    Status(u16),
    /// The connection broke while the request or body was in flight.
    Io,
    /// The stream ended without `RUN_FINISHED` as its last event.
    NoRunFinished,
    /// The stream ended with `RUN_ERROR`.
    RunError,
    /// The body ended in the middle of an SSE frame.
    PartialFrame,
    /// The request did not finish before the run's deadline.
    Timeout,
    /// A joined client's stream ended well but without the whole reply (`join`).
    IncompleteReply,
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect => f.write_str("connect"),
            Self::Status(code) => write!(f, "status_{code}"),
            Self::Io => f.write_str("io"),
            Self::NoRunFinished => f.write_str("no_run_finished"),
            Self::RunError => f.write_str("run_error"),
            Self::PartialFrame => f.write_str("partial_frame"),
            Self::Timeout => f.write_str("timeout"),
            Self::IncompleteReply => f.write_str("incomplete_reply"),
        }
    }
}

/// One request that completed as expected.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Request sent → response head received.
    pub ttfb: Duration,
    /// Request sent → first complete event (None for expected rejections, which have no events).
    pub ttfe: Option<Duration>,
    /// Request sent → body complete.
    pub total: Duration,
    /// Events in the body.
    pub events: u64,
    /// Body bytes.
    pub bytes: u64,
}

/// Collects samples and errors during a run.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    samples: Vec<Sample>,
    errors: BTreeMap<String, u64>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a request that completed as expected.
    pub fn ok(&mut self, sample: Sample) {
        self.samples.push(sample);
    }

    /// Records a failed request.
    pub fn error(&mut self, kind: &ErrorKind) {
        *self.errors.entry(kind.to_string()).or_default() += 1;
    }

    /// Merges another recorder (one per worker) into this one.
    pub fn merge(&mut self, other: Recorder) {
        self.samples.extend(other.samples);
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
    }

    /// The summary of a run that took `wall`.
    pub fn summarize(mut self, wall: Duration) -> Summary {
        let wall_s = wall.as_secs_f64().max(1e-9);
        let ok = self.samples.len() as u64;
        let events: u64 = self.samples.iter().map(|s| s.events).sum();
        let bytes: u64 = self.samples.iter().map(|s| s.bytes).sum();
        let mut ttfb: Vec<Duration> = self.samples.iter().map(|s| s.ttfb).collect();
        let mut ttfe: Vec<Duration> = self.samples.iter().filter_map(|s| s.ttfe).collect();
        self.samples.sort_by_key(|s| s.total);
        let mut total: Vec<Duration> = self.samples.iter().map(|s| s.total).collect();
        let errors: u64 = self.errors.values().sum();
        Summary {
            requests_ok: ok,
            errors,
            errors_by_kind: self.errors,
            wall_s,
            requests_per_s: ok as f64 / wall_s,
            events,
            events_per_s: events as f64 / wall_s,
            bytes,
            ttfb_ms: Percentiles::of(&mut ttfb),
            ttfe_ms: Percentiles::of(&mut ttfe),
            stream_ms: Percentiles::of(&mut total),
        }
    }
}

/// p50/p90/p99/max of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// Percentiles of `values` (sorted in place); all zero when empty.
    pub fn of(values: &mut [Duration]) -> Self {
        values.sort_unstable();
        Self {
            p50: percentile(values, 50.0),
            p90: percentile(values, 90.0),
            p99: percentile(values, 99.0),
            max: values.last().map_or(0.0, |d| ms(*d)),
        }
    }
}

/// The nearest-rank percentile of sorted `values`, in milliseconds (0 when empty).
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    ms(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The client's view of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Requests that completed as expected.
    pub requests_ok: u64,
    /// Requests that did not.
    pub errors: u64,
    /// Errors by kind (`status_401`, `no_run_finished`, …).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Wall time of the run, seconds.
    pub wall_s: f64,
    /// Completed requests per second.
    pub requests_per_s: f64,
    /// Events received.
    pub events: u64,
    /// Events per second.
    pub events_per_s: f64,
    /// Body bytes received.
    pub bytes: u64,
    /// Time to the response head.
    pub ttfb_ms: Percentiles,
    /// Time to the first complete event.
    pub ttfe_ms: Percentiles,
    /// Time to the end of the body.
    pub stream_ms: Percentiles,
}

impl Summary {
    /// A run counts only with zero errors and every request completed (for streams: ended in
    /// `RUN_FINISHED`, which is what makes a request count as ok).
    pub fn is_valid(&self, expected_requests: u64) -> bool {
        self.errors == 0 && self.requests_ok == expected_requests
    }
}

/// The median and range of one metric over repeated runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Median (for an even count, the mean of the middle two).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; all zero when empty.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Self::default();
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Self {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ms: u64, events: u64) -> Sample {
        Sample {
            ttfb: Duration::from_millis(ms),
            ttfe: Some(Duration::from_millis(ms + 1)),
            total: Duration::from_millis(ms * 10),
            events,
            bytes: events * 100,
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut values: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let p = Percentiles::of(&mut values);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        let mut one = vec![Duration::from_millis(7)];
        let p = Percentiles::of(&mut one);
        assert_eq!((p.p50, p.p99, p.max), (7.0, 7.0, 7.0));
        assert_eq!(Percentiles::of(&mut []), Percentiles::default());
    }

    #[test]
    fn summary_counts_rates_and_validity() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        for i in 1..=10 {
            a.ok(sample(i, 9));
        }
        b.ok(sample(20, 9));
        a.merge(b);
        let summary = a.summarize(Duration::from_secs(2));
        assert_eq!(summary.requests_ok, 11);
        assert_eq!(summary.events, 99);
        assert!((summary.events_per_s - 49.5).abs() < 1e-9);
        assert!((summary.requests_per_s - 5.5).abs() < 1e-9);
        assert_eq!(summary.ttfb_ms.max, 20.0);
        assert_eq!(summary.ttfe_ms.p50, 7.0);
        assert_eq!(summary.stream_ms.max, 200.0);
        assert!(summary.is_valid(11));
        // Fewer completions than requested is not valid even without a recorded error.
        assert!(!summary.is_valid(12));
    }

    #[test]
    fn a_stream_without_run_finished_makes_the_run_invalid() {
        let mut recorder = Recorder::new();
        for i in 1..=5 {
            recorder.ok(sample(i, 9));
        }
        recorder.error(&ErrorKind::NoRunFinished);
        let summary = recorder.summarize(Duration::from_secs(1));
        assert_eq!(summary.errors, 1);
        assert_eq!(summary.errors_by_kind["no_run_finished"], 1);
        assert!(!summary.is_valid(6));
    }

    #[test]
    fn errors_are_grouped_by_kind() {
        let mut recorder = Recorder::new();
        recorder.error(&ErrorKind::Status(401));
        recorder.error(&ErrorKind::Status(401));
        recorder.error(&ErrorKind::Status(503));
        recorder.error(&ErrorKind::Timeout);
        let summary = recorder.summarize(Duration::from_secs(1));
        assert_eq!(summary.errors, 4);
        assert_eq!(summary.errors_by_kind["status_401"], 2);
        assert_eq!(summary.errors_by_kind["status_503"], 1);
        assert_eq!(summary.errors_by_kind["timeout"], 1);
    }

    #[test]
    fn spread_takes_median_and_range() {
        let s = Spread::of([3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = Spread::of([4.0, 1.0, 2.0, 3.0]);
        assert_eq!(s.median, 2.5);
        assert_eq!(Spread::of([]), Spread::default());
    }
}
