//! Request authentication, for every route: who is calling ([`Caller`]), verifying a credential
//! ([`verify`]), recording a refusal ([`record_failure`], [`denial`]) and the extractor of the
//! verified principal ([`Authenticated`]) that header-only routes (`/whoami`, `/threads`, the
//! runtime's GET routes) take as an argument.
//!
//! Everything here answers with RFC 6750 errors (DESIGN "Errors"); the reason a credential was
//! refused goes to logs, metrics and the audit log, never to the client, and a token only ever
//! as its fingerprint.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use agui_auth::{AuthError, CredentialSource, Principal};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{AuditRecord, AuthFailureKey, PrincipalKey};

/// Who is calling, as far as the connection tells before authentication.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller {
    /// The client address: the peer, or `X-Forwarded-For` behind a trusted proxy.
    pub(crate) addr: IpAddr,
}

impl Caller {
    pub(crate) fn of(state: &AppState, parts: &Parts) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
        Self {
            addr: crate::client_addr::client_addr(peer, &parts.headers, &state.trusted_proxies),
        }
    }
}

/// A credential from the `Authorization` header, verified before anything else of the request
/// is read. `Ok(None)` when there is no header; a malformed one is refused (400).
pub(crate) async fn verify_header(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
) -> Result<Option<HeaderPrincipal>, ApiError> {
    let credential = agui_auth::credential_from_headers(headers)
        .inspect_err(|error| record_failure(state, caller, error, None))?;
    match credential {
        Some((token, source)) => {
            let principal = verify(state, caller, &token, source).await?;
            Ok(Some(HeaderPrincipal { principal, token }))
        }
        None => Ok(None),
    }
}

/// A principal verified from the `Authorization` header, with the token it came from (a body
/// copy of the credential must be the same token).
pub(crate) struct HeaderPrincipal {
    pub(crate) principal: Arc<Principal>,
    pub(crate) token: String,
}

/// Verifies a token and counts the outcome; a refusal is recorded.
pub(crate) async fn verify(
    state: &AppState,
    caller: &Caller,
    token: &str,
    source: CredentialSource,
) -> Result<Arc<Principal>, ApiError> {
    match state.auth.authenticate(token, source).await {
        Ok(principal) => {
            state.metrics.authenticated(source.as_str());
            Ok(principal)
        }
        Err(error) => {
            record_failure(state, caller, &error, Some(token));
            Err(error.into())
        }
    }
}

/// No credential at all: recorded like any refusal, answered with a bare challenge.
pub(crate) fn missing(state: &AppState, caller: &Caller) -> ApiError {
    let error = AuthError::MissingCredentials;
    record_failure(state, caller, &error, None);
    error.into()
}

/// Logs, counts and audits a refused credential: the reason goes here, never to the client; the
/// token only as its fingerprint.
///
/// A 403 (scope, allowlist) comes after the signature was verified, so its subject is the
/// caller's own and it gets its own `access_denied` record. Anything else is aggregated per
/// source, reason and issuer (so floods cannot fill the disk).
pub(crate) fn record_failure(
    state: &AppState,
    caller: &Caller,
    error: &AuthError,
    token: Option<&str>,
) {
    state.metrics.auth_failure(error.reason());
    let fingerprint = token.map(agui_auth::token_fingerprint);
    tracing::info!(
        reason = error.reason(),
        status = error.status().as_u16(),
        client = %caller.addr,
        token_fp = fingerprint.as_deref().unwrap_or("-"),
        "credential refused"
    );
    let claims =
        token.and_then(|t| agui_auth::unverified_claims(t, state.config.auth.max_token_bytes));
    let claimed = |name: &str| claims.as_ref()?.get(name)?.as_str().map(str::to_owned);
    // Only an issuer we trust is worth storing: anything else an attacker wrote there is noise.
    let issuer =
        claimed("iss").filter(|iss| state.config.auth.issuers.iter().any(|i| &i.issuer == iss));
    let reason = match error {
        AuthError::InsufficientScope { .. } => Some("scope"),
        AuthError::AccessDenied => Some("allowlist"),
        _ => None,
    };
    if let (Some(reason), Some(connected), Some(issuer)) =
        (reason, state.backends.connected(), issuer.clone())
    {
        let key = PrincipalKey::new(issuer, claimed("sub").unwrap_or_default());
        let scope = match error {
            AuthError::InsufficientScope { scope } => Some(scope.as_str()),
            _ => None,
        };
        connected.log.record(AuditRecord::denial(
            &key,
            reason,
            fingerprint.as_deref(),
            json!({ "scope": scope }),
        ));
        return;
    }
    state.backends.auth_failure(
        AuthFailureKey {
            source: caller.addr,
            reason: error.reason().to_owned(),
            issuer,
        },
        fingerprint.as_deref(),
    );
}

/// The verified principal of a request that carries its credential in the `Authorization`
/// header: the argument of every route that needs to know who calls and has no body to carry a
/// token (a GET). Without a credential: 401 with a bare challenge.
#[derive(Debug, Clone)]
pub(crate) struct Authenticated(pub(crate) Arc<Principal>);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::of(state, parts);
        match verify_header(state, &caller, &parts.headers).await? {
            Some(found) => Ok(Self(found.principal)),
            None => Err(missing(state, &caller)),
        }
    }
}
