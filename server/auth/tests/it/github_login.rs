//! "Sign in with GitHub" at the library level, against the stand-in's OAuth endpoints: the whole
//! flow (authorize, code, state check, PKCE exchange, then the token verified like any other),
//! and the stand-in's own contract where the flow relies on it (single-use codes, PKCE, the
//! client secret, the redirect URI).

use std::sync::Arc;

use agui_auth::testing::{GitHubStandIn, ManualClock};
use agui_auth::{AuthConfig, Authenticator, CredentialSource, LoginError};

const REDIRECT: &str = "http://127.0.0.1:9/auth/github/callback";

async fn start(gh: &GitHubStandIn) -> Authenticator {
    let mut github = gh.github_config();
    github.redirect_uri = Some(REDIRECT.into());
    github.app_origin = Some("http://127.0.0.1:5173".into());
    let config = AuthConfig {
        github: Some(github),
        ..AuthConfig::default()
    };
    Authenticator::start_with_clock(config, Arc::new(ManualClock::new()))
        .await
        .unwrap()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Follows the authorize redirect to the stand-in and returns where it sends the browser back.
async fn authorize(location: &str) -> String {
    let response = no_redirects().get(location).send().await.unwrap();
    assert_eq!(response.status(), 302, "{:?}", response.text().await);
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_whole_flow_ends_with_a_verified_github_user() {
    let gh = GitHubStandIn::start().await;
    gh.set_auto_approve(Some("octocat"));
    let auth = start(&gh).await;
    let login = auth
        .github_login()
        .expect("redirect_uri and app_origin turn the flow on");
    let begin = login.start();
    assert!(
        begin
            .location
            .starts_with(&format!("{}/login/oauth/authorize?", gh.url()))
    );
    let back = authorize(&begin.location).await;
    assert!(back.starts_with(REDIRECT), "{back}");
    let (code, state) = (
        param(&back, "code").unwrap(),
        param(&back, "state").unwrap(),
    );
    let cookie = begin.set_cookie.split(';').next().unwrap();
    let pending = login.check_callback(Some(cookie), Some(&state)).unwrap();
    let token = login.exchange(&code, pending).await.unwrap();
    assert_eq!(Some(token.expose().to_owned()), gh.last_issued_token());
    assert!(
        !format!("{token:?}").contains(token.expose()),
        "the token never prints"
    );
    let p = auth
        .authenticate(token.expose(), CredentialSource::Header)
        .await
        .unwrap();
    assert_eq!(p.subject, "583231");
    // A replay of the same callback.
    let again = login.check_callback(Some(cookie), Some(&state));
    assert_eq!(
        again.unwrap_err(),
        LoginError::InvalidState,
        "the state is single use too"
    );
}

#[tokio::test]
async fn a_wrong_pkce_verifier_or_a_used_code_is_refused_by_github() {
    let gh = GitHubStandIn::start().await;
    gh.set_auto_approve(Some("mona"));
    let auth = start(&gh).await;
    let login = auth.github_login().unwrap();
    // Two logins: the second's verifier does not fit the first's code.
    let first = login.start();
    let second = login.start();
    let back = authorize(&first.location).await;
    let code = param(&back, "code").unwrap();
    let state2 = param(&second.location, "state").unwrap();
    let pending = login
        .check_callback(
            Some(second.set_cookie.split(';').next().unwrap()),
            Some(&state2),
        )
        .unwrap();
    assert_eq!(
        login.exchange(&code, pending).await.unwrap_err(),
        LoginError::ExchangeRefused
    );
    assert_eq!(
        gh.last_issued_token(),
        None,
        "no token for a wrong verifier"
    );
}

#[tokio::test]
async fn the_stand_in_checks_secret_redirect_uri_and_pkce_like_github() {
    let gh = GitHubStandIn::start().await;
    gh.set_auto_approve(Some("octocat"));
    let verifier = "v".repeat(43);
    let challenge = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()))
    };
    let code = || async {
        let url = format!(
            "{}/login/oauth/authorize?client_id={}&redirect_uri={REDIRECT}&scope=read:user&state=s1&code_challenge={challenge}&code_challenge_method=S256",
            gh.url(),
            GitHubStandIn::CLIENT_ID
        );
        param(&authorize(&url).await, "code").unwrap()
    };
    let base = |code: String, secret: &str, verifier: &str| {
        vec![
            ("client_id", GitHubStandIn::CLIENT_ID.to_owned()),
            ("client_secret", secret.to_owned()),
            ("code", code),
            ("redirect_uri", REDIRECT.to_owned()),
            ("code_verifier", verifier.to_owned()),
        ]
    };
    let web = gh.url();
    let exchange = |form, json| exchange(&web, form, json);
    let wrong_secret = exchange(base(code().await, "nope", &verifier), true).await;
    assert!(
        wrong_secret.contains("incorrect_client_credentials"),
        "{wrong_secret}"
    );
    let missing_verifier =
        exchange(base(code().await, GitHubStandIn::CLIENT_SECRET, ""), true).await;
    assert!(
        missing_verifier.contains("bad_verification_code"),
        "{missing_verifier}"
    );
    let mut mismatch = base(code().await, GitHubStandIn::CLIENT_SECRET, &verifier);
    mismatch[3].1 = "http://127.0.0.1:9/elsewhere".into();
    assert!(
        exchange(mismatch, true)
            .await
            .contains("redirect_uri_mismatch")
    );
    // Positive control, form-encoded without Accept: application/json, then the used code.
    let good_code = code().await;
    let ok = exchange(
        base(good_code.clone(), GitHubStandIn::CLIENT_SECRET, &verifier),
        false,
    )
    .await;
    assert!(
        ok.starts_with("access_token=gho_") && ok.contains("token_type=bearer"),
        "{ok}"
    );
    let reused = exchange(
        base(good_code, GitHubStandIn::CLIENT_SECRET, &verifier),
        true,
    )
    .await;
    assert!(
        reused.contains("bad_verification_code"),
        "codes are single use: {reused}"
    );
}

/// `POST /login/oauth/access_token` with a form; the body of the answer.
async fn exchange(web: &str, form: Vec<(&'static str, String)>, json: bool) -> String {
    let mut request = reqwest::Client::new()
        .post(format!("{web}/login/oauth/access_token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish(),
        );
    if json {
        request = request.header("accept", "application/json");
    }
    request.send().await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn the_stand_in_shows_a_picker_denies_on_cancel_and_paginates_teams() {
    let gh = GitHubStandIn::start().await;
    let url = format!(
        "{}/login/oauth/authorize?client_id={}&redirect_uri={REDIRECT}&state=s9",
        gh.url(),
        GitHubStandIn::CLIENT_ID
    );
    let picker = no_redirects().get(&url).send().await.unwrap();
    assert_eq!(picker.status(), 200);
    let html = picker.text().await.unwrap();
    assert!(
        html.contains("data-login=\"octocat\"") && html.contains("id=\"cancel\""),
        "{html}"
    );
    let denied = authorize(&format!("{url}&deny=1")).await;
    assert_eq!(param(&denied, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&denied, "state").as_deref(), Some("s9"));
    let unknown = no_redirects()
        .get(format!(
            "{}/login/oauth/authorize?client_id=Iv1.nobody&redirect_uri={REDIRECT}",
            gh.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    let token = gh.mint_token(GitHubStandIn::CLIENT_ID, "octocat", &["read:org"]);
    let teams = reqwest::Client::new()
        .get(format!("{}/user/teams?per_page=100", gh.api_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(teams.status(), 200);
    assert_eq!(teams.headers()["x-ratelimit-limit"], "5000");
    let body: serde_json::Value = teams.json().await.unwrap();
    assert_eq!(body[0]["slug"], "platform");
    assert_eq!(body[0]["organization"]["login"], "acme");
    let no_scope = gh.mint_token(GitHubStandIn::CLIENT_ID, "octocat", &["read:user"]);
    let refused = reqwest::Client::new()
        .get(format!("{}/user/teams", gh.api_url()))
        .bearer_auth(&no_scope)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403, "teams need read:org");
}
