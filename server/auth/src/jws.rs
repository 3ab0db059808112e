//! Minting compact JWS tokens with freshly generated keys: for the dev issuer and the test IdP.
//!
//! Signing is done here with aws-lc-rs directly rather than through jsonwebtoken so that any
//! header can be produced, including the ones the attack tests need (`alg: none`, `crit`,
//! embedded `jwk`, HS256 keyed with a public key). Verification never uses this module.

use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

/// A private signing key. Generated in memory; never written anywhere.
#[derive(Clone)]
pub enum SigningKey {
    /// RSA 2048 (RS256/384/512, PS256/384/512).
    Rsa(Arc<RsaKeyPair>),
    /// ECDSA P-256 (ES256).
    P256(Arc<EcdsaKeyPair>),
    /// ECDSA P-384 (ES384).
    P384(Arc<EcdsaKeyPair>),
    /// Ed25519 (EdDSA).
    Ed25519(Arc<Ed25519KeyPair>),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Rsa(_) => "SigningKey::Rsa",
            Self::P256(_) => "SigningKey::P256",
            Self::P384(_) => "SigningKey::P384",
            Self::Ed25519(_) => "SigningKey::Ed25519",
        })
    }
}

/// Key generation or signing failed inside aws-lc-rs (it does not say why).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("cryptographic operation failed")]
pub struct CryptoError;

impl SigningKey {
    /// A new RSA 2048 key.
    ///
    /// # Errors
    /// Key generation failed.
    pub fn generate_rsa() -> Result<Self, CryptoError> {
        RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map(|k| Self::Rsa(Arc::new(k)))
            .map_err(|_| CryptoError)
    }

    /// A new P-256 key.
    ///
    /// # Errors
    /// Key generation failed.
    pub fn generate_p256() -> Result<Self, CryptoError> {
        EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
            .map(|k| Self::P256(Arc::new(k)))
            .map_err(|_| CryptoError)
    }

    /// A new P-384 key.
    ///
    /// # Errors
    /// Key generation failed.
    pub fn generate_p384() -> Result<Self, CryptoError> {
        EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING)
            .map(|k| Self::P384(Arc::new(k)))
            .map_err(|_| CryptoError)
    }

    /// A new Ed25519 key.
    ///
    /// # Errors
    /// Key generation failed.
    pub fn generate_ed25519() -> Result<Self, CryptoError> {
        Ed25519KeyPair::generate()
            .map(|k| Self::Ed25519(Arc::new(k)))
            .map_err(|_| CryptoError)
    }

    /// The algorithm this key signs with by default.
    pub fn default_alg(&self) -> &'static str {
        match self {
            Self::Rsa(_) => "RS256",
            Self::P256(_) => "ES256",
            Self::P384(_) => "ES384",
            Self::Ed25519(_) => "EdDSA",
        }
    }

    /// The public JWK members (`kty`, `crv`, `n`/`e` or `x`/`y`), without `kid`, `alg` or `use`.
    pub fn public_jwk(&self) -> Map<String, Value> {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let value = match self {
            Self::Rsa(k) => {
                let public = k.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Self::P256(k) | Self::P384(k) => {
                // Uncompressed SEC1 point: 0x04 || x || y.
                let point = k.public_key().as_ref();
                let half = (point.len() - 1) / 2;
                let crv = if matches!(self, Self::P256(_)) {
                    "P-256"
                } else {
                    "P-384"
                };
                json!({"kty": "EC", "crv": crv, "x": b64(&point[1..=half]), "y": b64(&point[1 + half..])})
            }
            Self::Ed25519(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())})
            }
        };
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The RSA public key as the PEM `PUBLIC KEY` (SPKI) an attacker would download: the HMAC
    /// secret of the RS256→HS256 confusion attack (CVE-2016-10555). `None` for other keys.
    pub fn rsa_public_pem(&self) -> Option<String> {
        use aws_lc_rs::encoding::AsDer;
        let Self::Rsa(k) = self else { return None };
        let der = k.public_key().as_der().ok()?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        Some(format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        ))
    }

    /// Signs `input` with `alg` (which must fit the key).
    ///
    /// # Errors
    /// `alg` does not fit the key, or signing failed.
    pub fn sign(&self, alg: &str, input: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let rng = SystemRandom::new();
        match self {
            Self::Rsa(k) => {
                let padding: &'static dyn signature::RsaEncoding = match alg {
                    "RS256" => &signature::RSA_PKCS1_SHA256,
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    "PS256" => &signature::RSA_PSS_SHA256,
                    "PS384" => &signature::RSA_PSS_SHA384,
                    "PS512" => &signature::RSA_PSS_SHA512,
                    _ => return Err(CryptoError),
                };
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(padding, &rng, input, &mut sig)
                    .map_err(|_| CryptoError)?;
                Ok(sig)
            }
            Self::P256(k) if alg == "ES256" => Ok(k
                .sign(&rng, input)
                .map_err(|_| CryptoError)?
                .as_ref()
                .to_vec()),
            Self::P384(k) if alg == "ES384" => Ok(k
                .sign(&rng, input)
                .map_err(|_| CryptoError)?
                .as_ref()
                .to_vec()),
            Self::Ed25519(k) if alg == "EdDSA" => Ok(k.sign(input).as_ref().to_vec()),
            _ => Err(CryptoError),
        }
    }
}

/// `base64url(header) . base64url(claims)`: the JWS signing input (RFC 7515 §5.1).
pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// Signs `header.claims` with `key` using the header's `alg`.
///
/// # Errors
/// The header has no `alg` that fits the key, or signing failed.
pub fn sign_compact(
    header: &Value,
    claims: &Value,
    key: &SigningKey,
) -> Result<String, CryptoError> {
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(CryptoError)?;
    let input = signing_input(header, claims);
    let signature = key.sign(alg, input.as_bytes())?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// HMAC-SHA256 over `header.claims` with an arbitrary secret (attack tests only).
pub fn sign_hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = signing_input(header, claims);
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}
