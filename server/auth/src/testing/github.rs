//! `GitHubStandIn`: a local GitHub for tests, written from GitHub's REST and OAuth documentation
//! (docs.github.com: "Authorizing OAuth apps", "Check a token", "Get the authenticated user",
//! "List organizations for the authenticated user", "List teams for the authenticated user",
//! "Rate limits for the REST API"). No test reaches github.com: the verifier and the login flow
//! are pointed at this server through the same `api_url` / `web_url` settings a GitHub
//! Enterprise Server user sets (web root `http://127.0.0.1:<port>`, API root `…/api/v3`).
//!
//! It serves:
//! - `GET /login/oauth/authorize`: a user picker (or auto-approve), then a redirect to
//!   `redirect_uri` with `code` and `state`, or `error=access_denied`;
//! - `POST /login/oauth/access_token`: code exchange checking the client secret, the redirect URI
//!   and PKCE (`code_verifier` against the S256 `code_challenge`); JSON with `Accept:
//!   application/json`, form-encoded otherwise; errors as GitHub sends them (200 + `error`);
//! - `POST /api/v3/applications/{client_id}/token`: Basic auth with the app's credentials; 200
//!   with the authorization for that app's tokens, 404 for other apps' tokens and PATs;
//! - `GET /api/v3/user`, `/user/orgs`, `/user/teams` (orgs and teams only with `read:org`),
//!   paginated with `Link`, every API answer with `x-ratelimit-*` headers;
//! - `/__standin/*`: a JSON control API for Node and browser suites (state and hits, faults,
//!   minting tokens, auto-approve, revocation).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::github::GitHubConfig;

/// A GitHub user of the stand-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandInUser {
    /// The numeric id (the principal's subject).
    pub id: u64,
    /// The login.
    pub login: String,
    /// The profile name.
    #[serde(default)]
    pub name: Option<String>,
    /// The public e-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// Organizations (logins) the user belongs to.
    #[serde(default)]
    pub orgs: Vec<String>,
    /// Teams (`org/team-slug`) the user belongs to.
    #[serde(default)]
    pub teams: Vec<String>,
}

/// An OAuth app registered at the stand-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandInApp {
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
    /// Display name.
    pub name: String,
}

/// Users and apps of a stand-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandInFixtures {
    /// The users.
    pub users: Vec<StandInUser>,
    /// The apps; [`StandInFixtures::default`] has ours ([`GitHubStandIn::CLIENT_ID`]) and another.
    pub apps: Vec<StandInApp>,
    /// Approve every authorize request as this login, without showing the picker.
    #[serde(default)]
    pub auto_approve: Option<String>,
}

impl Default for StandInFixtures {
    /// `octocat` (id 583231, "The Octocat", org `acme`, team `acme/platform`), `hubot` (id 1001,
    /// no name, team `acme/reports`), `mona` (id 2002, "Mona Lisa", no org); our app and
    /// `Iv1.other-app`.
    fn default() -> Self {
        let user =
            |id, login: &str, name: Option<&str>, orgs: &[&str], teams: &[&str]| StandInUser {
                id,
                login: login.to_owned(),
                name: name.map(String::from),
                email: Some(format!("{login}@github.test")),
                orgs: orgs.iter().map(|s| s.to_string()).collect(),
                teams: teams.iter().map(|s| s.to_string()).collect(),
            };
        Self {
            users: vec![
                user(
                    583_231,
                    "octocat",
                    Some("The Octocat"),
                    &["acme"],
                    &["acme/platform"],
                ),
                user(1_001, "hubot", None, &["acme"], &["acme/reports"]),
                user(2_002, "mona", Some("Mona Lisa"), &[], &[]),
            ],
            apps: vec![
                StandInApp {
                    client_id: GitHubStandIn::CLIENT_ID.to_owned(),
                    client_secret: GitHubStandIn::CLIENT_SECRET.to_owned(),
                    name: "agui-server tests".to_owned(),
                },
                StandInApp {
                    client_id: GitHubStandIn::OTHER_CLIENT_ID.to_owned(),
                    client_secret: "other-app-secret".to_owned(),
                    name: "Someone else's app".to_owned(),
                },
            ],
            auto_approve: None,
        }
    }
}

/// How the stand-in misbehaves (every route but `/__standin/*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GitHubFault {
    /// Answer normally.
    #[default]
    None,
    /// Primary rate limit: 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` in 60 s.
    RateLimited,
    /// Secondary rate limit: 429 with `retry-after: 30`.
    SecondaryRateLimit,
    /// 500.
    ServerError,
    /// Never answer.
    Hang,
}

/// Requests per endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GitHubHits {
    /// `GET /login/oauth/authorize`.
    pub authorize: u64,
    /// `POST /login/oauth/access_token`.
    pub access_token: u64,
    /// `POST /applications/{client_id}/token`.
    pub check_token: u64,
    /// `GET /user`.
    pub user: u64,
    /// `GET /user/orgs`.
    pub user_orgs: u64,
    /// `GET /user/teams`.
    pub user_teams: u64,
}

impl GitHubHits {
    /// Requests to any endpoint.
    pub fn total(&self) -> u64 {
        self.authorize
            + self.access_token
            + self.check_token
            + self.user
            + self.user_orgs
            + self.user_teams
    }
}

/// A token the stand-in issued.
#[derive(Debug, Clone)]
pub(crate) struct IssuedToken {
    /// The app it was issued to; `None` for a personal access token.
    pub app: Option<String>,
    pub login: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<i64>,
}

/// An authorization code waiting for its exchange.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub app: String,
    pub login: String,
    pub redirect_uri: Option<String>,
    pub challenge: Option<String>,
    pub scopes: Vec<String>,
    pub expires_at: i64,
}

pub(crate) struct StandInState {
    pub fixtures: Mutex<StandInFixtures>,
    pub tokens: Mutex<HashMap<String, IssuedToken>>,
    pub grants: Mutex<HashMap<String, Grant>>,
    pub fault: Mutex<GitHubFault>,
    pub hits: Mutex<GitHubHits>,
    pub last_issued: Mutex<Option<String>>,
    pub rate_used: Mutex<u64>,
}

/// Locks a std Mutex of the stand-in: never held across an await.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A local GitHub. Stops serving when dropped.
pub struct GitHubStandIn {
    pub(crate) state: Arc<StandInState>,
    addr: SocketAddr,
    _stop: DropGuard,
}

impl std::fmt::Debug for GitHubStandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubStandIn")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl GitHubStandIn {
    /// Our app's client id in [`StandInFixtures::default`].
    pub const CLIENT_ID: &'static str = "Iv1.agui-tests";
    /// Our app's client secret in [`StandInFixtures::default`].
    pub const CLIENT_SECRET: &'static str = "agui-tests-github-secret";
    /// Another app's client id.
    pub const OTHER_CLIENT_ID: &'static str = "Iv1.other-app";

    /// The default fixtures on `127.0.0.1:0`.
    ///
    /// # Panics
    /// If loopback cannot be bound.
    pub async fn start() -> GitHubStandIn {
        Self::start_with(
            StandInFixtures::default(),
            "127.0.0.1:0".parse().expect("address"),
        )
        .await
        .expect("bind 127.0.0.1:0")
    }

    /// `fixtures` on `bind` (loopback only).
    ///
    /// # Errors
    /// A non-loopback address or a bind failure.
    pub async fn start_with(
        fixtures: StandInFixtures,
        bind: SocketAddr,
    ) -> std::io::Result<GitHubStandIn> {
        if !bind.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the GitHub stand-in binds loopback only",
            ));
        }
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(StandInState {
            fixtures: Mutex::new(fixtures),
            tokens: Mutex::new(HashMap::new()),
            grants: Mutex::new(HashMap::new()),
            fault: Mutex::new(GitHubFault::None),
            hits: Mutex::new(GitHubHits::default()),
            last_issued: Mutex::new(None),
            rate_used: Mutex::new(0),
        });
        let router = super::github_http::router(state.clone());
        let stop = CancellationToken::new();
        let shutdown = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
        });
        Ok(GitHubStandIn {
            state,
            addr,
            _stop: stop.drop_guard(),
        })
    }

    /// The web root (`/login/oauth/*`): `http://127.0.0.1:<port>`; also the principals' issuer.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The API root, laid out like GitHub Enterprise Server: `http://127.0.0.1:<port>/api/v3`.
    pub fn api_url(&self) -> String {
        format!("{}/api/v3", self.url())
    }

    /// An `[auth.github]` for our app at this stand-in, no allowlists.
    pub fn github_config(&self) -> GitHubConfig {
        GitHubConfig {
            client_id: Self::CLIENT_ID.to_owned(),
            client_secret: Some(crate::Secret::new(Self::CLIENT_SECRET)),
            api_url: self.api_url(),
            web_url: self.url(),
            ..GitHubConfig::default()
        }
    }

    /// A `gho_` token of `client_id`'s app for `login` with `scopes`.
    ///
    /// # Panics
    /// Unknown login.
    pub fn mint_token(&self, client_id: &str, login: &str, scopes: &[&str]) -> String {
        self.issue("gho_", Some(client_id), login, scopes, None)
    }

    /// A `ghu_` GitHub App user token that expires at `expires_at` (Unix seconds).
    ///
    /// # Panics
    /// Unknown login.
    pub fn mint_app_user_token(
        &self,
        client_id: &str,
        login: &str,
        scopes: &[&str],
        expires_at: i64,
    ) -> String {
        self.issue("ghu_", Some(client_id), login, scopes, Some(expires_at))
    }

    /// A classic personal access token (`ghp_`) of `login`: valid for `/user`, never for the app check.
    ///
    /// # Panics
    /// Unknown login.
    pub fn mint_pat(&self, login: &str) -> String {
        self.issue("ghp_", None, login, &["repo", "read:org"], None)
    }

    pub(crate) fn issue(
        &self,
        prefix: &str,
        app: Option<&str>,
        login: &str,
        scopes: &[&str],
        expires_at: Option<i64>,
    ) -> String {
        issue(&self.state, prefix, app, login, scopes, expires_at)
    }

    /// Revokes a token: every endpoint treats it as unknown from now on.
    pub fn revoke(&self, token: &str) {
        lock(&self.state.tokens).remove(token);
    }

    /// Makes every route misbehave (or stop misbehaving).
    pub fn set_fault(&self, fault: GitHubFault) {
        *lock(&self.state.fault) = fault;
    }

    /// Approve authorize requests as `login` without the picker (`None`: show the picker).
    pub fn set_auto_approve(&self, login: Option<&str>) {
        lock(&self.state.fixtures).auto_approve = login.map(String::from);
    }

    /// Requests per endpoint so far.
    pub fn hits(&self) -> GitHubHits {
        *lock(&self.state.hits)
    }

    /// The token the last successful code exchange issued.
    pub fn last_issued_token(&self) -> Option<String> {
        lock(&self.state.last_issued).clone()
    }
}

/// Issues a token into `state` (shared with the control API).
pub(crate) fn issue(
    state: &StandInState,
    prefix: &str,
    app: Option<&str>,
    login: &str,
    scopes: &[&str],
    expires_at: Option<i64>,
) -> String {
    assert!(
        lock(&state.fixtures).users.iter().any(|u| u.login == login),
        "unknown stand-in user {login}"
    );
    let token = format!("{prefix}{}", random_alphanumeric(36));
    lock(&state.tokens).insert(
        token.clone(),
        IssuedToken {
            app: app.map(String::from),
            login: login.to_owned(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            expires_at,
        },
    );
    token
}

/// `n` random ASCII letters and digits (the body of a GitHub token).
pub(crate) fn random_alphanumeric(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; n];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}
