//! The token checks: those that need no key run before the key lookup (so junk never triggers
//! a fetch), then the signature over the very segments the claims were read from.
//!
//! jsonwebtoken's `decode` is not used for verification: it parsed the header twice and the
//! claims twice per call, rebuilt the public key each time, checked `exp`/`nbf` against the
//! system clock and never looked at `iat`, `typ` or `crit` (reference §1.4). These checks use
//! the authenticator's [`crate::clock::Clock`], keep the rules its `decode` applied (required
//! `exp`/`iss`/`aud`/`sub` of the right types, `nbf`, duplicate claim names, the header's
//! member types) and verify with the key parsed once per JWKS fetch ([`crate::keys`]).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use crate::config::TypPolicy;
use crate::error::InvalidTokenReason as R;

/// Longest `kid` we look up (RFC 8725 §3.10: sanitize `kid`).
const MAX_KID_BYTES: usize = 256;

/// The parts of the JOSE header we act on.
#[derive(Debug)]
pub(crate) struct HeaderInfo {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub typ: Option<Value>,
}

/// The shape check that runs before any decoding: at most `max_bytes`, then one compact JWS,
/// exactly three non-empty base64url segments (RFC 7515 §7.1; no padding, no spaces). Returns
/// the header and payload segments.
pub(crate) fn check_shape(token: &str, max_bytes: usize) -> Result<(&str, &str), R> {
    if token.len() > max_bytes {
        return Err(R::TooLarge);
    }
    if !crate::credential::is_compact_jws(token) {
        return Err(R::Malformed);
    }
    let mut segments = token.split('.');
    match (segments.next(), segments.next()) {
        (Some(header), Some(payload)) => Ok((header, payload)),
        _ => Err(R::Malformed),
    }
}

/// Decodes one base64url segment into a JSON object.
///
/// A member name that appears twice at the top level is refused (RFC 7515 §5.2 and RFC 7519
/// §4 allow refusing instead of taking the last one): two `exp` or two `roles` could be read
/// differently by another parser. jsonwebtoken's `decode` refused duplicates of the claims it
/// checked (`exp`, `nbf`, `sub`, `iss`, `aud`) and of its header fields; this refuses all.
pub(crate) fn decode_object(segment: &str) -> Result<Map<String, Value>, R> {
    object_from(&decode_segment(segment)?)
}

/// One base64url segment (RFC 7515 §2: no padding, no other alphabet, canonical trailing
/// bits), as jsonwebtoken decodes them.
pub(crate) fn decode_segment(segment: &str) -> Result<Vec<u8>, R> {
    URL_SAFE_NO_PAD.decode(segment).map_err(|_| R::Malformed)
}

/// A JSON object without duplicate top-level members.
pub(crate) fn object_from(bytes: &[u8]) -> Result<Map<String, Value>, R> {
    serde_json::from_slice::<UniqueObject>(bytes)
        .map(|object| object.0)
        .map_err(|_| R::Malformed)
}

/// A JSON object whose deserialization fails on a repeated top-level member name.
struct UniqueObject(Map<String, Value>);

impl<'de> serde::Deserialize<'de> for UniqueObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = UniqueObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<UniqueObject, A::Error> {
                let mut map = Map::new();
                while let Some(name) = access.next_key::<String>()? {
                    let value = access.next_value::<Value>()?;
                    if map.insert(name, value).is_some() {
                        return Err(serde::de::Error::custom("duplicate member"));
                    }
                }
                Ok(UniqueObject(map))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// The header's members have the types jsonwebtoken's `Header` gives them (`typ`, `cty`,
/// `kid`, `jku`, `x5u`, `x5t` strings, `x5c` a list of strings, `jwk` a JWK): its `decode`
/// refused a header that is not one, and so do we, though nothing but `alg`, `kid` and `typ`
/// is used. Runs after [`check_header`], so its more precise reasons come first.
pub(crate) fn check_header_types(header: &[u8]) -> Result<(), R> {
    serde_json::from_slice::<jsonwebtoken::Header>(header)
        .map(drop)
        .map_err(|_| R::Malformed)
}

/// The JWS signature (RFC 7515 §5.2 steps 7–8): the third segment of `token`, decoded, is
/// `key`'s signature of the first two segments and the dot between them, as they were sent.
/// `signed_len` is the length of that signing input (`header.payload`).
pub(crate) fn check_signature(
    token: &str,
    signed_len: usize,
    key: &crate::keys::VerifyKey,
) -> Result<(), R> {
    let (signed, signature) = token.split_at(signed_len);
    let signature = decode_segment(signature.strip_prefix('.').ok_or(R::Malformed)?)?;
    if key.verifies(signed.as_bytes(), &signature) {
        Ok(())
    } else {
        Err(R::BadSignature)
    }
}

/// `alg` known and asymmetric, no `crit`, a sane `kid`. `jku`, `x5u`, `jwk` and `x5c` are
/// ignored on purpose: keys come only from the issuer's JWKS (RFC 8725 §3.10, CVE-2018-0114).
pub(crate) fn check_header(header: &Map<String, Value>) -> Result<HeaderInfo, R> {
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(R::AlgNotAllowed)?;
    let alg = crate::settings::parse_algorithm(alg).map_err(|_| R::AlgNotAllowed)?;
    // RFC 7515 §4.1.11: a recipient that does not understand a listed extension MUST reject; we
    // understand none, so any `crit` is refused.
    if header.contains_key("crit") {
        return Err(R::CritHeader);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid))
            if !kid.is_empty()
                && kid.len() <= MAX_KID_BYTES
                && kid.bytes().all(|b| (0x20..0x7f).contains(&b)) =>
        {
            Some(kid.clone())
        }
        Some(_) => return Err(R::BadKid),
    };
    Ok(HeaderInfo {
        alg,
        kid,
        typ: header.get("typ").cloned(),
    })
}

/// `typ` per policy (RFC 9068 §4; lenient also allows absent and `JWT`), case-insensitively.
pub(crate) fn check_typ(typ: Option<&Value>, policy: TypPolicy) -> Result<(), R> {
    let at_jwt =
        |t: &str| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt");
    let ok = match (typ, policy) {
        (None, TypPolicy::Lenient) => true,
        (Some(Value::String(t)), TypPolicy::Lenient) => at_jwt(t) || t.eq_ignore_ascii_case("JWT"),
        (Some(Value::String(t)), TypPolicy::Strict) => at_jwt(t),
        _ => false,
    };
    if ok { Ok(()) } else { Err(R::BadTyp) }
}

/// The settings the claim checks need.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClaimRules<'a> {
    pub audiences: &'a [String],
    pub leeway: i64,
    pub max_lifetime: i64,
    pub now: i64,
}

/// `exp` (required), `nbf`, `iat`, lifetime, `aud`, `sub`. Returns `exp`.
pub(crate) fn check_claims(claims: &Map<String, Value>, rules: ClaimRules<'_>) -> Result<i64, R> {
    let exp = numeric(claims.get("exp"))?.ok_or(R::MissingExp)?;
    if exp < rules.now - rules.leeway {
        return Err(R::Expired);
    }
    if numeric(claims.get("nbf"))?.is_some_and(|nbf| nbf > rules.now + rules.leeway) {
        return Err(R::NotYetValid);
    }
    let iat = numeric(claims.get("iat"))?;
    if iat.is_some_and(|iat| iat > rules.now + rules.leeway) {
        return Err(R::IssuedInFuture);
    }
    // Without `iat`, the remaining lifetime is what counts.
    if exp - iat.unwrap_or(rules.now) > rules.max_lifetime {
        return Err(R::LifetimeTooLong);
    }
    let accepted = |a: &str| rules.audiences.iter().any(|x| x == a);
    let aud_ok = match claims.get("aud") {
        None => return Err(R::MissingAudience),
        Some(Value::String(a)) => accepted(a),
        // Every element a string, as jsonwebtoken's audience type required.
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).any(accepted)
        }
        Some(_) => return Err(R::BadClaim),
    };
    if !aud_ok {
        return Err(R::BadAudience);
    }
    match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => Ok(exp),
        _ => Err(R::MissingSubject),
    }
}

/// A NumericDate (RFC 7519 §2): a non-negative JSON number; fractions are rounded as
/// jsonwebtoken does. Any other type is `BadClaim` (the CVE-2026-25537 type confusion).
fn numeric(value: Option<&Value>) -> Result<Option<i64>, R> {
    let Some(value) = value else { return Ok(None) };
    let n = if let Some(i) = value.as_i64() {
        i
    } else if let Some(f) = value
        .as_f64()
        .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e15)
    {
        f.round() as i64
    } else {
        return Err(R::BadClaim);
    };
    if n < 0 { Err(R::BadClaim) } else { Ok(Some(n)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn rules(audiences: &[String]) -> ClaimRules<'_> {
        ClaimRules {
            audiences,
            leeway: 60,
            max_lifetime: 86_400,
            now: NOW,
        }
    }

    fn check(claims: Value) -> Result<i64, R> {
        let aud = vec!["agui".to_owned()];
        check_claims(claims.as_object().unwrap(), rules(&aud))
    }

    fn good() -> Value {
        json!({"iss": "https://idp", "sub": "u", "aud": "agui", "exp": NOW + 300, "iat": NOW})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut c = good();
        c[key] = value;
        c
    }

    fn without(key: &str) -> Value {
        let mut c = good();
        c.as_object_mut().unwrap().remove(key);
        c
    }

    #[test]
    fn claim_rules() {
        assert_eq!(check(good()), Ok(NOW + 300));
        assert_eq!(check(with("exp", json!(NOW - 61))), Err(R::Expired));
        assert_eq!(check(with("exp", json!(NOW - 59))), Ok(NOW - 59));
        assert_eq!(
            check(with("exp", json!((NOW + 300).to_string()))),
            Err(R::BadClaim)
        );
        assert_eq!(check(with("exp", json!(-5))), Err(R::BadClaim));
        assert_eq!(check(with("exp", json!(f64::MAX))), Err(R::BadClaim));
        assert_eq!(
            check(with("exp", json!((NOW + 300) as f64 + 0.4))),
            Ok(NOW + 300)
        );
        assert_eq!(check(without("exp")), Err(R::MissingExp));
        assert_eq!(check(with("nbf", json!(NOW + 61))), Err(R::NotYetValid));
        assert_eq!(check(with("nbf", json!(NOW + 59))), Ok(NOW + 300));
        assert_eq!(check(with("iat", json!(NOW + 61))), Err(R::IssuedInFuture));
        assert_eq!(
            check(with("iat", json!(NOW - 90_000))),
            Err(R::LifetimeTooLong)
        );
        assert_eq!(check(with("aud", json!(["x", "agui"]))), Ok(NOW + 300));
        assert_eq!(check(with("aud", json!(["x"]))), Err(R::BadAudience));
        assert_eq!(check(with("aud", json!([]))), Err(R::BadAudience));
        assert_eq!(check(with("aud", json!(7))), Err(R::BadClaim));
        assert_eq!(check(without("aud")), Err(R::MissingAudience));
        assert_eq!(check(with("sub", json!(""))), Err(R::MissingSubject));
        assert_eq!(check(with("sub", json!(5))), Err(R::MissingSubject));
        assert_eq!(check(without("sub")), Err(R::MissingSubject));
    }

    #[test]
    fn header_rules() {
        let h = |v: Value| check_header(v.as_object().unwrap()).map(|i| (i.alg, i.kid));
        assert_eq!(
            h(json!({"alg": "RS256", "kid": "k"})),
            Ok((Algorithm::RS256, Some("k".into())))
        );
        for alg in ["none", "None", "HS256", "ES512", "rs256"] {
            assert_eq!(h(json!({"alg": alg})), Err(R::AlgNotAllowed), "{alg}");
        }
        assert_eq!(h(json!({})), Err(R::AlgNotAllowed));
        assert_eq!(
            h(json!({"alg": "RS256", "crit": ["exp"]})),
            Err(R::CritHeader)
        );
        assert_eq!(
            h(json!({"alg": "RS256", "kid": "x".repeat(257)})),
            Err(R::BadKid)
        );
        assert_eq!(h(json!({"alg": "RS256", "kid": "a\nb"})), Err(R::BadKid));
        assert_eq!(h(json!({"alg": "RS256", "kid": 5})), Err(R::BadKid));
        // Embedded keys are ignored, not used and not refused.
        assert!(
            h(json!({"alg": "RS256", "kid": "k", "jku": "https://evil", "jwk": {"kty": "RSA"}}))
                .is_ok()
        );
    }

    #[test]
    fn typ_policy() {
        use TypPolicy::{Lenient, Strict};
        let s = |t: &str| json!(t);
        assert_eq!(check_typ(None, Lenient), Ok(()));
        assert_eq!(check_typ(Some(&s("JWT")), Lenient), Ok(()));
        assert_eq!(check_typ(Some(&s("AT+JWT")), Lenient), Ok(()));
        assert_eq!(check_typ(Some(&s("dpop+jwt")), Lenient), Err(R::BadTyp));
        assert_eq!(check_typ(None, Strict), Err(R::BadTyp));
        assert_eq!(check_typ(Some(&s("JWT")), Strict), Err(R::BadTyp));
        assert_eq!(check_typ(Some(&s("application/at+jwt")), Strict), Ok(()));
        assert_eq!(check_typ(Some(&json!(1)), Lenient), Err(R::BadTyp));
    }

    #[test]
    fn segments_must_be_strict_base64url_json_objects() {
        assert!(decode_object("eyJhIjoxfQ").is_ok());
        assert_eq!(decode_object("eyJhIjoxfQ==").unwrap_err(), R::Malformed);
        assert_eq!(decode_object("WzFd").unwrap_err(), R::Malformed); // [1]
        assert_eq!(decode_object("e+J/").unwrap_err(), R::Malformed);
        // {"a":1,"a":2}: a repeated member is refused, not read as its last value.
        assert_eq!(
            decode_object("eyJhIjoxLCJhIjoyfQ").unwrap_err(),
            R::Malformed
        );
    }

    mod properties {
        use super::super::check_shape;
        use crate::error::InvalidTokenReason as R;
        use proptest::prelude::*;

        const CAP: usize = 8_192;

        /// The spec of the shape check, written independently of it.
        fn is_three_base64url_segments(token: &str) -> bool {
            let segments: Vec<&str> = token.split('.').collect();
            segments.len() == 3
                && segments.iter().all(|s| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                })
        }

        fn segment() -> impl Strategy<Value = String> {
            "[A-Za-z0-9_-]{1,40}"
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]

            /// Never panics on any input, and accepts exactly three non-empty base64url
            /// segments within the size cap.
            #[test]
            fn shape_check_matches_its_spec(token in any::<String>(), cap in 0usize..64) {
                let result = check_shape(&token, cap);
                if token.len() > cap {
                    prop_assert_eq!(result, Err(R::TooLarge));
                } else if is_three_base64url_segments(&token) {
                    let segments: Vec<&str> = token.split('.').collect();
                    prop_assert_eq!(result, Ok((segments[0], segments[1])));
                } else {
                    prop_assert_eq!(result, Err(R::Malformed));
                }
            }

            /// Well-formed tokens are accepted; one foreign byte, an empty segment or a fourth
            /// segment anywhere is refused.
            #[test]
            fn one_defect_makes_a_token_malformed(
                h in segment(), p in segment(), s in segment(),
                at in any::<prop::sample::Index>(),
                defect in prop_oneof![
                    Just("="), Just("+"), Just("/"), Just(" "), Just("\n"), Just("é"),
                    Just("."), Just("%"), Just("\u{0}"),
                ],
            ) {
                let token = format!("{h}.{p}.{s}");
                prop_assert_eq!(check_shape(&token, CAP), Ok((h.as_str(), p.as_str())));
                // Insert the defect at a char boundary (all ASCII here).
                let i = at.index(token.len() + 1);
                let broken = format!("{}{defect}{}", &token[..i], &token[i..]);
                prop_assert_eq!(check_shape(&broken, CAP), Err(R::Malformed), "{:?}", broken);
                let empty = format!("{h}..{s}");
                prop_assert_eq!(check_shape(&empty, CAP), Err(R::Malformed));
            }

            #[test]
            fn the_cap_is_inclusive(h in segment(), p in segment(), s in segment()) {
                let token = format!("{h}.{p}.{s}");
                prop_assert!(check_shape(&token, token.len()).is_ok());
                prop_assert_eq!(check_shape(&token, token.len() - 1), Err(R::TooLarge));
            }
        }
    }
}
