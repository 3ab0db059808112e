//! The local issuer of `agui-server dev` (and of tests): an ephemeral ES256 key, discovery and
//! JWKS served over plain HTTP on loopback so the real discovery/JWKS path runs, and a minting
//! helper. Never use it for anything but local development: anyone who can reach it can read the
//! keys' public half, and anyone with the process can mint tokens.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::config::{AuthConfig, IssuerConfig};
use crate::jws::{self, SigningKey};

/// A running local issuer. Stops serving when dropped.
pub struct DevIssuer {
    server: crate::idp::IdpServer,
    key: SigningKey,
    kid: String,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("issuer", &self.issuer_url())
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// What to put in a minted token. `TokenSpec::new("alice")` gives a one-hour token for the
/// `agui` audience with no name, roles or scopes.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSpec {
    /// `sub`.
    pub sub: String,
    /// `name`.
    pub name: Option<String>,
    /// `email` (minted with `email_verified: true`).
    pub email: Option<String>,
    /// `roles` (an array).
    pub roles: Vec<String>,
    /// `scope` (space separated).
    pub scopes: Vec<String>,
    /// `aud`: one value is minted as a string, several as an array.
    pub audience: Vec<String>,
    /// `exp - iat`.
    pub ttl: Duration,
    /// More claims, added last (they may override the above).
    pub extra: Map<String, Value>,
}

impl TokenSpec {
    /// A token for `sub`, audience [`DevIssuer::AUDIENCE`], valid one hour.
    pub fn new(sub: impl Into<String>) -> Self {
        Self {
            sub: sub.into(),
            name: None,
            email: None,
            roles: Vec::new(),
            scopes: Vec::new(),
            audience: vec![DevIssuer::AUDIENCE.to_owned()],
            ttl: Duration::from_secs(3_600),
            extra: Map::new(),
        }
    }

    /// Sets `name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets `email`.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Sets `roles`.
    pub fn roles(mut self, roles: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the scopes.
    pub fn scopes(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets `aud`.
    pub fn audience(mut self, audience: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.audience = audience.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the lifetime.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Adds a claim.
    pub fn claim(mut self, name: impl Into<String>, value: Value) -> Self {
        self.extra.insert(name.into(), value);
        self
    }

    /// The claims object for issuer `iss` at time `now` (seconds since the epoch).
    pub fn to_claims(&self, iss: &str, now: i64) -> Value {
        let mut c = Map::new();
        c.insert("iss".into(), json!(iss));
        c.insert("sub".into(), json!(self.sub));
        let aud = match self.audience.as_slice() {
            [one] => json!(one),
            many => json!(many),
        };
        c.insert("aud".into(), aud);
        c.insert("iat".into(), json!(now));
        c.insert(
            "exp".into(),
            json!(now + i64::try_from(self.ttl.as_secs()).unwrap_or(3_600)),
        );
        c.insert("jti".into(), json!(random_id()));
        if let Some(name) = &self.name {
            c.insert("name".into(), json!(name));
        }
        if let Some(email) = &self.email {
            c.insert("email".into(), json!(email));
            c.insert("email_verified".into(), json!(true));
        }
        if !self.roles.is_empty() {
            c.insert("roles".into(), json!(self.roles));
        }
        if !self.scopes.is_empty() {
            c.insert("scope".into(), json!(self.scopes.join(" ")));
        }
        for (k, v) in &self.extra {
            c.insert(k.clone(), v.clone());
        }
        Value::Object(c)
    }
}

pub(crate) fn unix_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// 16 random hex digits.
pub(crate) fn random_id() -> String {
    let mut bytes = [0u8; 8];
    // aws-lc-rs's system RNG; it does not fail on supported platforms, and a zero id is harmless.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl DevIssuer {
    /// The audience minted by default and accepted by [`DevIssuer::auth_config`].
    pub const AUDIENCE: &'static str = "agui";

    /// Generates a P-256 key and serves discovery + JWKS on `bind` (loopback only; use
    /// `127.0.0.1:0` for any free port).
    ///
    /// # Errors
    /// A non-loopback address, a bind failure, or key generation failure.
    pub async fn start(bind: SocketAddr) -> std::io::Result<DevIssuer> {
        let key = SigningKey::generate_p256().map_err(std::io::Error::other)?;
        let kid = format!("dev-{}", random_id());
        let mut jwk = key.public_jwk();
        jwk.insert("kid".into(), json!(kid));
        jwk.insert("alg".into(), json!("ES256"));
        jwk.insert("use".into(), json!("sig"));
        let server = crate::idp::start(bind, "", vec![Value::Object(jwk)]).await?;
        Ok(DevIssuer { server, key, kid })
    }

    /// The issuer identifier, `http://127.0.0.1:<port>`.
    pub fn issuer_url(&self) -> String {
        self.server.state.issuer.clone()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// An auth config that trusts only this issuer, audience [`DevIssuer::AUDIENCE`].
    pub fn auth_config(&self) -> AuthConfig {
        AuthConfig {
            issuers: vec![IssuerConfig::new(self.issuer_url(), [Self::AUDIENCE])],
            ..AuthConfig::default()
        }
    }

    /// Mints an ES256 access token (`typ: at+jwt`).
    ///
    /// # Panics
    /// Only if signing with the in-memory key fails, which aws-lc-rs does not do for a valid key.
    pub fn mint(&self, spec: TokenSpec) -> String {
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": self.kid});
        let claims = spec.to_claims(&self.issuer_url(), unix_now());
        jws::sign_compact(&header, &claims, &self.key)
            .expect("signing with a freshly generated P-256 key")
    }
}
