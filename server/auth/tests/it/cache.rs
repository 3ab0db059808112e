//! The JWKS cache as attackers and key rotations exercise it: an unknown kid costs exactly one
//! refetch, a flood of unknown kids one fetch per cooldown, a kid published after the cooldown
//! is accepted, and rotation works without a restart.

use std::time::Duration;

use crate::common::*;
use agui_auth::InvalidTokenReason as R;

#[tokio::test]
async fn an_unknown_kid_triggers_exactly_one_refetch_and_a_rotated_kid_is_accepted() {
    let (idp, auth, _clock) = setup().await;
    assert_accepted(check(&auth, &idp.mint("alice")).await);
    let before = idp.jwks_hits();
    let new_kid = idp.rotate();
    let token = idp.sign(&new_kid, &idp.claims("alice"));
    assert_accepted(check(&auth, &token).await);
    assert_eq!(idp.jwks_hits(), before + 1, "one refetch for the new kid");
    assert_accepted(check(&auth, &token).await);
    assert_eq!(idp.jwks_hits(), before + 1, "then it is cached");
}

#[tokio::test]
async fn a_hundred_concurrent_unknown_kids_cost_one_fetch_per_cooldown() {
    let (idp, auth, clock) = setup().await;
    assert_accepted(check(&auth, &idp.mint("alice")).await);
    let before = idp.jwks_hits();
    let key = idp.key("rsa-1");
    let tokens: Vec<String> = (0..100)
        .map(|i| {
            let kid = format!("ghost-{i}");
            idp.add_unpublished_key(&kid, key.clone(), "RS256");
            idp.sign(&kid, &idp.claims("mallory"))
        })
        .collect();
    let results = futures::future::join_all(tokens.iter().map(|t| check(&auth, t))).await;
    assert!(
        results.iter().all(Result::is_err),
        "unpublished kids are refused"
    );
    assert_eq!(idp.jwks_hits(), before + 1, "one fetch for the whole flood");

    // A kid published now is still unknown until the cooldown has passed …
    let late = idp.rotate();
    let token = idp.sign(&late, &idp.claims("alice"));
    assert!(check(&auth, &token).await.is_err());
    assert_eq!(idp.jwks_hits(), before + 1, "no fetch inside the cooldown");
    // … and accepted after it.
    clock.advance(Duration::from_secs(31));
    assert_accepted(check(&auth, &token).await);
    assert_eq!(idp.jwks_hits(), before + 2);
}

#[tokio::test]
async fn a_removed_kid_is_refused_after_the_next_refresh() {
    let (idp, auth, clock) = setup().await;
    let old = idp.mint("alice");
    assert_accepted(check(&auth, &old).await);
    let new_kid = idp.rotate();
    idp.unpublish("rsa-1");
    // A token with the new kid makes the cache refetch; the old kid is gone from that set.
    clock.advance(Duration::from_secs(31));
    assert_accepted(check(&auth, &idp.sign(&new_kid, &idp.claims("alice"))).await);
    assert_invalid(check(&auth, &old).await, R::UnknownKid);
}

/// The fetched set's freshness follows `Cache-Control: max-age`, clamped to 5 min–1 h, and is
/// 10 min without it.
#[tokio::test]
async fn cache_control_max_age_is_honoured_within_five_minutes_and_an_hour() {
    let (idp, auth, _clock) = setup().await;
    let issuer = idp.issuer_url();
    let ttl = || auth.stats().issuers[0].ttl_secs;
    assert_eq!(ttl(), 600, "no Cache-Control: the 10 min default");
    for (max_age, expected) in [(900, 900), (1, 300), (86_400, 3_600), (300, 300)] {
        idp.set_max_age(Some(max_age));
        assert!(auth.refresh_now(&issuer).await);
        assert_eq!(ttl(), expected, "max-age={max_age}");
    }
    idp.set_max_age(None);
    assert!(auth.refresh_now(&issuer).await);
    assert_eq!(ttl(), 600);
}

/// A fetched set that is unparseable, empty, has no usable key, is too large or comes with an
/// error status never replaces the good one: the cached keys keep verifying.
#[tokio::test]
async fn a_bad_fetched_set_never_replaces_a_good_one() {
    let (idp, auth, _clock) = setup().await;
    let issuer = idp.issuer_url();
    let token = idp.mint("alice");
    assert_accepted(check(&auth, &token).await);
    let good = idp.jwks_hits();

    let rsa = idp.key("rsa-1").public_jwk();
    let mut as_enc = rsa.clone();
    as_enc.insert("kid".into(), "rsa-1".into());
    as_enc.insert("use".into(), "enc".into());
    let oct = serde_json::json!({"kty": "oct", "kid": "rsa-1", "k": "c2VjcmV0"});
    // A valid entry padded with a 300 KiB member: more than the 256 KiB body cap.
    let mut huge = rsa.clone();
    huge.insert("kid".into(), "rsa-1".into());
    huge.insert("x-padding".into(), "a".repeat(300 * 1024).into());

    type Fault<'a> = (
        &'a str,
        Box<dyn Fn(&agui_auth::testing::TestIdp, bool) + 'a>,
    );
    let faults: Vec<Fault<'_>> = vec![
        ("garbage", Box::new(|idp, on| idp.set_garbage(on))),
        ("empty set", Box::new(|idp, on| idp.set_empty(on))),
        (
            "HTTP 500",
            Box::new(|idp, on| idp.set_jwks_status(on.then_some(500))),
        ),
    ];
    let raw_sets: Vec<(&str, Vec<serde_json::Value>)> = vec![
        ("only an encryption key", vec![as_enc.into()]),
        ("only a symmetric key", vec![oct]),
        ("a body over 256 KiB", vec![huge.into()]),
    ];
    let failed_before = auth.stats().issuers[0].jwks_fetches_failed;
    let mut attempts = 0;
    for (name, set) in &faults {
        set(&idp, true);
        assert!(
            !auth.refresh_now(&issuer).await,
            "{name}: refresh must fail"
        );
        assert_accepted(check(&auth, &token).await);
        set(&idp, false);
        attempts += 1;
    }
    for (name, entries) in raw_sets {
        idp.publish_raw(entries);
        assert!(
            !auth.refresh_now(&issuer).await,
            "{name}: refresh must fail"
        );
        assert_accepted(check(&auth, &token).await);
        attempts += 1;
    }
    let stats = &auth.stats().issuers[0];
    assert_eq!(stats.jwks_fetches_failed, failed_before + attempts);
    assert!(stats.usable && stats.keys == 2, "{stats:?}");
    assert_eq!(
        idp.jwks_hits(),
        good + attempts,
        "every bad set was fetched"
    );

    // Control: a good set is taken again.
    let mut entry = idp.key("rsa-1").public_jwk();
    entry.insert("kid".into(), "rsa-1".into());
    entry.insert("alg".into(), "RS256".into());
    idp.publish_raw(vec![entry.into()]);
    assert!(auth.refresh_now(&issuer).await);
    assert_eq!(auth.stats().issuers[0].keys, 1);
    assert_accepted(check(&auth, &token).await);
}

/// A JWKS endpoint that never answers does not hold up verification with cached keys, and its
/// fetch is abandoned after the 5 s timeout instead of hanging the refresher.
#[tokio::test]
async fn a_hanging_issuer_never_delays_verification_and_its_fetch_times_out() {
    let (idp, auth, _clock) = setup().await;
    let issuer = idp.issuer_url();
    let token = idp.mint("alice");
    assert_accepted(check(&auth, &token).await);
    let before = idp.jwks_hits();
    let failed_before = auth.stats().issuers[0].jwks_fetches_failed;

    idp.set_delay(Some(Duration::from_secs(3_600)));
    let refresh = tokio::spawn({
        let auth = auth.clone();
        async move { auth.refresh_now(&issuer).await }
    });
    // Wait (bounded) until the provider holds the fetch.
    for _ in 0..1_000 {
        if idp.jwks_hits() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        idp.jwks_hits(),
        before + 1,
        "the fetch reached the provider"
    );
    // The fetch is in flight and stuck; verification with the cached key goes on.
    assert_accepted(check(&auth, &token).await);
    assert!(!refresh.is_finished(), "the fetch is still waiting");
    assert!(!refresh.await.unwrap(), "the fetch ends in a timeout");
    assert_eq!(
        auth.stats().issuers[0].jwks_fetches_failed,
        failed_before + 1
    );
    idp.set_delay(None);
    assert_accepted(check(&auth, &token).await);
}

/// A token verified once is answered from the verified-token cache (no second signature check),
/// with the credential source of the request at hand.
#[tokio::test]
async fn a_verified_token_is_answered_from_the_cache_with_this_requests_source() {
    let (idp, auth, _clock) = setup().await;
    let token = idp.mint("alice");
    let first = assert_accepted(check(&auth, &token).await);
    assert_eq!(auth.stats().verified_cache_hits, 0);
    let again = assert_accepted(
        auth.authenticate(&token, agui_auth::CredentialSource::Body)
            .await
            .map(std::sync::Arc::unwrap_or_clone),
    );
    assert_eq!(auth.stats().verified_cache_hits, 1);
    assert_eq!(again.credential_source, agui_auth::CredentialSource::Body);
    assert_eq!(
        agui_auth::Principal {
            credential_source: first.credential_source,
            ..again
        },
        first
    );
    // A different token of the same user is verified on its own.
    assert_accepted(check(&auth, &idp.mint("alice")).await);
    assert_eq!(auth.stats().verified_cache_hits, 1);
}

/// The cache never outlives the token: past `exp` + leeway it is refused as expired.
#[tokio::test]
async fn a_cached_token_expires_with_the_token() {
    let (idp, auth, clock) = setup().await;
    let token = idp.mint("alice"); // exp = now + 300 s; leeway 60 s
    assert_accepted(check(&auth, &token).await);
    clock.advance(Duration::from_secs(300 + 59));
    assert_accepted(check(&auth, &token).await);
    clock.advance(Duration::from_secs(2));
    assert_invalid(check(&auth, &token).await, R::Expired);
}

/// A key removed from the issuer's set takes its cached tokens with it.
#[tokio::test]
async fn a_cached_token_is_refused_once_its_key_leaves_the_key_set() {
    let (idp, auth, clock) = setup().await;
    let token = idp.mint("alice");
    assert_accepted(check(&auth, &token).await);
    assert_accepted(check(&auth, &token).await);
    let hits = auth.stats().verified_cache_hits;
    assert_eq!(hits, 1);
    idp.rotate();
    idp.unpublish("rsa-1");
    clock.advance(Duration::from_secs(31));
    assert!(auth.refresh_now(&idp.issuer_url()).await);
    assert_invalid(check(&auth, &token).await, R::UnknownKid);
    assert_eq!(
        auth.stats().verified_cache_hits,
        hits,
        "not answered from the cache"
    );
}
