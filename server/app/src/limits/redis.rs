//! The Redis backend: limits shared by every replica.
//!
//! One Lua script checks the stream cap, takes a bucket token and adds the stream's lease, all
//! atomically (a script runs without interleaving; Redis "Scripting with Lua"). Time comes from
//! the Redis server (`TIME`), so replicas with skewed clocks agree. A stream slot is a member
//! of a sorted set scored by its lease expiry; the stream's task refreshes it every third of
//! the TTL. A replica killed with `kill -9` stops refreshing: its members are purged once their
//! score passes, and the whole key expires (`PEXPIRE`) when no live lease refreshes it.

use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio_util::sync::CancellationToken;

use super::{LimitError, LimitExceeded, LimitKind, LimitsPolicy, PermitInner, StreamPermit};

/// Settings of the Redis limiter.
#[derive(Debug, Clone)]
pub struct RedisLimitOptions {
    /// Prefix of every key (`<prefix>:{<principal>}:b` bucket, `...:s` streams).
    pub key_prefix: String,
    /// Lease TTL of a stream slot; refreshed every third of it while the stream lives.
    pub lease_ttl: Duration,
}

impl Default for RedisLimitOptions {
    fn default() -> Self {
        Self {
            key_prefix: "agui:limits".to_owned(),
            lease_ttl: Duration::from_secs(30),
        }
    }
}

const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local max_streams = tonumber(ARGV[3])
local ttl = tonumber(ARGV[5])
if max_streams > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= max_streams then
    local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {2, tonumber(first[2]) - now}
  end
end
if rate > 0 then
  local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
  local tokens = tonumber(b[1]) or capacity
  local ts = tonumber(b[2]) or now
  tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
  if tokens < 1 then
    return {1, math.ceil((1 - tokens) / rate)}
  end
  tokens = tokens - 1
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
  redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate) + 1000)
end
if max_streams > 0 then
  redis.call('ZADD', KEYS[2], now + ttl, ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return {0, 0}
";

const REFRESH: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
";

/// Cluster-wide limits.
pub(crate) struct RedisLimiter {
    policy: LimitsPolicy,
    options: RedisLimitOptions,
    conn: ConnectionManager,
    acquire: Script,
    refresh: Arc<Script>,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn unavailable(error: redis::RedisError) -> LimitError {
    LimitError::Unavailable(error.to_string())
}

impl RedisLimiter {
    pub(crate) async fn connect(
        policy: LimitsPolicy,
        url: &str,
        options: RedisLimitOptions,
    ) -> Result<Self, LimitError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        // Bounded retries and timeouts: a stalled Redis must turn into a quick 503, not a
        // request that hangs before its stream.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_secs(1))
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            policy,
            options,
            conn,
            acquire: Script::new(ACQUIRE),
            refresh: Arc::new(Script::new(REFRESH)),
        })
    }

    pub(crate) async fn acquire(
        &self,
        key: &str,
        roles: &[String],
    ) -> Result<StreamPermit, LimitError> {
        let limits = self.policy.effective(roles);
        if limits.runs_per_minute == 0 && limits.max_concurrent_streams == 0 {
            return Ok(StreamPermit::unlimited());
        }
        // The `{...}` hash tag keeps both keys of a principal in one Redis Cluster slot.
        let bucket_key = format!("{}:{{{key}}}:b", self.options.key_prefix);
        let streams_key = format!("{}:{{{key}}}:s", self.options.key_prefix);
        let lease_id = uuid::Uuid::new_v4().to_string();
        let ttl_ms = u64::try_from(self.options.lease_ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let per_ms = f64::from(limits.runs_per_minute) / 60_000.0;
        let mut conn = self.conn.clone();
        let (status, wait_ms): (i64, i64) = self
            .acquire
            .key(&bucket_key)
            .key(&streams_key)
            .arg(limits.burst)
            .arg(per_ms.to_string())
            .arg(limits.max_concurrent_streams)
            .arg(&lease_id)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let retry_after_secs = u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000).max(1);
        match status {
            0 => {}
            1 => {
                return Err(LimitExceeded {
                    kind: LimitKind::RunRate,
                    retry_after_secs,
                }
                .into());
            }
            _ => {
                // The oldest lease's expiry bounds the wait only for a dead replica's lease;
                // a live stream may end sooner or later. A short retry is the honest answer.
                let retry_after_secs = retry_after_secs.min(5);
                return Err(LimitExceeded {
                    kind: LimitKind::ConcurrentStreams,
                    retry_after_secs,
                }
                .into());
            }
        }
        if limits.max_concurrent_streams == 0 {
            return Ok(StreamPermit::unlimited());
        }
        let stop = CancellationToken::new();
        tokio::spawn(refresh_loop(
            conn.clone(),
            self.refresh.clone(),
            streams_key.clone(),
            lease_id.clone(),
            self.options.lease_ttl,
            stop.clone(),
        ));
        Ok(StreamPermit {
            inner: PermitInner::Redis(Lease {
                conn,
                key: streams_key,
                id: lease_id,
                stop,
                released: false,
            }),
        })
    }
}

async fn refresh_loop(
    mut conn: ConnectionManager,
    script: Arc<Script>,
    key: String,
    lease: String,
    ttl: Duration,
    stop: CancellationToken,
) {
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(ttl / 3) => {}
        }
        let result: Result<i64, _> = script
            .key(&key)
            .arg(&lease)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await;
        if let Err(error) = result {
            tracing::warn!(target: "agui::limits", %error, "stream lease refresh failed");
        }
    }
}

/// A stream slot held in Redis.
pub(crate) struct Lease {
    conn: ConnectionManager,
    key: String,
    id: String,
    stop: CancellationToken,
    released: bool,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.key)
            .field("id", &self.id)
            .finish()
    }
}

impl Lease {
    /// Stops refreshing and removes the lease. Outside a Tokio runtime (the process is going
    /// away) nothing can be sent: the lease then simply expires.
    pub(crate) fn release(&mut self) {
        if std::mem::replace(&mut self.released, true) {
            return;
        }
        self.stop.cancel();
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut conn = self.conn.clone();
        let key = std::mem::take(&mut self.key);
        let id = std::mem::take(&mut self.id);
        handle.spawn(async move {
            let result: Result<i64, _> =
                redis::cmd("ZREM").arg(&key).arg(&id).query_async(&mut conn).await;
            if let Err(error) = result {
                tracing::warn!(target: "agui::limits", %error, "stream lease release failed; it will expire");
            }
        });
    }
}
