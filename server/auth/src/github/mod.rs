//! The GitHub verifier: a `gho_`/`ghu_` token is accepted only if GitHub says it was issued to
//! our app (see [`api`]); the principal is the GitHub user (issuer: the web root, subject: the
//! numeric user id), with roles from team membership and allowlists of users, orgs and teams.
//!
//! Results are cached by the token's SHA-256 ([`crate::opaque_cache`]). When GitHub rate-limits
//! the app check, no further check is sent until the limit resets (cached tokens keep working;
//! new ones get 503 with that `Retry-After`).
//!
//! - `config`: [`GitHubConfig`] and its validation.
//! - `api`: the REST calls and rate-limit reading.
//! - `login`: [`GitHubLogin`], the authorize redirect, the signed state cookie, PKCE and the
//!   code exchange of "Sign in with GitHub".

pub(crate) mod api;
pub(crate) mod config;
pub(crate) mod login;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::clock::Clock;
use crate::credential::CredentialSource;
use crate::error::{AuthError, InvalidTokenReason as R};
use crate::opaque_cache::{Digest, OpaqueCache, Outcome};
use crate::principal::Principal;
use crate::route::{GitHubKind, Verifier, is_github_token_syntax};
use crate::settings::ConfigError;
use api::{ApiFailure, Authorization, GitHubApi, UNAVAILABLE_RETRY_AFTER};
pub use config::GitHubConfig;
pub use login::GitHubLogin;

pub(crate) struct GitHubVerifier {
    config: GitHubConfig,
    issuer: String,
    api: GitHubApi,
    cache: Arc<OpaqueCache>,
    clock: Arc<dyn Clock>,
    /// When GitHub rate-limited the app check: no check before this instant. Held for a copy.
    blocked_until: Mutex<Option<Instant>>,
    login: Option<GitHubLogin>,
}

impl GitHubVerifier {
    pub(crate) fn new(
        config: &GitHubConfig,
        client: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let secret = config.resolve_secret()?;
        let login = if config.login_enabled() {
            Some(GitHubLogin::new(
                config,
                secret.clone(),
                config.resolve_cookie_key()?,
                client.clone(),
                clock.clone(),
            ))
        } else {
            None
        };
        Ok(Self {
            issuer: config.issuer(),
            api: GitHubApi::new(
                client,
                &config.api_url,
                &config.client_id,
                secret,
                clock.clone(),
            ),
            cache: Arc::new(OpaqueCache::new(
                config.cache_capacity,
                Duration::from_secs(config.negative_cache_ttl_secs),
                clock.clone(),
            )),
            config: config.clone(),
            clock,
            blocked_until: Mutex::new(None),
            login,
        })
    }

    pub(crate) fn issuer_name(&self) -> &str {
        &self.issuer
    }

    pub(crate) fn login(&self) -> Option<&GitHubLogin> {
        self.login.as_ref()
    }

    pub(crate) fn cache(&self) -> &OpaqueCache {
        &self.cache
    }

    pub(crate) async fn authenticate(
        self: &Arc<Self>,
        token: &str,
        kind: GitHubKind,
        digest: Digest,
        source: CredentialSource,
        fingerprint: &str,
    ) -> Result<Arc<Principal>, AuthError> {
        match kind {
            GitHubKind::Personal => return Err(R::GitHubPersonalToken.into()),
            GitHubKind::NotUserToken => return Err(R::GitHubNotUserToken.into()),
            GitHubKind::OAuthUser | GitHubKind::AppUser => {}
        }
        if !is_github_token_syntax(token) {
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

    /// One upstream verification: the app check, then memberships if the policy needs them.
    async fn check(&self, token: &str, source: CredentialSource, fingerprint: &str) -> Outcome {
        if let Some(wait) = self.blocked_for() {
            return Outcome::Unavailable(unavailable(wait));
        }
        let authorization = match self.api.check_token(token).await {
            Ok(a) => a,
            Err(failure) => return self.failed(failure, R::GitHubNotOurApp, true),
        };
        let now = self.clock.unix_now();
        if authorization.expires_at.is_some_and(|at| at <= now) {
            return Outcome::Refused(R::Expired.into());
        }
        let (orgs, teams) = match self.memberships(token).await {
            Ok(m) => m,
            Err(failure) => return self.failed(failure, R::GitHubNotOurApp, false),
        };
        if !self.allowed(&authorization.user.login, &orgs, &teams) {
            return Outcome::Refused(AuthError::AccessDenied);
        }
        let principal = self.principal(authorization, orgs, teams, source, fingerprint);
        let ttl = match principal.expires_at {
            i64::MAX => self.config.cache_ttl_secs,
            at => u64::try_from(at - now)
                .unwrap_or(0)
                .min(self.config.cache_ttl_secs),
        };
        Outcome::Accepted(Arc::new(principal), Duration::from_secs(ttl))
    }

    fn failed(&self, failure: ApiFailure, refused: R, app_check: bool) -> Outcome {
        match failure {
            ApiFailure::Refused => Outcome::Refused(refused.into()),
            // A 403 on a membership list: the token cannot read orgs (no `read:org`).
            ApiFailure::Forbidden => Outcome::Refused(AuthError::AccessDenied),
            ApiFailure::RateLimited(wait) => {
                tracing::warn!(retry_after_secs = wait, app_check, "GitHub rate-limited us");
                if app_check {
                    *lock(&self.blocked_until) =
                        Some(self.clock.instant_now() + Duration::from_secs(wait));
                }
                Outcome::Unavailable(unavailable(wait))
            }
            ApiFailure::Unavailable(why) => {
                tracing::warn!(error = %why, "GitHub could not verify a token");
                Outcome::Unavailable(unavailable(UNAVAILABLE_RETRY_AFTER))
            }
        }
    }

    /// Seconds left of a rate limit on the app check.
    fn blocked_for(&self) -> Option<u64> {
        let mut blocked = lock(&self.blocked_until);
        let now = self.clock.instant_now();
        match *blocked {
            Some(until) if until > now => Some((until - now).as_secs().max(1)),
            Some(_) => {
                *blocked = None;
                None
            }
            None => None,
        }
    }

    /// Lower-cased org logins and `org/team` slugs, read only if the policy uses them.
    async fn memberships(&self, token: &str) -> Result<(Vec<String>, Vec<String>), ApiFailure> {
        let config = &self.config;
        let mut teams = Vec::new();
        if !config.allowed_teams.is_empty() || !config.roles.is_empty() {
            match self.api.list(token, "/user/teams").await {
                Ok(items) => teams = items.iter().filter_map(team_slug).collect(),
                // Without `read:org` GitHub refuses the list; the user simply has no team here.
                Err(ApiFailure::Forbidden) => {
                    tracing::warn!("the token cannot list teams (it needs the read:org scope)");
                }
                Err(other) => return Err(other),
            }
        }
        let mut orgs: Vec<String> = teams
            .iter()
            .filter_map(|t| t.split_once('/').map(|(org, _)| org.to_owned()))
            .collect();
        if !config.allowed_orgs.is_empty() {
            match self.api.list(token, "/user/orgs").await {
                Ok(items) => orgs.extend(items.iter().filter_map(|o| {
                    o.get("login")
                        .and_then(Value::as_str)
                        .map(str::to_ascii_lowercase)
                })),
                Err(ApiFailure::Forbidden) => {
                    tracing::warn!("the token cannot list orgs (it needs the read:org scope)");
                }
                Err(other) => return Err(other),
            }
        }
        orgs.sort();
        orgs.dedup();
        Ok((orgs, teams))
    }

    fn allowed(&self, login: &str, orgs: &[String], teams: &[String]) -> bool {
        let c = &self.config;
        if c.allowed_users.is_empty() && c.allowed_orgs.is_empty() && c.allowed_teams.is_empty() {
            return true;
        }
        c.allowed_users
            .iter()
            .any(|u| u.eq_ignore_ascii_case(login))
            || c.allowed_orgs
                .iter()
                .any(|o| orgs.contains(&o.to_ascii_lowercase()))
            || c.allowed_teams
                .iter()
                .any(|t| teams.contains(&t.to_ascii_lowercase()))
    }

    fn principal(
        &self,
        authorization: Authorization,
        orgs: Vec<String>,
        teams: Vec<String>,
        source: CredentialSource,
        fingerprint: &str,
    ) -> Principal {
        let Authorization {
            user,
            scopes,
            expires_at,
        } = authorization;
        let roles: Vec<String> = self
            .config
            .roles
            .iter()
            .filter(|(_, wanted)| {
                wanted
                    .iter()
                    .any(|t| teams.contains(&t.to_ascii_lowercase()))
            })
            .map(|(role, _)| role.clone())
            .collect();
        // Built field by field: GitHub's answer also echoes the token, which must not be kept.
        let mut claims = Map::new();
        claims.insert("sub".into(), json!(user.id.to_string()));
        claims.insert("login".into(), json!(user.login));
        claims.insert("github_id".into(), json!(user.id));
        if let Some(name) = &user.name {
            claims.insert("name".into(), json!(name));
        }
        if let Some(email) = &user.email {
            claims.insert("email".into(), json!(email));
        }
        claims.insert("scope".into(), json!(scopes.join(" ")));
        if self.config.needs_memberships() {
            claims.insert("orgs".into(), json!(orgs));
            claims.insert("teams".into(), json!(teams));
        }
        Principal {
            issuer: self.issuer.clone(),
            subject: user.id.to_string(),
            name: Some(user.name.unwrap_or_else(|| user.login.clone())),
            email: user.email,
            // GitHub's profile e-mail is whatever the user made public; it proves no domain.
            email_verified: None,
            roles,
            scopes,
            claims,
            credential_source: source,
            verifier: Verifier::Github,
            token_fingerprint: fingerprint.to_owned(),
            expires_at: expires_at.unwrap_or(i64::MAX),
        }
    }
}

fn team_slug(team: &Value) -> Option<String> {
    let org = team.pointer("/organization/login")?.as_str()?;
    let slug = team.get("slug")?.as_str()?;
    Some(format!("{org}/{slug}").to_ascii_lowercase())
}

fn unavailable(retry_after_secs: u64) -> AuthError {
    AuthError::IssuerUnavailable { retry_after_secs }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_slugs_are_org_slash_slug_lower_cased() {
        let team = json!({"slug": "Platform", "organization": {"login": "Acme"}});
        assert_eq!(team_slug(&team).as_deref(), Some("acme/platform"));
        assert_eq!(team_slug(&json!({"slug": "x"})), None);
    }
}
