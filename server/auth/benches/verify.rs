//! Token verification with warm keys against the raw signature check of the same algorithm.
//!
//! `cargo bench -p agui-auth --bench verify` (release build). For RS256, ES256 and EdDSA it
//! times, per token:
//!
//! * **agui-auth**: `Authenticator::authenticate` with the issuer's keys cached, each call a
//!   token it has not seen (so the verified-token cache never answers): header grammar, base64url
//!   and JSON decoding, issuer match, key lookup, our claim checks, the signature with the key
//!   parsed at JWKS fetch, and building the `Principal`;
//! * **cached**: `authenticate` with the same token again (the verified-token cache's hit);
//! * **jsonwebtoken**: `jsonwebtoken::decode` alone with the same key and `Validation` (what
//!   agui-auth called for the signature and spec claims until it kept parsed keys);
//! * **signature**: aws-lc-rs verifying the signature over the signing input with the key
//!   material rebuilt per call (`RsaPublicKeyComponents::verify`, `UnparsedPublicKey`), as
//!   jsonwebtoken does;
//! * **parsed**: the same with a `ParsedPublicKey` built once, as agui-auth now does.
//!
//! It prints one row per algorithm with the costs in microseconds and agui-auth's overhead above
//! the parsed signature check. `AGUI_BENCH_ITERS` sets the iterations (default 5,000 per
//! measurement; the distinct tokens are signed up front). A figure, never a test: nothing here
//! fails on a slow machine.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agui_auth::jws::SigningKey;
use agui_auth::testing::{ManualClock, TestIdp};
use agui_auth::{Authenticator, CredentialSource};
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

fn main() {
    let iterations: u32 = std::env::var("AGUI_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(iterations));
}

async fn run(iterations: u32) {
    let idp = TestIdp::start().await;
    let ed_kid = idp.add_key(
        SigningKey::generate_ed25519().expect("Ed25519 key"),
        "EdDSA",
    );
    let auth = Authenticator::start_with_clock(idp.auth_config(), Arc::new(ManualClock::new()))
        .await
        .expect("authenticator");

    println!("token verification with warm keys, {iterations} iterations each (µs per token)");
    println!(
        "{:<7} {:>10} {:>8} {:>13} {:>10} {:>8} {:>17} {:>8}",
        "alg",
        "agui-auth",
        "cached",
        "jsonwebtoken",
        "signature",
        "parsed",
        "agui-auth extra",
        "ratio"
    );
    for (kid, alg) in [
        ("rsa-1", Algorithm::RS256),
        ("ec-1", Algorithm::ES256),
        (ed_kid.as_str(), Algorithm::EdDSA),
    ] {
        // Distinct tokens (each claims set has its own jti), signed before timing.
        let tokens: Vec<String> = (0..iterations)
            .map(|_| idp.sign(kid, &idp.claims("bench-user")))
            .collect();
        let token = tokens[0].clone();
        let key = idp.key(kid);

        // Warm the key cache (the new Ed25519 kid costs one refetch) and check all three paths
        // accept the token, so the timings are of successful verifications.
        auth.authenticate(&token, CredentialSource::Header)
            .await
            .expect("agui-auth accepts the token");
        let decoding = decoding_key(&key);
        let validation = validation(&idp, alg);
        jsonwebtoken::decode::<Map<String, Value>>(&token, &decoding, &validation)
            .expect("jsonwebtoken accepts the token");
        let raw = RawVerifier::new(&key, &token);
        assert!(raw.verify(), "the raw signature verifies");
        assert!(raw.verify_parsed(), "the parsed key verifies");

        let mut next = tokens.iter().cycle();
        let full = time_async(iterations, || {
            let token = next.next().expect("cycle");
            let auth = &auth;
            async move {
                black_box(
                    auth.authenticate(black_box(token), CredentialSource::Header)
                        .await
                        .is_ok(),
                )
            }
        })
        .await;
        let cached = time_async(iterations, || async {
            black_box(
                auth.authenticate(black_box(&token), CredentialSource::Header)
                    .await
                    .is_ok(),
            )
        })
        .await;
        let jwt = time(iterations, || {
            jsonwebtoken::decode::<Map<String, Value>>(black_box(&token), &decoding, &validation)
                .is_ok()
        });
        let sig = time(iterations, || raw.verify());
        let parsed = time(iterations, || raw.verify_parsed());

        let micros = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(iterations);
        let (full, cached, jwt, sig, parsed) = (
            micros(full),
            micros(cached),
            micros(jwt),
            micros(sig),
            micros(parsed),
        );
        println!(
            "{:<7} {full:>10.2} {cached:>8.2} {jwt:>13.2} {sig:>10.2} {parsed:>8.2} {:>17.2} {:>7.2}×",
            format!("{alg:?}"),
            full - parsed,
            full / parsed,
        );
    }
}

fn decoding_key(key: &SigningKey) -> DecodingKey {
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(Value::Object(key.public_jwk())).expect("public JWK");
    DecodingKey::from_jwk(&jwk).expect("decoding key")
}

fn validation(idp: &TestIdp, alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[idp.issuer_url()]);
    validation.set_audience(&[agui_auth::testing::AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    validation
}

/// The signature check alone: aws-lc-rs over `header.payload`, the key material decoded once
/// (and, for `parsed`, parsed once).
struct RawVerifier {
    message: Vec<u8>,
    signature: Vec<u8>,
    key: RawKey,
    parsed: ParsedPublicKey,
}

enum RawKey {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Other(UnparsedPublicKey<Vec<u8>>),
}

impl RawVerifier {
    fn new(key: &SigningKey, token: &str) -> Self {
        let (message, signature) = token.rsplit_once('.').expect("compact JWS");
        let jwk = key.public_jwk();
        let member = |name: &str| {
            URL_SAFE_NO_PAD
                .decode(jwk[name].as_str().expect("JWK member"))
                .expect("base64url")
        };
        let key = match key {
            SigningKey::Rsa(_) => RawKey::Rsa {
                n: member("n"),
                e: member("e"),
            },
            SigningKey::P256(_) => {
                let mut point = vec![4];
                point.extend(member("x"));
                point.extend(member("y"));
                RawKey::Other(UnparsedPublicKey::new(
                    &signature::ECDSA_P256_SHA256_FIXED,
                    point,
                ))
            }
            SigningKey::Ed25519(_) => {
                RawKey::Other(UnparsedPublicKey::new(&signature::ED25519, member("x")))
            }
            SigningKey::P384(_) => unreachable!("not benchmarked"),
        };
        let parsed = match &key {
            RawKey::Rsa { n, e } => RsaPublicKeyComponents { n, e }
                .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
                .expect("RSA key parses"),
            RawKey::Other(key) => key.parse().expect("key parses"),
        };
        Self {
            message: message.as_bytes().to_vec(),
            signature: URL_SAFE_NO_PAD.decode(signature).expect("base64url"),
            key,
            parsed,
        }
    }

    fn verify_parsed(&self) -> bool {
        self.parsed
            .verify_sig(black_box(&self.message), &self.signature)
            .is_ok()
    }

    fn verify(&self) -> bool {
        let message = black_box(&self.message);
        match &self.key {
            RawKey::Rsa { n, e } => RsaPublicKeyComponents { n, e }
                .verify(
                    &signature::RSA_PKCS1_2048_8192_SHA256,
                    message,
                    &self.signature,
                )
                .is_ok(),
            RawKey::Other(key) => key.verify(message, &self.signature).is_ok(),
        }
    }
}

fn time(iterations: u32, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    for _ in 0..iterations {
        assert!(f());
    }
    start.elapsed()
}

async fn time_async<F, Fut>(iterations: u32, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    for _ in 0..iterations {
        assert!(f().await);
    }
    start.elapsed()
}
