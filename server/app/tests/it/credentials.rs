//! The credentials beyond JWTs through a real server: GitHub tokens (against the stand-in) and
//! introspected opaque tokens on `/whoami` and `/chat`, their refusals as RFC 6750 answers, the
//! verifier in the audit log, and thread ownership across kinds of credential.

use agui_auth::testing::{GitHubFault, GitHubStandIn};
use agui_server::store::{AuditFilter, AuditKind};
use serde_json::{Value, json};

use crate::common::*;

const SCOPES: &[&str] = &["read:user", "read:org"];

/// A server trusting its TestIdp (JWTs and introspection) and the stand-in (GitHub).
async fn server(
    gh: &GitHubStandIn,
    github: impl FnOnce(&mut agui_auth::GitHubConfig),
) -> TestServer {
    let mut config = gh.github_config();
    config
        .roles
        .insert("admin".into(), vec!["acme/platform".into()]);
    github(&mut config);
    start_with(|c| c.auth.github = Some(config), |b| b).await
}

async fn whoami(server: &TestServer, token: &str) -> reqwest::Response {
    server
        .http
        .get(format!("{}/whoami", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

fn on_thread(text: &str, thread: &str) -> Value {
    let mut body = input(text, Some("1.0"));
    body["threadId"] = json!(thread);
    body
}

#[tokio::test]
async fn a_github_token_of_our_app_is_a_principal_and_others_get_rfc_6750_answers() {
    let gh = GitHubStandIn::start().await;
    let server = server(&gh, |g| g.allowed_orgs = vec!["acme".into()]).await;
    let ours = gh.mint_token(GitHubStandIn::CLIENT_ID, "octocat", SCOPES);
    let response = whoami(&server, &ours).await;
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["issuer"], gh.url());
    assert_eq!(me["subject"], "583231");
    assert_eq!(me["name"], "The Octocat");
    assert_eq!(me["roles"], json!(["admin"]));

    let other = gh.mint_token(GitHubStandIn::OTHER_CLIENT_ID, "octocat", SCOPES);
    let refused = whoami(&server, &other).await;
    assert_eq!(refused.status(), 401);
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let pat = whoami(&server, &gh.mint_pat("octocat")).await;
    assert_eq!(pat.status(), 401);

    let outsider = gh.mint_token(GitHubStandIn::CLIENT_ID, "mona", SCOPES);
    let denied = whoami(&server, &outsider).await;
    assert_eq!(denied.status(), 403);
    let body: Value = denied.json().await.unwrap();
    assert_eq!(body["error"], "access_denied");

    // A raw GitHub token without `Bearer` is another scheme: a bare challenge, no call made.
    let hits = gh.hits().check_token;
    let raw = server
        .http
        .get(format!("{}/whoami", server.url))
        .header("authorization", &ours)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 401);
    assert_eq!(raw.headers()["www-authenticate"], "Bearer realm=\"agui\"");
    assert_eq!(gh.hits().check_token, hits);
    server.stop().await;
}

#[tokio::test]
async fn github_rate_limited_is_503_with_retry_after_then_serves_again() {
    let gh = GitHubStandIn::start().await;
    let server = server(&gh, |_| {}).await;
    gh.set_fault(GitHubFault::ServerError);
    let token = gh.mint_token(GitHubStandIn::CLIENT_ID, "octocat", SCOPES);
    let response = whoami(&server, &token).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    assert!(response.headers().get("www-authenticate").is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "issuer_unavailable");
    gh.set_fault(GitHubFault::None);
    assert_eq!(whoami(&server, &token).await.status(), 200);

    gh.set_fault(GitHubFault::SecondaryRateLimit);
    let fresh = gh.mint_token(GitHubStandIn::CLIENT_ID, "hubot", SCOPES);
    let limited = whoami(&server, &fresh).await;
    assert_eq!(limited.status(), 503);
    assert_eq!(limited.headers()["retry-after"], "30");
    server.stop().await;
}

#[tokio::test]
async fn a_github_run_streams_and_its_audit_record_names_the_verifier() {
    let gh = GitHubStandIn::start().await;
    let server = server(&gh, |_| {}).await;
    let token = gh.mint_token(GitHubStandIn::CLIENT_ID, "octocat", SCOPES);
    let events = server
        .run_as("/chat", &token, &input("hello", Some("1.0")))
        .await;
    assert!(text(&events).contains("The Octocat"), "{}", text(&events));
    let jwt = server.token("alice");
    server
        .run_as("/chat", &jwt, &input("hello", Some("1.0")))
        .await;

    let ready = server.state.backends.connected().expect("store ready");
    ready.log.flush().await;
    let started = ready
        .store()
        .query_audit(&AuditFilter {
            kinds: vec![AuditKind::RunStarted],
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let by_subject = |s: &str| {
        started
            .iter()
            .find(|r| r.subject.as_deref() == Some(s))
            .unwrap()
    };
    let github = by_subject("583231");
    assert_eq!(github.detail["verifier"], "github");
    assert_eq!(github.issuer.as_deref(), Some(gh.url().as_str()));
    assert_eq!(
        github.detail["token_fingerprint"],
        agui_auth::token_fingerprint(&token)
    );
    assert_eq!(by_subject("alice").detail["verifier"], "jwt");
    server.stop().await;
}

/// (issuer, subject) is the identity: an OIDC user whose `sub` is the GitHub user's numeric id
/// is someone else, and cannot reach that user's thread.
#[tokio::test]
async fn a_github_users_thread_is_not_reachable_by_an_oidc_user_with_the_same_sub() {
    let gh = GitHubStandIn::start().await;
    let server = server(&gh, |_| {}).await;
    let github = gh.mint_token(GitHubStandIn::CLIENT_ID, "octocat", SCOPES);
    server
        .run_as("/chat", &github, &on_thread("hi", "octo-thread"))
        .await;

    let same_sub = server.token("583231");
    let response = server
        .post("/chat", Some(&same_sub), &on_thread("hi", "octo-thread"))
        .await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "thread_not_found");
    // Controls: the OIDC user on a thread of their own, and the GitHub user on theirs again.
    server
        .run_as("/chat", &same_sub, &on_thread("hi", "oidc-thread"))
        .await;
    server
        .run_as("/chat", &github, &on_thread("again", "octo-thread"))
        .await;
    // And the other way round.
    let response = server
        .post("/chat", Some(&github), &on_thread("hi", "oidc-thread"))
        .await;
    assert_eq!(response.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn an_introspected_opaque_token_runs_and_an_inactive_one_is_401() {
    // The server's TestIdp is its JWT issuer and, here, an introspection issuer too.
    let server = start_with(|c| c.auth.introspection = vec![entry_for(c)], |b| b).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut answer = server.idp.introspection_answer("opaque-user", now);
    answer["aud"] = json!(AUDIENCE);
    answer["name"] = json!("Opaque User");
    let token = server.idp.issue_opaque(answer);
    let events = server
        .run_as("/chat", &token, &input("hello", Some("1.0")))
        .await;
    assert!(text(&events).contains("Opaque User"));
    let unknown = server
        .post(
            "/chat",
            Some("an-opaque-token-the-issuer-never-issued"),
            &input("hi", None),
        )
        .await;
    assert_eq!(unknown.status(), 401);
    assert!(
        unknown.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert!(server.idp.introspection_hits() >= 2);
    // A JWT of the same issuer still goes the JWKS way: no introspection for it.
    let hits = server.idp.introspection_hits();
    server.run("alice", &input("hi", Some("1.0"))).await;
    assert_eq!(server.idp.introspection_hits(), hits);
    server.stop().await;
}

/// The introspection entry for the server's own TestIdp, built from the config the server is
/// being started with (whose single issuer is that TestIdp).
fn entry_for(config: &agui_server::Config) -> agui_auth::IntrospectionConfig {
    let (client_id, secret) = agui_auth::testing::INTROSPECTION_CLIENT;
    agui_auth::IntrospectionConfig {
        issuer: config.auth.issuers[0].issuer.clone(),
        client_id: client_id.into(),
        client_secret: Some(agui_auth::Secret::new(secret)),
        audiences: vec![AUDIENCE.into()],
        ..agui_auth::IntrospectionConfig::default()
    }
}
