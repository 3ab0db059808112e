//! Start-up and periodic store jobs: the instance heartbeat, marking runs of dead processes
//! `abandoned`, and audit retention (`AGUI_AUDIT_RETENTION_DAYS`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{AuditKind, AuditRecord, PrincipalKey, Store, StoreError, now_ms};

/// How the maintenance jobs run.
#[derive(Debug, Clone)]
pub struct MaintenanceOptions {
    /// How often this process writes its heartbeat and looks for abandoned runs.
    pub heartbeat_every: Duration,
    /// A replica whose heartbeat is older than this is dead; its open runs are abandoned.
    pub stale_after: Duration,
    /// Delete audit records older than this many days (`None`: keep forever).
    pub retention_days: Option<u32>,
    /// How often retention runs (daily).
    pub retention_every: Duration,
}

impl Default for MaintenanceOptions {
    fn default() -> Self {
        Self {
            heartbeat_every: Duration::from_secs(10),
            stale_after: Duration::from_secs(60),
            retention_days: None,
            retention_every: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// What [`startup`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StartupReport {
    /// Runs marked `abandoned`.
    pub abandoned_runs: u64,
    /// Audit records deleted by retention.
    pub expired_records: u64,
}

/// Runs once at start-up, after [`super::connect`]: writes this process's heartbeat, marks the
/// open runs of dead processes `abandoned` (each with a `run_ended` audit record) and applies
/// retention.
///
/// SQLite serves one process, so every other instance's open run is abandoned at once; on
/// PostgreSQL only runs of replicas whose heartbeat is older than `stale_after` are (live
/// replicas keep theirs; [`spawn`] catches the rest later).
///
/// # Errors
///
/// Any [`StoreError`]: the server must then stay not-ready.
pub async fn startup(
    store: &dyn Store,
    options: &MaintenanceOptions,
) -> Result<StartupReport, StoreError> {
    let now = now_ms();
    store.heartbeat(now).await?;
    let stale_before = if store.backend() == "sqlite" {
        i64::MAX
    } else {
        now - millis(options.stale_after)
    };
    let abandoned_runs = store.mark_abandoned_runs(stale_before, now).await?;
    let expired_records = match options.retention_days {
        Some(days) => apply_retention(store, days, now).await?,
        None => 0,
    };
    Ok(StartupReport {
        abandoned_runs,
        expired_records,
    })
}

/// Deletes audit records older than `days` days before `now`. Returns how many.
///
/// # Errors
///
/// Any [`StoreError`].
pub async fn apply_retention(store: &dyn Store, days: u32, now: i64) -> Result<u64, StoreError> {
    let before = now - i64::from(days) * 24 * 60 * 60 * 1000;
    let deleted = store.delete_audit_before(before).await?;
    // Thread history is kept no longer than the audit log that says who wrote it.
    let chunks = store.delete_history_before(before).await?;
    if deleted > 0 || chunks > 0 {
        tracing::info!(target: "agui::audit", deleted, history_chunks = chunks, days, "retention applied");
    }
    Ok(deleted)
}

/// Spawns the periodic jobs until `shutdown` fires: heartbeat and abandoned-run sweep every
/// `heartbeat_every`, retention every `retention_every`. Failures are logged and retried at
/// the next tick (readiness follows [`Store::ping`] and the audit log's health).
pub fn spawn(
    store: Arc<dyn Store>,
    options: MaintenanceOptions,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut heartbeat = tokio::time::interval(options.heartbeat_every);
        let mut retention = tokio::time::interval(options.retention_every);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = heartbeat.tick() => {
                    let now = now_ms();
                    let result = match store.heartbeat(now).await {
                        Ok(()) => store
                            .mark_abandoned_runs(now - millis(options.stale_after), now)
                            .await
                            .map(drop),
                        Err(error) => Err(error),
                    };
                    if let Err(error) = result {
                        tracing::warn!(target: "agui::store", %error, "heartbeat failed");
                    }
                }
                _ = retention.tick() => {
                    if let Some(days) = options.retention_days
                        && let Err(error) = apply_retention(store.as_ref(), days, now_ms()).await
                    {
                        tracing::warn!(target: "agui::store", %error, "audit retention failed");
                    }
                }
            }
        }
    })
}

/// The `run_ended` record of a run marked `abandoned` (written in the same transaction).
pub(crate) fn abandoned_record(
    now: i64,
    owner: PrincipalKey,
    thread_id: String,
    run_id: String,
    instance: String,
) -> AuditRecord {
    AuditRecord {
        at: now,
        ..AuditRecord::now(AuditKind::RunEnded)
    }
    .principal(&owner)
    .thread(thread_id)
    .run(run_id)
    .detail(json!({ "outcome": "abandoned", "instance": instance }))
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
