//! "Sign in with GitHub" through a real server and the stand-in: the redirect cannot be steered,
//! the callback refuses a wrong, replayed or missing state, a cookie without a PKCE verifier and
//! an error from GitHub with a clear page, tells a user outside the allowlist so, and hands the
//! token over in a no-store page under a strict CSP: never in a URL, a header or a log line.

use std::io::Write;
use std::sync::{Arc, Mutex};

use agui_auth::testing::GitHubStandIn;
use serde_json::{Value, json};

use crate::common::*;

/// The redirect URI as configured (the test calls the callback itself; nothing listens there).
const REDIRECT: &str = "http://127.0.0.1:9/auth/github/callback";
const APP_ORIGIN: &str = "http://127.0.0.1:5173";
const COOKIE_KEY: &str = "a-test-cookie-key-of-at-least-32-bytes!";

async fn server(
    gh: &GitHubStandIn,
    change: impl FnOnce(&mut agui_auth::GitHubConfig),
) -> TestServer {
    let mut github = gh.github_config();
    github.redirect_uri = Some(REDIRECT.into());
    github.app_origin = Some(APP_ORIGIN.into());
    github.login_cookie_key = Some(agui_auth::Secret::new(COOKIE_KEY));
    change(&mut github);
    start_with(|c| c.auth.github = Some(github), |b| b).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// What a browser holds after `GET /auth/github/login`.
struct Started {
    authorize: String,
    cookie: String,
    headers: reqwest::header::HeaderMap,
}

async fn begin(server: &TestServer, query: &str) -> Started {
    let response = client()
        .get(format!("{}/auth/github/login{query}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let headers = response.headers().clone();
    let set_cookie = headers["set-cookie"].to_str().unwrap().to_owned();
    Started {
        authorize: headers["location"].to_str().unwrap().to_owned(),
        cookie: set_cookie.split(';').next().unwrap().to_owned(),
        headers,
    }
}

/// The stand-in's redirect back (with `code` and `state`, or `error`).
async fn at_github(authorize: &str) -> String {
    let response = client().get(authorize).send().await.unwrap();
    assert_eq!(response.status(), 302, "{:?}", response.text().await);
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// Calls the server's callback with the query GitHub sent back.
async fn callback(
    server: &TestServer,
    back: &str,
    cookie: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let query = url::Url::parse(back)
        .unwrap()
        .query()
        .unwrap_or_default()
        .to_owned();
    let mut request = client().get(format!("{}/auth/github/callback?{query}", server.url));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// The JSON the page posts to the app.
fn handed_over(html: &str) -> Value {
    let start = html
        .find("id=\"agui-github-login\">")
        .expect("the data block")
        + "id=\"agui-github-login\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

/// Captures every log line of this test's thread (the server runs on it: current-thread runtime).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn a_sign_in_hands_the_token_to_the_app_origin_only_in_a_no_store_page() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let gh = GitHubStandIn::start().await;
    gh.set_auto_approve(Some("octocat"));
    let server = server(&gh, |_| {}).await;
    // The request cannot steer the redirect: its redirect_uri is ignored.
    let started = begin(
        &server,
        "?redirect_uri=https://evil.example/cb&scope=admin:org",
    )
    .await;
    assert!(
        started
            .authorize
            .starts_with(&format!("{}/login/oauth/authorize?", gh.url()))
    );
    assert_eq!(
        param(&started.authorize, "redirect_uri").as_deref(),
        Some(REDIRECT)
    );
    assert_eq!(
        param(&started.authorize, "scope").as_deref(),
        Some("read:user read:org")
    );
    assert_eq!(
        param(&started.authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        param(&started.authorize, "client_id").as_deref(),
        Some(GitHubStandIn::CLIENT_ID)
    );
    let set_cookie = started.headers["set-cookie"].to_str().unwrap();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );
    assert!(!set_cookie.contains("Secure"), "plain http on loopback");
    assert_eq!(started.headers["cache-control"], "no-store");

    let back = at_github(&started.authorize).await;
    assert!(back.starts_with(REDIRECT));
    let (status, headers, html) = callback(&server, &back, Some(&started.cookie)).await;
    assert_eq!(status, 200, "{html}");
    let token = gh.last_issued_token().expect("the code was exchanged");
    let data = handed_over(&html);
    assert_eq!(data["type"], "agui:github-login");
    assert_eq!(data["ok"], true);
    assert_eq!(data["token"], token.as_str());
    assert_eq!(data["login"], "octocat");
    assert_eq!(
        data["appOrigin"], APP_ORIGIN,
        "posted to the configured origin only"
    );
    assert!(html.contains("window.opener.postMessage(data, origin)"));
    assert_eq!(headers["cache-control"], "no-store");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'sha256-") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(
        headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"),
        "the login cookie is cleared"
    );
    // The token in no header of any answer, no URL, no log line.
    for (name, value) in headers.iter().chain(started.headers.iter()) {
        assert!(
            !value.to_str().unwrap_or_default().contains(&token),
            "{name}"
        );
    }
    assert!(!back.contains(&token) && !started.authorize.contains(&token));
    // The token works like any other (and its fingerprint is what the logs carry).
    let me: Value = server
        .http
        .get(format!("{}/whoami", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["subject"], "583231");
    let text = logs.text();
    assert!(
        text.contains("GitHub sign-in completed"),
        "positive control: the logs were captured"
    );
    assert!(text.contains(&agui_auth::token_fingerprint(&token)));
    assert!(!text.contains(&token), "the token is in a log line");
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_replayed_or_missing_state_is_refused_with_a_clear_page() {
    let gh = GitHubStandIn::start().await;
    gh.set_auto_approve(Some("octocat"));
    let server = server(&gh, |_| {}).await;
    let started = begin(&server, "").await;
    let back = at_github(&started.authorize).await;
    let state = param(&back, "state").unwrap();
    let code = param(&back, "code").unwrap();

    let wrong = format!("{REDIRECT}?code={code}&state=not-the-state");
    let (status, headers, html) = callback(&server, &wrong, Some(&started.cookie)).await;
    assert_eq!(status, 400);
    assert!(html.contains("not valid any more"), "{html}");
    assert_eq!(handed_over(&html)["error"], "invalid_state");
    assert_eq!(headers["cache-control"], "no-store");
    let (status, _, html) = callback(&server, &back, None).await;
    assert_eq!(
        (status, handed_over(&html)["error"].clone()),
        (400, json!("invalid_state")),
        "no cookie"
    );
    // Positive control, then the same callback replayed.
    let (status, _, html) = callback(&server, &back, Some(&started.cookie)).await;
    assert_eq!(status, 200, "{html}");
    let (status, _, html) = callback(&server, &back, Some(&started.cookie)).await;
    assert_eq!(status, 400, "a replay is refused");
    assert_eq!(handed_over(&html)["error"], "invalid_state");
    assert!(!html.contains("gho_"), "no token on a refusal page");
    let _ = state;
    assert_eq!(
        gh.hits().access_token,
        1,
        "only the good callback reached GitHub"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_cookie_without_a_pkce_verifier_is_refused_before_any_exchange() {
    let gh = GitHubStandIn::start().await;
    let server = server(&gh, |_| {}).await;
    let login = server.state.auth.github_login().expect("the flow is on");
    let far = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 300;
    let sealed = login.seal_cookie_for_tests(&json!({"s": "st-1", "e": far}));
    let cookie = format!("{}={sealed}", login.cookie_name());
    let (status, _, html) = callback(
        &server,
        &format!("{REDIRECT}?code=abc&state=st-1"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(handed_over(&html)["error"], "missing_verifier");
    // A verifier that does not fit the code's challenge: GitHub (the stand-in) refuses it.
    gh.set_auto_approve(Some("octocat"));
    let started = begin(&server, "").await;
    let back = at_github(&started.authorize).await;
    let wrong = login
        .seal_cookie_for_tests(&json!({"s": param(&back, "state"), "v": "w".repeat(43), "e": far}));
    let (status, _, html) = callback(
        &server,
        &back,
        Some(&format!("{}={wrong}", login.cookie_name())),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(handed_over(&html)["error"], "exchange_refused");
    assert_eq!(gh.last_issued_token(), None);
    server.stop().await;
}

#[tokio::test]
async fn an_error_from_github_and_a_user_outside_the_allowlist_get_clear_pages() {
    let gh = GitHubStandIn::start().await;
    let server = server(&gh, |g| g.allowed_users = vec!["octocat".into()]).await;
    // The user pressed Cancel at GitHub.
    let started = begin(&server, "").await;
    let denied = at_github(&format!("{}&deny=1", started.authorize)).await;
    assert_eq!(param(&denied, "error").as_deref(), Some("access_denied"));
    let (status, _, html) = callback(&server, &denied, Some(&started.cookie)).await;
    assert_eq!(status, 400);
    assert!(html.contains("cancelled"));
    assert!(
        !html.contains("The user has denied"),
        "GitHub's text is not echoed"
    );

    // Mona signs in fine at GitHub, but is not on the allowlist.
    gh.set_auto_approve(Some("mona"));
    let started = begin(&server, "").await;
    let back = at_github(&started.authorize).await;
    let (status, _, html) = callback(&server, &back, Some(&started.cookie)).await;
    assert_eq!(status, 403);
    assert!(html.contains("not allowed"), "{html}");
    let data = handed_over(&html);
    assert_eq!(
        (data["ok"].clone(), data["error"].clone()),
        (json!(false), json!("access_denied"))
    );
    let issued = gh.last_issued_token().unwrap();
    assert!(
        !html.contains(&issued),
        "a refused user's token is not handed over"
    );
    server.stop().await;
}

#[tokio::test]
async fn without_a_redirect_uri_there_are_no_login_routes() {
    let gh = GitHubStandIn::start().await;
    let server = start_with(|c| c.auth.github = Some(gh.github_config()), |b| b).await;
    let response = client()
        .get(format!("{}/auth/github/login", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    server.stop().await;
}
