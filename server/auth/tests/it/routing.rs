//! A token only ever reaches the verifier its shape selects: a JWT is never sent to GitHub or
//! to an introspection endpoint, a GitHub token never to an introspection endpoint, and garbage
//! costs no network call at all (every upstream's hit counter proves it).

use std::sync::Arc;

use agui_auth::testing::{GitHubStandIn, ManualClock, TestIdp};
use agui_auth::{AuthConfig, Authenticator, CredentialSource, InvalidTokenReason as R, Verifier};
use serde_json::json;

use crate::common::{assert_accepted, assert_invalid};

struct World {
    idp: TestIdp,
    gh: GitHubStandIn,
    auth: Authenticator,
}

/// Every verifier at once: a JWT issuer with introspection, GitHub, one API key.
async fn world(prefix: Option<&str>) -> World {
    let idp = TestIdp::start().await;
    let gh = GitHubStandIn::start().await;
    let mut introspection = idp.introspection_config();
    introspection.token_prefix = prefix.map(String::from);
    let key = agui_auth::api_keys::generate();
    let config = AuthConfig {
        issuers: vec![idp.issuer_config()],
        github: Some(gh.github_config()),
        introspection: vec![introspection],
        api_keys: vec![agui_auth::ApiKeyConfig {
            hash: key.hash,
            subject: "svc".into(),
            name: None,
            roles: vec![],
            scopes: vec![],
            expires: None,
        }],
        ..AuthConfig::default()
    };
    let auth = Authenticator::start_with_clock(config, Arc::new(ManualClock::new()))
        .await
        .expect("every verifier together starts");
    World { idp, gh, auth }
}

async fn check(
    auth: &Authenticator,
    token: &str,
) -> Result<agui_auth::Principal, agui_auth::AuthError> {
    auth.authenticate(token, CredentialSource::Header)
        .await
        .map(Arc::unwrap_or_clone)
}

#[tokio::test]
async fn a_jwt_is_never_sent_to_github_or_to_introspection() {
    let w = world(None).await;
    let good = w.idp.mint("alice");
    assert_eq!(
        assert_accepted(check(&w.auth, &good).await).verifier,
        Verifier::Jwt
    );
    // Refused JWTs (bad signature, unknown issuer) do not fall through to another verifier.
    let mut tampered = good.clone();
    tampered.pop();
    tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
    assert!(check(&w.auth, &tampered).await.is_err());
    let mut claims = w.idp.claims("alice");
    claims["iss"] = json!("https://unknown.example");
    assert_invalid(
        check(&w.auth, &w.idp.sign("rsa-1", &claims)).await,
        R::UnknownIssuer,
    );
    assert_eq!(w.gh.hits().total(), 0, "GitHub never saw a JWT");
    assert_eq!(
        w.idp.introspection_hits(),
        0,
        "introspection never saw a JWT"
    );
}

#[tokio::test]
async fn a_github_token_is_never_sent_to_introspection() {
    let w = world(None).await;
    let ours =
        w.gh.mint_token(GitHubStandIn::CLIENT_ID, "octocat", &["read:user"]);
    assert_eq!(
        assert_accepted(check(&w.auth, &ours).await).verifier,
        Verifier::Github
    );
    let other =
        w.gh.mint_token(GitHubStandIn::OTHER_CLIENT_ID, "octocat", &["read:user"]);
    assert_invalid(check(&w.auth, &other).await, R::GitHubNotOurApp);
    for local in [
        w.gh.mint_pat("octocat"),
        format!("ghr_{}", "a".repeat(36)),
        "gho_short".into(),
    ] {
        assert!(check(&w.auth, &local).await.is_err());
    }
    assert_eq!(
        w.gh.hits().check_token,
        2,
        "only the two app tokens were checked"
    );
    assert_eq!(w.idp.introspection_hits(), 0);
}

#[tokio::test]
async fn garbage_costs_no_network_call() {
    // With a prefixed introspection issuer, an opaque value without the prefix goes nowhere.
    let w = world(Some("opq_")).await;
    let jwks_before = w.idp.jwks_hits();
    let garbage = [
        "garbage",
        "not-a-jwt-but-long-enough-to-look-like-a-token",
        "a.b",
        "a.b.c.d.e",
        "gho_",
        "gho_!!",
        "ghp_0123456789abcdef0123456789abcdef0123",
        "agui_",
        "agui_definitely-not-a-key",
        "opq_x",
    ];
    for token in garbage {
        assert!(check(&w.auth, token).await.is_err(), "{token} was accepted");
    }
    assert_eq!(w.gh.hits().total(), 0);
    assert_eq!(w.idp.introspection_hits(), 0);
    assert_eq!(w.idp.jwks_hits(), jwks_before, "not even a JWKS refetch");
    // Positive control: a prefixed opaque token does reach introspection.
    let token = format!("opq_{}", "z".repeat(30));
    w.idp
        .register_opaque(&token, w.idp.introspection_answer("alice", now()));
    assert_eq!(
        assert_accepted(check(&w.auth, &token).await).verifier,
        Verifier::Introspection
    );
    assert_eq!(w.idp.introspection_hits(), 1);

    // The catch-all issuer still gets no short garbage.
    let w = world(None).await;
    for token in ["garbage", "short-value", "a.b"] {
        assert!(check(&w.auth, token).await.is_err());
    }
    assert_eq!(
        w.idp.introspection_hits(),
        0,
        "shorter than 16 bytes: no call"
    );
}

#[tokio::test]
async fn without_the_matching_verifier_a_shape_is_refused_locally() {
    let idp = TestIdp::start().await;
    let auth = idp
        .authenticator(idp.auth_config(), Arc::new(ManualClock::new()))
        .await;
    let gh = GitHubStandIn::start().await;
    let gho = gh.mint_token(GitHubStandIn::CLIENT_ID, "octocat", &[]);
    assert_invalid(check(&auth, &gho).await, R::NoVerifier);
    assert_invalid(
        check(&auth, agui_auth::api_keys::generate().key.expose()).await,
        R::NoVerifier,
    );
    assert_invalid(
        check(&auth, "an-opaque-token-of-some-issuer").await,
        R::Malformed,
    );
    assert_eq!(gh.hits().total(), 0);
    assert_eq!(idp.introspection_hits(), 0);
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
