//! `TestIdp`: a fake OpenID provider for tests (feature `testing`). Discovery and JWKS on
//! `127.0.0.1:0`, hit counters, fault injection (down, slow, garbage, empty set, a status,
//! `Cache-Control: max-age`, a lying discovery `issuer`), key rotation, and signing with any
//! header, claims and key, for the attack tests. It also introspects opaque tokens it was told
//! about (RFC 7662), for the introspection verifier's tests.
//!
//! [`GitHubStandIn`] (in `testing/github.rs`) is a local GitHub: the OAuth endpoints, the token
//! check and the user endpoints, with fixtures, fault switches and hit counters.

mod github;
mod github_http;

pub use github::{
    GitHubFault, GitHubHits, GitHubStandIn, StandInApp, StandInFixtures, StandInUser,
};

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

pub use crate::clock::ManualClock;
use crate::config::{AuthConfig, IssuerConfig};
pub use crate::dev::TokenSpec;
use crate::introspection::IntrospectionConfig;
use crate::jws::{self, SigningKey};

/// A verified principal for tests that need one but no token: `subject` at `issuer`, read from
/// the `Authorization` header as a JWT, no name, roles or scopes, expiring in 2100. Set other
/// fields with struct update syntax: `Principal { roles: vec!["admin".into()], ..principal(i, s) }`.
pub fn principal(issuer: &str, subject: &str) -> crate::Principal {
    crate::Principal {
        issuer: issuer.to_owned(),
        subject: subject.to_owned(),
        name: None,
        email: None,
        email_verified: None,
        roles: Vec::new(),
        scopes: Vec::new(),
        claims: serde_json::Map::new(),
        credential_source: crate::CredentialSource::Header,
        verifier: crate::Verifier::Jwt,
        token_fingerprint: "abcdef012345".into(),
        expires_at: 4_102_444_800,
    }
}

/// The audience of [`TestIdp::claims`] and [`TestIdp::auth_config`].
pub const AUDIENCE: &str = "agui";

/// The client allowed to call a [`TestIdp`]'s introspection endpoint, and its secret.
pub const INTROSPECTION_CLIENT: (&str, &str) = crate::idp::INTROSPECTION_CLIENT;

/// How to start a [`TestIdp`].
#[derive(Debug, Clone)]
pub struct TestIdpBuilder {
    issuer_path: String,
    jwk_alg: bool,
}

impl Default for TestIdpBuilder {
    fn default() -> Self {
        Self {
            issuer_path: String::new(),
            jwk_alg: true,
        }
    }
}

impl TestIdpBuilder {
    /// Serve the issuer under a path: `"/realms/demo"` (Keycloak), `"/"` (Auth0's trailing
    /// slash), `"/oauth2/default"` (Okta), `"/<tenant>/v2.0"` (Entra).
    pub fn issuer_path(mut self, path: impl Into<String>) -> Self {
        self.issuer_path = path.into();
        self
    }

    /// Whether published keys carry `alg` (Entra's do not).
    pub fn jwk_alg(mut self, on: bool) -> Self {
        self.jwk_alg = on;
        self
    }

    /// Generates the keys `rsa-1` (RS256) and `ec-1` (ES256) and starts serving.
    ///
    /// # Panics
    /// If loopback cannot be bound or key generation fails (a broken test machine).
    pub async fn start(self) -> TestIdp {
        let mut keys = HashMap::new();
        keys.insert(
            "rsa-1".to_owned(),
            (
                SigningKey::generate_rsa().expect("RSA key"),
                "RS256".to_owned(),
            ),
        );
        keys.insert(
            "ec-1".to_owned(),
            (
                SigningKey::generate_p256().expect("P-256 key"),
                "ES256".to_owned(),
            ),
        );
        let published = ["rsa-1", "ec-1"]
            .iter()
            .map(|kid| jwk_entry(&keys[*kid].0, kid, &keys[*kid].1, self.jwk_alg))
            .collect();
        let server = crate::idp::start(
            "127.0.0.1:0".parse().expect("address"),
            &self.issuer_path,
            published,
        )
        .await
        .expect("bind 127.0.0.1:0");
        TestIdp {
            server,
            keys: Mutex::new(keys),
            jwk_alg: self.jwk_alg,
        }
    }
}

fn jwk_entry(key: &SigningKey, kid: &str, alg: &str, with_alg: bool) -> Value {
    let mut jwk = key.public_jwk();
    jwk.insert("kid".into(), json!(kid));
    jwk.insert("use".into(), json!("sig"));
    if with_alg {
        jwk.insert("alg".into(), json!(alg));
    }
    Value::Object(jwk)
}

/// A fake OpenID provider. Stops serving when dropped.
pub struct TestIdp {
    server: crate::idp::IdpServer,
    /// kid → (key, alg). A std Mutex: never held across an await.
    keys: Mutex<HashMap<String, (SigningKey, String)>>,
    jwk_alg: bool,
}

impl std::fmt::Debug for TestIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIdp")
            .field("issuer", &self.issuer_url())
            .finish_non_exhaustive()
    }
}

impl TestIdp {
    /// A provider at the root path with keys `rsa-1` (RS256) and `ec-1` (ES256).
    pub async fn start() -> TestIdp {
        TestIdpBuilder::default().start().await
    }

    /// Options.
    pub fn builder() -> TestIdpBuilder {
        TestIdpBuilder::default()
    }

    /// The issuer identifier (`http://127.0.0.1:<port><path>`).
    pub fn issuer_url(&self) -> String {
        self.server.state.issuer.clone()
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        self.server.state.jwks_url.clone()
    }

    /// An issuer config for this provider, audience [`AUDIENCE`].
    pub fn issuer_config(&self) -> IssuerConfig {
        IssuerConfig::new(self.issuer_url(), [AUDIENCE])
    }

    /// An auth config trusting only this provider.
    pub fn auth_config(&self) -> AuthConfig {
        AuthConfig {
            issuers: vec![self.issuer_config()],
            ..AuthConfig::default()
        }
    }

    /// Discovery documents served so far.
    pub fn discovery_hits(&self) -> u64 {
        self.server.state.discovery_hits.load(Ordering::SeqCst)
    }

    /// JWKS documents requested so far (including failed ones).
    pub fn jwks_hits(&self) -> u64 {
        self.server.state.jwks_hits.load(Ordering::SeqCst)
    }

    /// Down: new connections are dropped, open ones get 503.
    pub fn set_down(&self, down: bool) {
        self.server.state.set_down(down);
    }

    /// Answer after this delay.
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.server.state.faults().delay = delay;
    }

    /// Answer the JWKS with HTML.
    pub fn set_garbage(&self, on: bool) {
        self.server.state.faults().garbage = on;
    }

    /// Answer the JWKS with an empty key set.
    pub fn set_empty(&self, on: bool) {
        self.server.state.faults().empty = on;
    }

    /// Answer the JWKS with this status.
    pub fn set_jwks_status(&self, status: Option<u16>) {
        self.server.state.faults().jwks_status = status;
    }

    /// Send `Cache-Control: public, max-age=<secs>` with the JWKS.
    pub fn set_max_age(&self, secs: Option<u64>) {
        self.server.state.faults().max_age = secs;
    }

    /// Put another `issuer` in the discovery document.
    pub fn set_discovery_issuer(&self, issuer: Option<String>) {
        self.server.state.faults().discovery_issuer = issuer;
    }

    /// Put another `jwks_uri` in the discovery document.
    pub fn set_discovery_jwks_uri(&self, uri: Option<String>) {
        self.server.state.faults().discovery_jwks_uri = uri;
    }

    /// Replaces the published JWKS entries verbatim.
    pub fn publish_raw(&self, entries: Vec<Value>) {
        *self.server.state.published() = entries;
    }

    /// Generates an RSA key with a new kid and publishes it next to the others (rotation step 1).
    pub fn rotate(&self) -> String {
        self.add_key(SigningKey::generate_rsa().expect("RSA key"), "RS256")
    }

    /// Publishes `key` under a new kid and returns the kid.
    pub fn add_key(&self, key: SigningKey, alg: &str) -> String {
        let kid = format!("key-{}", crate::dev::random_id());
        self.server
            .state
            .published()
            .push(jwk_entry(&key, &kid, alg, self.jwk_alg));
        self.keys().insert(kid.clone(), (key, alg.to_owned()));
        kid
    }

    /// Generates a key that is **not** published under `kid` (an attacker's key).
    pub fn add_unpublished_key(&self, kid: &str, key: SigningKey, alg: &str) {
        self.keys().insert(kid.to_owned(), (key, alg.to_owned()));
    }

    /// Stops publishing `kid` (rotation step 2). The private key stays available for signing.
    pub fn unpublish(&self, kid: &str) {
        self.server
            .state
            .published()
            .retain(|k| k.get("kid").and_then(Value::as_str) != Some(kid));
    }

    /// The private key behind `kid`.
    ///
    /// # Panics
    /// Unknown kid.
    pub fn key(&self, kid: &str) -> SigningKey {
        self.keys()
            .get(kid)
            .map(|(k, _)| k.clone())
            .expect("known kid")
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, (SigningKey, String)>> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Good claims for `sub` at the real time: `iss`, `sub`, `aud: "agui"`, `iat`, `exp` (+5 min), `scope`.
    pub fn claims(&self, sub: &str) -> Value {
        self.claims_at(sub, crate::dev::unix_now())
    }

    /// Good claims for `sub` at `now`.
    pub fn claims_at(&self, sub: &str, now: i64) -> Value {
        json!({
            "iss": self.issuer_url(),
            "sub": sub,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 300,
            "scope": "chat",
            "jti": crate::dev::random_id(),
        })
    }

    /// The default header for `kid`: `{"alg": <the key's alg>, "typ": "at+jwt", "kid": kid}`.
    pub fn header(&self, kid: &str) -> Value {
        let alg = self
            .keys()
            .get(kid)
            .map(|(_, a)| a.clone())
            .expect("known kid");
        json!({"alg": alg, "typ": "at+jwt", "kid": kid})
    }

    /// A good token for `sub` signed with `rsa-1`.
    pub fn mint(&self, sub: &str) -> String {
        self.sign("rsa-1", &self.claims(sub))
    }

    /// `claims` signed with `kid`'s key under the default header.
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        self.sign_with_header(kid, &self.header(kid), claims)
    }

    /// `claims` signed with `kid`'s key under any header (its `alg` must fit the key).
    ///
    /// # Panics
    /// The header's `alg` does not fit the key.
    pub fn sign_with_header(&self, kid: &str, header: &Value, claims: &Value) -> String {
        jws::sign_compact(header, claims, &self.key(kid)).expect("alg fits the key")
    }

    /// A token with a made-up signature (for `alg: none` and the like).
    pub fn forge(header: &Value, claims: &Value, signature: &str) -> String {
        format!("{}.{signature}", jws::signing_input(header, claims))
    }

    /// HS256 over `header.claims` keyed with `secret` (e.g. the RSA public key PEM).
    pub fn sign_hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
        jws::sign_hs256(header, claims, secret)
    }

    /// The introspection endpoint (also in the discovery document).
    pub fn introspection_url(&self) -> String {
        self.server.state.introspection_url.clone()
    }

    /// Introspection requests received so far (including refused ones).
    pub fn introspection_hits(&self) -> u64 {
        self.server.state.introspection_hits.load(Ordering::SeqCst)
    }

    /// An `[[auth.introspection]]` entry for this provider: its client, audience [`AUDIENCE`],
    /// the endpoint found by discovery.
    pub fn introspection_config(&self) -> IntrospectionConfig {
        let (id, secret) = INTROSPECTION_CLIENT;
        IntrospectionConfig {
            issuer: self.issuer_url(),
            client_id: id.to_owned(),
            client_secret: Some(crate::Secret::new(secret)),
            audiences: vec![AUDIENCE.to_owned()],
            ..IntrospectionConfig::default()
        }
    }

    /// A good introspection answer for `sub` at `now`: `iss`, `sub`, `aud`, `iat`, `exp` (+5 min),
    /// `scope`, `client_id`, `token_type` (`active` is added when served).
    pub fn introspection_answer(&self, sub: &str, now: i64) -> Value {
        json!({
            "iss": self.issuer_url(),
            "sub": sub,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 300,
            "scope": "chat",
            "client_id": "some-client",
            "token_type": "Bearer",
        })
    }

    /// Registers a new opaque token (43 random base64url characters) that introspects to
    /// `answer` (plus `active: true` unless `answer` says otherwise).
    pub fn issue_opaque(&self, answer: Value) -> String {
        let token = format!(
            "{}{}{}",
            crate::dev::random_id(),
            crate::dev::random_id(),
            crate::dev::random_id()
        );
        self.register_opaque(&token, answer);
        token
    }

    /// Registers `token` to introspect to `answer`.
    pub fn register_opaque(&self, token: &str, answer: Value) {
        self.server
            .state
            .opaque
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(token.to_owned(), answer);
    }

    /// Forgets `token`: from now on it introspects as `{"active": false}`.
    pub fn revoke_opaque(&self, token: &str) {
        self.server
            .state
            .opaque
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(token);
    }

    /// Answer introspection with this status and no body.
    pub fn set_introspection_status(&self, status: Option<u16>) {
        self.server.state.faults().introspection_status = status;
    }

    /// Starts an authenticator for this provider with `clock`.
    ///
    /// # Panics
    /// If the config is refused.
    pub async fn authenticator(
        &self,
        config: AuthConfig,
        clock: Arc<ManualClock>,
    ) -> crate::Authenticator {
        crate::Authenticator::start_with_clock(config, clock)
            .await
            .expect("authenticator starts")
    }
}
