//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use agui_auth::testing::{ManualClock, TestIdp};
use agui_auth::{
    AuthConfig, AuthError, Authenticator, CredentialSource, InvalidTokenReason, Principal,
};
use http::StatusCode;

/// The exact challenge of every token failure.
pub const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer realm="agui", error="invalid_token", error_description="The access token is invalid""#;

/// A provider plus an authenticator trusting it, on a manual clock.
pub async fn setup() -> (TestIdp, Authenticator, Arc<ManualClock>) {
    let idp = TestIdp::start().await;
    let (auth, clock) = start(&idp, idp.auth_config()).await;
    (idp, auth, clock)
}

pub async fn start(idp: &TestIdp, config: AuthConfig) -> (Authenticator, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let auth = idp.authenticator(config, clock.clone()).await;
    (auth, clock)
}

pub async fn check(auth: &Authenticator, token: &str) -> Result<Principal, AuthError> {
    auth.authenticate(token, CredentialSource::Header)
        .await
        .map(Arc::unwrap_or_clone)
}

/// Asserts the variant, the reason, 401 and the exact challenge.
#[track_caller]
pub fn assert_invalid(result: Result<Principal, AuthError>, reason: InvalidTokenReason) {
    let error = result.expect_err("token must be refused");
    assert_eq!(error, AuthError::InvalidToken { reason }, "wrong refusal");
    assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        error.www_authenticate().unwrap().to_str().unwrap(),
        INVALID_TOKEN_CHALLENGE
    );
}

/// Asserts acceptance and returns the principal.
#[track_caller]
pub fn assert_accepted(result: Result<Principal, AuthError>) -> Principal {
    match result {
        Ok(p) => p,
        Err(e) => panic!("positive control refused: {e:?} ({})", e.reason()),
    }
}

/// Asserts a 503 without challenge and with a Retry-After.
#[track_caller]
pub fn assert_unavailable(result: Result<Principal, AuthError>) {
    let error = result.expect_err("token must be refused");
    assert!(
        matches!(error, AuthError::IssuerUnavailable { .. }),
        "got {error:?}"
    );
    assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(error.www_authenticate().is_none());
    assert!((1..=60).contains(&error.retry_after().unwrap()));
}
