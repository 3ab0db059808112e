//! Per-principal limits: a token bucket on new runs and a cap on concurrent streams, checked
//! before any stream starts (429 with `Retry-After` when over).
//!
//! Per replica (in memory, [`Limiter::local`]) by default; cluster-wide with Redis
//! ([`Limiter::redis`], `AGUI_REDIS_URL`), where stream slots are leases with a TTL refreshed
//! while the stream lives, so a replica killed with `kill -9` frees its slots when its leases
//! expire.
//!
//! # Layout
//!
//! - this file: [`Limiter`], [`StreamPermit`], [`LimitError`].
//! - [`policy`]: [`LimitsPolicy`] (serde config) and the per-role resolution.
//! - [`local`]: the in-memory backend.
//! - [`redis`]: the Redis backend (Lua scripts, leases).

pub mod local;
pub mod policy;
pub mod redis;

use std::sync::Arc;

pub use self::redis::RedisLimitOptions;
pub use policy::{EffectiveLimits, LimitsPolicy, RoleLimits};

/// Which limit was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// The token bucket on new runs is empty.
    RunRate,
    /// The principal already has its maximum of open streams.
    ConcurrentStreams,
}

impl LimitKind {
    /// The error code for the JSON body (`rate_limited` / `too_many_streams`).
    pub fn code(self) -> &'static str {
        match self {
            Self::RunRate => "rate_limited",
            Self::ConcurrentStreams => "too_many_streams",
        }
    }
}

/// A limit was hit: answer 429 with `Retry-After: retry_after_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{} (retry after {retry_after_secs} s)", .kind.code())]
pub struct LimitExceeded {
    /// Which limit.
    pub kind: LimitKind,
    /// Seconds until a retry can succeed (at least 1).
    pub retry_after_secs: u64,
}

/// Why [`Limiter::acquire`] refused.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// Over a limit: 429.
    #[error(transparent)]
    Exceeded(#[from] LimitExceeded),
    /// The shared limiter (Redis) is unreachable: 503, limits are not skipped.
    #[error("limiter unavailable: {0}")]
    Unavailable(String),
}

/// Per-principal run limits, per replica or cluster-wide. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Limiter {
    backend: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    Local(Arc<local::LocalLimiter>),
    Redis(Arc<redis::RedisLimiter>),
}

impl Limiter {
    /// An in-memory limiter for this replica.
    pub fn local(policy: LimitsPolicy) -> Self {
        Self {
            backend: Backend::Local(Arc::new(local::LocalLimiter::new(policy))),
        }
    }

    /// A cluster-wide limiter sharing state through Redis at `url`.
    ///
    /// # Errors
    ///
    /// [`LimitError::Unavailable`] when Redis cannot be reached.
    pub async fn redis(
        policy: LimitsPolicy,
        url: &str,
        options: RedisLimitOptions,
    ) -> Result<Self, LimitError> {
        let limiter = redis::RedisLimiter::connect(policy, url, options).await?;
        Ok(Self {
            backend: Backend::Redis(Arc::new(limiter)),
        })
    }

    /// Takes a run token and a stream slot for `principal`. Keep the permit for the life of
    /// the stream; dropping it frees the slot.
    ///
    /// # Errors
    ///
    /// [`LimitError::Exceeded`] (429 + `Retry-After`) or [`LimitError::Unavailable`] (503).
    pub async fn acquire(
        &self,
        principal: &agui_auth::Principal,
    ) -> Result<StreamPermit, LimitError> {
        let key = principal_key(&principal.issuer, &principal.subject);
        self.acquire_key(&key, &principal.roles).await
    }

    /// [`Limiter::acquire`] for an explicit key (see [`principal_key`]) and roles.
    ///
    /// # Errors
    ///
    /// As [`Limiter::acquire`].
    pub async fn acquire_key(
        &self,
        key: &str,
        roles: &[String],
    ) -> Result<StreamPermit, LimitError> {
        match &self.backend {
            Backend::Local(limiter) => limiter.acquire(key, roles).map_err(LimitError::from),
            Backend::Redis(limiter) => limiter.acquire(key, roles).await,
        }
    }

    /// `"local"` or `"redis"`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Local(_) => "local",
            Backend::Redis(_) => "redis",
        }
    }
}

/// The limiter key of a principal: a hash of issuer and subject (short, and no user id in
/// Redis key names).
pub fn principal_key(issuer: &str, subject: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(issuer.as_bytes());
    hash.update([0]);
    hash.update(subject.as_bytes());
    // One allocation: the key is built on every run, and a `format!` per byte was 16 more.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut key = String::with_capacity(32);
    for b in &hash.finalize()[..16] {
        key.push(char::from(HEX[usize::from(b >> 4)]));
        key.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    key
}

/// A stream slot. Dropping it releases the slot (in memory at once; in Redis by a spawned
/// `ZREM`, and in any case when its lease expires).
#[derive(Debug)]
pub struct StreamPermit {
    inner: PermitInner,
}

#[derive(Debug)]
enum PermitInner {
    /// No concurrency cap applies.
    Unlimited,
    Local(local::LocalSlot),
    Redis(redis::Lease),
}

impl StreamPermit {
    pub(crate) fn unlimited() -> Self {
        Self {
            inner: PermitInner::Unlimited,
        }
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        match &mut self.inner {
            PermitInner::Unlimited => {}
            PermitInner::Local(slot) => slot.release(),
            PermitInner::Redis(lease) => lease.release(),
        }
    }
}

#[cfg(test)]
mod key_tests {
    use super::principal_key;

    #[test]
    fn the_principal_key_is_the_hex_of_the_first_16_bytes_of_the_hash() {
        use sha2::{Digest, Sha256};
        // Keys live in Redis across restarts and versions: the encoding must not change.
        let reference = |issuer: &str, subject: &str| -> String {
            let mut hash = Sha256::new();
            hash.update(issuer.as_bytes());
            hash.update([0]);
            hash.update(subject.as_bytes());
            hash.finalize()[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        for (issuer, subject) in [("https://idp", "alice"), ("", ""), ("i", "s\u{e9}")] {
            let key = principal_key(issuer, subject);
            assert_eq!(key, reference(issuer, subject));
            assert_eq!(key.len(), 32);
        }
        assert_ne!(principal_key("a", "bc"), principal_key("ab", "c"));
    }
}
