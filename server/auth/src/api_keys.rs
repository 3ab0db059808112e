//! API keys for services and scripts: `agui_` + 32 random bytes (base64url, no padding), kept in
//! the config only as their SHA-256 (`[[auth.api_keys]] hash = "sha256:…"`).
//!
//! ```toml
//! [[auth.api_keys]]
//! hash = "sha256:5b41362bc82b7f3d56edc5a306db22105707d01ff4819e26faef9724a2d406c9"
//! subject = "reports-bot"
//! name = "nightly reports"
//! roles = ["reports"]
//! expires = "2027-03-01T00:00:00Z"
//! ```
//!
//! A presented key is hashed and compared with **every** entry in constant time (no early exit,
//! no hash-map probe), so the time taken says nothing about which entry, or how much of a hash,
//! matched. The table is small (at most [`MAX_KEYS`]) and can be replaced while the server runs
//! ([`crate::Authenticator::replace_api_keys`], which the server calls on SIGHUP).

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::credential::CredentialSource;
use crate::error::{AuthError, InvalidTokenReason as R};
use crate::principal::Principal;
use crate::route::{API_KEY_PREFIX, Verifier};
use crate::secret::Secret;
use crate::settings::{ConfigError, is_scope_token};

/// The issuer of every API-key principal: not a URL, so it can never collide with an OIDC
/// issuer, and (issuer, subject) keeps API-key callers apart from users with the same `sub`.
pub const API_KEY_ISSUER: &str = "agui:api-key";

/// Most keys in the table.
pub const MAX_KEYS: usize = 10_000;

/// Characters of the random part: 32 bytes in unpadded base64url.
const RANDOM_CHARS: usize = 43;

/// The SHA-256 of a key as the config spells it: `sha256:` and 64 hex digits.
///
/// `Debug` and `Serialize` (what `check-config` prints) show only its first 8 hex digits, the
/// key id: never the whole hash.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyHash(String);

impl KeyHash {
    /// Wraps a configured value (checked by [`crate::AuthConfig::validate`]).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into().trim().to_ascii_lowercase())
    }

    /// The first 8 hex digits: how logs, audit and `check-config` name a key.
    pub fn key_id(&self) -> &str {
        self.0
            .strip_prefix("sha256:")
            .and_then(|h| h.get(..8))
            .unwrap_or("?")
    }

    /// The full configured value (only for writing a config file).
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn digest(&self) -> Result<[u8; 32], String> {
        let hex = self
            .0
            .strip_prefix("sha256:")
            .ok_or("must start with \"sha256:\"")?;
        if hex.len() != 64 {
            return Err("must be sha256: and 64 hex digits".into());
        }
        let mut out = [0u8; 32];
        for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
            let pair = std::str::from_utf8(chunk).map_err(|_| "is not hex")?;
            out[i] = u8::from_str_radix(pair, 16).map_err(|_| "is not hex")?;
        }
        Ok(out)
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash(sha256:{}…)", self.key_id())
    }
}

impl Serialize for KeyHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("sha256:{}…", self.key_id()))
    }
}

impl<'de> Deserialize<'de> for KeyHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(KeyHash::new)
    }
}

/// One `[[auth.api_keys]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// `sha256:<64 hex>` of the whole key (what `agui-server apikey new` prints).
    pub hash: KeyHash,
    /// The principal's subject (1–256 characters, no control characters).
    pub subject: String,
    /// A label for people (becomes the principal's name).
    #[serde(default)]
    pub name: Option<String>,
    /// The principal's roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The principal's scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// RFC 3339 expiry (`2027-03-01T00:00:00Z`); absent = never expires.
    #[serde(default)]
    pub expires: Option<String>,
}

impl ApiKeyConfig {
    /// The expiry in Unix seconds, if any.
    ///
    /// # Errors
    /// `expires` is not an RFC 3339 timestamp.
    pub fn expires_unix(&self) -> Result<Option<i64>, String> {
        self.expires
            .as_deref()
            .map(crate::rfc3339::parse)
            .transpose()
    }
}

/// A freshly generated key and its config entry's hash.
#[derive(Debug)]
pub struct NewApiKey {
    /// The key to hand to the caller once (`agui_…`). Never stored by the server.
    pub key: Secret,
    /// Its hash for `[[auth.api_keys]] hash`.
    pub hash: KeyHash,
}

/// Generates a key: `agui_` + 32 bytes from the OS random generator, unpadded base64url.
///
/// # Panics
/// If the operating system's random generator fails (nothing safe can be done then).
pub fn generate() -> NewApiKey {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("the OS random generator works");
    let key = format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = KeyHash::new(format!(
        "sha256:{}",
        crate::opaque_cache::hex(&Sha256::digest(key.as_bytes()))
    ));
    NewApiKey {
        key: Secret::new(key),
        hash,
    }
}

/// Checks every entry (the server refuses to start, or keeps its old table on SIGHUP).
pub(crate) fn validate_all(keys: &[ApiKeyConfig]) -> Result<(), ConfigError> {
    ApiKeyTable::build(keys).map(|_| ())
}

struct Entry {
    digest: [u8; 32],
    key_id: String,
    subject: String,
    name: Option<String>,
    roles: Vec<String>,
    scopes: Vec<String>,
    expires: Option<i64>,
}

/// The keys the server accepts.
pub(crate) struct ApiKeyTable {
    entries: Vec<Entry>,
}

impl ApiKeyTable {
    /// Builds the table from config entries.
    pub(crate) fn build(keys: &[ApiKeyConfig]) -> Result<Arc<Self>, ConfigError> {
        if keys.len() > MAX_KEYS {
            return Err(setting(format!("at most {MAX_KEYS} keys")));
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let at = |m: &str| setting(format!("entry {} ({}): {m}", i + 1, key.hash.key_id()));
            let digest = key.hash.digest().map_err(|m| at(&format!("hash {m}")))?;
            if entries.iter().any(|e| e.digest == digest) {
                return Err(at("the same hash is listed twice"));
            }
            if !is_label(&key.subject, 256) {
                return Err(at(
                    "subject must be 1-256 characters without control characters",
                ));
            }
            if key.name.as_deref().is_some_and(|n| !is_label(n, 256)) {
                return Err(at(
                    "name must be 1-256 characters without control characters",
                ));
            }
            if key
                .roles
                .iter()
                .any(|r| !is_scope_token(r) || r.len() > 128)
            {
                return Err(at("roles must be non-empty words without spaces or quotes"));
            }
            if key
                .scopes
                .iter()
                .any(|s| !is_scope_token(s) || s.len() > 128)
            {
                return Err(at("scopes must be scope tokens (RFC 6749 §3.3)"));
            }
            let expires = key
                .expires_unix()
                .map_err(|m| at(&format!("expires: {m}")))?;
            entries.push(Entry {
                digest,
                key_id: key.hash.key_id().to_owned(),
                subject: key.subject.clone(),
                name: key.name.clone(),
                roles: key.roles.clone(),
                scopes: key.scopes.clone(),
                expires,
            });
        }
        Ok(Arc::new(Self { entries }))
    }

    /// Keys in the table.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The principal for `token`, if it is a current key.
    pub(crate) fn verify(
        &self,
        token: &str,
        source: CredentialSource,
        fingerprint: &str,
        now: i64,
    ) -> Result<Principal, AuthError> {
        let shaped = token.strip_prefix(API_KEY_PREFIX).is_some_and(|rest| {
            rest.len() == RANDOM_CHARS
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        if !shaped {
            return Err(R::UnknownApiKey.into());
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (i, entry) in self.entries.iter().enumerate() {
            // Every entry is compared, each in constant time.
            if aws_lc_rs::constant_time::verify_slices_are_equal(&entry.digest, &digest).is_ok() {
                found = Some(i);
            }
        }
        let entry = found
            .and_then(|i| self.entries.get(i))
            .ok_or(AuthError::from(R::UnknownApiKey))?;
        if entry.expires.is_some_and(|at| at <= now) {
            return Err(R::Expired.into());
        }
        let mut claims = Map::new();
        claims.insert("key_id".into(), json!(entry.key_id));
        claims.insert("sub".into(), json!(entry.subject));
        claims.insert("roles".into(), json!(entry.roles));
        claims.insert("scope".into(), Value::String(entry.scopes.join(" ")));
        Ok(Principal {
            issuer: API_KEY_ISSUER.to_owned(),
            subject: entry.subject.clone(),
            name: entry.name.clone(),
            email: None,
            email_verified: None,
            roles: entry.roles.clone(),
            scopes: entry.scopes.clone(),
            claims,
            credential_source: source,
            verifier: Verifier::ApiKey,
            token_fingerprint: fingerprint.to_owned(),
            expires_at: entry.expires.unwrap_or(i64::MAX),
        })
    }
}

fn is_label(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
}

fn setting(message: String) -> ConfigError {
    ConfigError::Setting {
        setting: "auth.api_keys",
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hash: &KeyHash) -> ApiKeyConfig {
        ApiKeyConfig {
            hash: hash.clone(),
            subject: "reports-bot".into(),
            name: Some("nightly reports".into()),
            roles: vec!["reports".into()],
            scopes: vec!["chat".into()],
            expires: None,
        }
    }

    #[test]
    fn a_generated_key_is_accepted_and_another_is_not() {
        let new = generate();
        let key = new.key.expose();
        assert!(key.starts_with("agui_") && key.len() == 5 + 43, "{key}");
        let table = ApiKeyTable::build(&[entry(&new.hash)]).unwrap();
        let p = table
            .verify(key, CredentialSource::Header, "fp", 0)
            .unwrap();
        assert_eq!(
            (p.issuer.as_str(), p.subject.as_str()),
            (API_KEY_ISSUER, "reports-bot")
        );
        assert_eq!(p.roles, vec!["reports"]);
        assert_eq!(p.scopes, vec!["chat"]);
        assert_eq!(p.verifier, Verifier::ApiKey);
        assert_eq!(p.claims["key_id"], new.hash.key_id());
        let other = generate();
        assert_eq!(
            table.verify(other.key.expose(), CredentialSource::Header, "fp", 0),
            Err(R::UnknownApiKey.into())
        );
        assert_eq!(
            table.verify("agui_short", CredentialSource::Header, "fp", 0),
            Err(R::UnknownApiKey.into())
        );
    }

    #[test]
    fn an_expired_key_is_refused() {
        let new = generate();
        let mut config = entry(&new.hash);
        config.expires = Some("2027-03-01T00:00:00Z".into());
        let table = ApiKeyTable::build(&[config]).unwrap();
        let at = crate::rfc3339::parse("2027-03-01T00:00:00Z").unwrap();
        assert!(
            table
                .verify(new.key.expose(), CredentialSource::Header, "fp", at - 1)
                .is_ok()
        );
        assert_eq!(
            table.verify(new.key.expose(), CredentialSource::Header, "fp", at),
            Err(R::Expired.into())
        );
    }

    #[test]
    fn the_hash_never_prints_in_full() {
        let new = generate();
        let config = entry(&new.hash);
        let full = new.hash.expose().trim_start_matches("sha256:");
        assert!(!format!("{config:?}").contains(full));
        let toml = toml::to_string(&config).unwrap();
        assert!(!toml.contains(full), "{toml}");
        assert!(toml.contains(new.hash.key_id()));
        assert!(!format!("{new:?}").contains(new.key.expose()));
    }

    #[test]
    fn bad_entries_are_refused_by_name() {
        let good = generate().hash;
        type Spoil = fn(&mut ApiKeyConfig);
        let cases: [(&str, Spoil); 6] = [
            ("hash", |c| c.hash = KeyHash::new("md5:abc")),
            ("hash", |c| c.hash = KeyHash::new("sha256:zz")),
            ("subject", |c| c.subject = " ".into()),
            ("roles", |c| c.roles = vec!["a b".into()]),
            ("scopes", |c| c.scopes = vec!["\"".into()]),
            ("expires", |c| c.expires = Some("tomorrow".into())),
        ];
        for (field, spoil) in cases {
            let mut config = entry(&good);
            spoil(&mut config);
            let message = validate_all(&[config]).unwrap_err().to_string();
            assert!(message.contains(field), "{field}: {message}");
        }
        let twice = validate_all(&[entry(&good), entry(&good)]).unwrap_err();
        assert!(twice.to_string().contains("twice"));
        assert_eq!(validate_all(&[entry(&good)]), Ok(()));
    }
}
