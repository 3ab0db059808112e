//! The `AGUI_GITHUB_*` variables (and flags) that set `[auth.github]` without a TOML file, for
//! the common case of one GitHub app with a user allowlist.

use std::path::PathBuf;

use agui_auth::{GitHubConfig, Secret};
use clap::Args;

use crate::config::{Config, ConfigError};

/// GitHub settings that override `[auth.github]`.
#[derive(Debug, Clone, Default, Args)]
pub struct GitHubOverrides {
    /// The GitHub OAuth app's (or GitHub App's) client id; turns the GitHub verifier on.
    #[arg(long, env = "AGUI_GITHUB_CLIENT_ID")]
    pub github_client_id: Option<String>,
    /// Its client secret (prefer the file variant).
    #[arg(long, env = "AGUI_GITHUB_CLIENT_SECRET", hide_env_values = true)]
    pub github_client_secret: Option<Secret>,
    /// A file holding the client secret.
    #[arg(long, env = "AGUI_GITHUB_CLIENT_SECRET_FILE")]
    pub github_client_secret_file: Option<PathBuf>,
    /// The REST API root (GitHub Enterprise Server: https://HOST/api/v3).
    #[arg(long, env = "AGUI_GITHUB_API_URL")]
    pub github_api_url: Option<String>,
    /// The web root of the OAuth endpoints (GitHub Enterprise Server: https://HOST).
    #[arg(long, env = "AGUI_GITHUB_WEB_URL")]
    pub github_web_url: Option<String>,
    /// Where GitHub sends the browser back: agui-server's /auth/github/callback.
    #[arg(long, env = "AGUI_GITHUB_REDIRECT_URI")]
    pub github_redirect_uri: Option<String>,
    /// The origin of the app the sign-in hands the token to.
    #[arg(long, env = "AGUI_GITHUB_APP_ORIGIN")]
    pub github_app_origin: Option<String>,
    /// GitHub logins let in, comma separated.
    #[arg(long, env = "AGUI_GITHUB_ALLOWED_USERS", value_delimiter = ',')]
    pub github_allowed_users: Option<Vec<String>>,
    /// GitHub organizations whose members are let in, comma separated.
    #[arg(long, env = "AGUI_GITHUB_ALLOWED_ORGS", value_delimiter = ',')]
    pub github_allowed_orgs: Option<Vec<String>>,
}

impl GitHubOverrides {
    fn any(&self) -> bool {
        let o = self;
        o.github_client_id.is_some()
            || o.github_client_secret.is_some()
            || o.github_client_secret_file.is_some()
            || o.github_api_url.is_some()
            || o.github_web_url.is_some()
            || o.github_redirect_uri.is_some()
            || o.github_app_origin.is_some()
            || o.github_allowed_users.is_some()
            || o.github_allowed_orgs.is_some()
    }

    /// Applies the set variables to `[auth.github]`, creating it when the client id is given.
    ///
    /// # Errors
    /// GitHub settings without a client id (from the file or `AGUI_GITHUB_CLIENT_ID`), or both
    /// a secret and a secret file.
    pub fn apply(&self, config: &mut Config) -> Result<(), ConfigError> {
        if !self.any() {
            return Ok(());
        }
        if self.github_client_secret.is_some() && self.github_client_secret_file.is_some() {
            return Err(invalid(
                "AGUI_GITHUB_CLIENT_SECRET",
                "set AGUI_GITHUB_CLIENT_SECRET or AGUI_GITHUB_CLIENT_SECRET_FILE, not both",
            ));
        }
        let github = match (&mut config.auth.github, &self.github_client_id) {
            (Some(github), _) => github,
            (slot @ None, Some(_)) => slot.insert(GitHubConfig::default()),
            (None, None) => {
                return Err(invalid(
                    "AGUI_GITHUB_CLIENT_ID",
                    "GitHub settings are set but AGUI_GITHUB_CLIENT_ID (or [auth.github]) is not",
                ));
            }
        };
        let o = self.clone();
        set(&mut github.client_id, o.github_client_id);
        if let Some(secret) = o.github_client_secret {
            github.client_secret = Some(secret);
            github.client_secret_file = None;
        }
        if let Some(file) = o.github_client_secret_file {
            github.client_secret_file = Some(file);
            github.client_secret = None;
        }
        set(&mut github.api_url, o.github_api_url);
        set(&mut github.web_url, o.github_web_url);
        set(&mut github.redirect_uri, o.github_redirect_uri.map(Some));
        set(&mut github.app_origin, o.github_app_origin.map(Some));
        set(
            &mut github.allowed_users,
            o.github_allowed_users.map(trimmed),
        );
        set(&mut github.allowed_orgs, o.github_allowed_orgs.map(trimmed));
        Ok(())
    }
}

fn trimmed(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

fn invalid(setting: &'static str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        setting,
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_id_creates_the_table_and_the_rest_needs_it() {
        let mut config = Config::default();
        let env = GitHubOverrides {
            github_client_id: Some("Iv1.abc".into()),
            github_client_secret: Some(Secret::new("s3cret")),
            github_allowed_users: Some(vec![" octocat".into(), "".into(), "hubot".into()]),
            ..GitHubOverrides::default()
        };
        env.apply(&mut config).unwrap();
        let github = config.auth.github.as_ref().unwrap();
        assert_eq!(github.client_id, "Iv1.abc");
        assert_eq!(github.allowed_users, vec!["octocat", "hubot"]);
        assert_eq!(github.api_url, "https://api.github.com");
        assert!(
            !format!("{env:?}").contains("s3cret"),
            "the secret never prints"
        );

        let mut config = Config::default();
        let orphan = GitHubOverrides {
            github_api_url: Some("https://ghe.example/api/v3".into()),
            ..GitHubOverrides::default()
        };
        assert!(orphan.apply(&mut config).is_err());
        assert!(GitHubOverrides::default().apply(&mut config).is_ok());
        assert!(config.auth.github.is_none());
    }
}
