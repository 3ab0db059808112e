//! The GitHub verifier against the local GitHub stand-in (no test reaches github.com): only our
//! app's tokens pass, the principal is the numeric user id at the GitHub web root, allowlists
//! and team roles, rate limits and outages as 503, the hash-keyed cache and its bounds.

use std::sync::Arc;
use std::time::Duration;

use agui_auth::testing::{GitHubFault, GitHubStandIn, ManualClock};
use agui_auth::{
    AuthConfig, AuthError, Authenticator, CredentialSource, GitHubConfig, InvalidTokenReason as R,
    Principal, Verifier,
};
use sha2::Digest;

use crate::common::{assert_accepted, assert_invalid};

const SCOPES: &[&str] = &["read:user", "read:org"];

async fn start(github: GitHubConfig) -> (Authenticator, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let config = AuthConfig {
        github: Some(github),
        ..AuthConfig::default()
    };
    let auth = Authenticator::start_with_clock(config, clock.clone())
        .await
        .expect("a GitHub-only config starts");
    (auth, clock)
}

async fn check(auth: &Authenticator, token: &str) -> Result<Principal, AuthError> {
    auth.authenticate(token, CredentialSource::Header)
        .await
        .map(Arc::unwrap_or_clone)
}

fn with_roles(gh: &GitHubStandIn) -> GitHubConfig {
    let mut config = gh.github_config();
    config
        .roles
        .insert("admin".into(), vec!["acme/platform".into()]);
    config
}

#[tokio::test]
async fn a_token_of_our_app_is_the_github_user_with_numeric_subject_and_team_roles() {
    let gh = GitHubStandIn::start().await;
    let (auth, _) = start(with_roles(&gh)).await;
    let token = gh.mint_token(GitHubStandIn::CLIENT_ID, "octocat", SCOPES);
    let p = assert_accepted(check(&auth, &token).await);
    assert_eq!(
        p.issuer,
        gh.url(),
        "the web root (github.com, or the Enterprise host)"
    );
    assert_eq!(
        p.subject, "583231",
        "the numeric id, not the renamable login"
    );
    assert_eq!(p.name.as_deref(), Some("The Octocat"));
    assert_eq!(p.claims["login"], "octocat");
    assert_eq!(p.email.as_deref(), Some("octocat@github.test"));
    assert_eq!(p.roles, vec!["admin"], "acme/platform maps to admin");
    assert_eq!(p.scopes, vec!["read:user", "read:org"]);
    assert_eq!(p.verifier, Verifier::Github);
    assert_eq!(p.expires_at, i64::MAX, "OAuth app tokens do not expire");
    // A user outside the mapped team: no role; no profile name: the login.
    let hubot = assert_accepted(
        check(
            &auth,
            &gh.mint_token(GitHubStandIn::CLIENT_ID, "hubot", SCOPES),
        )
        .await,
    );
    assert_eq!(
        (hubot.subject.as_str(), hubot.name.as_deref()),
        ("1001", Some("hubot"))
    );
    assert!(hubot.roles.is_empty());
    // A GitHub App user token (ghu_) passes the same check.
    let expires = now() + 3_600;
    let ghu = gh.mint_app_user_token(GitHubStandIn::CLIENT_ID, "mona", SCOPES, expires);
    let mona = assert_accepted(check(&auth, &ghu).await);
    assert_eq!(mona.expires_at, expires, "GitHub App user tokens expire");
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn another_apps_token_and_personal_tokens_are_refused() {
    let gh = GitHubStandIn::start().await;
    let (auth, _) = start(gh.github_config()).await;
    let other = gh.mint_token(GitHubStandIn::OTHER_CLIENT_ID, "octocat", SCOPES);
    assert_invalid(check(&auth, &other).await, R::GitHubNotOurApp);
    assert_eq!(gh.hits().check_token, 1, "GitHub was asked once");
    // A PAT is valid at GET /user (so /user alone would have let it in) ...
    let pat = gh.mint_pat("octocat");
    let user = reqwest::Client::new()
        .get(format!("{}/user", gh.api_url()))
        .bearer_auth(&pat)
        .send()
        .await
        .unwrap();
    assert_eq!(
        user.status(),
        200,
        "the stand-in, like GitHub, answers /user for a PAT"
    );
    // ... but it is never issued to an app: refused without asking GitHub at all.
    assert_invalid(check(&auth, &pat).await, R::GitHubPersonalToken);
    let fine_grained = format!("github_pat_{}", "A1b2C3d4".repeat(10));
    assert_invalid(check(&auth, &fine_grained).await, R::GitHubPersonalToken);
    assert_invalid(
        check(&auth, &format!("ghs_{}", "x".repeat(36))).await,
        R::GitHubNotUserToken,
    );
    assert_eq!(
        gh.hits().check_token,
        1,
        "no check for a PAT or a non-user token"
    );
    // A revoked token of ours is refused too; the positive control passes.
    let ours = gh.mint_token(GitHubStandIn::CLIENT_ID, "octocat", SCOPES);
    let revoked = gh.mint_token(GitHubStandIn::CLIENT_ID, "octocat", SCOPES);
    gh.revoke(&revoked);
    assert_invalid(check(&auth, &revoked).await, R::GitHubNotOurApp);
    assert_accepted(check(&auth, &ours).await);
}

#[tokio::test]
async fn users_outside_the_allowlists_are_refused_with_403() {
    let gh = GitHubStandIn::start().await;
    let token = |login| gh.mint_token(GitHubStandIn::CLIENT_ID, login, SCOPES);
    let denied = |r: Result<Principal, AuthError>| {
        assert_eq!(r.unwrap_err(), AuthError::AccessDenied);
    };

    let mut users = gh.github_config();
    users.allowed_users = vec!["OctoCat".into()];
    let (auth, _) = start(users).await;
    assert_accepted(check(&auth, &token("octocat")).await);
    denied(check(&auth, &token("mona")).await);
    assert_eq!(
        gh.hits().user_orgs + gh.hits().user_teams,
        0,
        "a login list needs no membership call"
    );

    let mut orgs = gh.github_config();
    orgs.allowed_orgs = vec!["acme".into()];
    let (auth, _) = start(orgs).await;
    assert_accepted(check(&auth, &token("hubot")).await);
    denied(check(&auth, &token("mona")).await);
    // Without read:org the membership is invisible: not let in.
    let no_org_scope = gh.mint_token(GitHubStandIn::CLIENT_ID, "hubot", &["read:user"]);
    denied(check(&auth, &no_org_scope).await);

    let mut teams = gh.github_config();
    teams.allowed_teams = vec!["acme/reports".into()];
    let (auth, _) = start(teams).await;
    assert_accepted(check(&auth, &token("hubot")).await);
    denied(check(&auth, &token("octocat")).await);
    let refused = check(&auth, &token("mona")).await.unwrap_err();
    assert_eq!(refused.status(), 403);
    assert!(
        refused.www_authenticate().is_none(),
        "a policy refusal has no challenge"
    );
}

#[tokio::test]
async fn rate_limits_and_outages_are_503_with_retry_after_then_recover() {
    let gh = GitHubStandIn::start().await;
    let (auth, clock) = start(gh.github_config()).await;
    let token = gh.mint_token(GitHubStandIn::CLIENT_ID, "octocat", SCOPES);

    gh.set_fault(GitHubFault::ServerError);
    let error = check(&auth, &token).await.unwrap_err();
    assert!(
        matches!(error, AuthError::IssuerUnavailable { .. }),
        "{error:?}"
    );
    assert_eq!(
        (error.status().as_u16(), error.retry_after()),
        (503, Some(5))
    );
    gh.set_fault(GitHubFault::None);
    assert_accepted(check(&auth, &token).await);

    // A primary rate limit (403, x-ratelimit-remaining: 0) on the app check.
    let fresh = gh.mint_token(GitHubStandIn::CLIENT_ID, "mona", SCOPES);
    gh.set_fault(GitHubFault::RateLimited);
    let error = check(&auth, &fresh).await.unwrap_err();
    let wait = error.retry_after().unwrap();
    assert!(
        (55..=60).contains(&wait),
        "x-ratelimit-reset is 60 s ahead: {wait}"
    );
    assert!(
        error.www_authenticate().is_none(),
        "never a 401 for a token that may be good"
    );
    // The limit is honoured: no further check until the reset, even once GitHub would answer.
    gh.set_fault(GitHubFault::None);
    let hits = gh.hits().check_token;
    assert_eq!(check(&auth, &fresh).await.unwrap_err().status(), 503);
    assert_eq!(
        gh.hits().check_token,
        hits,
        "not asked again before the reset"
    );
    // A token verified before the limit keeps working from the cache.
    assert_accepted(check(&auth, &token).await);
    clock.advance(Duration::from_secs(61));
    assert_accepted(check(&auth, &fresh).await);

    // A secondary rate limit (429, retry-after).
    let another = gh.mint_token(GitHubStandIn::CLIENT_ID, "hubot", SCOPES);
    gh.set_fault(GitHubFault::SecondaryRateLimit);
    assert_eq!(
        check(&auth, &another).await.unwrap_err().retry_after(),
        Some(30)
    );
    gh.set_fault(GitHubFault::None);
    clock.advance(Duration::from_secs(31));
    assert_accepted(check(&auth, &another).await);
}

#[tokio::test]
async fn a_hanging_github_times_out_as_503() {
    let gh = GitHubStandIn::start().await;
    let (auth, _) = start(gh.github_config()).await;
    gh.set_fault(GitHubFault::Hang);
    let token = gh.mint_token(GitHubStandIn::CLIENT_ID, "octocat", SCOPES);
    let started = std::time::Instant::now();
    let error = tokio::time::timeout(Duration::from_secs(30), check(&auth, &token))
        .await
        .expect("the 5 s request timeout ends it")
        .unwrap_err();
    assert_eq!(error.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn n_requests_with_one_token_cost_one_check() {
    let gh = GitHubStandIn::start().await;
    let (auth, _) = start(with_roles(&gh)).await;
    let token = gh.mint_token(GitHubStandIn::CLIENT_ID, "octocat", SCOPES);
    let concurrent = futures::future::join_all((0..20).map(|_| check(&auth, &token))).await;
    for result in concurrent {
        assert_accepted(result);
    }
    for _ in 0..20 {
        assert_accepted(check(&auth, &token).await);
    }
    let hits = gh.hits();
    assert_eq!(
        (hits.check_token, hits.user_teams),
        (1, 1),
        "single flight, then the cache"
    );
    let stats = &auth.stats().opaque[0];
    assert_eq!((stats.upstream_checks, stats.cache_hits), (1, 20));
    // Another request source gets the same principal with its own source.
    let body = auth
        .authenticate(&token, CredentialSource::Body)
        .await
        .unwrap();
    assert_eq!(body.credential_source, CredentialSource::Body);
}

#[tokio::test]
async fn refused_tokens_are_remembered_for_the_negative_ttl_and_accepted_ones_for_the_ttl() {
    let gh = GitHubStandIn::start().await;
    let (auth, clock) = start(gh.github_config()).await;
    let other = gh.mint_token(GitHubStandIn::OTHER_CLIENT_ID, "octocat", SCOPES);
    assert_invalid(check(&auth, &other).await, R::GitHubNotOurApp);
    assert_invalid(check(&auth, &other).await, R::GitHubNotOurApp);
    assert_eq!(gh.hits().check_token, 1, "not re-checked within 60 s");
    clock.advance(Duration::from_secs(61));
    assert_invalid(check(&auth, &other).await, R::GitHubNotOurApp);
    assert_eq!(
        gh.hits().check_token,
        2,
        "re-checked after the negative TTL"
    );

    // An accepted token that GitHub later revokes: trusted for the TTL (5 min), then refused.
    let token = gh.mint_token(GitHubStandIn::CLIENT_ID, "octocat", SCOPES);
    assert_accepted(check(&auth, &token).await);
    gh.revoke(&token);
    clock.advance(Duration::from_secs(299));
    assert_accepted(check(&auth, &token).await);
    clock.advance(Duration::from_secs(2));
    assert_invalid(check(&auth, &token).await, R::GitHubNotOurApp);
}

#[tokio::test]
async fn the_cache_never_outlives_the_tokens_own_expiry() {
    let gh = GitHubStandIn::start().await;
    let (auth, clock) = start(gh.github_config()).await;
    let token = gh.mint_app_user_token(GitHubStandIn::CLIENT_ID, "octocat", SCOPES, now() + 100);
    assert_accepted(check(&auth, &token).await);
    assert_eq!(gh.hits().check_token, 1);
    clock.advance(Duration::from_secs(101));
    // Past its expires_at the entry is gone (the TTL alone would keep it 300 s); the new check
    // refuses it (the stand-in, like GitHub, no longer knows an expired token).
    let refused = check(&auth, &token).await;
    assert_eq!(gh.hits().check_token, 2, "checked again once expired");
    assert!(refused.is_err());
}

#[tokio::test]
async fn the_cache_holds_token_hashes_and_principals_only() {
    let gh = GitHubStandIn::start().await;
    let (auth, _) = start(with_roles(&gh)).await;
    let token = gh.mint_token(GitHubStandIn::CLIENT_ID, "octocat", SCOPES);
    let other = gh.mint_token(GitHubStandIn::OTHER_CLIENT_ID, "mona", SCOPES);
    assert_accepted(check(&auth, &token).await);
    assert!(check(&auth, &other).await.is_err());
    let dump = auth.cache_dump();
    assert_eq!(dump.len(), 2, "one accepted and one refused entry");
    let hex = |t: &str| -> String {
        sha2::Sha256::digest(t.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let keys: Vec<&str> = dump.iter().map(|(_, k, _)| k.as_str()).collect();
    assert!(keys.contains(&hex(&token).as_str()) && keys.contains(&hex(&other).as_str()));
    for (verifier, key, entry) in &dump {
        assert_eq!(*verifier, Verifier::Github);
        // GitHub's check answer echoes the token; none of it may be kept.
        for secret in [&token, &other] {
            assert!(
                !key.contains(secret.as_str()) && !entry.contains(secret.as_str()),
                "{entry}"
            );
            assert!(
                !entry.contains(&secret[secret.len() - 8..]),
                "not even token_last_eight"
            );
        }
    }
    // Positive control: the dump really shows the entries' contents.
    assert!(
        dump.iter()
            .any(|(_, _, e)| e.contains("octocat") && e.contains("583231"))
    );
    assert!(dump.iter().any(|(_, _, e)| e.contains("GitHubNotOurApp")));
}

#[tokio::test]
async fn wrong_app_credentials_are_an_outage_not_the_callers_fault() {
    let gh = GitHubStandIn::start().await;
    let mut config = gh.github_config();
    config.client_secret = Some(agui_auth::Secret::new("not-the-secret"));
    let (auth, _) = start(config).await;
    let token = gh.mint_token(GitHubStandIn::CLIENT_ID, "octocat", SCOPES);
    let error = check(&auth, &token).await.unwrap_err();
    assert_eq!(
        error.status(),
        503,
        "a 401 would make the caller discard a good token"
    );
}
