//! [`Authenticator`]: start-up (validation, discovery, first fetch, background refresh), the
//! routing of a token to its one verifier by shape ([`crate::route`]), and the JWT verification
//! pipeline, cheapest check first (reference §7.1; go-oidc does the same: "throw out tokens with
//! invalid claims before trying to verify the token").

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::api_keys::{ApiKeyConfig, ApiKeyTable};
use crate::clock::{Clock, SystemClock};
use crate::config::{AuthConfig, ConfigError, IssuerConfig};
use crate::credential::CredentialSource;
use crate::error::{AuthError, InvalidTokenReason as R};
use crate::fetch::{self, FetchError};
use crate::github::{GitHubLogin, GitHubVerifier};
use crate::introspection::Introspector;
use crate::jwks::{IssuerCache, IssuerStats, KeyLookup};
use crate::keys::ValidationSpec;
use crate::principal::{self, Principal};
use crate::route::{Route, Verifier, route};
use crate::validate::{self, ClaimRules};
use crate::verified::{Probe, VerifiedCache};

/// Verifies bearer tokens against the configured issuers. Cheap to clone (an `Arc` inside).
///
/// Background refresh tasks run until [`Authenticator::shutdown`] or until the last clone is dropped.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("issuers", &self.inner.order)
            .field("github", &self.inner.github.is_some())
            .field(
                "introspection",
                &self
                    .inner
                    .introspection
                    .iter()
                    .map(|i| i.issuer())
                    .collect::<Vec<_>>(),
            )
            .field("api_keys", &self.inner.api_keys().len())
            .finish_non_exhaustive()
    }
}

struct Inner {
    issuers: HashMap<String, Issuer>,
    order: Vec<String>,
    github: Option<Arc<GitHubVerifier>>,
    /// Prefixed issuers first, then the catch-all (at most one, checked at start-up).
    introspection: Vec<Arc<Introspector>>,
    /// Swapped whole on reload; held for a pointer copy only.
    api_keys: RwLock<Arc<ApiKeyTable>>,
    leeway: i64,
    max_lifetime: i64,
    max_token_bytes: usize,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
    verified: VerifiedCache,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

struct Issuer {
    config: IssuerConfig,
    allowed: Vec<Algorithm>,
    cache: Arc<IssuerCache>,
}

/// JWKS numbers per issuer, and the cache numbers of the other verifiers, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthStats {
    /// One entry per configured issuer, in configuration order.
    pub issuers: Vec<IssuerStats>,
    /// Requests answered from the verified-token cache (no signature check).
    pub verified_cache_hits: u64,
    /// The GitHub verifier and each introspection issuer.
    pub opaque: Vec<OpaqueStats>,
    /// Keys in the API-key table.
    pub api_keys: usize,
}

/// Cache numbers of a verifier that asks upstream (GitHub, an introspection issuer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpaqueStats {
    /// `github` or `introspection`.
    pub verifier: Verifier,
    /// The issuer (GitHub's web root, or the introspection issuer).
    pub issuer: String,
    /// Requests answered from the cache.
    pub cache_hits: u64,
    /// Checks sent upstream (one per token and TTL, shared by concurrent requests).
    pub upstream_checks: u64,
}

impl AuthStats {
    /// Prometheus text exposition: `agui_auth_jwks_fetches_total{issuer,outcome}`,
    /// `agui_auth_discovery_total{issuer,outcome}`, `agui_auth_jwks_keys{issuer}`,
    /// `agui_auth_issuer_usable{issuer}`.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP agui_auth_verified_cache_hits_total Tokens accepted from the verified-token cache.\n# TYPE agui_auth_verified_cache_hits_total counter\nagui_auth_verified_cache_hits_total {}",
            self.verified_cache_hits
        );
        let _ = writeln!(
            out,
            "# HELP agui_auth_api_keys Keys in the API-key table.\n# TYPE agui_auth_api_keys gauge\nagui_auth_api_keys {}",
            self.api_keys
        );
        for (name, help, value) in [
            (
                "agui_auth_opaque_cache_hits_total",
                "GitHub and introspection verdicts answered from the cache.",
                (|s: &OpaqueStats| s.cache_hits) as fn(&OpaqueStats) -> u64,
            ),
            (
                "agui_auth_opaque_checks_total",
                "Checks sent to GitHub or an introspection endpoint.",
                |s: &OpaqueStats| s.upstream_checks,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for s in &self.opaque {
                let _ = writeln!(
                    out,
                    "{name}{{verifier=\"{}\",issuer=\"{}\"}} {}",
                    s.verifier.as_str(),
                    escape_label(&s.issuer),
                    value(s)
                );
            }
        }
        let families: [(&str, &str, &str); 4] = [
            (
                "agui_auth_jwks_fetches_total",
                "counter",
                "JWKS fetches by issuer and outcome.",
            ),
            (
                "agui_auth_discovery_total",
                "counter",
                "OIDC discovery fetches by issuer and outcome.",
            ),
            (
                "agui_auth_jwks_keys",
                "gauge",
                "Usable keys in the issuer's current key set.",
            ),
            (
                "agui_auth_issuer_usable",
                "gauge",
                "1 when the issuer has a usable key set.",
            ),
        ];
        for (name, kind, help) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for s in &self.issuers {
                let issuer = escape_label(&s.issuer);
                match name {
                    "agui_auth_jwks_fetches_total" => {
                        let _ = writeln!(
                            out,
                            "{name}{{issuer=\"{issuer}\",outcome=\"ok\"}} {}",
                            s.jwks_fetches_ok
                        );
                        let _ = writeln!(
                            out,
                            "{name}{{issuer=\"{issuer}\",outcome=\"failed\"}} {}",
                            s.jwks_fetches_failed
                        );
                    }
                    "agui_auth_discovery_total" => {
                        let _ = writeln!(
                            out,
                            "{name}{{issuer=\"{issuer}\",outcome=\"ok\"}} {}",
                            s.discovery_ok
                        );
                        let _ = writeln!(
                            out,
                            "{name}{{issuer=\"{issuer}\",outcome=\"failed\"}} {}",
                            s.discovery_failed
                        );
                    }
                    "agui_auth_jwks_keys" => {
                        let _ = writeln!(out, "{name}{{issuer=\"{issuer}\"}} {}", s.keys);
                    }
                    _ => {
                        let _ =
                            writeln!(out, "{name}{{issuer=\"{issuer}\"}} {}", u8::from(s.usable));
                    }
                }
            }
        }
        out
    }
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Authenticator {
    /// Validates the config, runs discovery and the first JWKS fetch of every issuer
    /// concurrently, and starts the background refreshers. Must run inside a tokio runtime.
    ///
    /// An issuer that cannot be reached does not stop start-up: it is retried in the background
    /// with backoff and its tokens get 503 until it answers.
    ///
    /// # Errors
    /// A config that fails [`AuthConfig::validate`], an unreadable `ca_file`, a discovery
    /// document whose `issuer` differs from the configured one, or a discovered `jwks_uri` that
    /// is plain http off loopback.
    pub async fn start(config: AuthConfig) -> Result<Authenticator, ConfigError> {
        Self::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Authenticator::start`] with another time source (tests use [`crate::ManualClock`]).
    ///
    /// # Errors
    /// As [`Authenticator::start`].
    pub async fn start_with_clock(
        config: AuthConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Authenticator, ConfigError> {
        config.validate()?;
        let client = fetch::build_client(config.ca_file.as_deref())?;
        let mut issuers = HashMap::new();
        let mut order = Vec::new();
        for issuer in &config.issuers {
            let allowed = issuer
                .parsed_algorithms()
                .map_err(|message| ConfigError::Issuer {
                    issuer: issuer.issuer.clone(),
                    message,
                })?;
            let spec = ValidationSpec {
                issuer: issuer.issuer.clone(),
                allowed: allowed.clone(),
            };
            let cache = Arc::new(IssuerCache::new(
                issuer,
                spec,
                client.clone(),
                clock.clone(),
            ));
            order.push(issuer.issuer.clone());
            issuers.insert(
                issuer.issuer.clone(),
                Issuer {
                    config: issuer.clone(),
                    allowed,
                    cache,
                },
            );
        }
        let first =
            futures::future::join_all(order.iter().map(|name| issuers[name].cache.refresh())).await;
        for (name, result) in order.iter().zip(first) {
            match result {
                Ok(()) => tracing::info!(issuer = %name, "issuer ready"),
                Err(FetchError::IssuerMismatch { discovered }) => {
                    return Err(ConfigError::IssuerMismatch {
                        configured: name.clone(),
                        discovered,
                    });
                }
                Err(FetchError::BadJwksUri(message)) => {
                    return Err(ConfigError::Issuer {
                        issuer: name.clone(),
                        message: format!("discovered {message}"),
                    });
                }
                Err(error) => tracing::warn!(
                    issuer = %name, %error,
                    "issuer not usable at start-up; retrying in the background, its tokens get 503 meanwhile"
                ),
            }
        }
        let leeway = i64::try_from(config.leeway_secs).unwrap_or(300);
        let github = match &config.github {
            Some(github) => Some(Arc::new(GitHubVerifier::new(
                github,
                client.clone(),
                clock.clone(),
            )?)),
            None => None,
        };
        let mut introspection = Vec::new();
        for entry in &config.introspection {
            introspection.push(Arc::new(
                Introspector::start(entry, client.clone(), clock.clone(), leeway).await?,
            ));
        }
        // A prefixed issuer is asked before the one catch-all.
        introspection.sort_by_key(|i| !i.has_prefix());
        let api_keys = RwLock::new(ApiKeyTable::build(&config.api_keys)?);
        let cancel = CancellationToken::new();
        for name in &order {
            tokio::spawn(
                issuers[name]
                    .cache
                    .clone()
                    .run_background(cancel.child_token()),
            );
        }
        let inner = Inner {
            issuers,
            order,
            github,
            introspection,
            api_keys,
            leeway,
            max_lifetime: i64::try_from(config.max_token_lifetime_secs).unwrap_or(i64::MAX),
            max_token_bytes: config.max_token_bytes,
            clock,
            cancel,
            verified: VerifiedCache::default(),
        };
        Ok(Authenticator {
            inner: Arc::new(inner),
        })
    }

    /// Verifies a credential with the one verifier its shape selects ([`crate::route`]) and
    /// builds the [`Principal`]: a compact JWS against its issuer's JWKS, `gho_`/`ghu_` with
    /// GitHub, `agui_` against the API-key table, anything else at the introspection issuer whose
    /// `token_prefix` it has (or the catch-all). A shape no configured verifier takes is refused
    /// without any network call.
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] for any token defect, [`AuthError::IssuerUnavailable`] when
    /// whoever must vouch for it cannot answer, [`AuthError::AccessDenied`] for allow/deny
    /// refusals, [`AuthError::InsufficientScope`] when a required scope is missing.
    pub async fn authenticate(
        &self,
        token: &str,
        source: CredentialSource,
    ) -> Result<Arc<Principal>, AuthError> {
        let inner = &self.inner;
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()).into();
        let fingerprint = principal::fingerprint_of(&digest);
        // Size first: nothing is parsed, routed or sent for an oversized value.
        let route = route(token);
        let result = if token.len() > inner.max_token_bytes {
            Err(R::TooLarge.into())
        } else {
            match route {
                Route::Jwt => {
                    self.authenticate_jwt(token, source, digest, &fingerprint)
                        .await
                }
                Route::GitHub(kind) => match &inner.github {
                    Some(github) => {
                        github
                            .authenticate(token, kind, digest, source, &fingerprint)
                            .await
                    }
                    None => Err(R::NoVerifier.into()),
                },
                Route::ApiKey => {
                    let table = inner.api_keys();
                    if table.len() == 0 {
                        Err(R::NoVerifier.into())
                    } else {
                        table
                            .verify(token, source, &fingerprint, inner.clock.unix_now())
                            .map(Arc::new)
                    }
                }
                // Without introspection issuers, a value that is not a JWT is simply malformed
                // (as before there were other verifiers).
                Route::Opaque if inner.introspection.is_empty() => Err(R::Malformed.into()),
                Route::Opaque => match inner.introspection.iter().find(|i| i.accepts(token)) {
                    Some(issuer) => {
                        issuer
                            .authenticate(token, digest, source, &fingerprint)
                            .await
                    }
                    None => Err(R::NoVerifier.into()),
                },
            }
        };
        match &result {
            Ok(p) => tracing::debug!(
                issuer = %p.issuer, sub = %p.subject, token_fp = %fingerprint,
                credential_source = source.as_str(), verifier = p.verifier.as_str(),
                "token accepted"
            ),
            Err(e) => tracing::debug!(
                reason = e.reason(), token_fp = %fingerprint, credential_source = source.as_str(),
                route = route_label(route), "token refused"
            ),
        }
        result
    }

    /// The JWKS path, with its verified-token cache.
    async fn authenticate_jwt(
        &self,
        token: &str,
        source: CredentialSource,
        digest: [u8; 32],
        fingerprint: &str,
    ) -> Result<Arc<Principal>, AuthError> {
        let inner = &self.inner;
        if let Some(principal) = inner.cached(&digest, source) {
            return Ok(principal);
        }
        inner
            .verify(token, source, fingerprint)
            .await
            .map(|(principal, kid, key)| {
                let principal = Arc::new(principal);
                inner.verified.insert(
                    digest,
                    &principal,
                    kid,
                    key,
                    principal.expires_at.saturating_add(inner.leeway),
                    inner.clock.unix_now(),
                );
                principal
            })
    }

    /// Replaces the API-key table (the server calls this on SIGHUP with the re-read config).
    /// Requests already past the lookup keep their principal; every later request sees the new
    /// table. Returns the number of keys now accepted.
    ///
    /// # Errors
    /// An entry [`crate::AuthConfig::validate`] would refuse; the old table then stays.
    pub fn replace_api_keys(&self, keys: &[ApiKeyConfig]) -> Result<usize, ConfigError> {
        let table = ApiKeyTable::build(keys)?;
        let count = table.len();
        *self
            .inner
            .api_keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = table;
        Ok(count)
    }

    /// The "Sign in with GitHub" flow, when `[auth.github]` has `redirect_uri` and `app_origin`.
    pub fn github_login(&self) -> Option<&GitHubLogin> {
        self.inner.github.as_ref().and_then(|g| g.login())
    }

    /// Whether the server can verify anything (`/readyz`): a JWT issuer with a usable key set, or
    /// a verifier that is checked per request (GitHub, introspection, API keys).
    pub fn is_ready(&self) -> bool {
        let inner = &self.inner;
        inner.issuers.values().any(|i| i.cache.is_usable())
            || inner.github.is_some()
            || !inner.introspection.is_empty()
            || inner.api_keys().len() > 0
    }

    /// JWKS and discovery counters per issuer, the other verifiers' cache numbers.
    pub fn stats(&self) -> AuthStats {
        let inner = &self.inner;
        let mut opaque = Vec::new();
        if let Some(github) = &inner.github {
            opaque.push(opaque_stats(
                Verifier::Github,
                github.issuer_name(),
                github.cache(),
            ));
        }
        for issuer in &inner.introspection {
            opaque.push(opaque_stats(
                Verifier::Introspection,
                issuer.issuer(),
                issuer.cache(),
            ));
        }
        AuthStats {
            issuers: inner
                .order
                .iter()
                .map(|n| inner.issuers[n].cache.stats())
                .collect(),
            verified_cache_hits: inner.verified.hits(),
            opaque,
            api_keys: inner.api_keys().len(),
        }
    }

    /// Every entry of the GitHub and introspection caches as (verifier, hex key, `Debug` of the
    /// stored verdict): for tests that prove the caches hold token hashes and principals only.
    #[cfg(feature = "testing")]
    pub fn cache_dump(&self) -> Vec<(Verifier, String, String)> {
        let inner = &self.inner;
        let mut out = Vec::new();
        if let Some(github) = &inner.github {
            out.extend(
                github
                    .cache()
                    .dump()
                    .into_iter()
                    .map(|(k, v)| (Verifier::Github, k, v)),
            );
        }
        for issuer in &inner.introspection {
            out.extend(
                issuer
                    .cache()
                    .dump()
                    .into_iter()
                    .map(|(k, v)| (Verifier::Introspection, k, v)),
            );
        }
        out
    }

    /// Fetches one issuer's keys now (operators and tests), sharing the single flight.
    /// Returns whether a usable set was stored; false for an unknown issuer.
    pub async fn refresh_now(&self, issuer: &str) -> bool {
        match self.inner.issuers.get(issuer) {
            Some(i) => i.cache.refresh().await.is_ok(),
            None => false,
        }
    }

    /// Stops the background refreshers. Verification keeps working with the keys it has.
    pub fn shutdown(&self) {
        self.inner.cancel.cancel();
    }
}

fn opaque_stats(
    verifier: Verifier,
    issuer: &str,
    cache: &crate::opaque_cache::OpaqueCache,
) -> OpaqueStats {
    OpaqueStats {
        verifier,
        issuer: issuer.to_owned(),
        cache_hits: cache.hits(),
        upstream_checks: cache.upstream_checks(),
    }
}

/// The log label of a route.
fn route_label(route: Route) -> &'static str {
    match route {
        Route::Jwt => "jwt",
        Route::GitHub(_) => "github",
        Route::ApiKey => "api_key",
        Route::Opaque => "opaque",
    }
}

impl Inner {
    fn api_keys(&self) -> Arc<ApiKeyTable> {
        self.api_keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A token verified earlier, if its entry is still good (see [`VerifiedCache`]).
    fn cached(&self, digest: &[u8; 32], source: CredentialSource) -> Option<Arc<Principal>> {
        let current_key = |issuer: &str, kid: Option<&str>, alg| match self
            .issuers
            .get(issuer)
            .map(|i| i.cache.lookup(kid, alg))
        {
            Some(KeyLookup::Found(key)) => Some(key),
            _ => None,
        };
        let probe = Probe {
            now: self.clock.unix_now(),
            current_key: &current_key,
        };
        self.verified.get(digest, source, &probe)
    }

    /// Full verification. Returns the principal with the header's `kid` and the key that
    /// verified the signature (for the verified-token cache).
    async fn verify(
        &self,
        token: &str,
        source: CredentialSource,
        fingerprint: &str,
    ) -> Result<(Principal, Option<String>, Arc<crate::keys::VerifyKey>), AuthError> {
        // Shape first: no base64 or JSON work on oversized or non-JWS input.
        let (h64, p64) = validate::check_shape(token, self.max_token_bytes)?;
        let header_bytes = validate::decode_segment(h64)?;
        let header = validate::check_header(&validate::object_from(&header_bytes)?)?;
        let claims = validate::decode_object(p64)?;
        // `iss` picks the issuer before any key is looked up (exact string, RFC 9068 §4).
        let iss = match claims.get("iss") {
            Some(Value::String(iss)) => iss.as_str(),
            _ => return Err(R::MissingIssuer.into()),
        };
        let issuer = self.issuers.get(iss).ok_or(R::UnknownIssuer)?;
        if !issuer.allowed.contains(&header.alg) {
            return Err(R::AlgNotAllowed.into());
        }
        validate::check_typ(header.typ.as_ref(), issuer.config.typ)?;
        validate::check_header_types(&header_bytes)?;
        let expires_at = self.check_claims(&claims, issuer)?;

        let key = self.key_for(issuer, &header).await?;
        // The claims above were decoded from the payload segment this signature covers, so
        // once it verifies they are the verified claims; only they build the principal.
        validate::check_signature(token, h64.len() + 1 + p64.len(), &key)?;
        let principal = self.principal(claims, issuer, source, fingerprint, expires_at)?;
        Ok((principal, header.kid, key))
    }

    fn check_claims(&self, claims: &Map<String, Value>, issuer: &Issuer) -> Result<i64, AuthError> {
        let rules = ClaimRules {
            audiences: &issuer.config.audiences,
            leeway: self.leeway,
            max_lifetime: self.max_lifetime,
            now: self.clock.unix_now(),
        };
        Ok(validate::check_claims(claims, rules)?)
    }

    /// Key by `kid`; on a miss, one shared, rate-limited refetch, then look again.
    async fn key_for(
        &self,
        issuer: &Issuer,
        header: &validate::HeaderInfo,
    ) -> Result<Arc<crate::keys::VerifyKey>, AuthError> {
        let cache = &issuer.cache;
        let seen = cache.fetches_started();
        let first = cache.lookup(header.kid.as_deref(), header.alg);
        let lookup = match first {
            KeyLookup::Missing | KeyLookup::Unavailable { .. } => {
                cache.refetch_on_demand(seen).await;
                cache.lookup(header.kid.as_deref(), header.alg)
            }
            other => other,
        };
        match lookup {
            KeyLookup::Found(key) => Ok(key),
            KeyLookup::WrongAlg => Err(R::AlgMismatch.into()),
            KeyLookup::Ambiguous | KeyLookup::Missing => Err(R::UnknownKid.into()),
            KeyLookup::Unavailable { retry_after_secs } => {
                Err(AuthError::IssuerUnavailable { retry_after_secs })
            }
        }
    }

    fn principal(
        &self,
        claims: Map<String, Value>,
        issuer: &Issuer,
        source: CredentialSource,
        fingerprint: &str,
        expires_at: i64,
    ) -> Result<Principal, AuthError> {
        let mapped = principal::map_claims(&claims, &issuer.config.claims);
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or(R::MissingSubject)?
            .to_owned();
        let principal = Principal {
            issuer: issuer.config.issuer.clone(),
            subject,
            name: mapped.name,
            email: mapped.email,
            email_verified: mapped.email_verified,
            roles: mapped.roles,
            scopes: mapped.scopes,
            claims,
            credential_source: source,
            verifier: Verifier::Jwt,
            token_fingerprint: fingerprint.to_owned(),
            expires_at,
        };
        let config = &issuer.config;
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
        Ok(principal)
    }
}
