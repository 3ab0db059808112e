//! `[[auth.introspection]]`: an issuer whose opaque access tokens are checked by RFC 7662
//! introspection.
//!
//! ```toml
//! [[auth.introspection]]
//! issuer = "https://keycloak.example.com/realms/acme"
//! client_id = "agui-server"
//! client_secret_file = "/run/secrets/introspection-secret"
//! audiences = ["agui-server"]
//! claims.roles = ["/realm_access/roles"]
//! ```
//!
//! **Audience rule.** A response whose `aud` (a string or an array) names any audience must name
//! one of `audiences`. A response without `aud` is refused unless `allow_missing_audience =
//! true`, for issuers that never put an audience in their tokens. With `audiences` empty and
//! `allow_missing_audience` off nothing could pass, so start-up refuses it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::settings::{
    AccessList, ClaimMapping, ConfigError, check_policy, check_url, is_token68_prefix,
};

/// How agui-server authenticates to the introspection endpoint (RFC 7662 §2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// HTTP Basic with the form-urlencoded client id and secret (RFC 6749 §2.3.1).
    #[default]
    ClientSecretBasic,
}

/// One introspection issuer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntrospectionConfig {
    /// The issuer identifier; a response's `iss`, when present, must equal it.
    pub issuer: String,
    /// The introspection endpoint; absent = the discovery document's `introspection_endpoint`.
    pub endpoint: Option<String>,
    /// Client authentication at the endpoint.
    pub auth_method: ClientAuthMethod,
    /// Our client id at the issuer.
    pub client_id: String,
    /// Our client secret (masked in every output).
    pub client_secret: Option<Secret>,
    /// A file holding the client secret; exclusive with `client_secret`.
    pub client_secret_file: Option<PathBuf>,
    /// Accepted audiences (see the audience rule in the module docs).
    pub audiences: Vec<String>,
    /// Accept responses without `aud`.
    pub allow_missing_audience: bool,
    /// When the response has no `sub` (client-credentials tokens), use `client_id` as the subject,
    /// as RFC 9068 §2.2 does for JWTs. Off: such tokens are refused.
    pub subject_from_client_id: bool,
    /// Where the principal's fields are read from in the response (JSON Pointers).
    pub claims: ClaimMapping,
    /// Scopes every token must carry.
    pub required_scopes: Vec<String>,
    /// If any list here is non-empty, a principal must match at least one entry.
    pub allow: AccessList,
    /// A principal matching any entry here is refused.
    pub deny: AccessList,
    /// Allow `http://` off loopback.
    pub allow_http: bool,
    /// Only tokens starting with this go to this issuer (e.g. Ory's `ory_at_`). With several
    /// introspection issuers, at most one may omit it, so a token is only ever sent to one
    /// endpoint.
    pub token_prefix: Option<String>,
    /// Longest time an active token is remembered (never past its `exp`).
    pub cache_max_secs: u64,
    /// How long a refused token is remembered (0 = not at all).
    pub negative_cache_secs: u64,
    /// Most tokens remembered.
    pub cache_capacity: usize,
}

impl Default for IntrospectionConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            endpoint: None,
            auth_method: ClientAuthMethod::default(),
            client_id: String::new(),
            client_secret: None,
            client_secret_file: None,
            audiences: Vec::new(),
            allow_missing_audience: false,
            subject_from_client_id: false,
            claims: ClaimMapping::default(),
            required_scopes: Vec::new(),
            allow: AccessList::default(),
            deny: AccessList::default(),
            allow_http: false,
            token_prefix: None,
            cache_max_secs: 60,
            negative_cache_secs: 30,
            cache_capacity: 10_000,
        }
    }
}

impl IntrospectionConfig {
    pub(crate) fn resolve_secret(&self) -> Result<Secret, ConfigError> {
        let secret = match (&self.client_secret, &self.client_secret_file) {
            (Some(s), None) => s.clone(),
            (None, Some(path)) => Secret::from_file(path)
                .map_err(|m| self.err(&format!("client_secret_file: {m}")))?,
            _ => return Err(self.err("set exactly one of client_secret and client_secret_file")),
        };
        if secret.is_empty() {
            return Err(self.err("the client secret is empty"));
        }
        Ok(secret)
    }

    fn err(&self, message: &str) -> ConfigError {
        ConfigError::Issuer {
            issuer: self.issuer.clone(),
            message: format!("[[auth.introspection]]: {message}"),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: &str| self.err(m);
        let url = check_url(&self.issuer, self.allow_http)
            .map_err(|m| err(&format!("issuer URL {m}")))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(err("issuer URL must not have a query or fragment"));
        }
        if let Some(endpoint) = &self.endpoint {
            check_url(endpoint, self.allow_http).map_err(|m| err(&format!("endpoint {m}")))?;
        }
        if self.client_id.trim().is_empty() {
            return Err(err(
                "client_id is required (agui-server's client at the issuer)",
            ));
        }
        match (&self.client_secret, &self.client_secret_file) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => {
                return Err(err(
                    "set exactly one of client_secret and client_secret_file",
                ));
            }
        }
        if self.audiences.iter().any(|a| a.trim().is_empty()) {
            return Err(err("audiences must not contain empty entries"));
        }
        if self.audiences.is_empty() && !self.allow_missing_audience {
            return Err(err(
                "audiences must list at least one audience; for an issuer whose tokens carry none, set allow_missing_audience = true",
            ));
        }
        check_policy(&self.claims, &self.required_scopes, &self.allow, &self.deny)
            .map_err(|m| err(&m))?;
        if let Some(prefix) = &self.token_prefix {
            if !is_token68_prefix(prefix) || prefix.len() > 64 {
                return Err(err("token_prefix must be 1-64 token characters"));
            }
            if let Some(reserved) = crate::route::RESERVED_PREFIXES
                .iter()
                .find(|r| r.starts_with(prefix.as_str()) || prefix.starts_with(*r))
            {
                return Err(err(&format!(
                    "token_prefix {prefix:?} overlaps {reserved:?}, which belongs to another verifier"
                )));
            }
        }
        if !(1..=3_600).contains(&self.cache_max_secs) {
            return Err(err("cache_max_secs must be 1-3600"));
        }
        if self.negative_cache_secs > 3_600 {
            return Err(err("negative_cache_secs must be at most 3600"));
        }
        if !(1..=1_000_000).contains(&self.cache_capacity) {
            return Err(err("cache_capacity must be 1-1000000"));
        }
        Ok(())
    }
}

/// Checks every entry and that a token can only ever be sent to one endpoint.
pub(crate) fn validate_all(all: &[IntrospectionConfig]) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for config in all {
        config.validate()?;
        if !seen.insert(config.issuer.as_str()) {
            return Err(config.err("is configured twice"));
        }
    }
    if all.iter().filter(|c| c.token_prefix.is_none()).count() > 1 {
        return Err(ConfigError::Setting {
            setting: "auth.introspection",
            message: "at most one introspection issuer may omit token_prefix: otherwise an opaque token would be sent to several issuers".into(),
        });
    }
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            if let (Some(pa), Some(pb)) = (&a.token_prefix, &b.token_prefix)
                && (pa.starts_with(pb.as_str()) || pb.starts_with(pa.as_str()))
            {
                return Err(b.err(&format!(
                    "token_prefix {pb:?} overlaps {pa:?} of {}",
                    a.issuer
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> IntrospectionConfig {
        IntrospectionConfig {
            issuer: "https://idp.example.com".into(),
            client_id: "agui".into(),
            client_secret: Some(Secret::new("s")),
            audiences: vec!["agui".into()],
            ..IntrospectionConfig::default()
        }
    }

    #[test]
    fn the_audience_rule_is_enforced_at_start_up() {
        assert_eq!(validate_all(&[good()]), Ok(()));
        let none = IntrospectionConfig {
            audiences: vec![],
            ..good()
        };
        assert!(
            validate_all(std::slice::from_ref(&none))
                .unwrap_err()
                .to_string()
                .contains("allow_missing_audience")
        );
        let explicit = IntrospectionConfig {
            allow_missing_audience: true,
            ..none
        };
        assert_eq!(validate_all(&[explicit]), Ok(()));
    }

    #[test]
    fn a_token_goes_to_one_endpoint_only() {
        let other = IntrospectionConfig {
            issuer: "https://other.example.com".into(),
            ..good()
        };
        assert!(
            validate_all(&[good(), other.clone()])
                .unwrap_err()
                .to_string()
                .contains("token_prefix")
        );
        let prefixed = IntrospectionConfig {
            token_prefix: Some("ory_at_".into()),
            ..other.clone()
        };
        assert_eq!(validate_all(&[good(), prefixed.clone()]), Ok(()));
        let overlapping = IntrospectionConfig {
            issuer: "https://third.example.com".into(),
            token_prefix: Some("ory_".into()),
            ..good()
        };
        assert!(
            validate_all(&[good(), prefixed, overlapping])
                .unwrap_err()
                .to_string()
                .contains("overlaps")
        );
        let github = IntrospectionConfig {
            token_prefix: Some("gh".into()),
            ..other
        };
        assert!(
            validate_all(&[github])
                .unwrap_err()
                .to_string()
                .contains("another verifier")
        );
    }

    #[test]
    fn the_secret_is_masked() {
        let config = IntrospectionConfig {
            client_secret: Some(Secret::new("very-secret-value")),
            ..good()
        };
        assert!(!toml::to_string(&config).unwrap().contains("very-secret"));
        assert!(!format!("{config:?}").contains("very-secret"));
    }
}
