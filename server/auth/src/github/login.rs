//! "Sign in with GitHub" served by agui-server: the authorize redirect with `state` and PKCE
//! (RFC 7636, S256), the browser-bound state cookie, and the server-side code exchange (GitHub
//! requires the client secret, so it cannot happen in the browser).
//!
//! The state cookie is `v1.<payload>.<tag>`: the payload is base64url JSON `{s: state,
//! v: PKCE verifier, e: expiry}`, the tag an HMAC-SHA256 over `v1.<payload>` with a key that is
//! random per process unless configured. HttpOnly, `SameSite=Lax` (GitHub's redirect back is a
//! top-level GET, which Lax lets through), `Secure` and the `__Host-` prefix when the redirect
//! URI is https (so a sibling subdomain cannot plant one). A callback needs the cookie, a
//! matching `state` (compared in constant time), an unexpired payload and a state not seen
//! before by this process; the cookie is cleared on every callback.
//!
//! Redirect URI, scopes and the app origin come from the configuration only, never from the
//! request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::fetch;
use crate::secret::Secret;

use super::GitHubConfig;

/// Cookie name over https (`__Host-`: Secure, Path=/, no Domain).
const SECURE_COOKIE: &str = "__Host-agui_github_login";
/// Cookie name over plain http (loopback development).
const PLAIN_COOKIE: &str = "agui_github_login";
/// States remembered against replay.
const MAX_USED_STATES: usize = 10_000;
/// Largest token-endpoint answer read.
const EXCHANGE_BODY_CAP: usize = 16 * 1024;

/// The redirect that starts a login.
#[derive(Debug)]
pub struct LoginStart {
    /// The `Location`: GitHub's authorize URL (no secret in it).
    pub location: String,
    /// The `Set-Cookie` value binding the login to this browser.
    pub set_cookie: String,
}

/// A callback that passed the state check: holds the PKCE verifier for the exchange.
pub struct PendingLogin {
    verifier: Secret,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingLogin")
    }
}

/// Why a login did not complete. Each has a stable code and a fixed text; nothing GitHub or the
/// browser sent is echoed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginError {
    /// No or a tampered login cookie, a `state` that does not match it, an expired or an
    /// already used one.
    InvalidState,
    /// A signed cookie without a PKCE verifier.
    MissingVerifier,
    /// The user declined on GitHub (`error=access_denied`) or GitHub reported another error.
    Declined,
    /// GitHub refused the code (expired, used, wrong PKCE verifier, wrong redirect URI).
    ExchangeRefused,
    /// GitHub refused our client credentials: a configuration problem (logged).
    Misconfigured,
    /// GitHub could not be reached.
    Unavailable,
}

impl LoginError {
    /// A stable code for the page and the message posted to the app.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidState => "invalid_state",
            Self::MissingVerifier => "missing_verifier",
            Self::Declined => "cancelled",
            Self::ExchangeRefused => "exchange_refused",
            Self::Misconfigured => "server_misconfigured",
            Self::Unavailable => "github_unavailable",
        }
    }

    /// HTTP status of the page.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidState | Self::MissingVerifier | Self::Declined | Self::ExchangeRefused => {
                400
            }
            Self::Misconfigured => 502,
            Self::Unavailable => 503,
        }
    }

    /// A sentence for people.
    pub fn message(self) -> &'static str {
        match self {
            Self::InvalidState => {
                "This sign-in link is not valid any more (expired, already used, or started in another browser). Start the sign-in again from the app."
            }
            Self::MissingVerifier => {
                "This sign-in cannot be completed. Start it again from the app."
            }
            Self::Declined => "The sign-in with GitHub was cancelled.",
            Self::ExchangeRefused => {
                "GitHub did not accept this sign-in (it may have expired). Start it again from the app."
            }
            Self::Misconfigured => "Sign-in with GitHub is not set up correctly on this server.",
            Self::Unavailable => "GitHub cannot be reached right now. Try again in a moment.",
        }
    }
}

/// The login flow of one GitHub app. Built by the authenticator when `redirect_uri` and
/// `app_origin` are configured.
pub struct GitHubLogin {
    client_id: String,
    secret: Secret,
    web_url: String,
    redirect_uri: String,
    app_origin: String,
    scopes: String,
    key: aws_lc_rs::hmac::Key,
    ttl: i64,
    secure: bool,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    /// SHA-256 of used states → their expiry. Held for map operations only.
    used: Mutex<HashMap<[u8; 32], i64>>,
}

impl std::fmt::Debug for GitHubLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubLogin")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("app_origin", &self.app_origin)
            .finish_non_exhaustive()
    }
}

impl GitHubLogin {
    pub(crate) fn new(
        config: &GitHubConfig,
        secret: Secret,
        cookie_key: Option<Secret>,
        client: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let key = match cookie_key {
            Some(k) => {
                aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, k.expose().as_bytes())
            }
            None => aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &random_bytes()),
        };
        let redirect_uri = config.redirect_uri.clone().unwrap_or_default();
        Self {
            client_id: config.client_id.clone(),
            secret,
            web_url: config.web_url.trim_end_matches('/').to_owned(),
            secure: redirect_uri.starts_with("https://"),
            redirect_uri,
            app_origin: config.app_origin.clone().unwrap_or_default(),
            scopes: config.scopes.join(" "),
            key,
            ttl: i64::try_from(config.login_ttl_secs).unwrap_or(600),
            client,
            clock,
            used: Mutex::new(HashMap::new()),
        }
    }

    /// The only origin the hand-off page posts the token to.
    pub fn app_origin(&self) -> &str {
        &self.app_origin
    }

    /// The configured redirect URI (as registered with the GitHub app).
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The name of the login cookie.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            SECURE_COOKIE
        } else {
            PLAIN_COOKIE
        }
    }

    /// A fresh state and PKCE pair: GitHub's authorize URL and the cookie binding them to the
    /// browser. Nothing from the request is used.
    pub fn start(&self) -> LoginStart {
        let state = URL_SAFE_NO_PAD.encode(random_bytes());
        let verifier = URL_SAFE_NO_PAD.encode(random_bytes());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let expires = self.clock.unix_now() + self.ttl;
        let cookie = self.seal(&json!({"s": state, "v": verifier, "e": expires}));
        let mut location = url::Url::parse(&format!("{}/login/oauth/authorize", self.web_url))
            .expect("web_url was validated");
        location
            .query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", &self.scopes)
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        LoginStart {
            location: location.into(),
            set_cookie: self.cookie_attributes(&cookie, self.ttl),
        }
    }

    /// The `Set-Cookie` value that deletes the login cookie.
    pub fn clear_cookie(&self) -> String {
        self.cookie_attributes("", 0)
    }

    fn cookie_attributes(&self, value: &str, max_age: i64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax{secure}",
            self.cookie_name()
        )
    }

    /// Checks a callback's `state` against the login cookie from the `Cookie` header.
    ///
    /// # Errors
    /// [`LoginError::InvalidState`] or [`LoginError::MissingVerifier`].
    pub fn check_callback(
        &self,
        cookie_header: Option<&str>,
        state: Option<&str>,
    ) -> Result<PendingLogin, LoginError> {
        let payload = cookie_header
            .into_iter()
            .flat_map(|h| h.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == self.cookie_name())
            .find_map(|(_, value)| self.open(value))
            .ok_or(LoginError::InvalidState)?;
        let now = self.clock.unix_now();
        let expires = payload
            .get("e")
            .and_then(Value::as_i64)
            .ok_or(LoginError::InvalidState)?;
        if expires <= now {
            return Err(LoginError::InvalidState);
        }
        let expected = payload
            .get("s")
            .and_then(Value::as_str)
            .ok_or(LoginError::InvalidState)?;
        let given = state.ok_or(LoginError::InvalidState)?;
        if aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), given.as_bytes())
            .is_err()
        {
            return Err(LoginError::InvalidState);
        }
        let verifier = payload
            .get("v")
            .and_then(Value::as_str)
            .filter(|v| (43..=128).contains(&v.len()))
            .ok_or(LoginError::MissingVerifier)?;
        self.mark_used(expected, expires, now)?;
        Ok(PendingLogin {
            verifier: Secret::new(verifier),
        })
    }

    fn mark_used(&self, state: &str, expires: i64, now: i64) -> Result<(), LoginError> {
        let digest: [u8; 32] = Sha256::digest(state.as_bytes()).into();
        let mut used = self
            .used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if used.contains_key(&digest) {
            return Err(LoginError::InvalidState);
        }
        if used.len() >= MAX_USED_STATES {
            used.retain(|_, e| *e > now);
            if used.len() >= MAX_USED_STATES
                && let Some(oldest) = used.iter().min_by_key(|(_, e)| **e).map(|(k, _)| *k)
            {
                used.remove(&oldest);
            }
        }
        used.insert(digest, expires);
        Ok(())
    }

    /// Exchanges the code for a token at `{web}/login/oauth/access_token` with the client secret,
    /// the configured redirect URI and the PKCE verifier.
    ///
    /// # Errors
    /// [`LoginError::ExchangeRefused`], [`LoginError::Misconfigured`], [`LoginError::Unavailable`].
    pub async fn exchange(&self, code: &str, pending: PendingLogin) -> Result<Secret, LoginError> {
        if code.is_empty() || code.len() > 512 {
            return Err(LoginError::ExchangeRefused);
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", self.secret.expose())
            .append_pair("code", code)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("code_verifier", pending.verifier.expose())
            .finish();
        let mut response = self
            .client
            .post(format!("{}/login/oauth/access_token", self.web_url))
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = %fetch::without_url(&e), "GitHub code exchange failed");
                LoginError::Unavailable
            })?;
        if !response.status().is_success() {
            tracing::warn!(
                status = response.status().as_u16(),
                "GitHub code exchange answered an error status"
            );
            return Err(
                if response.status().is_server_error() || response.status().as_u16() == 429 {
                    LoginError::Unavailable
                } else {
                    LoginError::ExchangeRefused
                },
            );
        }
        let body = fetch::read_capped(&mut response, EXCHANGE_BODY_CAP)
            .await
            .map_err(|_| LoginError::Unavailable)?;
        let doc: Value = serde_json::from_slice(&body).map_err(|_| LoginError::Unavailable)?;
        // GitHub answers 200 with an `error` member when it refuses the exchange.
        if let Some(error) = doc.get("error").and_then(Value::as_str) {
            if error == "incorrect_client_credentials" {
                tracing::error!(
                    "GitHub refused the app's client credentials on the code exchange; check auth.github"
                );
                return Err(LoginError::Misconfigured);
            }
            tracing::info!(error = sanitize(error), "GitHub refused the code exchange");
            return Err(LoginError::ExchangeRefused);
        }
        let token = doc
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| crate::credential::is_token68(t) && t.len() <= 255)
            .ok_or(LoginError::ExchangeRefused)?;
        Ok(Secret::new(token))
    }

    fn seal(&self, payload: &Value) -> String {
        let body = format!("v1.{}", URL_SAFE_NO_PAD.encode(payload.to_string()));
        let tag = aws_lc_rs::hmac::sign(&self.key, body.as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    fn open(&self, value: &str) -> Option<Value> {
        if value.len() > 1_024 {
            return None;
        }
        let (body, tag) = value.rsplit_once('.')?;
        let payload = body.strip_prefix("v1.")?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        aws_lc_rs::hmac::verify(&self.key, body.as_bytes(), &tag).ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }

    /// Signs any payload as a login cookie value, so tests can present cookies the server's own
    /// flow would never produce (a missing verifier, an expired one).
    #[cfg(feature = "testing")]
    pub fn seal_cookie_for_tests(&self, payload: &Value) -> String {
        self.seal(payload)
    }
}

/// An error code GitHub sent, reduced to `[a-z_]` for a log field.
fn sanitize(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_lowercase() || *c == '_')
        .take(64)
        .collect()
}

fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("the OS random generator works");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn login() -> (GitHubLogin, Arc<ManualClock>) {
        let config = GitHubConfig {
            client_id: "Iv1.ours".into(),
            client_secret: Some(Secret::new("s")),
            redirect_uri: Some("https://agui.example/auth/github/callback".into()),
            app_origin: Some("https://app.example".into()),
            ..GitHubConfig::default()
        };
        let clock = Arc::new(ManualClock::new());
        let login = GitHubLogin::new(
            &config,
            Secret::new("s"),
            None,
            reqwest::Client::new(),
            clock.clone(),
        );
        (login, clock)
    }

    fn query(location: &str, name: &str) -> String {
        url::Url::parse(location)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    }

    fn cookie_of(start: &LoginStart) -> String {
        start.set_cookie.split(';').next().unwrap().to_owned()
    }

    #[test]
    fn a_started_login_redirects_with_state_and_s256_and_a_hardened_cookie() {
        let (login, _) = login();
        let start = login.start();
        assert!(
            start
                .location
                .starts_with("https://github.com/login/oauth/authorize?")
        );
        assert_eq!(
            query(&start.location, "redirect_uri"),
            "https://agui.example/auth/github/callback"
        );
        assert_eq!(query(&start.location, "code_challenge_method"), "S256");
        assert_eq!(query(&start.location, "scope"), "read:user read:org");
        assert_eq!(query(&start.location, "code_challenge").len(), 43);
        for attribute in [
            "__Host-agui_github_login=",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/",
            "Max-Age=600",
        ] {
            assert!(
                start.set_cookie.contains(attribute),
                "{attribute}: {}",
                start.set_cookie
            );
        }
    }

    #[test]
    fn the_state_must_match_the_signed_cookie_once() {
        let (login, clock) = login();
        let start = login.start();
        let state = query(&start.location, "state");
        let cookie = cookie_of(&start);
        assert_eq!(
            login
                .check_callback(Some(&cookie), Some("other"))
                .unwrap_err(),
            LoginError::InvalidState
        );
        assert_eq!(
            login.check_callback(None, Some(&state)).unwrap_err(),
            LoginError::InvalidState
        );
        let tampered = format!("{cookie}x");
        assert_eq!(
            login
                .check_callback(Some(&tampered), Some(&state))
                .unwrap_err(),
            LoginError::InvalidState
        );
        // Positive control, then a replay of the very same callback.
        assert!(login.check_callback(Some(&cookie), Some(&state)).is_ok());
        assert_eq!(
            login
                .check_callback(Some(&cookie), Some(&state))
                .unwrap_err(),
            LoginError::InvalidState
        );
        // An expired login.
        let late = login.start();
        clock.advance(std::time::Duration::from_secs(601));
        let state = query(&late.location, "state");
        assert_eq!(
            login
                .check_callback(Some(&cookie_of(&late)), Some(&state))
                .unwrap_err(),
            LoginError::InvalidState
        );
    }

    #[test]
    fn a_cookie_without_a_verifier_is_refused() {
        let (login, clock) = login();
        let value = login.seal(&json!({"s": "st", "e": clock.unix_now() + 60}));
        let cookie = format!("{}={value}", login.cookie_name());
        assert_eq!(
            login.check_callback(Some(&cookie), Some("st")).unwrap_err(),
            LoginError::MissingVerifier
        );
    }
}
