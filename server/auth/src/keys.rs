//! From a fetched JWKS document to verification keys, one algorithm per key.
//!
//! `jsonwebtoken`'s `DecodingKey::from_jwk` ignores `use`, `key_ops`, `alg` and `crv`, turns an
//! `oct` entry into an HMAC secret, and one malformed entry fails a whole `JwkSet`
//! (reference §1.5 items 5, 8, 9). So each entry is filtered here on its own, and each kept key
//! is bound to exactly one algorithm (RFC 8725 §3.1).
//!
//! Each kept key is parsed into aws-lc-rs's [`ParsedPublicKey`] once, when the set is fetched.
//! `jsonwebtoken::decode` rebuilt the RSA key from its `n`/`e` bytes on every call (a copy of
//! the `DecodingKey`, two bignums, a fresh `RSA` whose Montgomery context was computed again
//! for each signature); the parsed key keeps that context across verifications.

use std::collections::HashSet;

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use serde_json::Value;

/// Smallest RSA modulus accepted (bits).
pub(crate) const MIN_RSA_BITS: usize = 2_048;

/// One usable verification key.
pub(crate) struct VerifyKey {
    pub kid: Option<String>,
    pub alg: Algorithm,
    /// The key material, parsed once for [`VerifyKey::alg`] (its padding, hash and curve).
    public: ParsedPublicKey,
}

impl VerifyKey {
    /// Whether `signature` is this key's signature of `message` under [`VerifyKey::alg`]
    /// (RFC 7515 §5.2 step 8; for ECDSA the fixed-width `r || s` of RFC 7518 §3.4; RSA keys
    /// outside 2048–8192 bits refuse every signature).
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.public.verify_sig(message, signature).is_ok()
    }
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// A parsed key set.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    pub keys: Vec<std::sync::Arc<VerifyKey>>,
}

/// Which keys of an issuer's set are usable: its name (for the logs) and its algorithm
/// allowlist. The claims are checked by [`crate::validate::check_claims`], not per key.
#[derive(Debug, Clone)]
pub(crate) struct ValidationSpec {
    pub issuer: String,
    pub allowed: Vec<Algorithm>,
}

impl KeySet {
    /// Finds the key for a token: by `kid`, or, for a token without `kid`, the only key whose
    /// algorithm matches when the set has exactly one such key.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Lookup {
        match kid {
            Some(kid) => match self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
                Some(k) if k.alg == alg => Lookup::Found(k.clone()),
                Some(_) => Lookup::WrongAlg,
                None => Lookup::Missing,
            },
            None => {
                let mut same_alg = self.keys.iter().filter(|k| k.alg == alg);
                match (same_alg.next(), same_alg.next()) {
                    (Some(k), None) => Lookup::Found(k.clone()),
                    (Some(_), Some(_)) => Lookup::Ambiguous,
                    (None, _) => Lookup::Missing,
                }
            }
        }
    }

    #[cfg(test)]
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(|k| k.kid.as_deref())
    }
}

/// Result of a key lookup.
pub(crate) enum Lookup {
    Found(std::sync::Arc<VerifyKey>),
    /// The `kid` is published for another algorithm.
    WrongAlg,
    /// No `kid` and several candidate keys.
    Ambiguous,
    /// Not in the set.
    Missing,
}

/// Parses a JWKS body into usable keys, skipping (with a warning) every entry that is not a
/// signing key we can use. Returns an error only when the document itself is not a JWKS.
pub(crate) fn parse_jwks(body: &[u8], spec: &ValidationSpec) -> Result<KeySet, String> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let entries = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no \"keys\" array")?;
    let several = entries.len() > 1;
    let mut set = KeySet::default();
    let mut seen = HashSet::new();
    for (index, entry) in entries.iter().enumerate() {
        match parse_entry(entry, several, spec) {
            Ok(key) => {
                if let Some(kid) = &key.kid
                    && !seen.insert(kid.clone())
                {
                    tracing::warn!(issuer = %spec.issuer, index, kid, "JWKS entry skipped: duplicate kid");
                    continue;
                }
                set.keys.push(std::sync::Arc::new(key));
            }
            Err(why) => tracing::warn!(issuer = %spec.issuer, index, why, "JWKS entry skipped"),
        }
    }
    Ok(set)
}

fn parse_entry(
    entry: &Value,
    several: bool,
    spec: &ValidationSpec,
) -> Result<VerifyKey, &'static str> {
    let obj = entry.as_object().ok_or("not an object")?;
    let str_field = |name: &str| obj.get(name).and_then(Value::as_str);
    if let Some(usage) = obj.get("use")
        && usage.as_str() != Some("sig")
    {
        return Err("\"use\" is not \"sig\"");
    }
    if let Some(ops) = obj.get("key_ops")
        && !ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some("verify")))
    {
        return Err("\"key_ops\" lacks \"verify\"");
    }
    let kid = match obj.get("kid") {
        None => None,
        Some(Value::String(k)) if !k.is_empty() => Some(k.clone()),
        Some(_) => return Err("\"kid\" is not a non-empty string"),
    };
    if kid.is_none() && several {
        return Err("no \"kid\" in a set of several keys");
    }
    let family_alg = match (str_field("kty"), str_field("crv")) {
        (Some("RSA"), _) => {
            let n = str_field("n").ok_or("RSA key without \"n\"")?;
            if rsa_bits(n).ok_or("RSA \"n\" is not base64url")? < MIN_RSA_BITS {
                return Err("RSA key shorter than 2048 bits");
            }
            Algorithm::RS256
        }
        (Some("EC"), Some("P-256")) => Algorithm::ES256,
        (Some("EC"), Some("P-384")) => Algorithm::ES384,
        (Some("EC"), _) => return Err("unsupported EC curve"),
        (Some("OKP"), Some("Ed25519")) => Algorithm::EdDSA,
        (Some("OKP"), _) => return Err("unsupported OKP curve"),
        (Some("oct"), _) => return Err("symmetric (oct) key"),
        _ => return Err("unsupported key type"),
    };
    // One key, one algorithm: the JWK's own `alg` when present (it must fit the key), else the
    // family's default (Microsoft Entra publishes RSA keys without `alg`).
    let alg = match str_field("alg") {
        None => family_alg,
        Some(name) => {
            let alg = crate::settings::parse_algorithm(name).map_err(|_| "unsupported \"alg\"")?;
            let fits = match family_alg {
                Algorithm::RS256 => matches!(
                    alg,
                    Algorithm::RS256
                        | Algorithm::RS384
                        | Algorithm::RS512
                        | Algorithm::PS256
                        | Algorithm::PS384
                        | Algorithm::PS512
                ),
                other => alg == other,
            };
            if !fits {
                return Err("\"alg\" does not fit the key type or curve");
            }
            alg
        }
    };
    if !spec.allowed.contains(&alg) {
        return Err("algorithm not in the issuer's allowlist");
    }
    // jsonwebtoken's JWK type still vets the entry's shape (as `DecodingKey::from_jwk` did).
    let jwk: Jwk = serde_json::from_value(entry.clone()).map_err(|_| "malformed JWK")?;
    let public = parse_public_key(&jwk.algorithm, alg).ok_or("unusable key material")?;
    Ok(VerifyKey { kid, alg, public })
}

/// The JWK's public key parsed for `alg`, or `None` when the material is not a valid key of
/// that kind (bad base64url, a modulus or exponent with leading zero bytes, a point not on
/// the curve, a wrong length). Such a key could never verify a signature before either:
/// jsonwebtoken parsed it at every `decode` and refused every token it signed.
fn parse_public_key(params: &AlgorithmParameters, alg: Algorithm) -> Option<ParsedPublicKey> {
    let bytes = |b64: &str| URL_SAFE_NO_PAD.decode(b64).ok();
    match params {
        AlgorithmParameters::RSA(rsa) => {
            let parameters: &'static sig::RsaParameters = match alg {
                Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
                Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
                Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
                Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
                _ => return None,
            };
            let components = RsaPublicKeyComponents {
                n: bytes(&rsa.n)?,
                e: bytes(&rsa.e)?,
            };
            components.to_parsed_public_key(parameters).ok()
        }
        AlgorithmParameters::EllipticCurve(ec) => {
            let algorithm: &'static dyn sig::VerificationAlgorithm = match alg {
                Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
                Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
                _ => return None,
            };
            // The uncompressed point (SEC 1 §2.3.3), as jsonwebtoken built it.
            let mut point = vec![0x04];
            point.extend(bytes(&ec.x)?);
            point.extend(bytes(&ec.y)?);
            ParsedPublicKey::new(algorithm, point).ok()
        }
        AlgorithmParameters::OctetKeyPair(okp) if alg == Algorithm::EdDSA => {
            ParsedPublicKey::new(&sig::ED25519, bytes(&okp.x)?).ok()
        }
        _ => None,
    }
}

/// Bit length of a base64url big-endian modulus.
fn rsa_bits(n: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(n.trim_end_matches('=')).ok()?;
    let first = bytes.iter().position(|&b| b != 0)?;
    let significant = &bytes[first..];
    Some(significant.len() * 8 - significant[0].leading_zeros() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> ValidationSpec {
        ValidationSpec {
            issuer: "https://idp".into(),
            allowed: vec![
                Algorithm::RS256,
                Algorithm::PS256,
                Algorithm::ES256,
                Algorithm::ES384,
                Algorithm::EdDSA,
            ],
        }
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn rsa(bits: usize) -> Value {
        let mut n = vec![0xffu8; bits / 8];
        n[0] = 0xc1;
        json!({"kty": "RSA", "n": b64(&n), "e": "AQAB"})
    }

    fn p256() -> Value {
        // The public key of RFC 7515 Appendix A.3.
        json!({"kty": "EC", "crv": "P-256",
               "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
               "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
    }

    fn with(mut v: Value, extra: Value) -> Value {
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    fn parse(keys: Vec<Value>) -> KeySet {
        parse_jwks(json!({"keys": keys}).to_string().as_bytes(), &spec()).unwrap()
    }

    #[test]
    fn unusable_entries_are_skipped_and_the_rest_kept() {
        let set = parse(vec![
            with(rsa(2048), json!({"kid": "good-rsa"})),
            with(p256(), json!({"kid": "good-ec"})),
            with(rsa(2048), json!({"kid": "enc", "use": "enc"})),
            with(rsa(1024), json!({"kid": "short"})),
            json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}),
            json!({"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"}),
            json!({"kty": "OKP", "crv": "X25519", "kid": "x", "x": "AA"}),
            json!({"kty": "AKP", "kid": "pq", "pub": "AA"}),
            rsa(2048),
            with(rsa(2048), json!({"kid": "ops", "key_ops": ["encrypt"]})),
            with(rsa(2048), json!({"kid": "bad-n", "n": "!!"})),
            // A leading zero byte: not a valid modulus encoding, so the key cannot be parsed
            // (and could never verify a signature).
            with(
                rsa(2048),
                json!({"kid": "lead-0", "n": b64(&[&[0u8][..], &[0xc1; 256]].concat())}),
            ),
        ]);
        let kids: Vec<_> = set.kids().collect();
        assert_eq!(kids, vec!["good-rsa", "good-ec"]);
    }

    #[test]
    fn a_key_without_alg_maps_by_family_and_one_with_alg_keeps_it() {
        let set = parse(vec![
            with(rsa(2048), json!({"kid": "entra"})),
            with(rsa(2048), json!({"kid": "ps", "alg": "PS256"})),
            with(p256(), json!({"kid": "ec"})),
        ]);
        assert!(matches!(
            set.find(Some("entra"), Algorithm::RS256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            set.find(Some("entra"), Algorithm::PS256),
            Lookup::WrongAlg
        ));
        assert!(matches!(
            set.find(Some("ps"), Algorithm::PS256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            set.find(Some("ps"), Algorithm::RS256),
            Lookup::WrongAlg
        ));
        assert!(matches!(
            set.find(Some("ec"), Algorithm::ES256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            set.find(Some("nope"), Algorithm::ES256),
            Lookup::Missing
        ));
    }

    #[test]
    fn alg_that_does_not_fit_the_key_or_allowlist_is_skipped() {
        let set = parse(vec![
            with(p256(), json!({"kid": "a", "alg": "ES384"})),
            with(rsa(2048), json!({"kid": "b", "alg": "HS256"})),
            with(rsa(2048), json!({"kid": "c", "alg": "RS512"})),
        ]);
        assert_eq!(
            set.kids().count(),
            0,
            "RS512 is not in the default allowlist"
        );
    }

    #[test]
    fn a_single_key_may_omit_kid() {
        let set = parse(vec![p256()]);
        assert!(matches!(set.find(None, Algorithm::ES256), Lookup::Found(_)));
        let two = parse(vec![
            with(p256(), json!({"kid": "1"})),
            with(p256(), json!({"kid": "2"})),
        ]);
        assert!(matches!(
            two.find(None, Algorithm::ES256),
            Lookup::Ambiguous
        ));
    }

    #[test]
    fn a_document_that_is_not_a_jwks_is_an_error() {
        assert!(parse_jwks(b"<html>", &spec()).is_err());
        assert!(parse_jwks(b"{}", &spec()).is_err());
        assert_eq!(parse_jwks(b"{\"keys\":[]}", &spec()).unwrap().keys.len(), 0);
    }

    #[test]
    fn rsa_bit_length() {
        assert_eq!(rsa_bits(&b64(&[0x01, 0, 0])), Some(17));
        assert_eq!(rsa_bits(&b64(&[0, 0x80, 0])), Some(16));
    }
}
