//! API keys: a generated key is accepted, a wrong, expired or removed one is not, and a bad
//! replacement table leaves the old one in place.

use std::sync::Arc;
use std::time::Duration;

use agui_auth::testing::ManualClock;
use agui_auth::{
    API_KEY_ISSUER, ApiKeyConfig, AuthConfig, Authenticator, CredentialSource,
    InvalidTokenReason as R, KeyHash, Verifier,
};

use crate::common::{assert_accepted, assert_invalid};

fn entry(hash: &KeyHash, expires: Option<String>) -> ApiKeyConfig {
    ApiKeyConfig {
        hash: hash.clone(),
        subject: "reports-bot".into(),
        name: Some("nightly reports".into()),
        roles: vec!["reports".into()],
        scopes: vec![],
        expires,
    }
}

async fn start(keys: Vec<ApiKeyConfig>) -> (Authenticator, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let config = AuthConfig {
        api_keys: keys,
        ..AuthConfig::default()
    };
    let auth = Authenticator::start_with_clock(config, clock.clone())
        .await
        .expect("an API-key-only config starts");
    (auth, clock)
}

async fn check(
    auth: &Authenticator,
    key: &str,
) -> Result<agui_auth::Principal, agui_auth::AuthError> {
    auth.authenticate(key, CredentialSource::Header)
        .await
        .map(Arc::unwrap_or_clone)
}

#[tokio::test]
async fn a_new_key_is_accepted_and_a_wrong_one_is_not() {
    let new = agui_auth::api_keys::generate();
    let (auth, _) = start(vec![entry(&new.hash, None)]).await;
    let p = assert_accepted(check(&auth, new.key.expose()).await);
    assert_eq!(
        (p.issuer.as_str(), p.subject.as_str()),
        (API_KEY_ISSUER, "reports-bot")
    );
    assert_eq!(p.verifier, Verifier::ApiKey);
    assert_eq!(p.roles, vec!["reports"]);
    assert_eq!(
        p.token_fingerprint,
        &new.hash.expose()["sha256:".len().."sha256:".len() + 12],
        "the audit fingerprint is the start of the configured hash"
    );
    let wrong = agui_auth::api_keys::generate();
    assert_invalid(check(&auth, wrong.key.expose()).await, R::UnknownApiKey);
    assert_invalid(check(&auth, "agui_not-a-key").await, R::UnknownApiKey);
    // One changed character.
    let mut flipped = new.key.expose().to_owned();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    assert_invalid(check(&auth, &flipped).await, R::UnknownApiKey);
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let new = agui_auth::api_keys::generate();
    let in_an_hour = agui_auth::rfc3339::format(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 3_600,
    );
    let (auth, clock) = start(vec![entry(&new.hash, Some(in_an_hour))]).await;
    assert_accepted(check(&auth, new.key.expose()).await);
    clock.advance(Duration::from_secs(3_601));
    assert_invalid(check(&auth, new.key.expose()).await, R::Expired);
}

#[tokio::test]
async fn a_removed_key_is_refused_after_the_table_is_replaced_and_a_bad_table_changes_nothing() {
    let kept = agui_auth::api_keys::generate();
    let removed = agui_auth::api_keys::generate();
    let (auth, _) = start(vec![entry(&kept.hash, None), entry(&removed.hash, None)]).await;
    assert_accepted(check(&auth, removed.key.expose()).await);
    // A broken table (a bad expiry) is refused and the old one stays.
    let broken = vec![entry(&kept.hash, Some("next tuesday".into()))];
    assert!(auth.replace_api_keys(&broken).is_err());
    assert_accepted(check(&auth, removed.key.expose()).await);
    assert_eq!(auth.replace_api_keys(&[entry(&kept.hash, None)]), Ok(1));
    assert_invalid(check(&auth, removed.key.expose()).await, R::UnknownApiKey);
    assert_accepted(check(&auth, kept.key.expose()).await);
    assert_eq!(auth.stats().api_keys, 1);
}
