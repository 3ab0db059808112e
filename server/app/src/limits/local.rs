//! The in-memory backend: one token bucket and one open-stream counter per principal, behind a
//! std mutex (held for a few arithmetic steps, never across an await).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::{LimitExceeded, LimitKind, LimitsPolicy, PermitInner, StreamPermit};

/// Buckets kept before full (idle) ones are pruned.
const PRUNE_AT: usize = 100_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug, Default)]
struct State {
    buckets: HashMap<String, Bucket>,
    streams: HashMap<String, u32>,
}

/// Per-replica limits.
#[derive(Debug)]
pub struct LocalLimiter {
    policy: LimitsPolicy,
    state: Arc<Mutex<State>>,
}

/// A held slot; released once.
#[derive(Debug)]
pub(crate) struct LocalSlot {
    state: Arc<Mutex<State>>,
    key: String,
    released: bool,
}

impl LocalSlot {
    pub(crate) fn release(&mut self) {
        if std::mem::replace(&mut self.released, true) {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = state.streams.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.streams.remove(&self.key);
            }
        }
    }
}

impl LocalLimiter {
    /// A limiter enforcing `policy` in this process.
    pub fn new(policy: LimitsPolicy) -> Self {
        Self {
            policy,
            state: Arc::default(),
        }
    }

    /// Checks the stream cap, then takes a token; both or neither (one lock).
    pub(crate) fn acquire(
        &self,
        key: &str,
        roles: &[String],
    ) -> Result<StreamPermit, LimitExceeded> {
        let limits = self.policy.effective(roles);
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let open = state.streams.get(key).copied().unwrap_or(0);
        if limits.max_concurrent_streams > 0 && open >= limits.max_concurrent_streams {
            // A slot frees when some stream ends, which we cannot predict: ask for a short wait.
            return Err(LimitExceeded {
                kind: LimitKind::ConcurrentStreams,
                retry_after_secs: 1,
            });
        }
        if limits.runs_per_minute > 0 {
            let capacity = f64::from(limits.burst);
            let per_sec = f64::from(limits.runs_per_minute) / 60.0;
            if state.buckets.len() >= PRUNE_AT {
                // Idle principals' buckets are full again; forgetting them changes nothing.
                state.buckets.retain(|_, b| {
                    b.tokens + now.duration_since(b.updated).as_secs_f64() * per_sec < capacity
                });
            }
            let bucket = state.buckets.entry(key.to_owned()).or_insert(Bucket {
                tokens: capacity,
                updated: now,
            });
            let elapsed = now.duration_since(bucket.updated).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * per_sec).min(capacity);
            bucket.updated = now;
            if bucket.tokens < 1.0 {
                let wait = ((1.0 - bucket.tokens) / per_sec).ceil().max(1.0);
                return Err(LimitExceeded {
                    kind: LimitKind::RunRate,
                    retry_after_secs: wait as u64,
                });
            }
            bucket.tokens -= 1.0;
        }
        if limits.max_concurrent_streams == 0 {
            return Ok(StreamPermit::unlimited());
        }
        *state.streams.entry(key.to_owned()).or_insert(0) += 1;
        Ok(StreamPermit {
            inner: PermitInner::Local(LocalSlot {
                state: self.state.clone(),
                key: key.to_owned(),
                released: false,
            }),
        })
    }

    /// Open streams of `key` (tests and metrics).
    pub fn open_streams(&self, key: &str) -> u32 {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.streams.get(key).copied().unwrap_or(0)
    }
}
