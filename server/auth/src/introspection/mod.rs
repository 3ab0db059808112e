//! RFC 7662 token introspection for issuers whose access tokens are opaque.
//!
//! `POST <endpoint>` with `token=…&token_type_hint=access_token`, authenticated with
//! `client_secret_basic`. The answer is trusted only when `active` is `true`, its `iss` (if
//! present) is exactly the configured issuer, its `token_type` (if present) says access token,
//! `exp`/`nbf`/`iat` fit (with the leeway), the audience rule holds ([`config`]) and a subject
//! is there. The answer then goes through the same claim mapping, allow/deny lists and required
//! scopes as a JWT's claims. Cached by the token's SHA-256 until the earlier of its `exp` and
//! `cache_max_secs`.
//!
//! - `config`: [`IntrospectionConfig`], the audience rule, one endpoint per token.

pub(crate) mod config;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::credential::CredentialSource;
use crate::error::{AuthError, InvalidTokenReason as R};
use crate::fetch::{self, FetchError};
use crate::opaque_cache::{Digest, OpaqueCache, Outcome};
use crate::principal::{self, Principal};
use crate::route::Verifier;
use crate::secret::Secret;
use crate::settings::ConfigError;
pub(crate) use config::validate_all;
pub use config::{ClientAuthMethod, IntrospectionConfig};

/// Opaque tokens shorter than this are refused without a call (no real issuer mints them).
pub(crate) const MIN_TOKEN_BYTES: usize = 16;
/// Largest introspection answer read.
const BODY_CAP: usize = 64 * 1024;
/// At most one discovery attempt per this interval while the endpoint is unknown.
const DISCOVERY_COOLDOWN: Duration = Duration::from_secs(5);
/// `Retry-After` while the endpoint cannot answer.
const UNAVAILABLE_RETRY_AFTER: u64 = 5;

pub(crate) struct Introspector {
    config: IntrospectionConfig,
    secret: Secret,
    client: reqwest::Client,
    /// Held for a copy or a store only.
    endpoint: RwLock<Option<String>>,
    /// Single flight for discovery; holds the time of the last attempt.
    discovery: tokio::sync::Mutex<Option<Instant>>,
    cache: Arc<OpaqueCache>,
    clock: Arc<dyn Clock>,
    leeway: i64,
}

impl Introspector {
    /// Resolves the secret and, without a configured endpoint, runs discovery once. An issuer
    /// that cannot be reached does not stop start-up (its tokens get 503 until it answers); one
    /// whose discovery names another issuer does.
    pub(crate) async fn start(
        config: &IntrospectionConfig,
        client: reqwest::Client,
        clock: Arc<dyn Clock>,
        leeway: i64,
    ) -> Result<Self, ConfigError> {
        let secret = config.resolve_secret()?;
        let this = Self {
            cache: Arc::new(OpaqueCache::new(
                config.cache_capacity,
                Duration::from_secs(config.negative_cache_secs),
                clock.clone(),
            )),
            endpoint: RwLock::new(config.endpoint.clone()),
            discovery: tokio::sync::Mutex::new(None),
            config: config.clone(),
            secret,
            client,
            clock,
            leeway,
        };
        if config.endpoint.is_none() {
            match this.discover().await {
                Ok(_) => {}
                Err(FetchError::IssuerMismatch { discovered }) => {
                    return Err(ConfigError::IssuerMismatch {
                        configured: config.issuer.clone(),
                        discovered,
                    });
                }
                Err(FetchError::BadJwksUri(message)) => {
                    return Err(ConfigError::Issuer {
                        issuer: config.issuer.clone(),
                        message: format!("discovered introspection_endpoint {message}"),
                    });
                }
                Err(error) => tracing::warn!(
                    issuer = %config.issuer, %error,
                    "introspection endpoint not discovered at start-up; retried on demand, its tokens get 503 meanwhile"
                ),
            }
        }
        Ok(this)
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.config.issuer
    }

    pub(crate) fn cache(&self) -> &OpaqueCache {
        &self.cache
    }

    /// Whether this issuer is the one for `token` (by `token_prefix`, or the catch-all).
    pub(crate) fn accepts(&self, token: &str) -> bool {
        self.config
            .token_prefix
            .as_deref()
            .is_none_or(|p| token.starts_with(p))
    }

    /// Whether this issuer has a prefix (prefixed issuers are tried before the catch-all).
    pub(crate) fn has_prefix(&self) -> bool {
        self.config.token_prefix.is_some()
    }

    pub(crate) async fn authenticate(
        self: &Arc<Self>,
        token: &str,
        digest: Digest,
        source: CredentialSource,
        fingerprint: &str,
    ) -> Result<Arc<Principal>, AuthError> {
        if token.len() < MIN_TOKEN_BYTES {
            return Err(R::Malformed.into());
        }
        let this = self.clone();
        let token = token.to_owned();
        let fingerprint = fingerprint.to_owned();
        self.cache
            .get_or_check(digest, source, async move {
                this.check(&token, source, &fingerprint).await
            })
            .await
    }

    async fn discover(&self) -> Result<String, FetchError> {
        let url = fetch::discover_endpoint(
            &self.client,
            &self.config.issuer,
            "introspection_endpoint",
            self.config.allow_http,
        )
        .await?;
        *self
            .endpoint
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(url.clone());
        Ok(url)
    }

    /// The endpoint, discovering it on demand (single flight, at most every 5 s).
    async fn endpoint(&self) -> Result<String, AuthError> {
        if let Some(url) = self.current_endpoint() {
            return Ok(url);
        }
        let mut last = self.discovery.lock().await;
        if let Some(url) = self.current_endpoint() {
            return Ok(url);
        }
        let now = self.clock.instant_now();
        if last.is_some_and(|at| now.duration_since(at) < DISCOVERY_COOLDOWN) {
            return Err(unavailable(UNAVAILABLE_RETRY_AFTER));
        }
        *last = Some(now);
        self.discover().await.map_err(|error| {
            tracing::warn!(issuer = %self.config.issuer, %error, "introspection discovery failed");
            unavailable(UNAVAILABLE_RETRY_AFTER)
        })
    }

    fn current_endpoint(&self) -> Option<String> {
        self.endpoint
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    async fn check(&self, token: &str, source: CredentialSource, fingerprint: &str) -> Outcome {
        let endpoint = match self.endpoint().await {
            Ok(url) => url,
            Err(e) => return Outcome::Unavailable(e),
        };
        let response = match self.introspect(&endpoint, token).await {
            Ok(response) => response,
            Err(e) => return Outcome::Unavailable(e),
        };
        match self.principal(response, source, fingerprint) {
            Ok((principal, ttl)) => Outcome::Accepted(Arc::new(principal), ttl),
            Err(e) => Outcome::Refused(e),
        }
    }

    /// One RFC 7662 request; the answer as a JSON object, or why there is none (all 503).
    async fn introspect(
        &self,
        endpoint: &str,
        token: &str,
    ) -> Result<Map<String, Value>, AuthError> {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before they go into Basic.
        let basic = STANDARD.encode(format!(
            "{}:{}",
            enc(&self.config.client_id),
            enc(self.secret.expose())
        ));
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let issuer = &self.config.issuer;
        let mut response = self
            .client
            .post(endpoint)
            .header(http::header::AUTHORIZATION, format!("Basic {basic}"))
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(%issuer, error = %fetch::without_url(&e), "introspection request failed");
                unavailable(UNAVAILABLE_RETRY_AFTER)
            })?;
        let status = response.status();
        if !status.is_success() {
            if matches!(status.as_u16(), 400 | 401 | 403) {
                tracing::error!(%issuer, status = status.as_u16(),
                    "the introspection endpoint refused agui-server's request; check client_id and the client secret");
            } else {
                tracing::warn!(%issuer, status = status.as_u16(), "introspection endpoint answered an error");
            }
            let retry = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map_or(UNAVAILABLE_RETRY_AFTER, |s| s.clamp(1, 60));
            return Err(unavailable(retry));
        }
        let body = fetch::read_capped(&mut response, BODY_CAP)
            .await
            .map_err(|error| {
                tracing::warn!(%issuer, %error, "introspection answer unreadable");
                unavailable(UNAVAILABLE_RETRY_AFTER)
            })?;
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => {
                tracing::warn!(%issuer, "introspection answer is not a JSON object");
                Err(unavailable(UNAVAILABLE_RETRY_AFTER))
            }
        }
    }

    /// The RFC 7662 §2.2 checks, then the principal and how long to remember it.
    fn principal(
        &self,
        claims: Map<String, Value>,
        source: CredentialSource,
        fingerprint: &str,
    ) -> Result<(Principal, Duration), AuthError> {
        let config = &self.config;
        if claims.get("active") != Some(&Value::Bool(true)) {
            return Err(R::Inactive.into());
        }
        match claims.get("iss") {
            None => {}
            Some(Value::String(iss)) if *iss == config.issuer => {}
            Some(_) => return Err(R::UnknownIssuer.into()),
        }
        let is_access = |key: &str, ok: &[&str]| match claims.get(key) {
            None => true,
            Some(Value::String(t)) => ok.iter().any(|o| t.eq_ignore_ascii_case(o)),
            Some(_) => false,
        };
        // `token_type` (RFC 7662) and Ory Hydra's `token_use`: a refresh token is no bearer.
        if !is_access("token_type", &["bearer", "access_token"])
            || !is_access("token_use", &["access_token"])
        {
            return Err(R::NotAccessToken.into());
        }
        let now = self.clock.unix_now();
        let time = |key: &str| match claims.get(key) {
            None => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or(AuthError::from(R::BadClaim)),
        };
        let exp = time("exp")?;
        if exp.is_some_and(|exp| exp + self.leeway <= now) {
            return Err(R::Expired.into());
        }
        if time("nbf")?.is_some_and(|nbf| nbf > now + self.leeway) {
            return Err(R::NotYetValid.into());
        }
        if time("iat")?.is_some_and(|iat| iat > now + self.leeway) {
            return Err(R::IssuedInFuture.into());
        }
        self.check_audience(claims.get("aud"))?;
        let subject = match (claims.get("sub"), claims.get("client_id")) {
            (Some(Value::String(sub)), _) if !sub.is_empty() => sub.clone(),
            (None, Some(Value::String(client)))
                if config.subject_from_client_id && !client.is_empty() =>
            {
                client.clone()
            }
            _ => return Err(R::MissingSubject.into()),
        };
        let mapped = principal::map_claims(&claims, &config.claims);
        let principal = Principal {
            issuer: config.issuer.clone(),
            subject,
            name: mapped.name,
            email: mapped.email,
            email_verified: mapped.email_verified,
            roles: mapped.roles,
            scopes: mapped.scopes,
            claims,
            credential_source: source,
            verifier: Verifier::Introspection,
            token_fingerprint: fingerprint.to_owned(),
            expires_at: exp.unwrap_or(i64::MAX),
        };
        if principal::matches(&config.deny, &principal)
            || (!config.allow.is_empty() && !principal::matches(&config.allow, &principal))
        {
            return Err(AuthError::AccessDenied);
        }
        if !config
            .required_scopes
            .iter()
            .all(|s| principal.has_scope(s))
        {
            return Err(AuthError::InsufficientScope {
                scope: config.required_scopes.join(" "),
            });
        }
        let left = exp.map_or(config.cache_max_secs, |exp| {
            u64::try_from(exp - now)
                .unwrap_or(0)
                .min(config.cache_max_secs)
        });
        Ok((principal, Duration::from_secs(left)))
    }

    /// A named audience must be ours; none at all only with `allow_missing_audience`.
    fn check_audience(&self, aud: Option<&Value>) -> Result<(), AuthError> {
        let named: Vec<&str> = match aud {
            None | Some(Value::Null) => {
                return if self.config.allow_missing_audience {
                    Ok(())
                } else {
                    Err(R::MissingAudience.into())
                };
            }
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) if many.iter().all(Value::is_string) => {
                many.iter().filter_map(Value::as_str).collect()
            }
            Some(_) => return Err(R::BadClaim.into()),
        };
        if named
            .iter()
            .any(|a| self.config.audiences.iter().any(|ours| ours == a))
        {
            Ok(())
        } else {
            Err(R::BadAudience.into())
        }
    }
}

fn unavailable(retry_after_secs: u64) -> AuthError {
    AuthError::IssuerUnavailable { retry_after_secs }
}
