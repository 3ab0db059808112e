//! [`AuthFailureAggregator`]: authentication failures counted per (source address, reason,
//! issuer) over a short window and written as ONE audit record per key per window, so an
//! unauthenticated flood costs a counter increment per request, not a row.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{AuditKind, AuditLog, AuditRecord, now_ms};

/// Keys tracked at once; beyond it failures of new keys share one overflow key (source `::`),
/// so a flood from many addresses cannot grow memory without bound either.
const MAX_KEYS: usize = 10_000;
/// Distinct token fingerprints kept per window (enough to correlate, bounded).
const MAX_FINGERPRINTS: usize = 5;

/// What failures are aggregated by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthFailureKey {
    /// The client address ([`super::client_addr()`]).
    pub source: IpAddr,
    /// The failure category (`missing_token`, `invalid_token`, `expired`, `unknown_issuer`, ...).
    pub reason: String,
    /// The token's claimed issuer, when one could be read.
    pub issuer: Option<String>,
}

struct Window {
    started: Instant,
    first_at: i64,
    last_at: i64,
    count: u64,
    fingerprints: Vec<String>,
}

/// Aggregates authentication failures into `auth_failure` audit records.
#[derive(Clone)]
pub struct AuthFailureAggregator {
    log: AuditLog,
    window: Duration,
    // A std mutex: held only for map updates, never across an await.
    windows: Arc<Mutex<HashMap<AuthFailureKey, Window>>>,
}

impl std::fmt::Debug for AuthFailureAggregator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthFailureAggregator")
            .field("window", &self.window)
            .finish()
    }
}

impl AuthFailureAggregator {
    /// Aggregates over `window` (e.g. 60 s) into `log`.
    pub fn new(log: AuditLog, window: Duration) -> Self {
        // A zero window would make the sweeper's interval panic; a second is the floor.
        let window = window.max(Duration::from_secs(1));
        Self {
            log,
            window,
            windows: Arc::default(),
        }
    }

    /// Counts one failure. The token fingerprint (never the token) is kept for correlation.
    pub fn record(&self, key: AuthFailureKey, token_fingerprint: Option<&str>) {
        let now = Instant::now();
        let at = now_ms();
        let mut expired = Vec::new();
        {
            let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
            // A key whose window is over is written before a new window starts.
            if let Some(window) = windows.get(&key)
                && now.duration_since(window.started) >= self.window
                && let Some(old) = windows.remove(&key)
            {
                expired.push((key.clone(), old));
            }
            let key = if windows.len() >= MAX_KEYS && !windows.contains_key(&key) {
                AuthFailureKey {
                    source: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                    reason: "overflow".to_owned(),
                    issuer: None,
                }
            } else {
                key
            };
            let window = windows.entry(key).or_insert_with(|| Window {
                started: now,
                first_at: at,
                last_at: at,
                count: 0,
                fingerprints: Vec::new(),
            });
            window.count += 1;
            window.last_at = at;
            if let Some(fp) = token_fingerprint
                && window.fingerprints.len() < MAX_FINGERPRINTS
                && !window.fingerprints.iter().any(|f| f == fp)
            {
                window.fingerprints.push(fp.to_owned());
            }
        }
        self.write(expired);
    }

    /// Writes every window that is over. [`AuthFailureAggregator::spawn_sweeper`] calls it
    /// periodically; call it directly in tests.
    pub fn sweep(&self) {
        let now = Instant::now();
        let expired: Vec<_> = {
            let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
            let keys: Vec<_> = windows
                .iter()
                .filter(|(_, w)| now.duration_since(w.started) >= self.window)
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter()
                .filter_map(|k| windows.remove_entry(&k))
                .collect()
        };
        self.write(expired);
    }

    /// Writes every open window now (shutdown).
    pub fn flush_all(&self) {
        let all: Vec<_> = {
            let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
            windows.drain().collect()
        };
        self.write(all);
    }

    /// Sweeps every quarter window until `shutdown` fires, then writes what is open.
    pub fn spawn_sweeper(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(this.window / 4);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => {
                        this.flush_all();
                        return;
                    }
                    _ = tick.tick() => this.sweep(),
                }
            }
        })
    }

    fn write(&self, windows: Vec<(AuthFailureKey, Window)>) {
        for (key, window) in windows {
            let mut record = AuditRecord {
                at: window.first_at,
                ..AuditRecord::now(AuditKind::AuthFailure)
            }
            .detail(json!({
                "source": key.source.to_string(),
                "reason": key.reason,
                "count": window.count,
                "first_at": window.first_at,
                "last_at": window.last_at,
                "window_secs": self.window.as_secs(),
                "token_fingerprints": window.fingerprints,
            }));
            record.issuer = key.issuer;
            self.log.record(record);
        }
    }
}
