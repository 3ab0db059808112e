//! One signing key, JWKS and set of tokens shared by every server in a benchmark run.
//!
//! agui-server fetches the key through OIDC discovery (`/.well-known/openid-configuration` →
//! `jwks_uri`) from the loopback issuer served here; the Python, AG2 and Node peers read the same
//! JWKS from a file, as in shared/reference/perf-peers.md §1. Tokens are RS256 (2048-bit key,
//! `kid = bench-key-1`) with `iss`, `sub`, `aud`, `iat`, `exp` and a unique `jti`, so each "fresh"
//! token is a distinct string that no verified-token cache can have seen. Tokens are written to
//! files only, never printed.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agui_auth::jws::{self, SigningKey};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::httpd;

/// The key id every token and the JWKS carry.
pub const KID: &str = "bench-key-1";
/// The audience every server accepts.
pub const AUDIENCE: &str = "agui-bench";
/// The audience of the auth-fail scenario's token (signed correctly, wrong audience).
pub const WRONG_AUDIENCE: &str = "someone-else";

/// The benchmark's issuer: its URL and its signing key.
pub struct BenchIssuer {
    key: SigningKey,
    issuer: String,
}

impl BenchIssuer {
    /// Generates a fresh RSA-2048 key for the issuer `http://127.0.0.1:<port>`.
    ///
    /// # Errors
    /// Key generation failed.
    pub fn generate(port: u16) -> io::Result<Self> {
        let key = SigningKey::generate_rsa()
            .map_err(|_| io::Error::other("RSA key generation failed"))?;
        Ok(Self {
            key,
            issuer: format!("http://127.0.0.1:{port}"),
        })
    }

    /// The issuer identifier (what tokens carry as `iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The JWK Set with the one public key.
    pub fn jwks(&self) -> Value {
        let mut jwk = self.key.public_jwk();
        jwk.insert("kid".into(), json!(KID));
        jwk.insert("alg".into(), json!("RS256"));
        jwk.insert("use".into(), json!("sig"));
        json!({"keys": [Value::Object(jwk)]})
    }

    /// The OIDC discovery document.
    pub fn discovery(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/jwks.json", self.issuer),
            "id_token_signing_alg_values_supported": ["RS256"],
        })
    }

    /// A token for `subject` with `audience`, valid for `ttl`.
    ///
    /// # Panics
    /// Never for an RSA key and RS256 (the only combination used).
    pub fn mint(&self, subject: &str, audience: &str, ttl: Duration) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = json!({
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "exp": now + ttl.as_secs(),
            "jti": uuid::Uuid::new_v4().simple().to_string(),
            "scope": "chat",
        });
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": KID});
        jws::sign_compact(&header, &claims, &self.key).expect("an RSA key signs RS256")
    }
}

/// The files the peers and the load client read.
#[derive(Debug, Clone)]
pub struct TokenFiles {
    /// `jwks.json`.
    pub jwks: PathBuf,
    /// `token.txt`: the reused token.
    pub token: PathBuf,
    /// `token_badaud.txt`: a correctly signed token with the wrong audience.
    pub bad_audience: PathBuf,
    /// `tokens_fresh.txt`: one distinct token per line.
    pub fresh: PathBuf,
}

/// Writes the JWKS, the reused token, the wrong-audience token and `fresh` distinct tokens into
/// `dir` (created if needed; token files are written with mode 0600).
///
/// # Errors
/// The directory cannot be written.
pub fn write_files(
    issuer: &BenchIssuer,
    dir: &Path,
    fresh: usize,
    ttl: Duration,
) -> io::Result<TokenFiles> {
    std::fs::create_dir_all(dir)?;
    let files = TokenFiles {
        jwks: dir.join("jwks.json"),
        token: dir.join("token.txt"),
        bad_audience: dir.join("token_badaud.txt"),
        fresh: dir.join("tokens_fresh.txt"),
    };
    std::fs::write(&files.jwks, issuer.jwks().to_string())?;
    write_secret(&files.token, &issuer.mint("bench-user", AUDIENCE, ttl))?;
    write_secret(
        &files.bad_audience,
        &issuer.mint("bench-user", WRONG_AUDIENCE, ttl),
    )?;
    let tokens: Vec<String> = (0..fresh)
        .map(|_| issuer.mint("bench-user", AUDIENCE, ttl))
        .collect();
    write_secret(&files.fresh, &tokens.join("\n"))?;
    Ok(files)
}

fn write_secret(path: &Path, text: &str) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    io::Write::write_all(&mut file, text.as_bytes())
}

/// Reads a token file: one token per non-empty line.
///
/// # Errors
/// The file cannot be read or holds no token.
pub fn read_tokens(path: &Path) -> io::Result<Vec<String>> {
    let tokens: Vec<String> = std::fs::read_to_string(path)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if tokens.is_empty() {
        return Err(io::Error::other(format!(
            "{} holds no token",
            path.display()
        )));
    }
    Ok(tokens)
}

/// Serves discovery and the JWKS for `issuer` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, issuer: &BenchIssuer) {
    let discovery = bytes::Bytes::from(issuer.discovery().to_string());
    let jwks = bytes::Bytes::from(issuer.jwks().to_string());
    httpd::serve(listener, move |request| {
        let response = match request.uri().path() {
            "/.well-known/openid-configuration" => {
                httpd::full(200, "application/json", discovery.clone())
            }
            "/jwks.json" => httpd::full(200, "application/json", jwks.clone()),
            _ => httpd::full(404, "application/json", "{}"),
        };
        async move { response }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_the_claims_and_are_distinct() {
        let issuer = BenchIssuer::generate(9).unwrap();
        let a = issuer.mint("u", AUDIENCE, Duration::from_secs(60));
        let b = issuer.mint("u", AUDIENCE, Duration::from_secs(60));
        assert_ne!(a, b, "each token has its own jti");
        let claims = a.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(&base64_url_decode(claims)).unwrap();
        assert_eq!(claims["iss"], "http://127.0.0.1:9");
        assert_eq!(claims["aud"], AUDIENCE);
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            60
        );
        let jwks = issuer.jwks();
        assert_eq!(jwks["keys"][0]["kid"], KID);
        assert_eq!(jwks["keys"][0]["kty"], "RSA");
    }

    fn base64_url_decode(s: &str) -> Vec<u8> {
        // A tiny decoder so the test does not need another dependency.
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut bits = 0u32;
        let mut n = 0;
        let mut out = Vec::new();
        for c in s.bytes() {
            let v = alphabet.iter().position(|a| *a == c).unwrap() as u32;
            bits = (bits << 6) | v;
            n += 6;
            if n >= 8 {
                n -= 8;
                out.push((bits >> n) as u8);
            }
        }
        out
    }
}
