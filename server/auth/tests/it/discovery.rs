//! OIDC discovery at start-up: a discovery document that names another issuer, or a `jwks_uri`
//! on plain http off loopback, stops start-up with a clear message; each with its control.

use std::sync::Arc;

use agui_auth::testing::{ManualClock, TestIdp};
use agui_auth::{Authenticator, ConfigError};

async fn start(idp: &TestIdp) -> Result<Authenticator, ConfigError> {
    Authenticator::start_with_clock(idp.auth_config(), Arc::new(ManualClock::new())).await
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_stops_start_up() {
    let idp = TestIdp::start().await;
    // Control: the provider's own discovery document is accepted.
    assert!(start(&idp).await.is_ok());

    let configured = idp.issuer_url();
    let discovered = format!("{configured}/");
    idp.set_discovery_issuer(Some(discovered.clone()));
    let error = start(&idp).await.expect_err("start-up must stop");
    assert_eq!(
        error,
        ConfigError::IssuerMismatch {
            configured: configured.clone(),
            discovered: discovered.clone(),
        }
    );
    let message = error.to_string();
    assert!(
        message.contains(&configured) && message.contains(&discovered),
        "{message}"
    );
    assert!(message.contains("trailing slash"), "{message}");
}

#[tokio::test]
async fn a_discovered_plain_http_jwks_uri_off_loopback_stops_start_up() {
    let idp = TestIdp::start().await;
    idp.set_discovery_jwks_uri(Some("http://keys.example.com/jwks".into()));
    let error = start(&idp).await.expect_err("start-up must stop");
    let message = error.to_string();
    assert!(
        matches!(&error, ConfigError::Issuer { issuer, .. } if *issuer == idp.issuer_url()),
        "{error:?}"
    );
    assert!(
        message.contains("http://keys.example.com/jwks") && message.contains("allow_http"),
        "{message}"
    );
    assert_eq!(
        idp.jwks_hits(),
        0,
        "nothing was fetched from the refused URL"
    );

    // Control: the same URL over https passes the check (and then fails only to connect, which
    // is an outage the server rides out, not a configuration error).
    idp.set_discovery_jwks_uri(Some("https://127.0.0.1:9/jwks".into()));
    let auth = start(&idp).await.expect("https jwks_uri is accepted");
    assert!(!auth.is_ready(), "unreachable keys: not ready");
}
