//! The building blocks every verifier's settings share: the claim mapping and allow/deny lists
//! (JWT and introspection issuers), [`ConfigError`], and the checks of URLs, JSON Pointers and
//! scope tokens. A leaf: the verifiers' own tables (`config`, `github`, `introspection`,
//! `api_keys`) use it, and it uses none of them.

use jsonwebtoken::Algorithm;
use serde::{Deserialize, Deserializer, Serialize};

/// JSON Pointers (RFC 6901) into the verified claims. Each field takes one pointer or a list.
///
/// Namespaced claims work because `/` and `~` are escaped: the Auth0 claim
/// `https://example.com/roles` is `/https:~1~1example.com~1roles`.
///
/// Unknown keys are refused: `role` instead of `roles` would otherwise leave the default pointer
/// in place unnoticed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimMapping {
    /// Display name: the first pointer that holds a non-empty string (default `/name`, `/preferred_username`).
    #[serde(deserialize_with = "one_or_many")]
    pub name: Vec<String>,
    /// E-mail: the first pointer that holds a string (default `/email`).
    #[serde(deserialize_with = "one_or_many")]
    pub email: Vec<String>,
    /// Whether the e-mail is verified: a boolean, or the string `"true"` (Cognito) (default `/email_verified`).
    #[serde(deserialize_with = "one_or_many")]
    pub email_verified: Vec<String>,
    /// Roles: the union of every pointer holding a string or an array of strings (default `/roles`).
    /// Allow/deny `groups` entries are matched against these.
    #[serde(deserialize_with = "one_or_many")]
    pub roles: Vec<String>,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            name: vec!["/name".into(), "/preferred_username".into()],
            email: vec!["/email".into()],
            email_verified: vec!["/email_verified".into()],
            roles: vec!["/roles".into()],
        }
    }
}

impl ClaimMapping {
    pub(crate) fn pointers(&self) -> impl Iterator<Item = (&'static str, &String)> {
        self.name
            .iter()
            .map(|p| ("name", p))
            .chain(self.email.iter().map(|p| ("email", p)))
            .chain(self.email_verified.iter().map(|p| ("email_verified", p)))
            .chain(self.roles.iter().map(|p| ("roles", p)))
    }
}

/// Subjects, groups (matched against the mapped roles) and e-mail domains.
///
/// Unknown keys are refused: `[auth.issuers.deny] subject = […]` (for `subjects`) would
/// otherwise be an empty deny list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessList {
    /// Exact `sub` values.
    pub subjects: Vec<String>,
    /// Role or group names (as mapped by `claims.roles`).
    pub groups: Vec<String>,
    /// E-mail domains (case-insensitive); only a verified e-mail (`email_verified` true) matches.
    pub email_domains: Vec<String>,
}

impl AccessList {
    /// Whether every list is empty.
    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty() && self.groups.is_empty() && self.email_domains.is_empty()
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// A configuration that cannot work. The server refuses to start (fail closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No verifier at all is configured.
    #[error(
        "no OIDC issuer is configured: set AGUI_OIDC_ISSUER and AGUI_OIDC_AUDIENCE, or add [[auth.issuers]] to the config (or another verifier: [auth.github] / AGUI_GITHUB_CLIENT_ID, [[auth.introspection]], [[auth.api_keys]]; use `agui-server dev` for a local issuer)"
    )]
    NoIssuers,
    /// A setting of one issuer is wrong.
    #[error("auth issuer {issuer:?}: {message}")]
    Issuer {
        /// The configured issuer.
        issuer: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A global auth setting is wrong.
    #[error("auth setting {setting}: {message}")]
    Setting {
        /// The setting name.
        setting: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The discovery document names another issuer (OIDC Discovery §4.3, RFC 8414 §3.3).
    #[error(
        "auth issuer {configured:?}: its discovery document says issuer {discovered:?}; the two must be identical (check a trailing slash or the realm/tenant path)"
    )]
    IssuerMismatch {
        /// The configured issuer.
        configured: String,
        /// The `issuer` of the discovery document.
        discovered: String,
    },
}

/// The claim mapping, required scopes and allow/deny lists shared by JWT and introspection
/// issuers: JSON Pointers, scope tokens, no empty entries.
pub(crate) fn check_policy(
    claims: &ClaimMapping,
    required_scopes: &[String],
    allow: &AccessList,
    deny: &AccessList,
) -> Result<(), String> {
    for (field, pointer) in claims.pointers() {
        if !is_valid_pointer(pointer) {
            return Err(format!(
                "claims.{field} {pointer:?} is not a JSON Pointer (RFC 6901): it must start with '/' and escape '~' as ~0 and '/' as ~1"
            ));
        }
    }
    for scope in required_scopes {
        if !is_scope_token(scope) {
            return Err(format!(
                "required scope {scope:?} is not a valid scope token (RFC 6749 §3.3)"
            ));
        }
    }
    for list in [allow, deny] {
        if list
            .subjects
            .iter()
            .chain(&list.groups)
            .chain(&list.email_domains)
            .any(|s| s.trim().is_empty())
        {
            return Err("allow/deny lists must not contain empty entries".into());
        }
    }
    Ok(())
}

/// The asymmetric algorithms we accept in an allowlist. HS* would turn the public JWKS into a
/// shared secret (CVE-2016-10555); `none` is unsigned (RFC 8725 §3.2).
pub(crate) fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    Ok(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        "HS256" | "HS384" | "HS512" => {
            return Err(format!(
                "algorithm {name} is refused: HMAC algorithms are never accepted from an OIDC issuer"
            ));
        }
        n if n.eq_ignore_ascii_case("none") => {
            return Err("algorithm \"none\" is never accepted".into());
        }
        other => {
            return Err(format!(
                "unknown algorithm {other:?} (supported: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"
            ));
        }
    })
}

/// `https://…`, or `http://…` on loopback or with `allow_http`.
pub(crate) fn check_url(raw: &str, allow_http: bool) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http || is_loopback(&url) => {}
        "http" => {
            return Err(format!(
                "{raw:?} uses plain http; use https, or set allow_http = true for this issuer (loopback is always allowed)"
            ));
        }
        other => {
            return Err(format!(
                "{raw:?} has scheme {other:?}; only https is supported"
            ));
        }
    }
    if url.host().is_none() {
        return Err(format!("{raw:?} has no host"));
    }
    Ok(url)
}

pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// RFC 6901: empty (the whole document, refused here) or `/`-prefixed with `~` only as `~0`/`~1`.
pub(crate) fn is_valid_pointer(p: &str) -> bool {
    if !p.starts_with('/') {
        return false;
    }
    let bytes = p.as_bytes();
    bytes
        .iter()
        .enumerate()
        .all(|(i, &b)| b != b'~' || matches!(bytes.get(i + 1), Some(b'0' | b'1')))
}

/// Non-empty and only `token68` characters without `=` (a token prefix such as `ory_at_`).
pub(crate) fn is_token68_prefix(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// RFC 6749 §3.3 `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`: safe inside a quoted challenge.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}
