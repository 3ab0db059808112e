//! Where the bearer token comes from: the grammar of DESIGN flow step 2.
//!
//! * `Authorization: Bearer <token68>` (scheme in any case, RFC 7235 §2.1, RFC 6750 §2.1);
//! * `Authorization: <compact JWS>`, the raw value CopilotKit's `properties.authorization` turns
//!   into when a runtime copies it into a header without a scheme;
//! * `forwardedProps.authorization` in the body (CopilotKit `properties`), taken out of the body
//!   before anything else sees it.
//!
//! Tokens in the URL are never read (RFC 6750 §2.3 is a MUST NOT for us: URLs end up in logs).

use http::HeaderMap;
use http::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};

use crate::error::{AuthError, InvalidRequestReason};

/// Which of the accepted places the token came from (logged, counted and audited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialSource {
    /// `Authorization: Bearer <token>`.
    Header,
    /// `Authorization: <compact JWS>` without a scheme.
    HeaderRaw,
    /// `forwardedProps.authorization` in the request body.
    Body,
}

impl CredentialSource {
    /// `"header"`, `"header_raw"` or `"body"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Header => "header",
            Self::HeaderRaw => "header_raw",
            Self::Body => "body",
        }
    }
}

/// Reads the credential from the `Authorization` header.
///
/// * no header → `Ok(None)`;
/// * `Bearer <token68>` (any case, one or more spaces) → `(token, Header)`;
/// * a value without a scheme that is one compact JWS (three non-empty base64url segments) →
///   `(token, HeaderRaw)`;
/// * any other scheme (`Basic …`, an opaque word) → [`AuthError::MissingCredentials`]: a bare
///   401 challenge tells the client which scheme we speak;
/// * two headers, `Bearer` with nothing after it, control characters or non-ASCII bytes, a
///   token with spaces or outside `token68` → [`AuthError::InvalidRequest`] (400).
///
/// # Errors
/// As listed above.
pub fn credential_from_headers(
    headers: &HeaderMap,
) -> Result<Option<(String, CredentialSource)>, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(InvalidRequestReason::MultipleAuthorizationHeaders.into());
    }
    let bytes = value.as_bytes();
    // HTAB is legal in a header value but not in credentials; obs-text is never part of token68.
    if bytes.iter().any(|b| b.is_ascii_control() || !b.is_ascii()) {
        return Err(InvalidRequestReason::MalformedCredentials.into());
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| AuthError::from(InvalidRequestReason::MalformedCredentials))?;
    let text = text.trim_matches(' ');
    if text.is_empty() {
        return Err(InvalidRequestReason::EmptyToken.into());
    }
    match text.split_once(' ') {
        Some((scheme, rest)) => {
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(AuthError::MissingCredentials);
            }
            let token = rest.trim_start_matches(' ');
            if token.is_empty() {
                return Err(InvalidRequestReason::EmptyToken.into());
            }
            if !is_token68(token) {
                return Err(InvalidRequestReason::MalformedCredentials.into());
            }
            Ok(Some((token.to_owned(), CredentialSource::Header)))
        }
        None if text.eq_ignore_ascii_case("bearer") => Err(InvalidRequestReason::EmptyToken.into()),
        None if is_compact_jws(text) => Ok(Some((text.to_owned(), CredentialSource::HeaderRaw))),
        None => Err(AuthError::MissingCredentials),
    }
}

/// Takes (removes) `forwardedProps.authorization` from the run input's `forwardedProps`.
///
/// A string is returned with a leading `Bearer ` (any case) stripped; `null` counts as absent
/// (and is removed too); any other JSON type is [`AuthError::InvalidRequest`]. The key is removed
/// in every case, so the token never reaches the model, tools, state or logs.
///
/// # Errors
/// A non-string value, an empty token, or a token that is not `token68`.
pub fn take_body_credential(
    forwarded_props: &mut serde_json::Value,
) -> Result<Option<String>, AuthError> {
    let Some(object) = forwarded_props.as_object_mut() else {
        return Ok(None);
    };
    let Some(value) = object.remove("authorization") else {
        return Ok(None);
    };
    let raw = match value {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::String(s) => s,
        _ => return Err(InvalidRequestReason::BodyCredentialNotString.into()),
    };
    normalise_body_token(&raw).map(Some)
}

fn normalise_body_token(raw: &str) -> Result<String, AuthError> {
    let trimmed = raw.trim_matches(' ');
    let token = match trimmed.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => {
            rest.trim_start_matches(' ')
        }
        _ if trimmed.eq_ignore_ascii_case("bearer") => "",
        _ => trimmed,
    };
    if token.is_empty() {
        return Err(InvalidRequestReason::EmptyToken.into());
    }
    if !is_token68(token) {
        return Err(InvalidRequestReason::MalformedCredentials.into());
    }
    Ok(token.to_owned())
}

/// Combines a header credential and a body credential (DESIGN flow step 2): both present and
/// different → [`AuthError::InvalidRequest`] (`ConflictingCredentials`); the header wins when both
/// are equal; `accept_body_token = false` ignores the body token (it was removed all the same).
///
/// # Errors
/// Conflicting credentials.
pub fn resolve_credential(
    header: Option<(String, CredentialSource)>,
    body: Option<String>,
    accept_body_token: bool,
) -> Result<Option<(String, CredentialSource)>, AuthError> {
    match (header, body) {
        (Some((h, _)), Some(b)) if h != b => Err(crate::error::conflicting_credentials()),
        (Some(h), _) => Ok(Some(h)),
        (None, Some(b)) if accept_body_token => Ok(Some((b, CredentialSource::Body))),
        (None, _) => Ok(None),
    }
}

/// Byte classes of the token alphabets: a bearer token (~800 bytes for a typical IdP's JWT) is
/// checked on every request, up to three times (its header's syntax, then the route and the
/// verifier's JWS shape), so each check is one table lookup per byte.
const BASE64URL: u8 = 1;
const TOKEN68: u8 = 2;
const CLASSES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            table[i] = BASE64URL | TOKEN68;
        } else if matches!(b, b'.' | b'~' | b'+' | b'/') {
            table[i] = TOKEN68;
        }
        i += 1;
    }
    table
};

fn all_in(s: &str, class: u8) -> bool {
    s.bytes().all(|b| CLASSES[usize::from(b)] & class != 0)
}

/// RFC 7235 §2.1 `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub(crate) fn is_token68(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty() && all_in(body, TOKEN68)
}

/// Three non-empty base64url segments separated by dots (RFC 7515 §7.1 compact serialization).
pub(crate) fn is_compact_jws(s: &str) -> bool {
    let Some((header, rest)) = s.split_once('.') else {
        return false;
    };
    let Some((payload, signature)) = rest.split_once('.') else {
        return false;
    };
    [header, payload, signature]
        .iter()
        .all(|segment| !segment.is_empty() && all_in(segment, BASE64URL))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const JWS: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        map
    }

    fn read(values: &[&[u8]]) -> Result<Option<(String, CredentialSource)>, AuthError> {
        credential_from_headers(&headers(values))
    }

    #[test]
    fn no_header_is_none() {
        assert_eq!(read(&[]), Ok(None));
    }

    #[test]
    fn bearer_in_any_case_is_accepted() {
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let value = format!("{scheme} {JWS}");
            assert_eq!(
                read(&[value.as_bytes()]),
                Ok(Some((JWS.to_owned(), CredentialSource::Header)))
            );
        }
        // Several spaces are allowed by RFC 7235 (`1*SP`).
        let value = format!("Bearer   {JWS}");
        assert_eq!(
            read(&[value.as_bytes()]),
            Ok(Some((JWS.to_owned(), CredentialSource::Header)))
        );
    }

    #[test]
    fn a_raw_compact_jws_is_accepted_as_header_raw() {
        assert_eq!(
            read(&[JWS.as_bytes()]),
            Ok(Some((JWS.to_owned(), CredentialSource::HeaderRaw)))
        );
    }

    #[test]
    fn another_scheme_or_an_opaque_word_is_missing_credentials() {
        assert_eq!(
            read(&[b"Basic dXNlcjpwYXNz"]),
            Err(AuthError::MissingCredentials)
        );
        assert_eq!(read(&[b"opaque-token"]), Err(AuthError::MissingCredentials));
        assert_eq!(read(&[b"a.b"]), Err(AuthError::MissingCredentials));
        assert_eq!(read(&[b"a.b.c.d.e"]), Err(AuthError::MissingCredentials));
    }

    /// The other credential kinds fit `token68` after `Bearer`, but only a compact JWS is
    /// accepted without it (a raw opaque word is another scheme, as before).
    #[test]
    fn github_api_key_and_opaque_tokens_need_bearer() {
        let tokens = [
            "gho_16C7e42F292c6912E7710c838347Ae178B4a".to_owned(),
            format!("github_pat_11ABCDEFG0_{}", "aZ09".repeat(20)),
            format!("agui_{}", "Ab-_".repeat(10) + "xyz"),
            "ory_at_Zm9vYmFyLmJhei1xdXV4fn4".to_owned(),
        ];
        for token in &tokens {
            let header = format!("Bearer {token}");
            assert_eq!(
                read(&[header.as_bytes()]),
                Ok(Some((token.clone(), CredentialSource::Header))),
                "{token}"
            );
            assert_eq!(
                read(&[token.as_bytes()]),
                Err(AuthError::MissingCredentials),
                "{token}"
            );
            let mut props = serde_json::json!({"authorization": token});
            assert_eq!(take_body_credential(&mut props), Ok(Some(token.clone())));
        }
    }

    #[test]
    fn malformed_headers_are_invalid_request() {
        let bad = |v: &[u8]| match read(&[v]) {
            Err(AuthError::InvalidRequest { reason }) => reason,
            other => panic!("expected invalid_request, got {other:?}"),
        };
        assert_eq!(bad(b"Bearer"), InvalidRequestReason::EmptyToken);
        assert_eq!(bad(b"Bearer    "), InvalidRequestReason::EmptyToken);
        assert_eq!(bad(b"   "), InvalidRequestReason::EmptyToken);
        assert_eq!(
            bad(b"Bearer a b"),
            InvalidRequestReason::MalformedCredentials
        );
        assert_eq!(
            bad(b"Bearer a\tb"),
            InvalidRequestReason::MalformedCredentials
        );
        assert_eq!(
            bad(b"Bearer \xc3\xa9t\xc3\xa9"),
            InvalidRequestReason::MalformedCredentials
        );
        assert_eq!(
            bad(b"Bearer a,b"),
            InvalidRequestReason::MalformedCredentials
        );
        let two = read(&[
            format!("Bearer {JWS}").as_bytes(),
            format!("Bearer {JWS}").as_bytes(),
        ]);
        assert_eq!(
            two,
            Err(InvalidRequestReason::MultipleAuthorizationHeaders.into())
        );
    }

    #[test]
    fn body_credential_is_removed_and_normalised() {
        let mut props = serde_json::json!({"authorization": format!("Bearer {JWS}"), "other": 1});
        assert_eq!(take_body_credential(&mut props), Ok(Some(JWS.to_owned())));
        assert_eq!(props, serde_json::json!({"other": 1}));

        let mut props = serde_json::json!({"authorization": JWS});
        assert_eq!(take_body_credential(&mut props), Ok(Some(JWS.to_owned())));

        let mut props = serde_json::json!({"authorization": null});
        assert_eq!(take_body_credential(&mut props), Ok(None));
        assert_eq!(props, serde_json::json!({}));

        let mut props = serde_json::json!({"nothing": true});
        assert_eq!(take_body_credential(&mut props), Ok(None));
        let mut not_an_object = serde_json::json!([1, 2]);
        assert_eq!(take_body_credential(&mut not_an_object), Ok(None));
    }

    #[test]
    fn non_string_body_credential_is_invalid_request_and_still_removed() {
        let mut props = serde_json::json!({"authorization": {"token": JWS}});
        assert_eq!(
            take_body_credential(&mut props),
            Err(InvalidRequestReason::BodyCredentialNotString.into())
        );
        assert_eq!(props, serde_json::json!({}));
        let mut props = serde_json::json!({"authorization": ""});
        assert_eq!(
            take_body_credential(&mut props),
            Err(InvalidRequestReason::EmptyToken.into())
        );
        let mut props = serde_json::json!({"authorization": "Bearer "});
        assert_eq!(
            take_body_credential(&mut props),
            Err(InvalidRequestReason::EmptyToken.into())
        );
    }

    #[test]
    fn header_and_body_conflict_is_invalid_request() {
        let header = Some((JWS.to_owned(), CredentialSource::Header));
        let err = resolve_credential(header.clone(), Some("other.token.x".into()), true);
        assert_eq!(err, Err(conflict()));
        let err = resolve_credential(header.clone(), Some("other.token.x".into()), false);
        assert_eq!(
            err,
            Err(conflict()),
            "a conflict is refused even when the body source is off"
        );
        // Positive control: the same token in both places is fine and the header wins.
        assert_eq!(
            resolve_credential(header.clone(), Some(JWS.into()), true),
            Ok(header)
        );
    }

    #[test]
    fn body_source_switched_off_leaves_only_the_header() {
        assert_eq!(resolve_credential(None, Some(JWS.into()), false), Ok(None));
        assert_eq!(
            resolve_credential(None, Some(JWS.into()), true),
            Ok(Some((JWS.to_owned(), CredentialSource::Body)))
        );
        let header = Some((JWS.to_owned(), CredentialSource::HeaderRaw));
        assert_eq!(resolve_credential(header.clone(), None, false), Ok(header));
    }

    fn conflict() -> AuthError {
        crate::error::conflicting_credentials()
    }

    mod properties {
        use super::super::*;
        use http::HeaderValue;
        use proptest::prelude::*;

        /// What every accepted credential must be: a non-empty `token68`, so no space, no
        /// control character, nothing outside ASCII.
        fn assert_token68(token: &str) {
            assert!(is_token68(token), "{token:?}");
            assert!(!token.is_empty());
            assert!(token.bytes().all(|b| b.is_ascii_graphic()), "{token:?}");
        }

        fn read(value: &[u8]) -> Option<Result<Option<(String, CredentialSource)>, AuthError>> {
            let value = HeaderValue::from_bytes(value).ok()?;
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, value);
            Some(credential_from_headers(&headers))
        }

        /// Header values: arbitrary bytes, and `Bearer`-like values around token68 text.
        fn header_value() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..80),
                "[ ]{0,2}(?i:bearer)[ \t]{0,3}[A-Za-z0-9._~+/=, -]{0,40}[ ]{0,2}"
                    .prop_map(String::into_bytes),
                "[A-Za-z0-9_.=-]{0,60}".prop_map(String::into_bytes),
            ]
        }

        fn token68() -> impl Strategy<Value = String> {
            "[A-Za-z0-9._~+/-]{1,60}={0,2}"
        }

        /// The grammars as written in their RFCs, byte by byte: what the tables must match.
        fn token68_by_the_rfc(s: &str) -> bool {
            let body = s.trim_end_matches('=');
            !body.is_empty()
                && body.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
                })
        }

        fn compact_jws_by_the_rfc(s: &str) -> bool {
            let segments: Vec<&str> = s.split('.').collect();
            segments.len() == 3
                && segments.iter().all(|seg| {
                    !seg.is_empty()
                        && seg
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                })
        }

        /// Strings near the grammars' edges: their alphabets, `=`, dots, and a few others.
        fn near_token() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                prop_oneof![
                    proptest::sample::select(b"aZ09-_.~+/= \t\x00\x7f".to_vec())
                        .prop_map(char::from),
                    any::<char>(),
                ],
                0..24,
            )
            .prop_map(|chars| chars.into_iter().collect())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]

            #[test]
            fn the_token_tables_accept_exactly_what_the_rfc_grammars_do(s in near_token()) {
                prop_assert_eq!(is_token68(&s), token68_by_the_rfc(&s), "{:?}", s);
                prop_assert_eq!(is_compact_jws(&s), compact_jws_by_the_rfc(&s), "{:?}", s);
            }

            #[test]
            fn the_header_grammar_never_panics_and_yields_only_token68(value in header_value()) {
                if let Some(Ok(Some((token, source)))) = read(&value) {
                    assert_token68(&token);
                    if source == CredentialSource::HeaderRaw {
                        prop_assert!(is_compact_jws(&token));
                    }
                }
            }

            #[test]
            fn the_bearer_scheme_is_case_insensitive(
                upper in proptest::collection::vec(any::<bool>(), 6),
                spaces in 1usize..4,
                token in token68(),
            ) {
                let scheme: String = "bearer"
                    .chars()
                    .zip(&upper)
                    .map(|(c, &u)| if u { c.to_ascii_uppercase() } else { c })
                    .collect();
                let value = format!("{scheme}{}{token}", " ".repeat(spaces));
                prop_assert_eq!(
                    read(value.as_bytes()).unwrap(),
                    Ok(Some((token.clone(), CredentialSource::Header)))
                );
                // The body form strips the same prefix.
                let mut props = serde_json::json!({"authorization": value});
                prop_assert_eq!(take_body_credential(&mut props), Ok(Some(token)));
            }

            #[test]
            fn the_body_credential_never_panics_and_is_always_removed(raw in any::<String>()) {
                let mut props = serde_json::json!({"authorization": raw, "other": 1});
                if let Ok(Some(token)) = take_body_credential(&mut props) {
                    assert_token68(&token);
                }
                prop_assert_eq!(props, serde_json::json!({"other": 1}));
            }
        }
    }
}
