//! The one error type of this crate and its RFC 6750 §3.1 mapping.
//!
//! Every refusal the HTTP layer can produce is an [`AuthError`]; [`AuthError::status`],
//! [`AuthError::www_authenticate`], [`AuthError::code`] and [`AuthError::message`] are the only
//! place where a refusal becomes HTTP. The detailed cause ([`AuthError::reason`]) is for logs and
//! the `agui_auth_failures_total{reason}` metric only; clients always get fixed texts, so nothing an
//! attacker sent is ever echoed back (reference `jwt-jwks-oidc.md` §4 H37).

use http::{HeaderValue, StatusCode};

/// The realm of every challenge this server sends.
pub const REALM: &str = "agui";

/// The one `error_description` sent for every token failure (RFC 6750 §3.1 `invalid_token`).
pub const INVALID_TOKEN_DESCRIPTION: &str = "The access token is invalid";

/// Why a request was refused. See the table in the crate README for status, challenge and code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No credentials at all, or an `Authorization` scheme other than `Bearer`.
    ///
    /// 401 with `WWW-Authenticate: Bearer realm="agui"`: RFC 6750 §3.1 says a request without
    /// authentication information "SHOULD NOT include an error code".
    #[error("no bearer credentials")]
    MissingCredentials,
    /// The credentials are present but malformed (RFC 6750 §3.1 `invalid_request`).
    ///
    /// 400 with `WWW-Authenticate: Bearer realm="agui", error="invalid_request",
    /// error_description="<the fixed text of the reason>"`.
    #[error("malformed credentials: {}", reason.as_str())]
    InvalidRequest {
        /// What was malformed.
        reason: InvalidRequestReason,
    },
    /// The token failed verification (RFC 6750 §3.1 `invalid_token`).
    ///
    /// 401 with `WWW-Authenticate: Bearer realm="agui", error="invalid_token",
    /// error_description="The access token is invalid"` whatever the reason.
    #[error("invalid token: {}", reason.as_str())]
    InvalidToken {
        /// Why (logs and metrics only).
        reason: InvalidTokenReason,
    },
    /// A valid token without a required scope (RFC 6750 §3.1 `insufficient_scope`).
    ///
    /// 403 with `WWW-Authenticate: Bearer realm="agui", error="insufficient_scope",
    /// scope="<required scopes, space separated>"`.
    #[error("insufficient scope")]
    InsufficientScope {
        /// The scopes the resource needs, space separated (RFC 6749 §3.3 syntax; checked at start-up).
        scope: String,
    },
    /// A valid token whose principal an allow or deny list refuses.
    ///
    /// 403 **without** a `WWW-Authenticate` challenge: the credentials were fine and RFC 6750 has
    /// no error code for a policy refusal; `insufficient_scope` would wrongly tell the client that a
    /// token with more scopes would help, and any challenge invites a pointless re-authentication.
    #[error("access denied by policy")]
    AccessDenied,
    /// The party that must vouch for the token cannot answer: a JWT issuer with no usable keys
    /// (cold start, or the last good key set is older than the 24 h staleness bound), GitHub
    /// rate-limiting us, down or slow, an introspection endpoint down or slow.
    ///
    /// 503 with `Retry-After: <retry_after_secs>` and no challenge: a 401 would make clients throw
    /// away a token that may well be good (reference §7.3).
    #[error("issuer unavailable")]
    IssuerUnavailable {
        /// Seconds until it is worth trying again: 1–60 for an unreachable issuer; up to 3600
        /// when GitHub's rate-limit headers say when the limit resets.
        retry_after_secs: u64,
    },
}

/// What made a request malformed (400 `invalid_request`). Each has one fixed description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidRequestReason {
    /// More than one `Authorization` header.
    MultipleAuthorizationHeaders,
    /// `Bearer` with nothing after it, or an empty header or body token.
    EmptyToken,
    /// Control characters, non-ASCII bytes, or a token that is not `token68` (e.g. with spaces).
    MalformedCredentials,
    /// A header token and a `forwardedProps.authorization` token that differ.
    ConflictingCredentials,
    /// `forwardedProps.authorization` is present but not a string.
    BodyCredentialNotString,
}

impl InvalidRequestReason {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MultipleAuthorizationHeaders => "multiple_authorization_headers",
            Self::EmptyToken => "empty_token",
            Self::MalformedCredentials => "malformed_credentials",
            Self::ConflictingCredentials => "conflicting_credentials",
            Self::BodyCredentialNotString => "body_credential_not_string",
        }
    }

    /// The fixed `error_description` (no attacker input in it).
    pub fn description(self) -> &'static str {
        match self {
            Self::MultipleAuthorizationHeaders => "Only one Authorization header is allowed",
            Self::EmptyToken => "The bearer token is empty",
            Self::MalformedCredentials => "The credentials are malformed",
            Self::ConflictingCredentials => "The header and body credentials differ",
            Self::BodyCredentialNotString => "forwardedProps.authorization must be a string",
        }
    }
}

/// Why a token was refused (401 `invalid_token`): for logs and metrics, never for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidTokenReason {
    /// Longer than `max_token_bytes`.
    TooLarge,
    /// Not three base64url segments, bad base64, bad JSON, or a header the JOSE parser refuses.
    Malformed,
    /// `alg` missing, `none`, HS*, or outside the issuer's allowlist.
    AlgNotAllowed,
    /// A `crit` header (no extension is understood, RFC 7515 §4.1.11).
    CritHeader,
    /// `typ` outside the issuer's policy.
    BadTyp,
    /// `kid` too long, not printable, or not a string.
    BadKid,
    /// No `iss`, or `iss` not a string.
    MissingIssuer,
    /// `iss` is not exactly a configured issuer.
    UnknownIssuer,
    /// No published key has that `kid` (after the single-flight refetch).
    UnknownKid,
    /// The key for `kid` is bound to another algorithm (RFC 8725 §3.1: one key, one algorithm).
    AlgMismatch,
    /// The signature does not verify.
    BadSignature,
    /// No `exp`.
    MissingExp,
    /// `exp` is in the past beyond the leeway.
    Expired,
    /// `nbf` is in the future beyond the leeway.
    NotYetValid,
    /// `iat` is in the future beyond the leeway.
    IssuedInFuture,
    /// `exp - iat` exceeds `max_token_lifetime_secs`.
    LifetimeTooLong,
    /// No `aud`.
    MissingAudience,
    /// `aud` contains none of the issuer's accepted audiences.
    BadAudience,
    /// `sub` missing, empty or not a string.
    MissingSubject,
    /// A registered claim of the wrong JSON type (e.g. `exp` as a string).
    BadClaim,
    /// The token's shape fits no configured verifier (a GitHub token without `[auth.github]`, an
    /// API key without keys, an opaque token matching no introspection issuer's `token_prefix`).
    /// Refused without any network call. (An opaque value when no introspection issuer is
    /// configured at all is [`InvalidTokenReason::Malformed`]: it is not a JWT.)
    NoVerifier,
    /// `agui_…` that is not in the API-key table (or not shaped like a key).
    UnknownApiKey,
    /// GitHub says the token was not issued to our app (another app's token, or revoked).
    GitHubNotOurApp,
    /// A GitHub personal access token (`ghp_`, `github_pat_`): never issued to an app, so it
    /// cannot pass the app check; refused without asking GitHub.
    GitHubPersonalToken,
    /// A GitHub installation or refresh token (`ghs_`, `ghr_`): not a user access token.
    GitHubNotUserToken,
    /// The introspection endpoint says `active: false` (expired, revoked, unknown).
    Inactive,
    /// The introspection response's `token_type` says it is not an access token.
    NotAccessToken,
}

impl InvalidTokenReason {
    /// Metric label (`agui_auth_failures_total{reason}`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::Malformed => "malformed",
            Self::AlgNotAllowed => "alg_not_allowed",
            Self::CritHeader => "crit_header",
            Self::BadTyp => "bad_typ",
            Self::BadKid => "bad_kid",
            Self::MissingIssuer => "missing_issuer",
            Self::UnknownIssuer => "unknown_issuer",
            Self::UnknownKid => "unknown_kid",
            Self::AlgMismatch => "alg_mismatch",
            Self::BadSignature => "bad_signature",
            Self::MissingExp => "missing_exp",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "iat_in_future",
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::MissingAudience => "missing_audience",
            Self::BadAudience => "bad_audience",
            Self::MissingSubject => "missing_subject",
            Self::BadClaim => "bad_claim",
            Self::NoVerifier => "no_verifier",
            Self::UnknownApiKey => "unknown_api_key",
            Self::GitHubNotOurApp => "github_not_our_app",
            Self::GitHubPersonalToken => "github_personal_token",
            Self::GitHubNotUserToken => "github_not_user_token",
            Self::Inactive => "inactive",
            Self::NotAccessToken => "not_access_token",
        }
    }
}

impl From<InvalidTokenReason> for AuthError {
    fn from(reason: InvalidTokenReason) -> Self {
        AuthError::InvalidToken { reason }
    }
}

impl From<InvalidRequestReason> for AuthError {
    fn from(reason: InvalidRequestReason) -> Self {
        AuthError::InvalidRequest { reason }
    }
}

/// The error for a header token and a body token that differ (DESIGN flow step 2).
pub fn conflicting_credentials() -> AuthError {
    InvalidRequestReason::ConflictingCredentials.into()
}

impl AuthError {
    /// The HTTP status: 401, 400, 401, 403, 403, 503 in variant order.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingCredentials | Self::InvalidToken { .. } => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            Self::InsufficientScope { .. } | Self::AccessDenied => StatusCode::FORBIDDEN,
            Self::IssuerUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The exact `WWW-Authenticate` value to send, if any (RFC 6750 §3):
    ///
    /// | variant | value |
    /// |---|---|
    /// | `MissingCredentials` | `Bearer realm="agui"` |
    /// | `InvalidRequest` | `Bearer realm="agui", error="invalid_request", error_description="<fixed text>"` |
    /// | `InvalidToken` | `Bearer realm="agui", error="invalid_token", error_description="The access token is invalid"` |
    /// | `InsufficientScope` | `Bearer realm="agui", error="insufficient_scope", scope="<scopes>"` |
    /// | `AccessDenied` | none |
    /// | `IssuerUnavailable` | none (send `Retry-After` instead) |
    pub fn www_authenticate(&self) -> Option<HeaderValue> {
        let value = match self {
            Self::MissingCredentials => format!("Bearer realm=\"{REALM}\""),
            Self::InvalidRequest { reason } => format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_request\", error_description=\"{}\"",
                reason.description()
            ),
            Self::InvalidToken { .. } => format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{INVALID_TOKEN_DESCRIPTION}\""
            ),
            Self::InsufficientScope { scope } => {
                format!("Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{scope}\"")
            }
            Self::AccessDenied | Self::IssuerUnavailable { .. } => return None,
        };
        // Every part is a fixed text or a config scope validated against RFC 6749 §3.3 at start-up.
        HeaderValue::from_str(&value).ok()
    }

    /// The stable JSON `error` code (catalogued in `proto-schemas/api/`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingCredentials => "unauthorized",
            Self::InvalidRequest { .. } => "invalid_request",
            Self::InvalidToken { .. } => "invalid_token",
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::AccessDenied => "access_denied",
            Self::IssuerUnavailable { .. } => "issuer_unavailable",
        }
    }

    /// A safe, fixed message for the JSON body.
    pub fn message(&self) -> &'static str {
        match self {
            Self::MissingCredentials => "A bearer token is required.",
            Self::InvalidRequest { reason } => reason.description(),
            Self::InvalidToken { .. } => INVALID_TOKEN_DESCRIPTION,
            Self::InsufficientScope { .. } => "The access token lacks a required scope.",
            Self::AccessDenied => "Access denied.",
            Self::IssuerUnavailable { .. } => {
                "The identity provider cannot be reached; retry later."
            }
        }
    }

    /// Seconds for a `Retry-After` header (only for [`AuthError::IssuerUnavailable`]).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::IssuerUnavailable { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The metric label / log field: the detailed reason for invalid tokens and requests, the
    /// code otherwise (`missing_credentials`, `insufficient_scope`, `access_denied`,
    /// `issuer_unavailable`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingCredentials => "missing_credentials",
            Self::InvalidRequest { reason } => reason.as_str(),
            Self::InvalidToken { reason } => reason.as_str(),
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::AccessDenied => "access_denied",
            Self::IssuerUnavailable { .. } => "issuer_unavailable",
        }
    }
}

impl AuthError {
    /// Every value [`AuthError::code`] can return, for the server's error catalogue test.
    pub const ALL_CODES: [&'static str; 6] = [
        "unauthorized",
        "invalid_request",
        "invalid_token",
        "insufficient_scope",
        "access_denied",
        "issuer_unavailable",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(e: &AuthError) -> Option<String> {
        e.www_authenticate().map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn missing_credentials_gets_a_bare_challenge() {
        let e = AuthError::MissingCredentials;
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(header(&e).as_deref(), Some(r#"Bearer realm="agui""#));
        assert_eq!(e.code(), "unauthorized");
    }

    #[test]
    fn every_token_failure_has_the_same_challenge() {
        let a = AuthError::from(InvalidTokenReason::Expired);
        let b = AuthError::from(InvalidTokenReason::BadSignature);
        assert_eq!(header(&a), header(&b));
        assert_eq!(
            header(&a).as_deref(),
            Some(
                r#"Bearer realm="agui", error="invalid_token", error_description="The access token is invalid""#
            )
        );
        assert_eq!(a.reason(), "expired");
        assert_eq!(b.reason(), "bad_signature");
    }

    #[test]
    fn invalid_request_is_400_with_a_fixed_description() {
        let e = conflicting_credentials();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            header(&e).as_deref(),
            Some(
                r#"Bearer realm="agui", error="invalid_request", error_description="The header and body credentials differ""#
            )
        );
    }

    #[test]
    fn scope_and_policy_refusals_are_403() {
        let e = AuthError::InsufficientScope {
            scope: "chat tools".into(),
        };
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            header(&e).as_deref(),
            Some(r#"Bearer realm="agui", error="insufficient_scope", scope="chat tools""#)
        );
        assert_eq!(AuthError::AccessDenied.status(), StatusCode::FORBIDDEN);
        assert_eq!(header(&AuthError::AccessDenied), None);
    }

    #[test]
    fn issuer_unavailable_is_503_with_retry_after_and_no_challenge() {
        let e = AuthError::IssuerUnavailable {
            retry_after_secs: 7,
        };
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.retry_after(), Some(7));
        assert_eq!(header(&e), None);
        assert_eq!(e.code(), "issuer_unavailable");
    }
}
