//! The attack list of reference `jwt-jwks-oidc.md` §4 (A–H), one named test per case. Each
//! negative case has a positive control: the same token without that one defect is accepted,
//! so a validator that refuses everything fails here.

use crate::common::*;
use agui_auth::jws::SigningKey;
use agui_auth::testing::TestIdp;
use agui_auth::{AuthError, InvalidTokenReason as R, TypPolicy};
use http::StatusCode;
use serde_json::{Value, json};

fn set(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn unset(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---- C. Algorithm ----------------------------------------------------------------------------

#[tokio::test]
async fn alg_none_gets_invalid_token_challenge() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": "rsa-1"});
        assert_invalid(
            check(&auth, &TestIdp::forge(&header, &claims, "c2lnbmF0dXJl")).await,
            R::AlgNotAllowed,
        );
    }
    // The classic unsigned form has an empty third segment.
    let unsigned = format!(
        "{}.",
        agui_auth::jws::signing_input(&json!({"alg": "none"}), &claims)
    );
    assert_invalid(check(&auth, &unsigned).await, R::Malformed);
    let missing_alg = TestIdp::forge(&json!({"typ": "at+jwt", "kid": "rsa-1"}), &claims, "c2ln");
    assert_invalid(check(&auth, &missing_alg).await, R::AlgNotAllowed);
    assert_accepted(check(&auth, &idp.sign("rsa-1", &claims)).await);
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "rsa-1"});
    let pem = idp.key("rsa-1").rsa_public_pem().unwrap();
    assert_invalid(
        check(
            &auth,
            &TestIdp::sign_hs256(&header, &claims, pem.as_bytes()),
        )
        .await,
        R::AlgNotAllowed,
    );
    let n = idp.key("rsa-1").public_jwk()["n"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_invalid(
        check(&auth, &TestIdp::sign_hs256(&header, &claims, n.as_bytes())).await,
        R::AlgNotAllowed,
    );
    assert_accepted(check(&auth, &idp.sign("rsa-1", &claims)).await);
}

#[tokio::test]
async fn wrong_family_alg_for_a_kid_is_refused() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    // An ES256 signature presented under the RSA key's kid.
    let es_under_rsa_kid =
        idp.sign_with_header("ec-1", &json!({"alg": "ES256", "kid": "rsa-1"}), &claims);
    assert_invalid(check(&auth, &es_under_rsa_kid).await, R::AlgMismatch);
    // Same family, other algorithm: the key is published as RS256 only (one key, one alg).
    let ps_under_rs_key =
        idp.sign_with_header("rsa-1", &json!({"alg": "PS256", "kid": "rsa-1"}), &claims);
    assert_invalid(check(&auth, &ps_under_rs_key).await, R::AlgMismatch);
    assert_accepted(check(&auth, &idp.sign("ec-1", &claims)).await);
    assert_accepted(check(&auth, &idp.sign("rsa-1", &claims)).await);
}

#[tokio::test]
async fn algorithm_outside_the_issuer_allowlist_is_refused() {
    let idp = TestIdp::start().await;
    let mut config = idp.auth_config();
    config.issuers[0].algorithms = vec!["ES256".into()];
    let (auth, _) = start(&idp, config).await;
    let claims = idp.claims("alice");
    assert_invalid(
        check(&auth, &idp.sign("rsa-1", &claims)).await,
        R::AlgNotAllowed,
    );
    assert_accepted(check(&auth, &idp.sign("ec-1", &claims)).await);
}

// ---- D. Key selection ------------------------------------------------------------------------

#[tokio::test]
async fn embedded_jwk_and_jku_are_ignored_and_the_key_comes_from_the_jwks() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    let attacker = SigningKey::generate_rsa().unwrap();
    idp.add_unpublished_key("attacker", attacker.clone(), "RS256");
    let header = json!({
        "alg": "RS256", "typ": "at+jwt", "kid": "rsa-1",
        "jwk": Value::Object(attacker.public_jwk()),
        "jku": "http://127.0.0.1:9/jwks.json",
        "x5u": "http://127.0.0.1:9/cert.pem",
    });
    let hits = idp.jwks_hits();
    assert_invalid(
        check(&auth, &idp.sign_with_header("attacker", &header, &claims)).await,
        R::BadSignature,
    );
    assert_eq!(
        idp.jwks_hits(),
        hits,
        "nothing is fetched for a header-supplied key"
    );
    // Positive control: the same header signed by the real key verifies (the members are ignored).
    assert_accepted(check(&auth, &idp.sign_with_header("rsa-1", &header, &claims)).await);
}

#[tokio::test]
async fn published_kid_resigned_with_an_unpublished_key_is_refused() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    idp.add_unpublished_key("forger", SigningKey::generate_p256().unwrap(), "ES256");
    let forged = idp.sign_with_header("forger", &json!({"alg": "ES256", "kid": "ec-1"}), &claims);
    assert_invalid(check(&auth, &forged).await, R::BadSignature);
    assert_accepted(check(&auth, &idp.sign("ec-1", &claims)).await);
}

#[tokio::test]
async fn missing_kid_is_accepted_only_with_a_single_candidate_key() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    let no_kid = |idp: &TestIdp| {
        idp.sign_with_header("rsa-1", &json!({"alg": "RS256", "typ": "at+jwt"}), &claims)
    };
    assert_accepted(check(&auth, &no_kid(&idp)).await);
    let _second_rsa = idp.rotate();
    assert!(auth.refresh_now(&idp.issuer_url()).await);
    assert_invalid(check(&auth, &no_kid(&idp)).await, R::UnknownKid);
    assert_accepted(check(&auth, &idp.sign("rsa-1", &claims)).await);
}

#[tokio::test]
async fn oversized_or_unprintable_kid_is_refused_without_a_fetch() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    let hits = idp.jwks_hits();
    let long = idp.sign_with_header(
        "rsa-1",
        &json!({"alg": "RS256", "kid": "k".repeat(300)}),
        &claims,
    );
    assert_invalid(check(&auth, &long).await, R::BadKid);
    let control = idp.sign_with_header(
        "rsa-1",
        &json!({"alg": "RS256", "kid": "rsa\u{1}1"}),
        &claims,
    );
    assert_invalid(check(&auth, &control).await, R::BadKid);
    assert_eq!(idp.jwks_hits(), hits);
    assert_accepted(check(&auth, &idp.sign("rsa-1", &claims)).await);
}

#[tokio::test]
async fn crit_header_is_refused() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    let header =
        json!({"alg": "RS256", "typ": "at+jwt", "kid": "rsa-1", "crit": ["exp"], "exp": 1});
    assert_invalid(
        check(&auth, &idp.sign_with_header("rsa-1", &header, &claims)).await,
        R::CritHeader,
    );
    assert_accepted(
        check(
            &auth,
            &idp.sign_with_header("rsa-1", &unset(unset(header, "crit"), "exp"), &claims),
        )
        .await,
    );
}

// ---- E. Claims -------------------------------------------------------------------------------

#[tokio::test]
async fn expired_beyond_leeway_is_refused_and_within_leeway_accepted() {
    let (idp, auth, _) = setup().await;
    let t = now();
    let base = set(idp.claims("alice"), "iat", json!(t - 600));
    assert_invalid(
        check(
            &auth,
            &idp.sign("rsa-1", &set(base.clone(), "exp", json!(t - 90))),
        )
        .await,
        R::Expired,
    );
    assert_accepted(check(&auth, &idp.sign("rsa-1", &set(base, "exp", json!(t - 30)))).await);
}

#[tokio::test]
async fn zero_leeway_refuses_a_just_expired_token() {
    let idp = TestIdp::start().await;
    let mut config = idp.auth_config();
    config.leeway_secs = 0;
    let (auth, _) = start(&idp, config).await;
    let t = now();
    let base = set(idp.claims("alice"), "iat", json!(t - 600));
    assert_invalid(
        check(
            &auth,
            &idp.sign("rsa-1", &set(base.clone(), "exp", json!(t - 5))),
        )
        .await,
        R::Expired,
    );
    assert_accepted(check(&auth, &idp.sign("rsa-1", &set(base, "exp", json!(t + 60)))).await);
}

#[tokio::test]
async fn expiry_follows_the_injected_clock() {
    let (idp, auth, clock) = setup().await;
    let token = idp.mint("alice");
    assert_accepted(check(&auth, &token).await);
    clock.advance(std::time::Duration::from_secs(300 + 61));
    assert_invalid(check(&auth, &token).await, R::Expired);
}

#[tokio::test]
async fn nbf_in_the_future_is_refused() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    assert_invalid(
        check(
            &auth,
            &idp.sign("rsa-1", &set(claims.clone(), "nbf", json!(now() + 120))),
        )
        .await,
        R::NotYetValid,
    );
    assert_accepted(
        check(
            &auth,
            &idp.sign("rsa-1", &set(claims, "nbf", json!(now() + 30))),
        )
        .await,
    );
}

#[tokio::test]
async fn iat_in_the_future_is_refused() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    assert_invalid(
        check(
            &auth,
            &idp.sign("rsa-1", &set(claims.clone(), "iat", json!(now() + 120))),
        )
        .await,
        R::IssuedInFuture,
    );
    assert_accepted(
        check(
            &auth,
            &idp.sign("rsa-1", &set(claims, "iat", json!(now() + 30))),
        )
        .await,
    );
}

#[tokio::test]
async fn lifetime_beyond_the_maximum_is_refused() {
    let (idp, auth, _) = setup().await;
    let t = now();
    let claims = set(idp.claims("alice"), "iat", json!(t));
    assert_invalid(
        check(
            &auth,
            &idp.sign("rsa-1", &set(claims.clone(), "exp", json!(t + 86_401))),
        )
        .await,
        R::LifetimeTooLong,
    );
    assert_accepted(
        check(
            &auth,
            &idp.sign("rsa-1", &set(claims, "exp", json!(t + 86_400))),
        )
        .await,
    );
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    let hits = idp.jwks_hits();
    let wrong = set(claims.clone(), "iss", json!("https://evil.example.com"));
    assert_invalid(
        check(&auth, &idp.sign("rsa-1", &wrong)).await,
        R::UnknownIssuer,
    );
    assert_eq!(
        idp.jwks_hits(),
        hits,
        "an unknown issuer never causes a fetch"
    );
    assert_accepted(check(&auth, &idp.sign("rsa-1", &claims)).await);
}

#[tokio::test]
async fn missing_or_non_string_issuer_is_refused() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    assert_invalid(
        check(&auth, &idp.sign("rsa-1", &unset(claims.clone(), "iss"))).await,
        R::MissingIssuer,
    );
    let array = set(claims.clone(), "iss", json!([idp.issuer_url()]));
    assert_invalid(
        check(&auth, &idp.sign("rsa-1", &array)).await,
        R::MissingIssuer,
    );
    assert_invalid(
        check(
            &auth,
            &idp.sign("rsa-1", &set(claims.clone(), "iss", json!(5))),
        )
        .await,
        R::MissingIssuer,
    );
    assert_accepted(check(&auth, &idp.sign("rsa-1", &claims)).await);
}

#[tokio::test]
async fn trailing_slash_issuer_variant_is_refused() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    let slash = set(
        claims.clone(),
        "iss",
        json!(format!("{}/", idp.issuer_url())),
    );
    assert_invalid(
        check(&auth, &idp.sign("rsa-1", &slash)).await,
        R::UnknownIssuer,
    );
    assert_accepted(check(&auth, &idp.sign("rsa-1", &claims)).await);
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    assert_invalid(
        check(
            &auth,
            &idp.sign("rsa-1", &set(claims.clone(), "aud", json!("other-api"))),
        )
        .await,
        R::BadAudience,
    );
    assert_invalid(
        check(
            &auth,
            &idp.sign("rsa-1", &set(claims.clone(), "aud", json!([]))),
        )
        .await,
        R::BadAudience,
    );
    assert_invalid(
        check(
            &auth,
            &idp.sign("rsa-1", &set(claims.clone(), "aud", json!(7))),
        )
        .await,
        R::BadClaim,
    );
    assert_accepted(check(&auth, &idp.sign("rsa-1", &claims)).await);
}

#[tokio::test]
async fn missing_audience_is_refused() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    assert_invalid(
        check(&auth, &idp.sign("rsa-1", &unset(claims.clone(), "aud"))).await,
        R::MissingAudience,
    );
    assert_accepted(check(&auth, &idp.sign("rsa-1", &claims)).await);
}

#[tokio::test]
async fn audience_array_is_accepted_only_with_ours() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    assert_invalid(
        check(
            &auth,
            &idp.sign("rsa-1", &set(claims.clone(), "aud", json!(["a", "b"]))),
        )
        .await,
        R::BadAudience,
    );
    // An array member that is not a string is a malformed claim, not one more audience to skip.
    assert_invalid(
        check(
            &auth,
            &idp.sign("rsa-1", &set(claims.clone(), "aud", json!([7, "agui"]))),
        )
        .await,
        R::BadClaim,
    );
    assert_accepted(
        check(
            &auth,
            &idp.sign("rsa-1", &set(claims, "aud", json!(["a", "agui"]))),
        )
        .await,
    );
}

/// `header.payload` exactly as given, signed with `kid`'s RS256 key: for payloads serde_json
/// would never write (a repeated member).
fn sign_raw(idp: &TestIdp, kid: &str, header: &str, payload: &str) -> String {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let signature = idp.key(kid).sign("RS256", input.as_bytes()).unwrap();
    format!("{input}.{}", b64(&signature))
}

#[tokio::test]
async fn a_repeated_claim_or_header_member_is_refused() {
    let (idp, auth, _) = setup().await;
    let header = idp.header("rsa-1").to_string();
    let claims = idp.claims("alice").to_string();
    // A second `sub` after the real one: parsers that keep the first and those that keep the
    // last would see different users (RFC 7519 §4: refuse or take the last; we refuse).
    let repeated = format!(
        "{},\"sub\":\"mallory\"}}",
        claims.strip_suffix('}').unwrap()
    );
    assert_invalid(
        check(&auth, &sign_raw(&idp, "rsa-1", &header, &repeated)).await,
        R::Malformed,
    );
    let repeated_kid = format!("{},\"kid\":\"rsa-1\"}}", header.strip_suffix('}').unwrap());
    assert_invalid(
        check(&auth, &sign_raw(&idp, "rsa-1", &repeated_kid, &claims)).await,
        R::Malformed,
    );
    // Positive control: the same bytes without the repeat, signed the same way, verify.
    assert_accepted(check(&auth, &sign_raw(&idp, "rsa-1", &header, &claims)).await);
}

#[tokio::test]
async fn a_header_member_of_the_wrong_type_is_refused() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    // `x5c` must be a list of strings (RFC 7515 §4.1.6), even though keys never come from it.
    let header = set(idp.header("rsa-1"), "x5c", json!("not-a-list"));
    assert_invalid(
        check(&auth, &idp.sign_with_header("rsa-1", &header, &claims)).await,
        R::Malformed,
    );
    let header = set(idp.header("rsa-1"), "x5c", json!(["MIIB"]));
    assert_accepted(check(&auth, &idp.sign_with_header("rsa-1", &header, &claims)).await);
}

#[tokio::test]
async fn missing_or_empty_subject_is_refused() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    assert_invalid(
        check(&auth, &idp.sign("rsa-1", &unset(claims.clone(), "sub"))).await,
        R::MissingSubject,
    );
    assert_invalid(
        check(
            &auth,
            &idp.sign("rsa-1", &set(claims.clone(), "sub", json!(""))),
        )
        .await,
        R::MissingSubject,
    );
    assert_accepted(check(&auth, &idp.sign("rsa-1", &claims)).await);
}

#[tokio::test]
async fn missing_exp_is_refused() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    assert_invalid(
        check(&auth, &idp.sign("rsa-1", &unset(claims.clone(), "exp"))).await,
        R::MissingExp,
    );
    assert_accepted(check(&auth, &idp.sign("rsa-1", &claims)).await);
}

#[tokio::test]
async fn exp_as_a_string_is_refused() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    let exp = claims["exp"].as_i64().unwrap();
    assert_invalid(
        check(
            &auth,
            &idp.sign("rsa-1", &set(claims.clone(), "exp", json!(exp.to_string()))),
        )
        .await,
        R::BadClaim,
    );
    assert_accepted(check(&auth, &idp.sign("rsa-1", &claims)).await);
}

#[tokio::test]
async fn typ_policy_strict_refuses_plain_jwt_and_lenient_refuses_other_types() {
    let idp = TestIdp::start().await;
    let mut config = idp.auth_config();
    config.issuers[0].typ = TypPolicy::Strict;
    let (strict, _) = start(&idp, config).await;
    let (lenient, _) = start(&idp, idp.auth_config()).await;
    let claims = idp.claims("alice");
    let with_typ = |typ: &str| {
        idp.sign_with_header(
            "rsa-1",
            &json!({"alg": "RS256", "kid": "rsa-1", "typ": typ}),
            &claims,
        )
    };
    assert_invalid(check(&strict, &with_typ("JWT")).await, R::BadTyp);
    assert_accepted(check(&lenient, &with_typ("JWT")).await);
    assert_invalid(check(&lenient, &with_typ("dpop+jwt")).await, R::BadTyp);
    assert_accepted(check(&strict, &with_typ("application/at+jwt")).await);
}

#[tokio::test]
async fn valid_token_without_required_scope_gets_insufficient_scope() {
    let idp = TestIdp::start().await;
    let mut config = idp.auth_config();
    config.issuers[0].required_scopes = vec!["chat".into(), "tools".into()];
    let (auth, _) = start(&idp, config).await;
    let claims = idp.claims("alice");
    let error = check(&auth, &idp.sign("rsa-1", &claims)).await.unwrap_err();
    assert_eq!(
        error,
        AuthError::InsufficientScope {
            scope: "chat tools".into()
        }
    );
    assert_eq!(error.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        error.www_authenticate().unwrap(),
        r#"Bearer realm="agui", error="insufficient_scope", scope="chat tools""#
    );
    let p = assert_accepted(
        check(
            &auth,
            &idp.sign("rsa-1", &set(claims, "scp", json!(["tools"]))),
        )
        .await,
    );
    assert!(p.has_scope("chat") && p.has_scope("tools"));
}

#[tokio::test]
async fn deny_and_allow_lists_refuse_with_403_and_no_challenge() {
    let idp = TestIdp::start().await;
    let mut config = idp.auth_config();
    config.issuers[0].deny.subjects = vec!["mallory".into()];
    config.issuers[0].allow.email_domains = vec!["example.com".into()];
    let (auth, _) = start(&idp, config).await;
    let good = set(
        set(idp.claims("alice"), "email", json!("alice@example.com")),
        "email_verified",
        json!(true),
    );
    let denied = check(
        &auth,
        &idp.sign("rsa-1", &set(good.clone(), "sub", json!("mallory"))),
    )
    .await
    .unwrap_err();
    assert_eq!(denied, AuthError::AccessDenied);
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    assert_eq!(denied.www_authenticate(), None);
    let unverified = check(
        &auth,
        &idp.sign("rsa-1", &set(good.clone(), "email_verified", json!(false))),
    )
    .await;
    assert_eq!(unverified.unwrap_err(), AuthError::AccessDenied);
    assert_accepted(check(&auth, &idp.sign("rsa-1", &good)).await);
}

// ---- A/B. Extraction, structure and size -----------------------------------------------------

#[tokio::test]
async fn oversize_token_is_refused_before_decoding() {
    let (idp, auth, _) = setup().await;
    let claims = idp.claims("alice");
    let big = idp.sign(
        "rsa-1",
        &set(claims.clone(), "pad", json!("x".repeat(8_000))),
    );
    assert!(big.len() > 8_192);
    assert_invalid(check(&auth, &big).await, R::TooLarge);
    let fits = idp.sign("rsa-1", &set(claims, "pad", json!("x".repeat(5_000))));
    assert!(fits.len() <= 8_192);
    assert_accepted(check(&auth, &fits).await);
}

#[tokio::test]
async fn malformed_structure_is_refused() {
    let (idp, auth, _) = setup().await;
    let token = idp.mint("alice");
    let parts: Vec<&str> = token.split('.').collect();
    for bad in [
        parts[..2].join("."),
        format!("{token}.{}", parts[2]),
        format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
        format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            parts[2].replace('-', "+").replace('_', "/")
        ) + "+/",
        format!("{}.{} .{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}", "WzFd", parts[1], parts[2]),
    ] {
        assert_invalid(check(&auth, &bad).await, R::Malformed);
    }
    assert_accepted(check(&auth, &token).await);
}

#[tokio::test]
async fn tampered_payload_is_refused() {
    let (idp, auth, _) = setup().await;
    let token = idp.mint("alice");
    let other = idp.mint("admin");
    let parts: Vec<&str> = token.split('.').collect();
    let other_payload = other.split('.').nth(1).unwrap();
    let tampered = format!("{}.{}.{}", parts[0], other_payload, parts[2]);
    assert_invalid(check(&auth, &tampered).await, R::BadSignature);
    assert_accepted(check(&auth, &token).await);
}

#[tokio::test]
async fn tampered_or_truncated_signature_is_refused() {
    let (idp, auth, _) = setup().await;
    for kid in ["rsa-1", "ec-1"] {
        let token = idp.sign(kid, &idp.claims("alice"));
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut flipped = sig.as_bytes().to_vec();
        flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
        let flipped = format!("{input}.{}", String::from_utf8(flipped).unwrap());
        assert_invalid(check(&auth, &flipped).await, R::BadSignature);
        // Dropping four base64url characters can leave non-canonical trailing bits (refused as
        // malformed) or a shorter, well-formed signature (refused by the verifier): either way
        // the same 401 invalid_token.
        let truncated = format!("{input}.{}", &sig[..sig.len() - 4]);
        let refused = check(&auth, &truncated).await;
        let reason = match refused
            .as_ref()
            .expect_err("a truncated signature must be refused")
        {
            agui_auth::AuthError::InvalidToken { reason } => *reason,
            other => panic!("wrong refusal: {other:?}"),
        };
        assert!(
            matches!(reason, R::BadSignature | R::Malformed),
            "{reason:?}"
        );
        assert_invalid(refused, reason);
        assert_accepted(check(&auth, &token).await);
    }
}

#[tokio::test]
async fn ecdsa_zero_signature_is_refused() {
    let (idp, auth, _) = setup().await;
    let token = idp.sign("ec-1", &idp.claims("alice"));
    let (input, _) = token.rsplit_once('.').unwrap();
    let zero = format!("{input}.{}", "A".repeat(86)); // 64 zero bytes: r = s = 0 (CVE-2022-21449)
    assert_invalid(check(&auth, &zero).await, R::BadSignature);
    assert_accepted(check(&auth, &token).await);
}

// ---- H. The principal is built from verified claims only -------------------------------------

#[tokio::test]
async fn principal_comes_from_the_verified_claims() {
    let (idp, auth, _) = setup().await;
    let claims = set(
        set(idp.claims("alice"), "name", json!("Alice")),
        "roles",
        json!(["admin"]),
    );
    let token = idp.sign("rsa-1", &claims);
    let p = assert_accepted(
        auth.authenticate(&token, agui_auth::CredentialSource::Body)
            .await
            .map(std::sync::Arc::unwrap_or_clone),
    );
    assert_eq!(p.issuer, idp.issuer_url());
    assert_eq!(p.subject, "alice");
    assert_eq!(p.display_name(), "Alice");
    assert!(p.has_role("admin") && p.has_scope("chat"));
    assert_eq!(p.credential_source, agui_auth::CredentialSource::Body);
    assert_eq!(p.token_fingerprint, agui_auth::token_fingerprint(&token));
    assert_eq!(p.expires_at, claims["exp"].as_i64().unwrap());
    assert_eq!(p.claims.get("jti"), claims.get("jti"));
}
