//! A small Prometheus registry (text exposition format 0.0.4) for `GET /metrics`.
//!
//! Counters are atomics or a short std `Mutex` around a map (never held across an `.await`), so
//! recording costs tens of nanoseconds on the hot path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms' buckets.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A Prometheus histogram of durations: fixed buckets, atomics only.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&le| seconds <= le) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        header(out, name, "histogram", help);
        let mut cumulative = 0;
        for (le, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        #[allow(clippy::cast_precision_loss)]
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// The server's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    auth_failures: Mutex<BTreeMap<&'static str, u64>>,
    authenticated: Mutex<BTreeMap<&'static str, u64>>,
    denied: Mutex<BTreeMap<&'static str, u64>>,
    limited: Mutex<BTreeMap<&'static str, u64>>,
    runs: Mutex<BTreeMap<&'static str, u64>>,
    tool_calls: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Request received → first event frame handed to the connection.
    pub time_to_first_event: Arc<Histogram>,
    /// Model turn requested → first delta (shared with the agents' model wrappers).
    pub model_latency: Arc<Histogram>,
    events_sent: AtomicU64,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    // Held only for the increment; no .await inside.
    let mut map = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *map.entry(key).or_default() += 1;
}

impl Metrics {
    /// Counts a finished HTTP request (the response head was sent).
    pub fn request(&self, route: &'static str, status: u16) {
        bump(&self.requests, (route, status));
    }

    /// Counts an authentication failure by reason (never the token).
    pub fn auth_failure(&self, reason: &'static str) {
        bump(&self.auth_failures, reason);
    }

    /// Counts an authorization denial of an authenticated caller (`agent_access`,
    /// `thread_ownership`).
    pub fn denied(&self, reason: &'static str) {
        bump(&self.denied, reason);
    }

    /// Counts a run refused by a per-principal limit (`rate_limited`, `too_many_streams`).
    pub fn limited(&self, limit: &'static str) {
        bump(&self.limited, limit);
    }

    /// Counts an authenticated request by credential source (`header`, `header_raw`, `body`).
    pub fn authenticated(&self, source: &'static str) {
        bump(&self.authenticated, source);
    }

    /// Counts a backend tool call by tool and decision (`allowed`, `denied`).
    pub fn tool_call(&self, tool: String, decision: &'static str) {
        bump(&self.tool_calls, (tool, decision));
    }

    /// Counts a finished run by outcome.
    pub fn run_finished(&self, outcome: &'static str, events: u64) {
        bump(&self.runs, outcome);
        self.events_sent.fetch_add(events, Ordering::Relaxed);
    }

    /// Renders every metric, with `open_streams` (the server's stream cap reports it), plus
    /// `extra` lines (e.g. the JWKS cache's), in text format.
    pub fn render(&self, open_streams: usize, extra: &str) -> String {
        let mut out = String::with_capacity(2048);
        let lock = |m: &Mutex<BTreeMap<_, u64>>| {
            m.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        };

        header(
            &mut out,
            "agui_http_requests_total",
            "counter",
            "HTTP requests by route and status.",
        );
        for ((route, status), n) in lock_requests(&self.requests) {
            let _ = writeln!(
                out,
                "agui_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        header(
            &mut out,
            "agui_auth_failures_total",
            "counter",
            "Refused credentials by reason.",
        );
        for (reason, n) in lock(&self.auth_failures) {
            let _ = writeln!(out, "agui_auth_failures_total{{reason=\"{reason}\"}} {n}");
        }
        header(
            &mut out,
            "agui_access_denied_total",
            "counter",
            "Authenticated callers refused by policy, by reason.",
        );
        for (reason, n) in lock(&self.denied) {
            let _ = writeln!(out, "agui_access_denied_total{{reason=\"{reason}\"}} {n}");
        }
        header(
            &mut out,
            "agui_limited_total",
            "counter",
            "Runs refused by a per-principal limit, by limit.",
        );
        for (limit, n) in lock(&self.limited) {
            let _ = writeln!(out, "agui_limited_total{{limit=\"{limit}\"}} {n}");
        }
        header(
            &mut out,
            "agui_authenticated_requests_total",
            "counter",
            "Accepted credentials by source.",
        );
        for (source, n) in lock(&self.authenticated) {
            let _ = writeln!(
                out,
                "agui_authenticated_requests_total{{credential_source=\"{source}\"}} {n}"
            );
        }
        header(
            &mut out,
            "agui_runs_total",
            "counter",
            "Finished runs by outcome.",
        );
        for (outcome, n) in lock(&self.runs) {
            let _ = writeln!(out, "agui_runs_total{{outcome=\"{outcome}\"}} {n}");
        }
        header(
            &mut out,
            "agui_active_streams",
            "gauge",
            "Event streams open now.",
        );
        let _ = writeln!(out, "agui_active_streams {open_streams}");
        header(
            &mut out,
            "agui_events_sent_total",
            "counter",
            "AG-UI events written to finished streams.",
        );
        let _ = writeln!(
            out,
            "agui_events_sent_total {}",
            self.events_sent.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "agui_tool_calls_total",
            "counter",
            "Backend tool calls by tool and decision.",
        );
        let tool_calls = self
            .tool_calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for ((tool, decision), n) in tool_calls {
            let _ = writeln!(
                out,
                "agui_tool_calls_total{{tool=\"{tool}\",decision=\"{decision}\"}} {n}"
            );
        }
        self.time_to_first_event.render(
            &mut out,
            "agui_time_to_first_event_seconds",
            "Request received to the first event frame written.",
        );
        self.model_latency.render(
            &mut out,
            "agui_model_latency_seconds",
            "Model turn requested to its first delta.",
        );
        out.push_str(extra);
        out
    }
}

fn lock_requests(
    m: &Mutex<BTreeMap<(&'static str, u16), u64>>,
) -> BTreeMap<(&'static str, u16), u64> {
    m.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labelled_counters_in_text_format() {
        let m = Metrics::default();
        m.request("/chat", 200);
        m.request("/chat", 200);
        m.auth_failure("expired");
        m.run_finished("success", 7);
        let text = m.render(1, "");
        assert!(
            text.contains("agui_http_requests_total{route=\"/chat\",status=\"200\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("agui_auth_failures_total{reason=\"expired\"} 1\n"));
        assert!(text.contains("agui_runs_total{outcome=\"success\"} 1\n"));
        assert!(text.contains("agui_active_streams 1\n"));
        assert!(text.contains("agui_events_sent_total 7\n"));
        assert!(text.contains("# TYPE agui_active_streams gauge\n"));
    }
}
