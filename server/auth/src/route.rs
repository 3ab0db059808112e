//! Which verifier a token goes to, decided from its shape alone, before any network call
//! (DESIGN "Credentials beyond JWTs"). A token never reaches a verifier not meant for it: a JWT
//! is never sent to GitHub or to an introspection endpoint, a GitHub token never to an
//! introspection endpoint, and a value that fits no configured verifier is refused locally.

use serde::Serialize;

use crate::credential::is_compact_jws;

/// The kind of verifier that accepted a credential (recorded in the [`crate::Principal`], logs,
/// metrics and the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verifier {
    /// A JWT verified against its issuer's JWKS.
    Jwt,
    /// A GitHub user token checked against our GitHub app.
    Github,
    /// An opaque token checked at its issuer's RFC 7662 introspection endpoint.
    Introspection,
    /// A key from the `[[auth.api_keys]]` table.
    ApiKey,
}

impl Verifier {
    /// `"jwt"`, `"github"`, `"introspection"` or `"api_key"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::Github => "github",
            Self::Introspection => "introspection",
            Self::ApiKey => "api_key",
        }
    }
}

/// What GitHub calls a token of each prefix (docs "About authentication to GitHub": token
/// formats). Only user access tokens issued to an app can pass the app check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GitHubKind {
    /// `gho_`: an OAuth app's user access token.
    OAuthUser,
    /// `ghu_`: a GitHub App's user access token.
    AppUser,
    /// `ghp_` (classic) or `github_pat_` (fine-grained): a personal access token, never issued
    /// to an app, so it can never pass the check; refused without asking GitHub.
    Personal,
    /// `ghs_` (installation) or `ghr_` (refresh): not a user access token; refused locally.
    NotUserToken,
}

/// Where a token goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Three base64url segments: the JWKS path.
    Jwt,
    /// A GitHub-shaped token.
    GitHub(GitHubKind),
    /// `agui_…`: the API-key table.
    ApiKey,
    /// Anything else: the introspection issuers, if any.
    Opaque,
}

/// The prefix of every agui-server API key.
pub const API_KEY_PREFIX: &str = "agui_";

/// Prefixes reserved for other verifiers: an introspection issuer's `token_prefix` may not
/// start with one (or be a prefix of one).
pub(crate) const RESERVED_PREFIXES: [&str; 7] = [
    "gho_",
    "ghu_",
    "ghp_",
    "ghs_",
    "ghr_",
    "github_pat_",
    API_KEY_PREFIX,
];

/// The route for `token`. The compact-JWS shape wins, so a token shaped like a JWT can only ever
/// be verified as one.
pub(crate) fn route(token: &str) -> Route {
    if is_compact_jws(token) {
        return Route::Jwt;
    }
    if token.starts_with(API_KEY_PREFIX) {
        return Route::ApiKey;
    }
    let github = if token.starts_with("gho_") {
        Some(GitHubKind::OAuthUser)
    } else if token.starts_with("ghu_") {
        Some(GitHubKind::AppUser)
    } else if token.starts_with("ghp_") || token.starts_with("github_pat_") {
        Some(GitHubKind::Personal)
    } else if token.starts_with("ghs_") || token.starts_with("ghr_") {
        Some(GitHubKind::NotUserToken)
    } else {
        None
    };
    github.map_or(Route::Opaque, Route::GitHub)
}

/// GitHub tokens are `[A-Za-z0-9_]` and at most 255 characters (GitHub changelog 2021-03-31,
/// "Authentication token format updates"); anything else is malformed and costs no call.
pub(crate) fn is_github_token_syntax(token: &str) -> bool {
    (20..=255).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_routed_by_shape() {
        assert_eq!(
            route("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"),
            Route::Jwt
        );
        assert_eq!(
            route("gho_16C7e42F292c6912E7710c838347Ae178B4a"),
            Route::GitHub(GitHubKind::OAuthUser)
        );
        assert_eq!(route("ghu_abc"), Route::GitHub(GitHubKind::AppUser));
        assert_eq!(route("ghp_abc"), Route::GitHub(GitHubKind::Personal));
        assert_eq!(
            route("github_pat_11ABC_xyz"),
            Route::GitHub(GitHubKind::Personal)
        );
        assert_eq!(route("ghs_abc"), Route::GitHub(GitHubKind::NotUserToken));
        assert_eq!(route("ghr_abc"), Route::GitHub(GitHubKind::NotUserToken));
        assert_eq!(route("agui_AAAA"), Route::ApiKey);
        assert_eq!(route("ory_at_abc"), Route::Opaque);
        assert_eq!(route("garbage"), Route::Opaque);
        // A JWT shape wins over a prefix: it can only be verified as a JWT.
        assert_eq!(route("gho_a.b.c"), Route::Jwt);
        assert_eq!(route("agui_a.b.c"), Route::Jwt);
    }

    #[test]
    fn github_token_syntax() {
        assert!(is_github_token_syntax(
            "gho_16C7e42F292c6912E7710c838347Ae178B4a"
        ));
        assert!(is_github_token_syntax(&format!(
            "github_pat_{}",
            "a".repeat(82)
        )));
        assert!(!is_github_token_syntax("gho_short"));
        assert!(!is_github_token_syntax(
            "gho_16C7e42F292c6912E7710c838347Ae178B4-"
        ));
        assert!(!is_github_token_syntax(&format!("gho_{}", "a".repeat(300))));
    }
}
