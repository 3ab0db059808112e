//! A bounded cache of verified tokens, so a client that sends the same token on every request
//! pays for one signature check, not one per request.
//!
//! Keyed by the SHA-256 of the whole token (never a prefix). An entry is used only while the
//! token is still within `exp + leeway` and while the issuer's current key set still holds the
//! very key that verified it: a key removed or replaced by a JWKS refresh, or an issuer whose
//! keys went stale, sends the token through full verification again (and its refusal). The
//! allow/deny lists and required scopes are static configuration, checked before insertion.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jsonwebtoken::Algorithm;

use crate::credential::CredentialSource;
use crate::keys::VerifyKey;
use crate::principal::Principal;

/// Most entries kept (a principal with its claims is about 1–2 KiB).
const CAPACITY: usize = 4_096;

/// The SHA-256 of a token.
pub(crate) type Digest = [u8; 32];

struct Entry {
    principal: Arc<Principal>,
    kid: Option<String>,
    alg: Algorithm,
    key: Arc<VerifyKey>,
    /// Unix seconds after which the token is expired even with leeway.
    valid_until: i64,
}

/// Looks up an issuer's current key for `(issuer, kid, alg)`.
pub(crate) type CurrentKey<'a> =
    &'a dyn Fn(&str, Option<&str>, Algorithm) -> Option<Arc<VerifyKey>>;

/// What a hit needs to confirm the entry is still good.
pub(crate) struct Probe<'a> {
    pub now: i64,
    pub current_key: CurrentKey<'a>,
}

#[derive(Default)]
pub(crate) struct VerifiedCache {
    entries: Mutex<HashMap<Digest, Entry>>,
    hits: AtomicU64,
}

impl VerifiedCache {
    /// The cached principal for `digest`, with this request's credential source.
    pub(crate) fn get(
        &self,
        digest: &Digest,
        source: CredentialSource,
        probe: &Probe<'_>,
    ) -> Option<Arc<Principal>> {
        let mut entries = self.lock();
        let entry = entries.get(digest)?;
        let still_good = probe.now < entry.valid_until
            && (probe.current_key)(&entry.principal.issuer, entry.kid.as_deref(), entry.alg)
                .is_some_and(|key| Arc::ptr_eq(&key, &entry.key));
        if !still_good {
            entries.remove(digest);
            return None;
        }
        // Shared when the token arrives the way it did before (the usual case); a copy with
        // this request's source otherwise.
        let principal = if entry.principal.credential_source == source {
            entry.principal.clone()
        } else {
            let mut principal = Principal::clone(&entry.principal);
            principal.credential_source = source;
            Arc::new(principal)
        };
        drop(entries);
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(principal)
    }

    /// Remembers a token that passed every check.
    pub(crate) fn insert(
        &self,
        digest: Digest,
        principal: &Arc<Principal>,
        kid: Option<String>,
        key: Arc<VerifyKey>,
        valid_until: i64,
        now: i64,
    ) {
        let mut entries = self.lock();
        if entries.len() >= CAPACITY && !entries.contains_key(&digest) {
            entries.retain(|_, e| now < e.valid_until);
            if entries.len() >= CAPACITY {
                // Bounded above all: start over rather than grow.
                entries.clear();
            }
        }
        let alg = key.alg;
        entries.insert(
            digest,
            Entry {
                principal: principal.clone(),
                kid,
                alg,
                key,
                valid_until,
            },
        );
    }

    /// Requests answered from the cache so far.
    pub(crate) fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
