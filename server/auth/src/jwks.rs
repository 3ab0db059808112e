//! Our JWKS cache, one per issuer (reference §7.2 numbers, from Envoy, panva/jose, AWS, Oathkeeper).
//!
//! * Lookups read the current key set under a std `RwLock` held for a pointer copy: they never
//!   wait on a fetch. A lookup that finds the set due for refresh only pokes the background task.
//! * TTL 10 min, or the response's `Cache-Control: max-age` clamped to 5 min–1 h; the background
//!   task refreshes at 80 % of the TTL; failures retry with backoff 1 s → 60 s.
//! * An unknown `kid` (or an issuer with no usable keys) triggers an on-demand fetch: single
//!   flight (one `tokio::sync::Mutex` per issuer that only fetchers take; waiters share the
//!   result) and at most one per 30 s per issuer, so random kids cannot make us hammer the IdP.
//! * A failed fetch, or a set that is empty, unparseable or has no usable key, never replaces a
//!   good set; the last good set stays usable for 24 h past its TTL, then the issuer is
//!   unavailable (503) until a fetch succeeds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::fetch::{self, FetchError};
use crate::keys::{self, KeySet, Lookup, ValidationSpec, VerifyKey};

/// TTL when the response says nothing.
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// Lower clamp of `max-age`.
pub(crate) const MIN_TTL: Duration = Duration::from_secs(300);
/// Upper clamp of `max-age`.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(3_600);
/// At most one on-demand (unknown-kid or cold) fetch per this interval per issuer.
pub(crate) const REFETCH_COOLDOWN: Duration = Duration::from_secs(30);
/// How long past its TTL the last good set stays usable while the issuer is unreachable.
pub(crate) const MAX_STALE: Duration = Duration::from_secs(24 * 3_600);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// What a lookup found.
pub(crate) enum KeyLookup {
    Found(Arc<VerifyKey>),
    WrongAlg,
    Ambiguous,
    Missing,
    /// No usable set at all (cold start, or stale beyond [`MAX_STALE`]).
    Unavailable {
        retry_after_secs: u64,
    },
}

/// One issuer's cache.
pub(crate) struct IssuerCache {
    pub issuer: String,
    allow_http: bool,
    jwks_override: Option<String>,
    spec: ValidationSpec,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    /// Held only to copy or swap small values, never across an await.
    state: RwLock<State>,
    /// Taken by whoever fetches (background refresh or on-demand refetch): the single flight.
    fetch_lock: tokio::sync::Mutex<()>,
    fetches_started: AtomicU64,
    poke: Notify,
    counters: Counters,
}

struct State {
    jwks_uri: Option<String>,
    keys: Option<Arc<KeySet>>,
    fetched_at: Option<Instant>,
    ttl: Duration,
    next_attempt: Instant,
    failures: u32,
    last_on_demand: Option<Instant>,
}

#[derive(Default)]
struct Counters {
    jwks_ok: AtomicU64,
    jwks_failed: AtomicU64,
    discovery_ok: AtomicU64,
    discovery_failed: AtomicU64,
}

/// Per-issuer numbers for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerStats {
    /// The configured issuer.
    pub issuer: String,
    /// Successful JWKS fetches (a usable set was stored).
    pub jwks_fetches_ok: u64,
    /// Failed JWKS fetches (unreachable, bad status, bad or empty document).
    pub jwks_fetches_failed: u64,
    /// Successful discovery fetches.
    pub discovery_ok: u64,
    /// Failed discovery fetches (including an issuer mismatch).
    pub discovery_failed: u64,
    /// Keys in the current set.
    pub keys: usize,
    /// Whether the issuer has a usable key set.
    pub usable: bool,
    /// How long the current set is fresh: 10 min, or the JWKS response's `Cache-Control:
    /// max-age` clamped to 5 min–1 h.
    pub ttl_secs: u64,
}

impl IssuerCache {
    pub(crate) fn new(
        issuer: &crate::config::IssuerConfig,
        spec: ValidationSpec,
        client: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let now = clock.instant_now();
        Self {
            issuer: issuer.issuer.clone(),
            allow_http: issuer.allow_http,
            jwks_override: issuer.jwks_uri.clone(),
            spec,
            client,
            clock,
            state: RwLock::new(State {
                jwks_uri: issuer.jwks_uri.clone(),
                keys: None,
                fetched_at: None,
                ttl: DEFAULT_TTL,
                next_attempt: now,
                failures: 0,
                last_on_demand: None,
            }),
            fetch_lock: tokio::sync::Mutex::new(()),
            fetches_started: AtomicU64::new(0),
            poke: Notify::new(),
            counters: Counters::default(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn usable_set(state: &State, now: Instant) -> Option<Arc<KeySet>> {
        match (&state.keys, state.fetched_at) {
            (Some(keys), Some(at)) if now < at + state.ttl + MAX_STALE => Some(keys.clone()),
            _ => None,
        }
    }

    /// The number of fetches started so far; pass it to [`IssuerCache::refetch_on_demand`].
    pub(crate) fn fetches_started(&self) -> u64 {
        self.fetches_started.load(Ordering::Acquire)
    }

    /// Finds a key without waiting on anything.
    pub(crate) fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> KeyLookup {
        let now = self.clock.instant_now();
        let (set, due, retry_after_secs) = {
            let state = self.read();
            let retry = state
                .next_attempt
                .saturating_duration_since(now)
                .as_secs()
                .clamp(1, 60);
            (
                Self::usable_set(&state, now),
                now >= state.next_attempt,
                retry,
            )
        };
        if due {
            // Refresh before expiry, in the background: this request goes on with what we have.
            self.poke.notify_one();
        }
        let Some(set) = set else {
            return KeyLookup::Unavailable { retry_after_secs };
        };
        match set.find(kid, alg) {
            Lookup::Found(key) => KeyLookup::Found(key),
            Lookup::WrongAlg => KeyLookup::WrongAlg,
            Lookup::Ambiguous => KeyLookup::Ambiguous,
            Lookup::Missing => KeyLookup::Missing,
        }
    }

    /// On-demand refetch for an unknown kid or an issuer without keys. `seen` is
    /// [`IssuerCache::fetches_started`] read before the failed lookup: if a fetch started after
    /// that and has finished by the time we hold the lock, we share its result instead of
    /// fetching again. Otherwise we fetch unless one on-demand fetch happened in the last 30 s.
    pub(crate) async fn refetch_on_demand(&self, seen: u64) {
        let _flight = self.fetch_lock.lock().await;
        if self.fetches_started() > seen {
            return;
        }
        let now = self.clock.instant_now();
        {
            let mut state = self.write();
            if state
                .last_on_demand
                .is_some_and(|at| now < at + REFETCH_COOLDOWN)
            {
                return;
            }
            state.last_on_demand = Some(now);
        }
        let _ = self.fetch_locked().await;
    }

    /// Fetches now (taking the single-flight lock). Used at start-up and by tests.
    pub(crate) async fn refresh(&self) -> Result<(), FetchError> {
        let _flight = self.fetch_lock.lock().await;
        self.fetch_locked().await
    }

    /// Discovery if needed, then the JWKS. The caller holds `fetch_lock`.
    async fn fetch_locked(&self) -> Result<(), FetchError> {
        self.fetches_started.fetch_add(1, Ordering::AcqRel);
        let result = self.fetch_inner().await;
        let now = self.clock.instant_now();
        let mut state = self.write();
        match &result {
            Ok((set, max_age)) => {
                let ttl = max_age.map_or(DEFAULT_TTL, |age| age.clamp(MIN_TTL, MAX_TTL));
                tracing::debug!(issuer = %self.issuer, keys = set.keys.len(), ttl_secs = ttl.as_secs(), "JWKS refreshed");
                state.keys = Some(set.clone());
                state.fetched_at = Some(now);
                state.ttl = ttl;
                state.failures = 0;
                state.next_attempt = now + ttl.mul_f32(0.8);
            }
            Err(error) => {
                state.failures = state.failures.saturating_add(1);
                let backoff = BACKOFF_MIN
                    .saturating_mul(1 << state.failures.min(7).saturating_sub(1))
                    .min(BACKOFF_MAX);
                state.next_attempt = now + backoff;
                let keeping = Self::usable_set(&state, now).is_some();
                tracing::warn!(
                    issuer = %self.issuer, %error, keeping_previous_keys = keeping, retry_in_secs = backoff.as_secs(),
                    "JWKS fetch failed"
                );
            }
        }
        result.map(|_| ())
    }

    async fn fetch_inner(&self) -> Result<(Arc<KeySet>, Option<Duration>), FetchError> {
        let known_uri = self.read().jwks_uri.clone();
        let jwks_uri = match known_uri {
            Some(uri) => uri,
            None => match fetch::discover(&self.client, &self.issuer, self.allow_http).await {
                Ok(uri) => {
                    self.counters.discovery_ok.fetch_add(1, Ordering::Relaxed);
                    self.write().jwks_uri = Some(uri.clone());
                    uri
                }
                Err(error) => {
                    self.counters
                        .discovery_failed
                        .fetch_add(1, Ordering::Relaxed);
                    if let FetchError::IssuerMismatch { discovered } = &error {
                        tracing::error!(issuer = %self.issuer, discovered, "OIDC discovery names another issuer");
                    }
                    return Err(error);
                }
            },
        };
        let outcome = self.fetch_jwks(&jwks_uri).await;
        let counter = if outcome.is_ok() {
            &self.counters.jwks_ok
        } else {
            &self.counters.jwks_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if matches!(outcome, Err(FetchError::Status(404))) && self.jwks_override.is_none() {
            // The IdP moved its keys: discover again next time.
            self.write().jwks_uri = None;
        }
        outcome
    }

    async fn fetch_jwks(&self, uri: &str) -> Result<(Arc<KeySet>, Option<Duration>), FetchError> {
        let fetched = fetch::get_capped(&self.client, uri).await?;
        let set = keys::parse_jwks(&fetched.body, &self.spec).map_err(FetchError::BadDocument)?;
        if set.keys.is_empty() {
            return Err(FetchError::BadDocument("no usable signing key".into()));
        }
        Ok((Arc::new(set), fetched.max_age))
    }

    /// The background refresher: sleeps until the next attempt is due (or a lookup pokes it),
    /// then fetches. Ends when `cancel` fires.
    pub(crate) async fn run_background(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            let wait = self
                .read()
                .next_attempt
                .saturating_duration_since(self.clock.instant_now());
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
                () = self.poke.notified() => {}
            }
            if !self.is_due() {
                continue;
            }
            let _flight = tokio::select! {
                () = cancel.cancelled() => return,
                guard = self.fetch_lock.lock() => guard,
            };
            // Someone else may have fetched while we waited for the lock.
            if self.is_due() {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = self.fetch_locked() => {}
                }
            }
        }
    }

    fn is_due(&self) -> bool {
        self.clock.instant_now() >= self.read().next_attempt
    }

    pub(crate) fn is_usable(&self) -> bool {
        Self::usable_set(&self.read(), self.clock.instant_now()).is_some()
    }

    pub(crate) fn stats(&self) -> IssuerStats {
        let now = self.clock.instant_now();
        let set = Self::usable_set(&self.read(), now);
        IssuerStats {
            issuer: self.issuer.clone(),
            jwks_fetches_ok: self.counters.jwks_ok.load(Ordering::Relaxed),
            jwks_fetches_failed: self.counters.jwks_failed.load(Ordering::Relaxed),
            discovery_ok: self.counters.discovery_ok.load(Ordering::Relaxed),
            discovery_failed: self.counters.discovery_failed.load(Ordering::Relaxed),
            keys: set.as_ref().map_or(0, |s| s.keys.len()),
            usable: set.is_some(),
            ttl_secs: self.read().ttl.as_secs(),
        }
    }
}
