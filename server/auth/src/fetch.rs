//! Outbound HTTP to identity providers: OIDC discovery and JWKS documents, and the one client
//! the GitHub and introspection verifiers share (same timeouts, TLS and redirect rules).
//!
//! reqwest with rustls only (no OpenSSL), the system roots plus an optional PEM bundle
//! (`AuthConfig.ca_file`, `AGUI_CA_FILE`), proxies from `HTTPS_PROXY`/`NO_PROXY` (reqwest's
//! default), a 5 s total timeout, a 256 KiB body cap, at most 3 redirects and never from https
//! down to http (RFC 8725 §3.10: fetched URLs are an SSRF surface).

use std::time::Duration;

use crate::settings::ConfigError;

/// Total time for one fetch (reference §7.2, panva/jose `timeoutDuration`).
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Connect time for one fetch.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest discovery or JWKS body read.
pub(crate) const BODY_CAP: usize = 256 * 1024;

/// Why a fetch failed. All of them are "unreachable" for the cache except where noted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("request failed: {0}")]
    Transport(String),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("body larger than {BODY_CAP} bytes")]
    TooLarge,
    #[error("bad document: {0}")]
    BadDocument(String),
    /// Discovery named another issuer: a configuration error, not an outage.
    #[error("discovery issuer {discovered:?} differs from the configured one")]
    IssuerMismatch { discovered: String },
    /// A discovered URL (`jwks_uri`, `introspection_endpoint`) is not acceptable (plain http
    /// off loopback).
    #[error("discovered URL refused: {0}")]
    BadJwksUri(String),
}

/// A fetched body with the `max-age` it came with.
pub(crate) struct Fetched {
    pub body: Vec<u8>,
    pub max_age: Option<Duration>,
}

/// Builds the one HTTP client used for every issuer.
pub(crate) fn build_client(
    ca_file: Option<&std::path::Path>,
) -> Result<reqwest::Client, ConfigError> {
    let https_only_redirects = reqwest::redirect::Policy::custom(|attempt| {
        let downgrade = attempt
            .previous()
            .last()
            .is_some_and(|prev| prev.scheme() == "https")
            && attempt.url().scheme() != "https";
        if attempt.previous().len() >= 3 || downgrade {
            attempt.stop()
        } else {
            attempt.follow()
        }
    });
    let mut builder = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(https_only_redirects)
        .user_agent(concat!("agui-server/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| ConfigError::Setting {
            setting: "ca_file",
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ConfigError::Setting {
                setting: "ca_file",
                message: format!("{} is not a PEM certificate bundle: {e}", path.display()),
            })?;
        if certs.is_empty() {
            return Err(ConfigError::Setting {
                setting: "ca_file",
                message: format!("{} holds no certificate", path.display()),
            });
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|e| ConfigError::Setting {
        setting: "ca_file",
        message: format!("cannot build the HTTP client: {e}"),
    })
}

/// GETs a URL and reads at most [`BODY_CAP`] bytes.
pub(crate) async fn get_capped(client: &reqwest::Client, url: &str) -> Result<Fetched, FetchError> {
    let mut response = client
        .get(url)
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| FetchError::Transport(without_url(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status(status.as_u16()));
    }
    let max_age = response
        .headers()
        .get(http::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_max_age);
    let body = read_capped(&mut response, BODY_CAP).await?;
    Ok(Fetched { body, max_age })
}

/// Reads a response body, refusing more than `cap` bytes (announced or streamed).
pub(crate) async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, FetchError> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(FetchError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::Transport(without_url(&e)))?
    {
        if body.len() + chunk.len() > cap {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The error text without the URL repeated (the URL is in the log line already).
pub(crate) fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_redirect() {
        "redirect refused"
    } else if e.is_body() || e.is_decode() {
        "body read failed"
    } else {
        "request failed"
    };
    kind.to_owned()
}

/// `max-age=N` from a `Cache-Control` value (RFC 9111 §5.2.2.1); `no-store`/`no-cache` → 0.
pub(crate) fn parse_max_age(value: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            max_age = n
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    max_age
}

/// OIDC Discovery §4: the document lives at `<issuer without trailing slash>/.well-known/openid-configuration`.
pub(crate) fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Fetches the discovery document, checks its `issuer` is exactly ours (OIDC Discovery §4.3)
/// and returns its `jwks_uri`, checked like the issuer URL.
pub(crate) async fn discover(
    client: &reqwest::Client,
    issuer: &str,
    allow_http: bool,
) -> Result<String, FetchError> {
    discover_endpoint(client, issuer, "jwks_uri", allow_http).await
}

/// Fetches the discovery document, checks its `issuer` is exactly ours (OIDC Discovery §4.3)
/// and returns the URL under `member` (`jwks_uri`, `introspection_endpoint`), checked like the
/// issuer URL.
pub(crate) async fn discover_endpoint(
    client: &reqwest::Client,
    issuer: &str,
    member: &str,
    allow_http: bool,
) -> Result<String, FetchError> {
    let fetched = get_capped(client, &discovery_url(issuer)).await?;
    let doc: serde_json::Value = serde_json::from_slice(&fetched.body)
        .map_err(|e| FetchError::BadDocument(format!("not JSON: {e}")))?;
    let discovered = doc
        .get("issuer")
        .and_then(|v| v.as_str())
        .ok_or(FetchError::BadDocument("no issuer".into()))?;
    if discovered != issuer {
        return Err(FetchError::IssuerMismatch {
            discovered: discovered.to_owned(),
        });
    }
    let url = doc
        .get(member)
        .and_then(|v| v.as_str())
        .ok_or_else(|| FetchError::BadDocument(format!("no {member}")))?;
    crate::settings::check_url(url, allow_http).map_err(FetchError::BadJwksUri)?;
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_parsing() {
        assert_eq!(
            parse_max_age("public, max-age=120"),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(parse_max_age("public"), None);
        assert_eq!(parse_max_age("max-age=abc"), None);
    }

    #[test]
    fn discovery_url_drops_a_trailing_slash() {
        assert_eq!(
            discovery_url("https://t.auth0.com/"),
            "https://t.auth0.com/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://kc/realms/demo"),
            "https://kc/realms/demo/.well-known/openid-configuration"
        );
    }
}
