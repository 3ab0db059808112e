//! The cluster-wide limiter on a real Redis (`AGUI_TEST_REDIS_URL`). Unset: the tests print
//! `SKIP` and pass, unless `AGUI_REQUIRE_REDIS=1`, where they fail.

use std::time::Duration;

use agui_server::limits::{
    LimitError, LimitKind, Limiter, LimitsPolicy, RedisLimitOptions, StreamPermit,
};

fn redis_url() -> Option<String> {
    let url = std::env::var("AGUI_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        assert!(
            std::env::var("AGUI_REQUIRE_REDIS").as_deref() != Ok("1"),
            "AGUI_REQUIRE_REDIS=1 but AGUI_TEST_REDIS_URL is not set"
        );
        eprintln!("SKIP: Redis limiter tests (set AGUI_TEST_REDIS_URL)");
    }
    url
}

fn policy(runs_per_minute: u32, burst: u32, streams: u32) -> LimitsPolicy {
    LimitsPolicy {
        runs_per_minute,
        burst,
        max_concurrent_streams: streams,
        ..Default::default()
    }
}

/// A fresh key prefix per test, so tests sharing one Redis do not meet.
fn options(ttl: Duration) -> RedisLimitOptions {
    RedisLimitOptions {
        key_prefix: format!("agui-test:{}", uuid::Uuid::new_v4().simple()),
        lease_ttl: ttl,
    }
}

async fn limiter(url: &str, p: LimitsPolicy, o: &RedisLimitOptions) -> Limiter {
    Limiter::redis(p, url, o.clone())
        .await
        .unwrap_or_else(|e| panic!("Redis at AGUI_TEST_REDIS_URL: {e}"))
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn kind(result: Result<StreamPermit, LimitError>) -> LimitKind {
    match result {
        Err(LimitError::Exceeded(e)) => {
            assert!(e.retry_after_secs >= 1);
            e.kind
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
}

/// Polls `check` every 50 ms until it holds; the bound only keeps a broken build from hanging.
async fn wait_until<F: AsyncFnMut() -> bool>(what: &str, mut check: F) {
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_limiters_sharing_redis_enforce_one_stream_cap() {
    let Some(url) = redis_url() else { return };
    let o = options(Duration::from_secs(30));
    let a = limiter(&url, policy(0, 0, 2), &o).await;
    let b = limiter(&url, policy(0, 0, 2), &o).await;
    let from_a = a.acquire_key("alice", &[]).await.unwrap();
    let _from_b = b.acquire_key("alice", &[]).await.unwrap();
    assert_eq!(
        kind(a.acquire_key("alice", &[]).await),
        LimitKind::ConcurrentStreams
    );
    assert_eq!(
        kind(b.acquire_key("alice", &[]).await),
        LimitKind::ConcurrentStreams
    );
    // Another principal has its own slots.
    let _bob = b.acquire_key("bob", &[]).await.unwrap();

    // Dropping A's permit releases its lease in Redis; then B gets the slot.
    drop(from_a);
    let key = format!("{}:{{alice}}:s", o.key_prefix);
    let mut conn = raw(&url).await;
    wait_until("the released lease is removed", async || {
        let n: i64 = redis::cmd("ZCARD")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        n == 1
    })
    .await;
    let _again = b.acquire_key("alice", &[]).await.unwrap();
    assert_eq!(
        kind(a.acquire_key("alice", &[]).await),
        LimitKind::ConcurrentStreams
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn run_bucket_is_shared_across_limiters() {
    let Some(url) = redis_url() else { return };
    let o = options(Duration::from_secs(30));
    // 1 per minute refill, burst 2: two runs in total across both replicas, then 429.
    let a = limiter(&url, policy(1, 2, 0), &o).await;
    let b = limiter(&url, policy(1, 2, 0), &o).await;
    drop(a.acquire_key("alice", &[]).await.unwrap());
    drop(b.acquire_key("alice", &[]).await.unwrap());
    match b.acquire_key("alice", &[]).await {
        Err(LimitError::Exceeded(e)) => {
            assert_eq!(e.kind, LimitKind::RunRate);
            // One token per 60 s: the next one is at most a minute away.
            assert!((1..=60).contains(&e.retry_after_secs), "{e:?}");
        }
        other => panic!("expected RunRate, got {other:?}"),
    }
    assert_eq!(kind(a.acquire_key("alice", &[]).await), LimitKind::RunRate);
    assert!(
        a.acquire_key("bob", &[]).await.is_ok(),
        "bob has his own bucket"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_replica_frees_its_slots_when_its_leases_expire() {
    let Some(url) = redis_url() else { return };
    let o = options(Duration::from_millis(1_500));
    let key = format!("{}:{{alice}}:s", o.key_prefix);

    // The "replica" lives in its own runtime on its own thread. Dropping that runtime kills
    // its lease-refresh task; dropping the permit afterwards, outside any runtime, cannot send
    // a release: what `kill -9` leaves behind.
    let (victim_url, victim_options) = (url.clone(), o.clone());
    let permit = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let permit = runtime.block_on(async {
            let victim = limiter(&victim_url, policy(0, 0, 1), &victim_options).await;
            victim.acquire_key("alice", &[]).await.unwrap()
        });
        drop(runtime);
        permit
    })
    .join()
    .unwrap();
    drop(permit);

    let survivor = limiter(&url, policy(0, 0, 1), &o).await;
    // The dead replica's lease still holds the only slot.
    assert_eq!(
        kind(survivor.acquire_key("alice", &[]).await),
        LimitKind::ConcurrentStreams
    );
    let mut conn = raw(&url).await;
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0, "the slot key carries a TTL ({ttl})");
    // Nobody refreshes it: Redis expires the key, and with it the slot.
    wait_until("Redis expires the dead replica's lease key", async || {
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        exists == 0
    })
    .await;
    let live = survivor.acquire_key("alice", &[]).await.unwrap();

    // Positive control: a LIVE permit is refreshed, so it outlives several TTLs.
    for _ in 0..3 {
        tokio::time::sleep(o.lease_ttl).await;
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(exists, 1, "a live lease is kept alive by its refresh task");
        assert_eq!(
            kind(survivor.acquire_key("alice", &[]).await),
            LimitKind::ConcurrentStreams
        );
    }
    drop(live);
}

#[tokio::test]
async fn unreachable_redis_is_unavailable_not_unlimited() {
    // Nothing listens on port 1.
    let error = Limiter::redis(
        policy(1, 1, 1),
        "redis://127.0.0.1:1",
        options(Duration::from_secs(1)),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, LimitError::Unavailable(_)), "{error:?}");
}
