//! The verified identity of a caller, built only from verified access-token claims.

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::credential::CredentialSource;
use crate::route::Verifier;
use crate::settings::{AccessList, ClaimMapping};

/// Who is calling. Built by [`crate::Authenticator::authenticate`] from what a verifier proved:
/// the claims of a JWT whose signature and claims were verified, GitHub's answer about a token
/// issued to our app, an introspection response, or an API-key entry; never from
/// client-supplied state, context or forwardedProps, and never merged back into them.
///
/// `(issuer, subject)` identifies a user across every kind of credential: a GitHub user
/// (`https://github.com`, numeric id) and an OIDC user with the same `sub` are different people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Principal {
    /// The issuer: a JWT's `iss` or an introspection issuer (one of the configured ones), the
    /// GitHub web base (`https://github.com`), or `agui:api-key` for API keys.
    pub issuer: String,
    /// The subject (non-empty): a JWT's or introspection response's `sub`, a GitHub user's
    /// numeric id (logins can be renamed), an API key's configured subject.
    pub subject: String,
    /// Display name from the configured `claims.name` pointers.
    pub name: Option<String>,
    /// E-mail from the configured `claims.email` pointers.
    pub email: Option<String>,
    /// `email_verified` from the configured pointers.
    pub email_verified: Option<bool>,
    /// Roles from the configured `claims.roles` pointers (deduplicated, in claim order).
    pub roles: Vec<String>,
    /// Scopes from `scope` and `scp` (a space-separated string or an array).
    pub scopes: Vec<String>,
    /// Every verified claim.
    pub claims: Map<String, Value>,
    /// Where the token came from.
    pub credential_source: CredentialSource,
    /// Which verifier accepted the credential (logs, metrics, audit).
    pub verifier: Verifier,
    /// A short hash of the token for logs and audit ([`token_fingerprint`]); never the token.
    pub token_fingerprint: String,
    /// When the credential expires (seconds since the epoch): a JWT's or introspection
    /// response's `exp`, a GitHub token's `expires_at`, an API key's `expires`; `i64::MAX` for a
    /// credential that never expires (GitHub OAuth app tokens, API keys without `expires`).
    pub expires_at: i64,
}

impl Principal {
    /// The name to greet: `name`, else `email`, else `subject`.
    pub fn display_name(&self) -> &str {
        self.name
            .as_deref()
            .or(self.email.as_deref())
            .unwrap_or(&self.subject)
    }

    /// Whether the principal has this role (exact match).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the token carries this scope (exact match).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// What `GET /whoami` and the `whoami` tool return: issuer, subject, name, email, roles, scopes.
    pub fn public_json(&self) -> Value {
        serde_json::json!({
            "issuer": self.issuer,
            "subject": self.subject,
            "name": self.name,
            "email": self.email,
            "roles": self.roles,
            "scopes": self.scopes,
        })
    }
}

/// The first 12 hex digits of the token's SHA-256: enough to correlate log lines and audit
/// entries of one token, useless for replaying it.
pub fn token_fingerprint(token: &str) -> String {
    fingerprint_of(&Sha256::digest(token.as_bytes()).into())
}

/// The fingerprint from a token's SHA-256 (computed once per request): one allocation, not
/// one `format!` per byte.
pub(crate) fn fingerprint_of(digest: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(12);
    for byte in &digest[..6] {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// Reads the mapped fields out of verified claims.
pub(crate) struct Mapped {
    pub name: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
}

/// RFC 6901 pointer lookup starting at a claims object.
fn pointer<'a>(claims: &'a Map<String, Value>, pointer: &str) -> Option<&'a Value> {
    let rest = pointer.strip_prefix('/')?;
    let (first, tail) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    // Unescape in this order (RFC 6901 §4): `~1` first, then `~0`.
    let value = claims.get(&first.replace("~1", "/").replace("~0", "~"))?;
    if tail.is_empty() {
        Some(value)
    } else {
        value.pointer(tail)
    }
}

pub(crate) fn map_claims(claims: &Map<String, Value>, mapping: &ClaimMapping) -> Mapped {
    let claims = Claims(claims);
    let first_string = |pointers: &[String]| {
        pointers.iter().find_map(|p| {
            claims
                .pointer(p)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from)
        })
    };
    let email_verified = mapping
        .email_verified
        .iter()
        .find_map(|p| match claims.pointer(p) {
            Some(Value::Bool(b)) => Some(*b),
            // Cognito sends the string "true".
            Some(Value::String(s)) if s == "true" => Some(true),
            Some(Value::String(s)) if s == "false" => Some(false),
            _ => None,
        });
    let mut roles = Vec::new();
    for pointer in &mapping.roles {
        push_strings(claims.pointer(pointer), false, &mut roles);
    }
    let mut scopes = Vec::new();
    for pointer in ["/scope", "/scp"] {
        push_strings(claims.pointer(pointer), true, &mut scopes);
    }
    Mapped {
        name: first_string(&mapping.name),
        email: first_string(&mapping.email),
        email_verified,
        roles,
        scopes,
    }
}

/// Lets `map_claims` read like `Value::pointer`.
struct Claims<'a>(&'a Map<String, Value>);

impl<'a> Claims<'a> {
    fn pointer(&self, p: &str) -> Option<&'a Value> {
        pointer(self.0, p)
    }
}

/// Appends a string (split on whitespace when `split`) or an array of strings, skipping duplicates.
fn push_strings(value: Option<&Value>, split: bool, out: &mut Vec<String>) {
    let mut push = |s: &str| {
        if !s.is_empty() && !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    };
    match value {
        Some(Value::String(s)) if split => s.split_whitespace().for_each(&mut push),
        Some(Value::String(s)) => push(s),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).for_each(&mut push),
        _ => {}
    }
}

/// Whether the principal matches any entry of the list.
pub(crate) fn matches(list: &AccessList, p: &Principal) -> bool {
    if list.subjects.contains(&p.subject) {
        return true;
    }
    if list.groups.iter().any(|g| p.has_role(g)) {
        return true;
    }
    // An unverified e-mail proves nothing about the domain (the Open WebUI account-merge lesson).
    if p.email_verified == Some(true)
        && let Some((_, domain)) = p.email.as_deref().and_then(|e| e.rsplit_once('@'))
    {
        return list
            .email_domains
            .iter()
            .any(|d| d.trim_start_matches('@').eq_ignore_ascii_case(domain));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn principal(claims: Value, mapping: &ClaimMapping) -> Principal {
        let m = map_claims(claims.as_object().unwrap(), mapping);
        Principal {
            issuer: "https://idp".into(),
            subject: claims["sub"].as_str().unwrap().into(),
            name: m.name,
            email: m.email,
            email_verified: m.email_verified,
            roles: m.roles,
            scopes: m.scopes,
            claims: claims.as_object().unwrap().clone(),
            credential_source: CredentialSource::Header,
            verifier: Verifier::Jwt,
            token_fingerprint: token_fingerprint("t"),
            expires_at: 0,
        }
    }

    #[test]
    fn scopes_come_from_scope_string_and_scp_array() {
        let p = principal(
            json!({"sub": "u", "scope": "chat  read", "scp": ["read", "write"]}),
            &ClaimMapping::default(),
        );
        assert_eq!(p.scopes, vec!["chat", "read", "write"]);
        assert!(p.has_scope("write") && !p.has_scope("admin"));
    }

    #[test]
    fn namespaced_and_nested_role_pointers() {
        let mapping = ClaimMapping {
            roles: vec![
                "/realm_access/roles".into(),
                "/https:~1~1example.com~1roles".into(),
                "/cognito:groups".into(),
            ],
            ..ClaimMapping::default()
        };
        let claims = json!({
            "sub": "u",
            "realm_access": {"roles": ["admin", "user"]},
            "https://example.com/roles": ["editor", "admin"],
            "cognito:groups": "ops"
        });
        let p = principal(claims, &mapping);
        assert_eq!(p.roles, vec!["admin", "user", "editor", "ops"]);
    }

    #[test]
    fn display_name_falls_back_to_email_then_subject() {
        let mapping = ClaimMapping::default();
        assert_eq!(
            principal(json!({"sub": "u", "name": "Ada"}), &mapping).display_name(),
            "Ada"
        );
        assert_eq!(
            principal(json!({"sub": "u", "preferred_username": "ada"}), &mapping).display_name(),
            "ada"
        );
        assert_eq!(
            principal(json!({"sub": "u", "email": "a@x.org"}), &mapping).display_name(),
            "a@x.org"
        );
        assert_eq!(
            principal(json!({"sub": "u", "name": ""}), &mapping).display_name(),
            "u"
        );
    }

    #[test]
    fn email_domain_needs_a_verified_email() {
        let list = AccessList {
            email_domains: vec!["example.com".into()],
            ..AccessList::default()
        };
        let mapping = ClaimMapping::default();
        let verified = principal(
            json!({"sub": "u", "email": "a@EXAMPLE.com", "email_verified": true}),
            &mapping,
        );
        let unverified = principal(
            json!({"sub": "u", "email": "a@example.com", "email_verified": false}),
            &mapping,
        );
        let cognito = principal(
            json!({"sub": "u", "email": "a@example.com", "email_verified": "true"}),
            &mapping,
        );
        assert!(matches(&list, &verified));
        assert!(!matches(&list, &unverified));
        assert!(matches(&list, &cognito));
    }

    #[test]
    fn public_json_has_exactly_the_public_fields() {
        let p = principal(
            json!({"sub": "u", "name": "Ada", "secret": "x"}),
            &ClaimMapping::default(),
        );
        let json = p.public_json();
        let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 6);
        assert!(json.get("secret").is_none() && json.get("claims").is_none());
    }

    #[test]
    fn fingerprint_is_short_and_stable() {
        assert_eq!(token_fingerprint("abc").len(), 12);
        // SHA-256("abc") = ba7816bf 8f01cfea … (FIPS 180-2 appendix B.1): the first 6 bytes in hex.
        assert_eq!(token_fingerprint("abc"), "ba7816bf8f01");
        assert_eq!(token_fingerprint("abc"), token_fingerprint("abc"));
        assert_ne!(token_fingerprint("abc"), token_fingerprint("abd"));
    }
}
