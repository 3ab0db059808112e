//! `agui-auth`: verifies the bearer tokens of agui-server's callers against any OpenID Connect
//! issuer's JWKS and turns them into a [`Principal`].
//!
//! ```text
//! credential_from_headers / take_body_credential      (DESIGN flow step 2 grammar)
//!        │ token, CredentialSource
//!        ▼
//! Authenticator::authenticate
//!   size ≤ 8 KiB → three base64url segments → alg allowlist, crit, kid → iss ↦ issuer
//!   → typ policy → exp/nbf/iat/lifetime/aud/sub (no key needed yet)
//!   → key by kid from the issuer's JWKS cache (one shared, rate-limited refetch on a miss)
//!   → signature + jsonwebtoken claim checks → same checks on the verified claims
//!   → Principal (claim mapping) → deny/allow lists → required scopes
//! ```
//!
//! Every refusal is an [`AuthError`] that maps to RFC 6750 §3.1 in one place.
//!
//! Credentials that are not JWTs (DESIGN "Credentials beyond JWTs") are routed by their shape
//! before any network call, each to exactly one verifier, and every verifier yields the same
//! [`Principal`] with a [`Verifier`] saying which one accepted it:
//!
//! ```text
//! compact JWS                    → the JWKS pipeline above
//! gho_… ghu_…                    → GitHub: POST /applications/{client_id}/token (our app only)
//! ghp_… github_pat_… ghs_… ghr_… → refused locally (never issued to an app / not user tokens)
//! agui_…                         → the API-key table (SHA-256 hashes, constant-time scan)
//! anything else                  → the introspection issuer for its prefix (RFC 7662), else 401
//! ```
//!
//! # Layout
//! - `config`: [`AuthConfig`] (composing every verifier's table), [`IssuerConfig`] and
//!   fail-closed validation.
//! - `settings`: what every verifier's settings share: [`ClaimMapping`], [`AccessList`],
//!   [`ConfigError`], the URL, pointer and scope checks (a leaf module).
//! - `credential`: the token grammar of the `Authorization` header and `forwardedProps`.
//! - `error`: [`AuthError`] and its status, challenge, code and metric reason.
//! - `authenticator`: [`Authenticator`]: start-up and the verification pipeline.
//! - `validate`: the checks that need no key: the JWS shape, the header, the claims.
//! - `jwks`: the per-issuer key cache (TTL, background refresh, single-flight refetch, staleness).
//! - `keys`: JWKS entries to one-algorithm verification keys.
//! - `fetch`: outbound HTTP (discovery, JWKS), rustls, body cap, timeouts.
//! - `principal`: [`Principal`], claim mapping by JSON Pointer, allow/deny matching.
//! - `peek`: [`unverified_claims`], what a refused token claims (for audit records only).
//! - `clock`: injectable time ([`Clock`], [`SystemClock`], [`ManualClock`]).
//! - `jws`: minting tokens with generated keys (dev issuer and tests).
//! - `dev`: [`dev::DevIssuer`], the loopback issuer of `agui-server dev`.
//! - `idp`: the loopback discovery/JWKS (and test introspection) server behind `dev` and `testing`.
//! - `route`: which verifier a token goes to, from its shape; [`Verifier`].
//! - `opaque_cache`: the hash-keyed, bounded, single-flight verdict cache of GitHub and introspection.
//! - `github`: [`GitHubConfig`], the GitHub verifier, [`GitHubLogin`] ("Sign in with GitHub").
//! - `introspection`: [`IntrospectionConfig`] and the RFC 7662 verifier.
//! - `api_keys`: [`ApiKeyConfig`], key generation and the reloadable key table.
//! - `secret`: [`Secret`], a configured secret that never prints.
//! - `rfc3339`: the timestamps of API-key expiries.
//! - `verified`: the cache of verified JWTs (by the token's SHA-256, bounded).
//! - `rfc3339`: timestamps for key expiries and GitHub's `expires_at`.
//! - `testing` (feature `testing`): `TestIdp` with fault injection and introspection,
//!   `GitHubStandIn` (a local GitHub for tests).

pub mod api_keys;
mod authenticator;
mod clock;
mod config;
mod credential;
pub mod dev;
mod error;
mod fetch;
mod github;
mod idp;
mod introspection;
mod jwks;
pub mod jws;
mod keys;
mod opaque_cache;
mod peek;
mod principal;
pub mod rfc3339;
mod route;
mod secret;
mod settings;
#[cfg(feature = "testing")]
pub mod testing;
mod validate;
mod verified;

pub use api_keys::{API_KEY_ISSUER, ApiKeyConfig, KeyHash};
pub use authenticator::{AuthStats, Authenticator, OpaqueStats};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    AccessList, AuthConfig, ClaimMapping, ConfigError, IssuerConfig, TypPolicy, is_scope_token,
};
pub use credential::{
    CredentialSource, credential_from_headers, resolve_credential, take_body_credential,
};
pub use error::{
    AuthError, INVALID_TOKEN_DESCRIPTION, InvalidRequestReason, InvalidTokenReason, REALM,
    conflicting_credentials,
};
pub use github::login::{LoginError, LoginStart, PendingLogin};
pub use github::{GitHubConfig, GitHubLogin};
pub use introspection::{ClientAuthMethod, IntrospectionConfig};
pub use jwks::IssuerStats;
pub use peek::unverified_claims;
pub use principal::{Principal, token_fingerprint};
pub use route::{API_KEY_PREFIX, Verifier};
pub use secret::Secret;
