//! The three GitHub REST calls the verifier makes (docs.github.com/rest, API version
//! 2022-11-28), with GitHub's rate-limit signals read the documented way.
//!
//! * `POST /applications/{client_id}/token` ("Check a token"), HTTP Basic with the app's client
//!   id and secret, body `{"access_token": …}`: 200 with the authorization (user, scopes,
//!   `expires_at`) only for a token issued to this app; 404/422 otherwise. This is GitHub's
//!   audience check: `GET /user` answers for any app's token and for personal access tokens.
//! * `GET /user/orgs`, `GET /user/teams` with the user's token (`read:org` needed to see private
//!   memberships), paginated by `Link: <…>; rel="next"`.
//!
//! Rate limiting ("Rate limits for the REST API"): a 403 or 429 with `retry-after`, or with
//! `x-ratelimit-remaining: 0` (then `x-ratelimit-reset` is when it ends). Never a 401 for the
//! caller: their token may be fine.

use std::sync::Arc;

use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::fetch::{self, BODY_CAP};
use crate::secret::Secret;

/// Pages of orgs or teams read at most (100 each).
const MAX_PAGES: usize = 10;
/// Longest wait passed on from GitHub's rate-limit headers.
pub(crate) const MAX_RETRY_AFTER: u64 = 3_600;
/// What an unreachable or failing GitHub gets as `Retry-After`.
pub(crate) const UNAVAILABLE_RETRY_AFTER: u64 = 5;

/// Why a call did not give an answer about the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApiFailure {
    /// The check says not ours (404, 422), or a user endpoint says bad credentials (401).
    Refused,
    /// A user endpoint answered 403 without a rate limit: the token lacks a scope (`read:org`).
    Forbidden,
    /// Rate limited; retry after this many seconds.
    RateLimited(u64),
    /// Down, slow, a 5xx, an unreadable answer, or our app credentials refused (logged).
    Unavailable(String),
}

/// A GitHub user as the check returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GitHubUser {
    pub id: u64,
    pub login: String,
    pub name: Option<String>,
    pub email: Option<String>,
}

/// What the check says about a token of our app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authorization {
    pub user: GitHubUser,
    pub scopes: Vec<String>,
    /// GitHub App user tokens expire (8 h); OAuth app tokens do not.
    pub expires_at: Option<i64>,
}

pub(crate) struct GitHubApi {
    client: reqwest::Client,
    api_url: String,
    client_id: String,
    secret: Secret,
    clock: Arc<dyn Clock>,
}

impl GitHubApi {
    pub(crate) fn new(
        client: reqwest::Client,
        api_url: &str,
        client_id: &str,
        secret: Secret,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            api_url: api_url.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            secret,
            clock,
        }
    }

    /// `POST /applications/{client_id}/token`.
    pub(crate) async fn check_token(&self, token: &str) -> Result<Authorization, ApiFailure> {
        let url = format!("{}/applications/{}/token", self.api_url, self.client_id);
        let request = self
            .client
            .post(url)
            .basic_auth(&self.client_id, Some(self.secret.expose()))
            .json(&json!({ "access_token": token }));
        let (status, body) = self.send(request).await?;
        match status {
            StatusCode::OK => parse_authorization(&body, &self.client_id),
            StatusCode::NOT_FOUND | StatusCode::UNPROCESSABLE_ENTITY => Err(ApiFailure::Refused),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                // Our own credentials were refused: every token would fail, so this is an
                // outage of ours, not the caller's fault.
                tracing::error!(
                    status = status.as_u16(),
                    client_id = %self.client_id,
                    "GitHub refused the app's client credentials on the token check; check auth.github.client_id and the client secret"
                );
                Err(ApiFailure::Unavailable(format!("check answered {status}")))
            }
            other => Err(ApiFailure::Unavailable(format!("check answered {other}"))),
        }
    }

    /// Every element of a paginated user list (`/user/orgs`, `/user/teams`), at most
    /// [`MAX_PAGES`] pages.
    pub(crate) async fn list(&self, token: &str, path: &str) -> Result<Vec<Value>, ApiFailure> {
        let mut url = format!("{}{path}?per_page=100", self.api_url);
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let request = self.client.get(&url).bearer_auth(token);
            let (status, headers, body) = self.send_with_headers(request).await?;
            match status {
                StatusCode::OK => {}
                StatusCode::UNAUTHORIZED => return Err(ApiFailure::Refused),
                StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => return Err(ApiFailure::Forbidden),
                other => return Err(ApiFailure::Unavailable(format!("{path} answered {other}"))),
            }
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Array(page)) => items.extend(page),
                _ => return Err(ApiFailure::Unavailable(format!("{path}: not a JSON array"))),
            }
            match next_link(&headers, &self.api_url) {
                Some(next) => url = next,
                None => return Ok(items),
            }
        }
        tracing::warn!(
            path,
            "more than {MAX_PAGES} pages of memberships; the rest is ignored"
        );
        Ok(items)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), ApiFailure> {
        self.send_with_headers(request)
            .await
            .map(|(status, _, body)| (status, body))
    }

    async fn send_with_headers(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), ApiFailure> {
        let mut response = request
            .header(header::ACCEPT, "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .send()
            .await
            .map_err(|e| ApiFailure::Unavailable(fetch::without_url(&e)))?;
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(retry) = rate_limited(status, &headers, self.clock.unix_now()) {
            return Err(ApiFailure::RateLimited(retry));
        }
        if status.is_server_error() {
            return Err(ApiFailure::Unavailable(format!("answered {status}")));
        }
        let body = fetch::read_capped(&mut response, BODY_CAP)
            .await
            .map_err(|e| ApiFailure::Unavailable(e.to_string()))?;
        Ok((status, headers, body))
    }
}

fn parse_authorization(body: &[u8], client_id: &str) -> Result<Authorization, ApiFailure> {
    let bad = |what: &str| ApiFailure::Unavailable(format!("token check answer: {what}"));
    let doc: Value = serde_json::from_slice(body).map_err(|_| bad("not JSON"))?;
    // Defence in depth: the answer must be about our app.
    if let Some(app) = doc.pointer("/app/client_id").and_then(Value::as_str)
        && app != client_id
    {
        return Err(ApiFailure::Refused);
    }
    let user = doc.get("user").ok_or_else(|| bad("no user"))?;
    let id = user
        .get("id")
        .and_then(Value::as_u64)
        .filter(|id| *id > 0)
        .ok_or_else(|| bad("no numeric user id"))?;
    let login = user
        .get("login")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty() && l.len() <= 39)
        .ok_or_else(|| bad("no login"))?;
    let text = |key: &str| {
        user.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .map(String::from)
    };
    let scopes = doc
        .get("scopes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter(|s| crate::settings::is_scope_token(s))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let expires_at = match doc.get("expires_at") {
        Some(Value::String(at)) => Some(crate::rfc3339::parse(at).map_err(|_| bad("expires_at"))?),
        _ => None,
    };
    Ok(Authorization {
        user: GitHubUser {
            id,
            login: login.to_owned(),
            name: text("name"),
            email: text("email"),
        },
        scopes,
        expires_at,
    })
}

/// Seconds to wait when GitHub says we are rate limited, else `None`.
pub(crate) fn rate_limited(status: StatusCode, headers: &HeaderMap, now: i64) -> Option<u64> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(secs) = get("retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(secs.clamp(1, MAX_RETRY_AFTER));
    }
    if get("x-ratelimit-remaining") == Some("0") {
        let wait = get("x-ratelimit-reset")
            .and_then(|v| v.parse::<i64>().ok())
            .map_or(60, |reset| reset.saturating_sub(now).max(1));
        return Some(u64::try_from(wait).unwrap_or(60).clamp(1, MAX_RETRY_AFTER));
    }
    // A 429 without headers is still a rate limit; a bare 403 is not.
    (status == StatusCode::TOO_MANY_REQUESTS).then_some(60)
}

/// The `rel="next"` URL of a `Link` header, only if it stays under the API root (the header is
/// the server's to set, but a URL we fetch must not be steerable elsewhere).
fn next_link(headers: &HeaderMap, api_url: &str) -> Option<String> {
    let link = headers.get(header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.trim().split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().eq_ignore_ascii_case("rel=\"next\""));
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        (is_next && url.starts_with(&format!("{api_url}/"))).then(|| url.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn rate_limits_are_read_from_the_documented_headers() {
        let now = 1_000;
        let primary = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1120"),
        ]);
        assert_eq!(
            rate_limited(StatusCode::FORBIDDEN, &primary, now),
            Some(120)
        );
        let secondary = headers(&[("retry-after", "30")]);
        assert_eq!(
            rate_limited(StatusCode::TOO_MANY_REQUESTS, &secondary, now),
            Some(30)
        );
        assert_eq!(
            rate_limited(StatusCode::FORBIDDEN, &secondary, now),
            Some(30)
        );
        let huge = headers(&[("retry-after", "999999")]);
        assert_eq!(
            rate_limited(StatusCode::FORBIDDEN, &huge, now),
            Some(MAX_RETRY_AFTER)
        );
        // Controls: a 403 with quota left, and a 200 at zero, are no rate limits.
        let left = headers(&[("x-ratelimit-remaining", "10")]);
        assert_eq!(rate_limited(StatusCode::FORBIDDEN, &left, now), None);
        assert_eq!(rate_limited(StatusCode::OK, &primary, now), None);
    }

    #[test]
    fn next_links_stay_under_the_api_root() {
        let api = "https://api.github.com";
        let h = headers(&[(
            "link",
            "<https://api.github.com/user/teams?page=2>; rel=\"next\", <https://api.github.com/user/teams?page=5>; rel=\"last\"",
        )]);
        assert_eq!(
            next_link(&h, api).as_deref(),
            Some("https://api.github.com/user/teams?page=2")
        );
        let evil = headers(&[("link", "<https://evil.example/x>; rel=\"next\"")]);
        assert_eq!(next_link(&evil, api), None);
        let last_only = headers(&[("link", "<https://api.github.com/x?page=1>; rel=\"prev\"")]);
        assert_eq!(next_link(&last_only, api), None);
    }

    #[test]
    fn the_check_answer_is_read_field_by_field() {
        let body = json!({
            "token": "gho_secret", "hashed_token": "x", "scopes": ["read:org", "bad scope"],
            "app": {"client_id": "Iv1.ours"}, "expires_at": null,
            "user": {"id": 583231, "login": "octocat", "name": "The Octocat", "email": null}
        });
        let auth = parse_authorization(body.to_string().as_bytes(), "Iv1.ours").unwrap();
        assert_eq!(auth.user.id, 583_231);
        assert_eq!(auth.user.login, "octocat");
        assert_eq!(auth.user.email, None);
        assert_eq!(auth.scopes, vec!["read:org"]);
        assert_eq!(
            parse_authorization(body.to_string().as_bytes(), "Iv1.other"),
            Err(ApiFailure::Refused)
        );
    }
}
