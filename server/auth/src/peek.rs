//! The claims of a token that was *refused*, read without verifying it: only for audit records
//! and logs of the refusal ("which issuer was this for?"), never to decide anything.

use serde_json::{Map, Value};

/// The payload of a compact JWS no longer than `max_token_bytes`, unverified; `None` for
/// anything else (an opaque token, garbage, an oversized token).
///
/// Use the result only to describe a refusal: whoever wrote the token chose every value in it.
pub fn unverified_claims(token: &str, max_token_bytes: usize) -> Option<Map<String, Value>> {
    if token.len() > max_token_bytes {
        return None;
    }
    let mut segments = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return None;
    };
    crate::validate::decode_object(payload).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn jws(payload: &str) -> String {
        format!("e30.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
    }

    #[test]
    fn reads_the_payload_of_a_compact_jws_within_the_cap() {
        let token = jws(r#"{"iss":"https://idp.example","sub":"u1"}"#);
        let claims = unverified_claims(&token, 8192).expect("claims");
        assert_eq!(claims["iss"], "https://idp.example");
        // The configured cap, not a fixed one: the same token over a smaller cap is not read.
        assert!(unverified_claims(&token, token.len() - 1).is_none());
        assert!(unverified_claims(&token, token.len()).is_some());
    }

    #[test]
    fn anything_but_three_segments_with_an_object_payload_is_none() {
        for token in ["", "gho_abc", "a.b", "a.b.c.d", &jws("[1]"), "e30.!!!.c2ln"] {
            assert!(unverified_claims(token, 8192).is_none(), "{token}");
        }
    }
}
