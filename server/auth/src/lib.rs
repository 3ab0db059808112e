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
//! # Layout
//! - `config`: [`AuthConfig`], [`IssuerConfig`] and fail-closed validation.
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
//! - `idp`: the loopback discovery/JWKS server behind `dev` and `testing`.
//! - `testing` (feature `testing`): `TestIdp` with fault injection.

mod authenticator;
mod clock;
mod config;
mod credential;
pub mod dev;
mod error;
mod fetch;
mod idp;
mod jwks;
pub mod jws;
mod keys;
mod peek;
mod principal;
#[cfg(feature = "testing")]
pub mod testing;
mod validate;
mod verified;

pub use authenticator::{AuthStats, Authenticator};
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
pub use jwks::IssuerStats;
pub use peek::unverified_claims;
pub use principal::{Principal, token_fingerprint};
