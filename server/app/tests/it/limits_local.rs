//! The per-replica limiter: token bucket and concurrent-stream cap (paused Tokio time).

use std::time::Duration;

use agui_server::limits::{
    LimitError, LimitExceeded, LimitKind, Limiter, LimitsPolicy, RoleLimits,
};

fn policy(runs_per_minute: u32, burst: u32, streams: u32) -> LimitsPolicy {
    LimitsPolicy {
        runs_per_minute,
        burst,
        max_concurrent_streams: streams,
        ..Default::default()
    }
}

fn exceeded(result: Result<agui_server::limits::StreamPermit, LimitError>) -> LimitExceeded {
    match result {
        Err(LimitError::Exceeded(e)) => e,
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn burst_then_exceeded_with_retry_after_then_refill() {
    // 6 per minute = one token every 10 s; bucket of 3.
    let limiter = Limiter::local(policy(6, 3, 0));
    for _ in 0..3 {
        drop(limiter.acquire_key("alice", &[]).await.unwrap());
    }
    let e = exceeded(limiter.acquire_key("alice", &[]).await);
    assert_eq!(e.kind, LimitKind::RunRate);
    assert_eq!(e.retry_after_secs, 10);
    // Another principal has its own bucket.
    assert!(limiter.acquire_key("bob", &[]).await.is_ok());

    // 4 s later the next token is 6 s away.
    tokio::time::advance(Duration::from_secs(4)).await;
    assert_eq!(
        exceeded(limiter.acquire_key("alice", &[]).await).retry_after_secs,
        6
    );
    // After the advertised wait, exactly one run fits.
    tokio::time::advance(Duration::from_secs(6)).await;
    assert!(limiter.acquire_key("alice", &[]).await.is_ok());
    assert_eq!(
        exceeded(limiter.acquire_key("alice", &[]).await).kind,
        LimitKind::RunRate
    );

    // A long pause refills to the burst size, not beyond.
    tokio::time::advance(Duration::from_secs(3_600)).await;
    for _ in 0..3 {
        assert!(limiter.acquire_key("alice", &[]).await.is_ok());
    }
    assert!(limiter.acquire_key("alice", &[]).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn concurrent_cap_is_released_when_the_permit_drops() {
    let limiter = Limiter::local(policy(0, 0, 2));
    let first = limiter.acquire_key("alice", &[]).await.unwrap();
    let second = limiter.acquire_key("alice", &[]).await.unwrap();
    let e = exceeded(limiter.acquire_key("alice", &[]).await);
    assert_eq!(e.kind, LimitKind::ConcurrentStreams);
    assert!(e.retry_after_secs >= 1);
    // Other principals are not affected.
    let _bob = limiter.acquire_key("bob", &[]).await.unwrap();
    drop(first);
    let third = limiter.acquire_key("alice", &[]).await.unwrap();
    assert!(limiter.acquire_key("alice", &[]).await.is_err());
    drop((second, third));
    assert!(limiter.acquire_key("alice", &[]).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_refused_stream_does_not_spend_a_run_token() {
    let limiter = Limiter::local(policy(60, 2, 1));
    let held = limiter.acquire_key("alice", &[]).await.unwrap();
    for _ in 0..5 {
        assert_eq!(
            exceeded(limiter.acquire_key("alice", &[]).await).kind,
            LimitKind::ConcurrentStreams
        );
    }
    drop(held);
    // One token was spent above; one is left although five attempts were refused.
    assert!(limiter.acquire_key("alice", &[]).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn role_overrides_raise_the_limits() {
    let mut p = policy(6, 1, 1);
    p.roles.insert(
        "pro".into(),
        RoleLimits {
            burst: Some(3),
            max_concurrent_streams: Some(0),
            ..Default::default()
        },
    );
    let limiter = Limiter::local(p);
    let pro = ["pro".to_owned()];
    let permits: Vec<_> = futures::future::join_all((0..3).map(|_| limiter.acquire_key("p", &pro)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(permits.len(), 3, "unlimited streams, burst 3");
    assert_eq!(
        exceeded(limiter.acquire_key("p", &pro).await).kind,
        LimitKind::RunRate
    );
    // Positive control: without the role, the defaults apply (one stream, burst of 1).
    let held = limiter.acquire_key("plain", &[]).await.unwrap();
    assert_eq!(
        exceeded(limiter.acquire_key("plain", &[]).await).kind,
        LimitKind::ConcurrentStreams
    );
    drop(held);
    assert_eq!(
        exceeded(limiter.acquire_key("plain", &[]).await).kind,
        LimitKind::RunRate
    );
}
