//! The JWKS cache as attackers and key rotations exercise it: an unknown kid costs exactly one
//! refetch, a flood of unknown kids one fetch per cooldown, a kid published after the cooldown
//! is accepted, and rotation works without a restart.

mod common;

use std::time::Duration;

use agui_auth::InvalidTokenReason as R;
use common::*;

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
