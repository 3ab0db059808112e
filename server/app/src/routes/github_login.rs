//! "Sign in with GitHub", served by agui-server (mounted only when `[auth.github]` has
//! `redirect_uri` and `app_origin`):
//!
//! * `GET /auth/github/login` → 302 to GitHub's authorize URL with `state` and a PKCE S256
//!   challenge, and a short-lived signed HttpOnly cookie binding both to this browser. Nothing
//!   from the request is used: the redirect URI, scopes and app origin come from the config.
//! * `GET /auth/github/callback` → checks `state` against the cookie, exchanges the code
//!   server-side (client secret + PKCE verifier), verifies the token like any other (so a user
//!   outside the allowlists is told here), and answers the **hand-off page**.
//!
//! The hand-off page is how the token reaches the app without ever being in a URL, a log line,
//! a response header or a cache: a `Cache-Control: no-store` page under `default-src 'none'`
//! whose one script (allowed by its SHA-256) posts `{type: "agui:github-login", ok: true, token,
//! login, name}` to `window.opener` with the configured app origin as `targetOrigin` (the
//! browser drops it for any other opener), then closes the window. The app opens
//! `/auth/github/login` in a popup and listens for that message, checking `event.origin`.
//! Refusals post `{type, ok: false, error}` and stay open with a clear sentence. Without an
//! opener (a full-page visit) the token is not handed anywhere. The anti-pattern this avoids is
//! a redirect to `/?session=<token>` (llms.py), which leaves the token in history, access logs
//! and `Referer`.

use std::sync::LazyLock;

use agui_auth::{AuthError, CredentialSource, LoginError};
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::state::AppState;

/// The one script of the hand-off page; allowed by its hash in the CSP.
const SCRIPT: &str = r#"(function () {
  var data = JSON.parse(document.getElementById("agui-github-login").textContent);
  var origin = data.appOrigin;
  delete data.appOrigin;
  if (window.opener && !window.opener.closed) {
    window.opener.postMessage(data, origin);
    if (data.ok) { window.close(); }
  } else if (data.ok) {
    document.getElementById("message").textContent = "You are signed in, but this window was not opened by the app. Close it and use the app's Sign in with GitHub button.";
  }
}());"#;

/// The page's style; allowed by its hash in the CSP.
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;line-height:1.5}h1{font-size:1.4rem}";

/// The longest callback query read (GitHub's is well under 1 KiB).
const MAX_QUERY_BYTES: usize = 4_096;

static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash =
        |s: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s.as_bytes()));
    format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hash(SCRIPT),
        hash(STYLE)
    )
});

/// The login routes, when the flow is configured; an empty router otherwise.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    if state.auth.github_login().is_none() {
        return Router::new();
    }
    Router::new()
        .route("/auth/github/login", get(login))
        .route("/auth/github/callback", get(callback))
}

/// `GET /auth/github/login`: the redirect to GitHub. Any query is ignored.
async fn login(State(state): State<AppState>) -> Response {
    let Some(flow) = state.auth.github_login() else {
        return crate::error::ApiError::NotFound.into_response();
    };
    let start = flow.start();
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    insert(headers, header::LOCATION, &start.location);
    insert(headers, header::SET_COOKIE, &start.set_cookie);
    insert(headers, header::CACHE_CONTROL, "no-store");
    insert(headers, header::REFERRER_POLICY, "no-referrer");
    response
}

/// `GET /auth/github/callback`.
async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(flow) = state.auth.github_login() else {
        return crate::error::ApiError::NotFound.into_response();
    };
    let clear = flow.clear_cookie();
    let outcome = finish(&state, &headers, query.as_deref().unwrap_or_default()).await;
    let (status, data, title, message) = match outcome {
        Ok(principal) => {
            tracing::info!(
                issuer = %principal.issuer, sub = %principal.subject,
                token_fp = %principal.token_fingerprint, "GitHub sign-in completed"
            );
            let login = principal
                .claims
                .get("login")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let data = json!({
                "type": "agui:github-login",
                "ok": true,
                "token": principal.token,
                "login": login,
                "name": principal.name,
            });
            (
                StatusCode::OK,
                data,
                "Signed in with GitHub",
                format!("Signed in as {login}. You can close this window."),
            )
        }
        Err(refusal) => {
            tracing::info!(
                outcome = refusal.code,
                status = refusal.status.as_u16(),
                "GitHub sign-in refused"
            );
            let data = json!({"type": "agui:github-login", "ok": false, "error": refusal.code});
            (
                refusal.status,
                data,
                refusal.title,
                refusal.message.to_owned(),
            )
        }
    };
    page(status, data, flow.app_origin(), title, &message, &clear)
}

/// A completed sign-in: the verified principal and the token to hand over.
struct SignedIn {
    issuer: String,
    subject: String,
    name: Option<String>,
    claims: serde_json::Map<String, Value>,
    token_fingerprint: String,
    token: String,
}

/// Why the page refuses.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    message: &'static str,
}

impl From<LoginError> for Refusal {
    fn from(error: LoginError) -> Self {
        Self {
            status: StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST),
            code: error.code(),
            title: "Sign-in with GitHub did not complete",
            message: error.message(),
        }
    }
}

async fn finish(state: &AppState, headers: &HeaderMap, query: &str) -> Result<SignedIn, Refusal> {
    let flow = state.auth.github_login().ok_or(LoginError::InvalidState)?;
    if query.len() > MAX_QUERY_BYTES {
        return Err(LoginError::InvalidState.into());
    }
    let param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let cookies: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let cookie = cookies.join("; ");
    let pending = flow.check_callback(Some(&cookie), param("state").as_deref())?;
    // RFC 6749 §4.1.2.1: the user declined, or GitHub refused; its text is never echoed.
    if param("error").is_some() {
        return Err(LoginError::Declined.into());
    }
    let code = param("code").ok_or(LoginError::ExchangeRefused)?;
    let token = flow.exchange(&code, pending).await?;
    match state
        .auth
        .authenticate(token.expose(), CredentialSource::Header)
        .await
    {
        Ok(p) => Ok(SignedIn {
            issuer: p.issuer.clone(),
            subject: p.subject.clone(),
            name: p.name.clone(),
            claims: p.claims.clone(),
            token_fingerprint: p.token_fingerprint.clone(),
            token: token.expose().to_owned(),
        }),
        Err(AuthError::AccessDenied | AuthError::InsufficientScope { .. }) => Err(Refusal {
            status: StatusCode::FORBIDDEN,
            code: "access_denied",
            title: "Not allowed",
            message: "Your GitHub account is not allowed to use this app. Ask its administrators to add you.",
        }),
        Err(AuthError::IssuerUnavailable { .. }) => Err(LoginError::Unavailable.into()),
        Err(error) => {
            tracing::warn!(
                reason = error.reason(),
                "the token GitHub issued was refused"
            );
            Err(LoginError::ExchangeRefused.into())
        }
    }
}

/// The hand-off (or refusal) page.
fn page(
    status: StatusCode,
    mut data: Value,
    app_origin: &str,
    title: &str,
    message: &str,
    clear_cookie: &str,
) -> Response {
    data["appOrigin"] = json!(app_origin);
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\"><title>{title}</title><style>{STYLE}</style></head><body><main><h1>{title}</h1><p id=\"message\">{message}</p></main><script type=\"application/json\" id=\"agui-github-login\">{data}</script><script>{SCRIPT}</script></body></html>",
        title = escape(title),
        message = escape(message),
        data = script_safe_json(&data),
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    insert(headers, header::CONTENT_TYPE, "text/html; charset=utf-8");
    insert(headers, header::CACHE_CONTROL, "no-store");
    insert(headers, header::PRAGMA, "no-cache");
    insert(headers, header::REFERRER_POLICY, "no-referrer");
    insert(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    insert(headers, header::X_FRAME_OPTIONS, "DENY");
    insert(headers, header::CONTENT_SECURITY_POLICY, &CSP);
    insert(headers, header::SET_COOKIE, clear_cookie);
    response
}

fn insert(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// JSON that cannot close its `<script>` element or break out of it: `<`, `>`, `&` and the two
/// JavaScript line separators as `\u` escapes (still the same JSON value).
fn script_safe_json(value: &Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_json_cannot_close_the_script_and_reads_back_the_same() {
        let value = json!({"name": "</script><script>alert(1)</script>&\u{2028}"});
        let safe = script_safe_json(&value);
        assert!(!safe.contains('<') && !safe.contains('>') && !safe.contains('&'));
        assert_eq!(serde_json::from_str::<Value>(&safe).unwrap(), value);
    }

    #[test]
    fn the_csp_allows_exactly_the_page_script_and_style() {
        assert!(CSP.starts_with("default-src 'none'; script-src 'sha256-"));
        assert!(!CSP.contains("unsafe-inline"));
        let hash =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(SCRIPT.as_bytes()));
        assert!(CSP.contains(&hash));
    }
}
