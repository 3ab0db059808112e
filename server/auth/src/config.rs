//! Issuer configuration, embedded by the app under `[auth]` in its TOML, and its fail-closed
//! validation.
//!
//! ```toml
//! [auth]
//! leeway_secs = 60
//!
//! [[auth.issuers]]
//! issuer = "https://keycloak.example.com/realms/demo"
//! audiences = ["agui"]
//! claims = { roles = ["/realm_access/roles"] }
//! ```
//!
//! The other verifiers' tables (`[auth.github]`, `[[auth.introspection]]`,
//! `[[auth.api_keys]]`) live beside their verifiers: [`crate::GitHubConfig`],
//! [`crate::IntrospectionConfig`], [`crate::ApiKeyConfig`]. Every table refuses unknown keys: a
//! misspelt `allow.subject` would otherwise silently leave an allow list empty.

use std::path::PathBuf;

use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};

pub use crate::settings::{AccessList, ClaimMapping, ConfigError, is_scope_token};
use crate::settings::{check_policy, check_url, parse_algorithm};

/// Everything the authenticator needs. Defaults: see each field.
///
/// Every table of the auth configuration refuses keys it does not know, naming the key and the
/// expected ones (`deny_unknown_fields`): a typo such as `requierd_scopes` must stop the server,
/// not silently drop a security policy (STYLE.md "Bound what you accept").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The trusted issuers; a token is matched to one by its `iss` (exact string).
    pub issuers: Vec<IssuerConfig>,
    /// GitHub user tokens issued to our OAuth or GitHub App, and the "Sign in with GitHub" flow.
    pub github: Option<crate::GitHubConfig>,
    /// Issuers whose opaque access tokens are checked by RFC 7662 introspection.
    pub introspection: Vec<crate::IntrospectionConfig>,
    /// API keys for services and scripts (only their SHA-256 hashes), reloaded on SIGHUP.
    pub api_keys: Vec<crate::ApiKeyConfig>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds (default 60; 0 allowed, at most 300).
    pub leeway_secs: u64,
    /// Largest accepted `exp - iat`, in seconds (default 86 400 = 24 h).
    pub max_token_lifetime_secs: u64,
    /// Largest accepted token, in bytes, checked before any decoding (default 8 192).
    pub max_token_bytes: usize,
    /// Whether `forwardedProps.authorization` is accepted (default true). The app enforces it.
    pub accept_body_token: bool,
    /// Extra PEM root certificates for private IdPs (`AGUI_CA_FILE`), merged with the system roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            github: None,
            introspection: Vec::new(),
            api_keys: Vec::new(),
            leeway_secs: 60,
            max_token_lifetime_secs: 86_400,
            max_token_bytes: 8_192,
            accept_body_token: true,
            ca_file: None,
        }
    }
}

/// One trusted OpenID Connect issuer (`[[auth.issuers]]`; unknown keys are refused).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IssuerConfig {
    /// The issuer identifier, exactly as the tokens' `iss` and the discovery document's `issuer`
    /// spell it (a trailing slash matters: Auth0 has one, Keycloak does not).
    pub issuer: String,
    /// Accepted audiences; a token's `aud` (string or array) must contain one. Never empty.
    pub audiences: Vec<String>,
    /// Algorithm allowlist. Default RS256, PS256, ES256, ES384, EdDSA. HS* and `none` are refused.
    pub algorithms: Vec<String>,
    /// Which `typ` headers are accepted (default lenient).
    pub typ: TypPolicy,
    /// Where the principal's fields are read from (JSON Pointers, RFC 6901).
    pub claims: ClaimMapping,
    /// Scopes every token must carry (403 `insufficient_scope` otherwise).
    pub required_scopes: Vec<String>,
    /// If any list here is non-empty, a principal must match at least one entry.
    pub allow: AccessList,
    /// A principal matching any entry here is refused (403 `access_denied`).
    pub deny: AccessList,
    /// Allows `http://` for a non-loopback issuer or JWKS URL (default false: https, or http on loopback).
    pub allow_http: bool,
    /// Use this JWKS URL instead of the discovery document's `jwks_uri` (discovery is then skipped).
    pub jwks_uri: Option<String>,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            audiences: Vec::new(),
            algorithms: default_algorithms(),
            typ: TypPolicy::default(),
            claims: ClaimMapping::default(),
            required_scopes: Vec::new(),
            allow: AccessList::default(),
            deny: AccessList::default(),
            allow_http: false,
            jwks_uri: None,
        }
    }
}

impl IssuerConfig {
    /// An issuer with the defaults and these audiences.
    pub fn new(
        issuer: impl Into<String>,
        audiences: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            audiences: audiences.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

fn default_algorithms() -> Vec<String> {
    ["RS256", "PS256", "ES256", "ES384", "EdDSA"]
        .into_iter()
        .map(String::from)
        .collect()
}

/// Which JWT `typ` header values are accepted (compared case-insensitively).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TypPolicy {
    /// Absent, `JWT`, `at+jwt` or `application/at+jwt`: what deployed issuers actually send.
    #[default]
    Lenient,
    /// Only `at+jwt` or `application/at+jwt` (RFC 9068 §4), which keeps ID tokens out.
    Strict,
}

impl AuthConfig {
    /// One issuer from the single-issuer environment variables (`AGUI_OIDC_ISSUER`,
    /// `AGUI_OIDC_AUDIENCE` comma separated, `AGUI_OIDC_REQUIRED_SCOPES` space or comma separated),
    /// everything else at its default. The caller reads the variables; this only parses them.
    ///
    /// # Errors
    /// The resulting config does not pass [`AuthConfig::validate`].
    pub fn from_env_single_issuer(
        issuer: &str,
        audiences: &str,
        required_scopes: &str,
    ) -> Result<Self, ConfigError> {
        let split = |s: &str| -> Vec<String> {
            s.split([',', ' '])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        let issuer_config = IssuerConfig {
            issuer: issuer.trim().to_owned(),
            audiences: split(audiences),
            required_scopes: split(required_scopes),
            ..IssuerConfig::default()
        };
        let config = Self {
            issuers: vec![issuer_config],
            ..Self::default()
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks everything that can be checked without the network, with messages that say what
    /// to change.
    ///
    /// # Errors
    /// No verifier at all, duplicate issuers, an issuer or JWKS URL that is not https (outside
    /// loopback without `allow_http`), no audience, an empty or unknown algorithm list, HS* or
    /// `none`, a bad JSON Pointer, a scope that cannot be put in a challenge, out-of-range
    /// numbers; and whatever the GitHub, introspection and API-key tables refuse.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.issuers.is_empty()
            && self.github.is_none()
            && self.introspection.is_empty()
            && self.api_keys.is_empty()
        {
            return Err(ConfigError::NoIssuers);
        }
        if self.leeway_secs > 300 {
            return Err(setting("leeway_secs", "must be at most 300 seconds"));
        }
        if self.max_token_lifetime_secs == 0 {
            return Err(setting("max_token_lifetime_secs", "must be positive"));
        }
        if !(1_024..=65_536).contains(&self.max_token_bytes) {
            return Err(setting("max_token_bytes", "must be between 1024 and 65536"));
        }
        let mut seen = std::collections::HashSet::new();
        for issuer in &self.issuers {
            if !seen.insert(issuer.issuer.as_str()) {
                return Err(issuer_error(issuer, "is configured twice"));
            }
            issuer.validate()?;
        }
        if let Some(github) = &self.github {
            github.validate()?;
        }
        crate::introspection::validate_all(&self.introspection)?;
        crate::api_keys::validate_all(&self.api_keys)?;
        Ok(())
    }
}

impl IssuerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: &str| issuer_error(self, m);
        let url = check_url(&self.issuer, self.allow_http)
            .map_err(|m| err(&format!("issuer URL {m}")))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(err(
                "issuer URL must not have a query or fragment (OIDC Discovery §2)",
            ));
        }
        if let Some(jwks) = &self.jwks_uri {
            check_url(jwks, self.allow_http).map_err(|m| err(&format!("jwks_uri {m}")))?;
        }
        if self.audiences.is_empty() || self.audiences.iter().any(|a| a.trim().is_empty()) {
            return Err(err(
                "audiences must list at least one non-empty audience (the API identifier tokens are minted for)",
            ));
        }
        self.parsed_algorithms().map_err(|m| err(&m))?;
        check_policy(&self.claims, &self.required_scopes, &self.allow, &self.deny)
            .map_err(|m| err(&m))
    }

    /// The allowlist as jsonwebtoken algorithms.
    pub(crate) fn parsed_algorithms(&self) -> Result<Vec<Algorithm>, String> {
        if self.algorithms.is_empty() {
            return Err("algorithms must not be empty".into());
        }
        self.algorithms
            .iter()
            .map(|name| parse_algorithm(name))
            .collect()
    }
}

fn issuer_error(issuer: &IssuerConfig, message: &str) -> ConfigError {
    ConfigError::Issuer {
        issuer: issuer.issuer.clone(),
        message: message.to_owned(),
    }
}

fn setting(setting: &'static str, message: &str) -> ConfigError {
    ConfigError::Setting {
        setting,
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(issuer: IssuerConfig) -> AuthConfig {
        AuthConfig {
            issuers: vec![issuer],
            ..AuthConfig::default()
        }
    }

    fn message(config: &AuthConfig) -> String {
        config.validate().unwrap_err().to_string()
    }

    #[test]
    fn a_good_config_passes() {
        let config = one(IssuerConfig::new(
            "https://idp.example.com/realms/demo",
            ["agui"],
        ));
        assert_eq!(config.validate(), Ok(()));
        let local = one(IssuerConfig::new("http://127.0.0.1:8080", ["agui"]));
        assert_eq!(local.validate(), Ok(()), "loopback http is allowed");
    }

    #[test]
    fn no_issuer_fails_closed() {
        assert_eq!(
            AuthConfig::default().validate(),
            Err(ConfigError::NoIssuers)
        );
    }

    #[test]
    fn hmac_and_none_are_refused() {
        for alg in ["HS256", "none", "NONE", "ES512"] {
            let mut issuer = IssuerConfig::new("https://idp.example.com", ["agui"]);
            issuer.algorithms = vec!["RS256".into(), alg.into()];
            let msg = message(&one(issuer));
            assert!(msg.contains(alg) || msg.contains("none"), "{msg}");
        }
    }

    #[test]
    fn http_needs_loopback_or_allow_http() {
        let mut issuer = IssuerConfig::new("http://idp.example.com", ["agui"]);
        assert!(message(&one(issuer.clone())).contains("allow_http"));
        issuer.allow_http = true;
        assert_eq!(one(issuer).validate(), Ok(()));
    }

    #[test]
    fn audiences_pointers_and_scopes_are_checked() {
        let issuer = IssuerConfig::new("https://idp.example.com", Vec::<String>::new());
        assert!(message(&one(issuer)).contains("audiences"));
        let mut issuer = IssuerConfig::new("https://idp.example.com", ["agui"]);
        issuer.claims.roles = vec!["realm_access.roles".into()];
        assert!(message(&one(issuer.clone())).contains("JSON Pointer"));
        issuer.claims.roles = vec!["/a~2b".into()];
        assert!(message(&one(issuer.clone())).contains("JSON Pointer"));
        issuer.claims.roles = vec!["/https:~1~1example.com~1roles".into()];
        assert_eq!(one(issuer.clone()).validate(), Ok(()));
        issuer.required_scopes = vec!["bad\"scope".into()];
        assert!(message(&one(issuer)).contains("scope"));
    }

    #[test]
    fn duplicate_issuers_and_bad_numbers_are_refused() {
        let issuer = IssuerConfig::new("https://idp.example.com", ["agui"]);
        let config = AuthConfig {
            issuers: vec![issuer.clone(), issuer.clone()],
            ..AuthConfig::default()
        };
        assert!(message(&config).contains("twice"));
        let config = AuthConfig {
            leeway_secs: 3_600,
            ..one(issuer)
        };
        assert!(message(&config).contains("leeway"));
    }

    #[test]
    fn single_issuer_from_env_values() {
        let config = AuthConfig::from_env_single_issuer(
            "https://idp.example.com/",
            "api://chat, agui",
            "chat",
        )
        .unwrap();
        let issuer = &config.issuers[0];
        assert_eq!(issuer.issuer, "https://idp.example.com/");
        assert_eq!(issuer.audiences, vec!["api://chat", "agui"]);
        assert_eq!(issuer.required_scopes, vec!["chat"]);
        assert!(AuthConfig::from_env_single_issuer("https://idp.example.com", "", "").is_err());
    }

    /// Parses `[auth]` TOML the way the app embeds it.
    fn auth_from_toml(text: &str) -> Result<AuthConfig, String> {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wrapper {
            auth: AuthConfig,
        }
        toml::from_str::<Wrapper>(text)
            .map(|w| w.auth)
            .map_err(|e| e.to_string())
    }

    const ISSUER: &str =
        "[[auth.issuers]]\nissuer = \"https://idp.example.com\"\naudiences = [\"agui\"]\n";

    /// A typo in any auth table is refused, naming the key and listing the expected ones; the
    /// correctly spelled key (the control) is accepted and takes effect.
    #[test]
    fn a_typo_in_any_auth_table_is_refused_by_name() {
        type Check = fn(&AuthConfig) -> bool;
        let cases: [(&str, &str, &str, &str, Check); 6] = [
            (
                "[auth]\nleeway_sec = 5\n",
                "leeway_sec",
                "leeway_secs",
                "[auth]\nleeway_secs = 5\n",
                |c| c.leeway_secs == 5,
            ),
            (
                "requierd_scopes = [\"chat\"]\n",
                "requierd_scopes",
                "required_scopes",
                "required_scopes = [\"chat\"]\n",
                |c| c.issuers[0].required_scopes == ["chat"],
            ),
            (
                "[auth.issuers.deny]\nsubject = [\"mallory\"]\n",
                "subject",
                "subjects",
                "[auth.issuers.deny]\nsubjects = [\"mallory\"]\n",
                |c| c.issuers[0].deny.subjects == ["mallory"],
            ),
            (
                "[auth.issuers.allow]\ngroup = [\"staff\"]\n",
                "group",
                "groups",
                "[auth.issuers.allow]\ngroups = [\"staff\"]\n",
                |c| c.issuers[0].allow.groups == ["staff"],
            ),
            (
                "[auth.issuers.claims]\nrole = \"/groups\"\n",
                "role",
                "roles",
                "[auth.issuers.claims]\nroles = \"/groups\"\n",
                |c| c.issuers[0].claims.roles == ["/groups"],
            ),
            (
                "claims = { emial = \"/mail\" }\n",
                "emial",
                "email",
                "claims = { email = \"/mail\" }\n",
                |c| c.issuers[0].claims.email == ["/mail"],
            ),
        ];
        for (typo, key, expected, correct, took_effect) in cases {
            // `[auth]` must come before the issuer array; the others extend the issuer.
            let with = |snippet: &str| {
                if snippet.starts_with("[auth]") {
                    format!("{snippet}{ISSUER}")
                } else {
                    format!("{ISSUER}{snippet}")
                }
            };
            let message = auth_from_toml(&with(typo)).expect_err(typo);
            assert!(
                message.contains(&format!("unknown field `{key}`")),
                "{typo}: {message}"
            );
            assert!(
                message.contains(&format!("`{expected}`")),
                "the expected keys are listed: {message}"
            );
            let config =
                auth_from_toml(&with(correct)).unwrap_or_else(|e| panic!("{correct}: {e}"));
            assert!(took_effect(&config), "{correct} did not take effect");
            assert_eq!(config.validate(), Ok(()));
        }
    }

    #[test]
    fn toml_with_defaults_and_one_or_many_pointers() {
        #[derive(Deserialize)]
        struct Wrapper {
            auth: AuthConfig,
        }
        let text = r#"
            [auth]
            leeway_secs = 0
            [[auth.issuers]]
            issuer = "https://idp.example.com"
            audiences = ["agui"]
            typ = "strict"
            claims = { name = "/preferred_username", roles = ["/realm_access/roles", "/groups"] }
        "#;
        let w: Wrapper = toml::from_str(text).unwrap();
        assert_eq!(w.auth.leeway_secs, 0);
        assert_eq!(w.auth.max_token_bytes, 8_192);
        let issuer = &w.auth.issuers[0];
        assert_eq!(issuer.typ, TypPolicy::Strict);
        assert_eq!(issuer.claims.name, vec!["/preferred_username"]);
        assert_eq!(issuer.claims.email, vec!["/email"]);
        assert_eq!(issuer.algorithms.len(), 5);
        assert_eq!(w.auth.validate(), Ok(()));
    }
}
