//! The verdict cache of the verifiers that must ask someone else (GitHub, introspection).
//!
//! * Keyed by the SHA-256 of the whole token, never the token or a prefix of it (the LiteLLM
//!   CVE-2026-35030 lesson: a cache keyed on `token[:20]` confused identities). Values are
//!   principals built field by field by the verifiers, so no upstream answer that echoes the
//!   token (GitHub's check does) is ever kept.
//! * Acceptances live until the verifier's TTL (bounded by the token's own expiry), refusals for
//!   the negative TTL; an unreachable upstream is never cached.
//! * Bounded: at most `capacity` entries; when full, expired entries go first, then the one that
//!   expires soonest.
//! * Single flight per token: concurrent requests with one token share one upstream call, which
//!   runs in its own task so a caller that goes away does not waste it. At most
//!   [`MAX_INFLIGHT`] distinct tokens are checked at once per verifier; beyond, 503.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::clock::Clock;
use crate::credential::CredentialSource;
use crate::error::AuthError;
use crate::principal::Principal;

/// The SHA-256 of a token.
pub(crate) type Digest = [u8; 32];

/// Distinct tokens checked upstream at once, per verifier.
pub(crate) const MAX_INFLIGHT: usize = 256;

/// What one upstream check concluded.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Accepted; remember it for this long.
    Accepted(Arc<Principal>, Duration),
    /// Refused for a reason of the token's (invalid, inactive, not allowed); remember it for the
    /// negative TTL.
    Refused(AuthError),
    /// The upstream could not answer: not cached.
    Unavailable(AuthError),
}

#[derive(Debug, Clone)]
enum Verdict {
    Accepted(Arc<Principal>),
    Refused(AuthError),
}

#[derive(Debug)]
struct Entry {
    verdict: Verdict,
    until: Instant,
}

type Flight = Shared<BoxFuture<'static, Result<Arc<Principal>, AuthError>>>;

/// One verifier's cache.
pub(crate) struct OpaqueCache {
    capacity: usize,
    negative_ttl: Duration,
    clock: Arc<dyn Clock>,
    /// Held for map operations only, never across an await.
    entries: Mutex<HashMap<Digest, Entry>>,
    /// Held for map operations only, never across an await.
    inflight: Mutex<HashMap<Digest, Flight>>,
    hits: AtomicU64,
    upstream: AtomicU64,
}

impl OpaqueCache {
    pub(crate) fn new(capacity: usize, negative_ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            capacity: capacity.max(1),
            negative_ttl,
            clock,
            entries: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            upstream: AtomicU64::new(0),
        }
    }

    /// The cached verdict for `digest`, else the result of `check` (shared by every concurrent
    /// caller with the same digest). The principal carries this request's credential source.
    pub(crate) async fn get_or_check<F>(
        self: &Arc<Self>,
        digest: Digest,
        source: CredentialSource,
        check: F,
    ) -> Result<Arc<Principal>, AuthError>
    where
        F: Future<Output = Outcome> + Send + 'static,
    {
        let flight = {
            let mut inflight = lock(&self.inflight);
            // Looked up under the in-flight lock: a check that just finished has stored its
            // verdict before leaving the in-flight map, so it is seen here one way or the other.
            if let Some(verdict) = self.get(&digest) {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return with_source(verdict, source);
            }
            match inflight.get(&digest) {
                Some(flight) => flight.clone(),
                None => {
                    if inflight.len() >= MAX_INFLIGHT {
                        return Err(AuthError::IssuerUnavailable {
                            retry_after_secs: 1,
                        });
                    }
                    let flight = self.spawn(digest, check);
                    inflight.insert(digest, flight.clone());
                    flight
                }
            }
        };
        let result = flight.await;
        with_source(
            result
                .map(Verdict::Accepted)
                .unwrap_or_else(Verdict::Refused),
            source,
        )
    }

    fn spawn<F>(self: &Arc<Self>, digest: Digest, check: F) -> Flight
    where
        F: Future<Output = Outcome> + Send + 'static,
    {
        self.upstream.fetch_add(1, Ordering::Relaxed);
        let this = self.clone();
        let task = tokio::spawn(async move {
            let outcome = check.await;
            let result = this.store(digest, outcome);
            lock(&this.inflight).remove(&digest);
            result
        });
        async move {
            task.await.unwrap_or(Err(AuthError::IssuerUnavailable {
                retry_after_secs: 1,
            }))
        }
        .boxed()
        .shared()
    }

    fn store(&self, digest: Digest, outcome: Outcome) -> Result<Arc<Principal>, AuthError> {
        let now = self.clock.instant_now();
        let (verdict, ttl, result) = match outcome {
            Outcome::Accepted(p, ttl) => (Verdict::Accepted(p.clone()), ttl, Ok(p)),
            Outcome::Refused(e) => (Verdict::Refused(e.clone()), self.negative_ttl, Err(e)),
            Outcome::Unavailable(e) => return Err(e),
        };
        if ttl.is_zero() {
            return result;
        }
        let mut entries = lock(&self.entries);
        if entries.len() >= self.capacity && !entries.contains_key(&digest) {
            entries.retain(|_, e| e.until > now);
            if entries.len() >= self.capacity
                && let Some(soonest) = entries.iter().min_by_key(|(_, e)| e.until).map(|(k, _)| *k)
            {
                entries.remove(&soonest);
            }
        }
        entries.insert(
            digest,
            Entry {
                verdict,
                until: now + ttl,
            },
        );
        result
    }

    fn get(&self, digest: &Digest) -> Option<Verdict> {
        let now = self.clock.instant_now();
        let mut entries = lock(&self.entries);
        match entries.get(digest) {
            Some(entry) if entry.until > now => Some(entry.verdict.clone()),
            Some(_) => {
                entries.remove(digest);
                None
            }
            None => None,
        }
    }

    /// Requests answered from the cache.
    pub(crate) fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Upstream checks started.
    pub(crate) fn upstream_checks(&self) -> u64 {
        self.upstream.load(Ordering::Relaxed)
    }

    /// Every entry as (hex key, `Debug` of the stored verdict), for the tests that prove the
    /// cache holds hashes and principals only.
    #[cfg(feature = "testing")]
    pub(crate) fn dump(&self) -> Vec<(String, String)> {
        lock(&self.entries)
            .iter()
            .map(|(k, e)| (hex(k), format!("{:?}", e.verdict)))
            .collect()
    }
}

fn with_source(verdict: Verdict, source: CredentialSource) -> Result<Arc<Principal>, AuthError> {
    match verdict {
        Verdict::Accepted(p) if p.credential_source == source => Ok(p),
        Verdict::Accepted(p) => {
            let mut copy = Principal::clone(&p);
            copy.credential_source = source;
            Ok(Arc::new(copy))
        }
        Verdict::Refused(e) => Err(e),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
