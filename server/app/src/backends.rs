//! The services a run needs besides its model: the store (thread ownership, runs), the audit
//! log, the authentication-failure aggregator and the per-principal limiter.
//!
//! The server never runs a request without them. They are connected at start-up; if the
//! database (or Redis) cannot be reached or migrated, the server still starts, answers 503
//! (`store_unavailable`, and `/readyz` 503) and keeps retrying with backoff until it can.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::limits::{LimitError, Limiter, RedisLimitOptions};
use crate::store::maintenance::{self, MaintenanceOptions};
use crate::store::{
    AuditLog, AuditLogOptions, AuthFailureAggregator, AuthFailureKey, Mirror, Store, StoreError,
};

/// Backoff between connection attempts while the store is unreachable.
const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// The services, once connected.
#[derive(Debug, Clone)]
pub struct Connected {
    /// The group-commit audit writer (also the run loop's audit sink).
    pub log: AuditLog,
    /// One audit record per source, reason and issuer per window.
    pub failures: AuthFailureAggregator,
    /// Per-principal run rate and concurrent streams.
    pub limiter: Limiter,
}

impl Connected {
    /// The store behind the log.
    pub fn store(&self) -> &Arc<dyn Store> {
        self.log.store()
    }
}

/// The store, audit and limits of one server: connected, or still being connected.
#[derive(Debug)]
pub struct Backends {
    connected: OnceLock<Connected>,
    /// Why the last connection attempt failed (for `/readyz` and logs).
    last_error: std::sync::Mutex<Option<String>>,
}

/// What [`Accountability::start`] needs from the config.
#[derive(Debug, Clone)]
struct Settings {
    database_url: String,
    redis_url: Option<String>,
    redis: RedisLimitOptions,
    log: AuditLogOptions,
    maintenance: MaintenanceOptions,
    window: Duration,
    policy: crate::limits::LimitsPolicy,
}

impl Backends {
    /// Connects the store and the limiter (or starts retrying in the background) and starts
    /// their background jobs, which stop when `shutdown` fires. An unreachable database is not
    /// an error here: the server answers 503 until it is reached.
    pub async fn start(config: &Config, shutdown: CancellationToken) -> Arc<Self> {
        let mirror = config.audit.mirror.as_deref().map(|m| match m {
            "stdout" | "-" => Mirror::Stdout,
            path => Mirror::File(path.into()),
        });
        let settings = Settings {
            database_url: config
                .store
                .database_url
                .clone()
                .unwrap_or_else(|| crate::store::MEMORY_SQLITE_URL.to_owned()),
            redis_url: config.limits.redis_url.clone(),
            redis: RedisLimitOptions {
                lease_ttl: Duration::from_secs(config.limits.redis_lease_secs),
                ..RedisLimitOptions::default()
            },
            log: AuditLogOptions {
                mirror,
                ..AuditLogOptions::default()
            },
            maintenance: MaintenanceOptions {
                heartbeat_every: Duration::from_secs(config.store.heartbeat_secs),
                stale_after: Duration::from_secs(config.store.instance_timeout_secs),
                retention_days: (config.audit.retention_days > 0)
                    .then_some(config.audit.retention_days),
                ..MaintenanceOptions::default()
            },
            window: Duration::from_secs(config.audit.auth_failure_window_secs),
            policy: config.limits.policy(),
        };
        let this = Arc::new(Self {
            connected: OnceLock::new(),
            last_error: std::sync::Mutex::new(None),
        });
        if let Err(error) = this.connect(&settings, &shutdown).await {
            tracing::error!(
                target: "agui::store", %error,
                "store or limiter unavailable at start-up; answering 503 and retrying in the background"
            );
            this.set_error(Some(error));
            let retry = this.clone();
            tokio::spawn(async move { retry.retry(settings, shutdown).await });
        }
        this
    }

    /// The connected services, or `None` while the store is unreachable.
    pub fn connected(&self) -> Option<&Connected> {
        self.connected.get()
    }

    /// Why the store is not ready, if it is not.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Counts one authentication failure (aggregated; nothing is written per request).
    pub fn auth_failure(&self, key: AuthFailureKey, token_fingerprint: Option<&str>) {
        if let Some(connected) = self.connected() {
            connected.failures.record(key, token_fingerprint);
        }
    }

    fn set_error(&self, error: Option<String>) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = error;
    }

    async fn retry(self: Arc<Self>, settings: Settings, shutdown: CancellationToken) {
        let mut delay = RETRY_MIN;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            match self.connect(&settings, &shutdown).await {
                Ok(()) => {
                    tracing::info!(target: "agui::store", "store connected; ready");
                    self.set_error(None);
                    return;
                }
                Err(error) => {
                    tracing::warn!(target: "agui::store", %error, "store still unavailable");
                    self.set_error(Some(error));
                    delay = (delay * 2).min(RETRY_MAX);
                }
            }
        }
    }

    async fn connect(
        &self,
        settings: &Settings,
        shutdown: &CancellationToken,
    ) -> Result<(), String> {
        let store = crate::store::connect(&settings.database_url)
            .await
            .map_err(|e| describe(&e))?;
        let report = maintenance::startup(store.as_ref(), &settings.maintenance)
            .await
            .map_err(|e| describe(&e))?;
        if report.abandoned_runs > 0 {
            tracing::warn!(
                target: "agui::store",
                runs = report.abandoned_runs,
                "runs cut by an earlier crash marked abandoned"
            );
        }
        let limiter = match &settings.redis_url {
            Some(url) => Limiter::redis(settings.policy.clone(), url, settings.redis.clone())
                .await
                .map_err(|e| match e {
                    LimitError::Unavailable(m) => format!("redis: {m}"),
                    LimitError::Exceeded(e) => e.to_string(),
                })?,
            None => Limiter::local(settings.policy.clone()),
        };
        let log = AuditLog::start(store.clone(), settings.log.clone());
        let failures = AuthFailureAggregator::new(log.clone(), settings.window);
        failures.spawn_sweeper(shutdown.clone());
        maintenance::spawn(
            store.clone(),
            settings.maintenance.clone(),
            shutdown.clone(),
        );
        tracing::info!(
            target: "agui::store",
            backend = store.backend(),
            limits = limiter.backend(),
            "store ready"
        );
        let _ = self.connected.set(Connected {
            log,
            failures,
            limiter,
        });
        Ok(())
    }
}

/// A store error for logs and `/readyz`: the kind of failure, never a URL with a password.
fn describe(error: &StoreError) -> String {
    match error {
        StoreError::InvalidUrl(m) => format!("invalid database URL: {m}"),
        StoreError::Database(e) => format!("database unreachable or failing: {e}"),
        StoreError::Migrate(e) => format!("database migration failed: {e}"),
        other => other.to_string(),
    }
}
