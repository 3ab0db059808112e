//! RFC 7662 introspection against the TestIdp's endpoint (found by discovery): active, inactive,
//! the audience rule, `iss`, token types, the endpoint down, and a cache bounded by `exp`.

use std::sync::Arc;
use std::time::Duration;

use agui_auth::testing::{ManualClock, TestIdp};
use agui_auth::{
    AuthConfig, AuthError, Authenticator, CredentialSource, IntrospectionConfig,
    InvalidTokenReason as R, Principal, Verifier,
};
use serde_json::{Value, json};

use crate::common::{assert_accepted, assert_invalid};

async fn start(_idp: &TestIdp, entry: IntrospectionConfig) -> (Authenticator, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let config = AuthConfig {
        introspection: vec![entry],
        ..AuthConfig::default()
    };
    let auth = Authenticator::start_with_clock(config, clock.clone())
        .await
        .expect("an introspection-only config starts");
    (auth, clock)
}

async fn check(auth: &Authenticator, token: &str) -> Result<Principal, AuthError> {
    auth.authenticate(token, CredentialSource::Header)
        .await
        .map(Arc::unwrap_or_clone)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn answer(idp: &TestIdp, change: impl FnOnce(&mut Value)) -> Value {
    let mut a = idp.introspection_answer("alice", now());
    change(&mut a);
    a
}

#[tokio::test]
async fn an_active_token_becomes_a_principal_through_the_shared_claim_mapping() {
    let idp = TestIdp::start().await;
    let mut entry = idp.introspection_config();
    entry.claims.roles = vec!["/realm_access/roles".into()];
    let (auth, _) = start(&idp, entry).await;
    assert!(
        idp.discovery_hits() >= 1,
        "the endpoint came from discovery"
    );
    let token = idp.issue_opaque(answer(&idp, |a| {
        a["name"] = json!("Alice");
        a["realm_access"] = json!({"roles": ["analyst"]});
    }));
    let p = assert_accepted(check(&auth, &token).await);
    assert_eq!(
        (p.issuer.as_str(), p.subject.as_str()),
        (idp.issuer_url().as_str(), "alice")
    );
    assert_eq!(p.name.as_deref(), Some("Alice"));
    assert_eq!(p.roles, vec!["analyst"]);
    assert_eq!(p.scopes, vec!["chat"]);
    assert_eq!(p.verifier, Verifier::Introspection);
    assert_eq!(idp.introspection_hits(), 1);
}

#[tokio::test]
async fn inactive_unknown_and_revoked_tokens_are_invalid() {
    let idp = TestIdp::start().await;
    let (auth, _) = start(&idp, idp.introspection_config()).await;
    assert_invalid(
        check(&auth, "an-opaque-token-nobody-issued").await,
        R::Inactive,
    );
    let inactive = idp.issue_opaque(answer(&idp, |a| a["active"] = json!(false)));
    assert_invalid(check(&auth, &inactive).await, R::Inactive);
    // `active` must be the boolean true, not something truthy.
    let stringly = idp.issue_opaque(answer(&idp, |a| a["active"] = json!("true")));
    assert_invalid(check(&auth, &stringly).await, R::Inactive);
    let good = idp.issue_opaque(answer(&idp, |_| {}));
    assert_accepted(check(&auth, &good).await);
}

#[tokio::test]
async fn the_audience_rule_named_audiences_must_be_ours_and_none_needs_consent() {
    let idp = TestIdp::start().await;
    let (auth, _) = start(&idp, idp.introspection_config()).await;
    let other = idp.issue_opaque(answer(&idp, |a| a["aud"] = json!("other-api")));
    assert_invalid(check(&auth, &other).await, R::BadAudience);
    let list = idp.issue_opaque(answer(&idp, |a| a["aud"] = json!(["other-api", "agui"])));
    assert_accepted(check(&auth, &list).await);
    let empty = idp.issue_opaque(answer(&idp, |a| a["aud"] = json!([])));
    assert_invalid(check(&auth, &empty).await, R::BadAudience);
    let missing = idp.issue_opaque(answer(&idp, |a| {
        a.as_object_mut().unwrap().remove("aud");
    }));
    assert_invalid(check(&auth, &missing).await, R::MissingAudience);

    // An issuer that never names audiences: accepted only when the config says so, and even
    // then a token naming someone else's audience is not.
    let mut consent = idp.introspection_config();
    consent.audiences = Vec::new();
    consent.allow_missing_audience = true;
    let (auth, _) = start(&idp, consent).await;
    assert_accepted(check(&auth, &missing).await);
    assert_invalid(check(&auth, &other).await, R::BadAudience);
}

#[tokio::test]
async fn issuer_token_type_times_and_subject_are_checked() {
    let idp = TestIdp::start().await;
    let (auth, _) = start(&idp, idp.introspection_config()).await;
    type Spoil = fn(&mut Value);
    let cases: [(Spoil, R); 6] = [
        (
            |a| a["iss"] = json!("https://elsewhere.example"),
            R::UnknownIssuer,
        ),
        (
            |a| a["token_type"] = json!("refresh_token"),
            R::NotAccessToken,
        ),
        (|a| a["token_use"] = json!("id_token"), R::NotAccessToken),
        (|a| a["exp"] = json!(now() - 120), R::Expired),
        (|a| a["nbf"] = json!(now() + 3_600), R::NotYetValid),
        (
            |a| {
                a.as_object_mut().unwrap().remove("sub");
            },
            R::MissingSubject,
        ),
    ];
    for (spoil, reason) in cases {
        let token = idp.issue_opaque(answer(&idp, spoil));
        assert_invalid(check(&auth, &token).await, reason);
    }
    // A client-credentials token without `sub` is the client, when the config says so.
    let mut by_client = idp.introspection_config();
    by_client.subject_from_client_id = true;
    let (auth, _) = start(&idp, by_client).await;
    let token = idp.issue_opaque(answer(&idp, |a| {
        a.as_object_mut().unwrap().remove("sub");
    }));
    assert_eq!(
        assert_accepted(check(&auth, &token).await).subject,
        "some-client"
    );
}

#[tokio::test]
async fn allow_lists_and_required_scopes_are_those_of_jwt_issuers() {
    let idp = TestIdp::start().await;
    let mut entry = idp.introspection_config();
    entry.required_scopes = vec!["chat".into()];
    entry.deny.subjects = vec!["mallory".into()];
    let (auth, _) = start(&idp, entry).await;
    let mallory = idp.issue_opaque(idp.introspection_answer("mallory", now()));
    assert_eq!(
        check(&auth, &mallory).await.unwrap_err(),
        AuthError::AccessDenied
    );
    let no_scope = idp.issue_opaque(answer(&idp, |a| a["scope"] = json!("read")));
    assert_eq!(check(&auth, &no_scope).await.unwrap_err().status(), 403);
    assert_accepted(check(&auth, &idp.issue_opaque(answer(&idp, |_| {}))).await);
}

#[tokio::test]
async fn an_endpoint_that_is_down_gives_503_with_retry_after_then_recovers() {
    let idp = TestIdp::start().await;
    let (auth, _) = start(&idp, idp.introspection_config()).await;
    let token = idp.issue_opaque(answer(&idp, |_| {}));
    for status in [500, 503, 401] {
        idp.set_introspection_status(Some(status));
        let error = check(&auth, &token).await.unwrap_err();
        assert!(
            matches!(error, AuthError::IssuerUnavailable { .. }),
            "{status}: {error:?}"
        );
        assert!(error.retry_after().is_some() && error.www_authenticate().is_none());
    }
    idp.set_introspection_status(None);
    idp.set_down(true);
    assert_eq!(check(&auth, &token).await.unwrap_err().status(), 503);
    idp.set_down(false);
    assert_accepted(check(&auth, &token).await);
}

#[tokio::test]
async fn a_wrong_client_secret_is_our_outage() {
    let idp = TestIdp::start().await;
    let mut entry = idp.introspection_config();
    entry.client_secret = Some(agui_auth::Secret::new("wrong"));
    let (auth, _) = start(&idp, entry).await;
    let token = idp.issue_opaque(answer(&idp, |_| {}));
    assert_eq!(check(&auth, &token).await.unwrap_err().status(), 503);
}

#[tokio::test]
async fn the_cache_lives_until_the_earlier_of_exp_and_cache_max_secs() {
    let idp = TestIdp::start().await;
    let (auth, clock) = start(&idp, idp.introspection_config()).await;

    // exp in 20 s, cache_max 60 s: remembered 20 s.
    let short = idp.issue_opaque(answer(&idp, |a| a["exp"] = json!(now() + 20)));
    assert_accepted(check(&auth, &short).await);
    idp.revoke_opaque(&short);
    clock.advance(Duration::from_secs(10));
    assert_accepted(check(&auth, &short).await);
    assert_eq!(idp.introspection_hits(), 1, "answered from the cache");
    clock.advance(Duration::from_secs(11));
    assert_invalid(check(&auth, &short).await, R::Inactive);
    assert_eq!(idp.introspection_hits(), 2, "asked again at exp");

    // exp in 5 min, cache_max 60 s: remembered 60 s, so a revocation shows within a minute.
    let long = idp.issue_opaque(answer(&idp, |_| {}));
    assert_accepted(check(&auth, &long).await);
    idp.revoke_opaque(&long);
    clock.advance(Duration::from_secs(59));
    assert_accepted(check(&auth, &long).await);
    clock.advance(Duration::from_secs(2));
    assert_invalid(check(&auth, &long).await, R::Inactive);

    // Refusals are remembered for negative_cache_secs (30 s).
    let hits = idp.introspection_hits();
    assert_invalid(check(&auth, &long).await, R::Inactive);
    assert_eq!(idp.introspection_hits(), hits);
    clock.advance(Duration::from_secs(31));
    assert_invalid(check(&auth, &long).await, R::Inactive);
    assert_eq!(idp.introspection_hits(), hits + 1);
}

#[tokio::test]
async fn concurrent_requests_share_one_introspection() {
    let idp = TestIdp::start().await;
    let (auth, _) = start(&idp, idp.introspection_config()).await;
    let token = idp.issue_opaque(answer(&idp, |_| {}));
    idp.set_delay(Some(Duration::from_millis(200)));
    let results = futures::future::join_all((0..10).map(|_| check(&auth, &token))).await;
    idp.set_delay(None);
    for r in results {
        assert_accepted(r);
    }
    assert_eq!(idp.introspection_hits(), 1);
    let dump = auth.cache_dump();
    assert_eq!(dump.len(), 1);
    assert!(!dump[0].2.contains(&token) && !dump[0].1.contains(&token));
}

#[tokio::test]
async fn a_discovery_naming_another_issuer_stops_start_up() {
    let idp = TestIdp::start().await;
    idp.set_discovery_issuer(Some("https://impostor.example".into()));
    let config = AuthConfig {
        introspection: vec![idp.introspection_config()],
        ..AuthConfig::default()
    };
    let error = Authenticator::start(config).await.unwrap_err();
    assert!(error.to_string().contains("impostor"), "{error}");
}
