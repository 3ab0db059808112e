//! `[auth.github]`: our GitHub app, the allowlists, the role mapping, the cache and the
//! "Sign in with GitHub" settings.
//!
//! ```toml
//! [auth.github]
//! client_id = "Iv1.0123456789abcdef"
//! client_secret_file = "/run/secrets/github-client-secret"
//! allowed_orgs = ["acme"]
//! roles = { admin = ["acme/platform"] }
//! redirect_uri = "https://agui.example.com/auth/github/callback"
//! app_origin = "https://app.example.com"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::settings::{ConfigError, check_url, is_scope_token};

/// GitHub.com's REST API.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// GitHub.com's web host (OAuth endpoints; the issuer of GitHub principals).
pub const DEFAULT_WEB_URL: &str = "https://github.com";

/// Settings of the GitHub verifier and login flow. Defaults: see each field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GitHubConfig {
    /// The OAuth app's (or GitHub App's) client id (`AGUI_GITHUB_CLIENT_ID`). Tokens are accepted
    /// only if GitHub says they were issued to this app.
    pub client_id: String,
    /// Its client secret (`AGUI_GITHUB_CLIENT_SECRET`); masked in every output.
    pub client_secret: Option<Secret>,
    /// A file holding the client secret (`AGUI_GITHUB_CLIENT_SECRET_FILE`); exclusive with
    /// `client_secret`.
    pub client_secret_file: Option<PathBuf>,
    /// The REST API root (`AGUI_GITHUB_API_URL`): `https://api.github.com`, or
    /// `https://<host>/api/v3` for GitHub Enterprise Server.
    pub api_url: String,
    /// The web root serving `/login/oauth/*` (`AGUI_GITHUB_WEB_URL`): `https://github.com`, or the
    /// Enterprise host. Also the issuer of GitHub principals.
    pub web_url: String,
    /// Allow plain `http://` API and web URLs off loopback (never in production).
    pub allow_http: bool,
    /// GitHub logins let in (case-insensitive). With the other two lists: a user matching any
    /// entry of any non-empty list gets in; all empty = every user of our app.
    pub allowed_users: Vec<String>,
    /// Organizations whose members are let in (needs the `read:org` scope on the token).
    pub allowed_orgs: Vec<String>,
    /// Teams (`org/team-slug`) whose members are let in (needs `read:org`).
    pub allowed_teams: Vec<String>,
    /// Roles from team membership: `admin = ["acme/platform"]` (needs `read:org`).
    pub roles: BTreeMap<String, Vec<String>>,
    /// How long an accepted token is remembered (never past its own expiry).
    pub cache_ttl_secs: u64,
    /// How long a refused token is remembered (0 = not at all).
    pub negative_cache_ttl_secs: u64,
    /// Most tokens remembered.
    pub cache_capacity: usize,
    /// Where GitHub sends the browser back (`AGUI_GITHUB_REDIRECT_URI`), exactly as registered
    /// with the app: agui-server's `/auth/github/callback` as the browser sees it. With
    /// `app_origin`, turns on `GET /auth/github/login` and the callback.
    pub redirect_uri: Option<String>,
    /// The origin of the app that opens the login window (`AGUI_GITHUB_APP_ORIGIN`): the only
    /// origin the token is posted to.
    pub app_origin: Option<String>,
    /// Scopes the login flow asks for.
    pub scopes: Vec<String>,
    /// Key that signs the login cookie (at least 32 bytes); absent = random per process (set it
    /// when several replicas serve the login).
    pub login_cookie_key: Option<Secret>,
    /// A file holding that key; exclusive with `login_cookie_key`.
    pub login_cookie_key_file: Option<PathBuf>,
    /// How long a started login may take.
    pub login_ttl_secs: u64,
}

impl Default for GitHubConfig {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: None,
            client_secret_file: None,
            api_url: DEFAULT_API_URL.to_owned(),
            web_url: DEFAULT_WEB_URL.to_owned(),
            allow_http: false,
            allowed_users: Vec::new(),
            allowed_orgs: Vec::new(),
            allowed_teams: Vec::new(),
            roles: BTreeMap::new(),
            cache_ttl_secs: 300,
            negative_cache_ttl_secs: 60,
            cache_capacity: 10_000,
            redirect_uri: None,
            app_origin: None,
            scopes: vec!["read:user".into(), "read:org".into()],
            login_cookie_key: None,
            login_cookie_key_file: None,
            login_ttl_secs: 600,
        }
    }
}

impl GitHubConfig {
    /// The issuer of GitHub principals: the web root without a trailing slash.
    pub fn issuer(&self) -> String {
        self.web_url.trim_end_matches('/').to_owned()
    }

    /// Whether orgs or teams must be read (allowlists or roles use them).
    pub(crate) fn needs_memberships(&self) -> bool {
        !self.allowed_orgs.is_empty() || !self.allowed_teams.is_empty() || !self.roles.is_empty()
    }

    /// Whether the login routes are on.
    pub fn login_enabled(&self) -> bool {
        self.redirect_uri.is_some() && self.app_origin.is_some()
    }

    /// Reads the client secret from where it is configured.
    pub(crate) fn resolve_secret(&self) -> Result<Secret, ConfigError> {
        let secret = match (&self.client_secret, &self.client_secret_file) {
            (Some(secret), None) => secret.clone(),
            (None, Some(path)) => {
                Secret::from_file(path).map_err(|m| err(&format!("client_secret_file: {m}")))?
            }
            _ => {
                return Err(err(
                    "set exactly one of client_secret and client_secret_file",
                ));
            }
        };
        if secret.is_empty() {
            return Err(err("the client secret is empty"));
        }
        Ok(secret)
    }

    /// Reads the login cookie key, if one is configured.
    pub(crate) fn resolve_cookie_key(&self) -> Result<Option<Secret>, ConfigError> {
        let key = match (&self.login_cookie_key, &self.login_cookie_key_file) {
            (None, None) => return Ok(None),
            (Some(key), None) => key.clone(),
            (None, Some(path)) => {
                Secret::from_file(path).map_err(|m| err(&format!("login_cookie_key_file: {m}")))?
            }
            _ => {
                return Err(err(
                    "set at most one of login_cookie_key and login_cookie_key_file",
                ));
            }
        };
        if key.expose().len() < 32 {
            return Err(err("the login cookie key must be at least 32 bytes"));
        }
        Ok(Some(key))
    }

    /// Checks everything that needs no network or file.
    ///
    /// # Errors
    /// The first problem, naming the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let id_ok = !self.client_id.is_empty()
            && self.client_id.len() <= 100
            && self
                .client_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !id_ok {
            return Err(err(
                "client_id must be the app's client id (AGUI_GITHUB_CLIENT_ID: letters, digits, '.', '-', '_')",
            ));
        }
        match (&self.client_secret, &self.client_secret_file) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => {
                return Err(err(
                    "set exactly one of client_secret (AGUI_GITHUB_CLIENT_SECRET) and client_secret_file (AGUI_GITHUB_CLIENT_SECRET_FILE)",
                ));
            }
        }
        for (name, url) in [("api_url", &self.api_url), ("web_url", &self.web_url)] {
            let parsed =
                check_url(url, self.allow_http).map_err(|m| err(&format!("{name} {m}")))?;
            if parsed.query().is_some() || parsed.fragment().is_some() {
                return Err(err(&format!("{name} must not have a query or fragment")));
            }
        }
        for user in self.allowed_users.iter().chain(&self.allowed_orgs) {
            if !is_login(user) {
                return Err(err(&format!(
                    "{user:?} in allowed_users/allowed_orgs is not a GitHub login (1-39 letters, digits or '-')"
                )));
            }
        }
        for team in self
            .allowed_teams
            .iter()
            .chain(self.roles.values().flatten())
        {
            if !is_team(team) {
                return Err(err(&format!(
                    "{team:?} in allowed_teams/roles is not `org/team-slug`"
                )));
            }
        }
        if self.roles.keys().any(|r| !is_scope_token(r)) {
            return Err(err(
                "role names must be non-empty words without spaces or quotes",
            ));
        }
        if !(1..=3_600).contains(&self.cache_ttl_secs) {
            return Err(err("cache_ttl_secs must be 1-3600"));
        }
        if self.negative_cache_ttl_secs > 3_600 {
            return Err(err("negative_cache_ttl_secs must be at most 3600"));
        }
        if !(1..=1_000_000).contains(&self.cache_capacity) {
            return Err(err("cache_capacity must be 1-1000000"));
        }
        self.validate_login()
    }

    fn validate_login(&self) -> Result<(), ConfigError> {
        match (&self.redirect_uri, &self.app_origin) {
            (None, None) => return Ok(()),
            (Some(_), Some(_)) => {}
            _ => {
                return Err(err(
                    "set both redirect_uri and app_origin for the login flow, or neither",
                ));
            }
        }
        let redirect = self.redirect_uri.as_deref().unwrap_or_default();
        let parsed =
            check_url(redirect, self.allow_http).map_err(|m| err(&format!("redirect_uri {m}")))?;
        if parsed.fragment().is_some() {
            return Err(err("redirect_uri must not have a fragment"));
        }
        let origin = self.app_origin.as_deref().unwrap_or_default();
        let parsed =
            check_url(origin, self.allow_http).map_err(|m| err(&format!("app_origin {m}")))?;
        if parsed.path() != "/"
            || parsed.query().is_some()
            || parsed.fragment().is_some()
            || origin.ends_with('/')
        {
            return Err(err(
                "app_origin must be an origin: scheme://host[:port], no path or trailing slash",
            ));
        }
        if self.scopes.iter().any(|s| !is_scope_token(s)) {
            return Err(err("scopes must be scope tokens such as read:user"));
        }
        let reads_org = self
            .scopes
            .iter()
            .any(|s| matches!(s.as_str(), "read:org" | "write:org" | "admin:org"));
        if self.needs_memberships() && !reads_org {
            return Err(err(
                "allowed_orgs, allowed_teams and roles read org and team memberships: add read:org to scopes",
            ));
        }
        if !(60..=3_600).contains(&self.login_ttl_secs) {
            return Err(err("login_ttl_secs must be 60-3600"));
        }
        if self.login_cookie_key.is_some() && self.login_cookie_key_file.is_some() {
            return Err(err(
                "set at most one of login_cookie_key and login_cookie_key_file",
            ));
        }
        if self
            .login_cookie_key
            .as_ref()
            .is_some_and(|k| k.expose().len() < 32)
        {
            return Err(err("login_cookie_key must be at least 32 bytes"));
        }
        Ok(())
    }
}

/// GitHub logins and org names: 1-39 letters, digits or hyphens.
fn is_login(s: &str) -> bool {
    (1..=39).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `org/team-slug`.
fn is_team(s: &str) -> bool {
    s.split_once('/').is_some_and(|(org, slug)| {
        is_login(org)
            && !slug.is_empty()
            && slug.len() <= 100
            && slug
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    })
}

fn err(message: &str) -> ConfigError {
    ConfigError::Setting {
        setting: "auth.github",
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> GitHubConfig {
        GitHubConfig {
            client_id: "Iv1.abc".into(),
            client_secret: Some(Secret::new("s")),
            ..GitHubConfig::default()
        }
    }

    #[test]
    fn a_minimal_config_is_valid_and_bad_ones_name_the_problem() {
        assert_eq!(good().validate(), Ok(()));
        type Spoil = fn(&mut GitHubConfig);
        let cases: [(&str, Spoil); 8] = [
            ("client_id", |c| c.client_id = "a/b".into()),
            ("client_secret", |c| c.client_secret = None),
            ("api_url", |c| c.api_url = "http://api.example.com".into()),
            ("allowed_users", |c| {
                c.allowed_users = vec!["bad user".into()]
            }),
            ("org/team-slug", |c| c.allowed_teams = vec!["acme".into()]),
            ("both redirect_uri", |c| {
                c.redirect_uri = Some("https://a.example/cb".into())
            }),
            ("app_origin", |c| {
                c.redirect_uri = Some("https://a.example/cb".into());
                c.app_origin = Some("https://app.example/path".into());
            }),
            ("read:org", |c| {
                c.redirect_uri = Some("https://a.example/cb".into());
                c.app_origin = Some("https://app.example".into());
                c.allowed_orgs = vec!["acme".into()];
                c.scopes = vec!["read:user".into()];
            }),
        ];
        for (needle, spoil) in cases {
            let mut config = good();
            spoil(&mut config);
            let message = config.validate().unwrap_err().to_string();
            assert!(message.contains(needle), "{needle}: {message}");
        }
    }

    #[test]
    fn the_secret_is_masked_when_serialized() {
        let config = GitHubConfig {
            client_secret: Some(Secret::new("hunter2-secret")),
            ..good()
        };
        let toml = toml::to_string(&config).unwrap();
        assert!(!toml.contains("hunter2"), "{toml}");
        assert!(!format!("{config:?}").contains("hunter2"));
        assert_eq!(config.issuer(), "https://github.com");
    }
}
