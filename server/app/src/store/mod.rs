//! The store: thread ownership, runs and the audit log, on SQLite (the default, one process) or
//! PostgreSQL (several replicas behind a load balancer).
//!
//! The data model and the audit record format are described in `README.md` next to this file.
//!
//! # Layout
//!
//! - this file: the [`Store`] trait, [`StoreError`] and [`connect`].
//! - [`model`]: the data: principals, threads, runs, audit records, the batched writes.
//! - `rules`: what the writes mean (ownership claims, run keys, `last_run_at`), written once
//!   over each backend's statements.
//! - `rows`: stored rows into the data types, written once over each backend's row type.
//! - [`sqlite`]: [`SqliteStore`] (a file in WAL mode, or in memory for `dev` and tests).
//! - [`postgres`]: the PostgreSQL store, [`PgStore`].
//! - [`audit_log`]: [`AuditLog`], the group-commit writer in front of a store; it is the
//!   server's [`agui_agent::AuditSink`].
//! - [`auth_failures`]: [`AuthFailureAggregator`], one record per source and reason per window.
//! - [`maintenance`]: start-up and periodic jobs (heartbeat, abandoned runs, retention).
//! - [`cli`]: the library side of `agui-server audit` and `agui-server forget`.

pub mod audit_log;
pub mod auth_failures;
pub mod cli;
pub mod maintenance;
pub mod model;
pub mod postgres;
mod rows;
mod rules;

pub use rules::title_of;
pub mod sqlite;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

pub use audit_log::{AuditLog, AuditLogOptions, FollowUps, Mirror};
pub use auth_failures::{AuthFailureAggregator, AuthFailureKey};
pub use model::*;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Why the store could not do something. The server maps every variant to 503 (not ready /
/// `audit_unavailable`): it never runs without its store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is not `sqlite:` / `postgres:` or does not parse.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// PostgreSQL cannot be reached or a statement failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The embedded migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(String),
    /// The audit writer is gone or its queue is full; nothing can be recorded.
    #[error("audit log unavailable: {0}")]
    AuditUnavailable(&'static str),
    /// SQLite failed (a statement, or its worker thread is gone).
    #[error("database error: {0}")]
    Backend(String),
    /// A stored value could not be decoded (a row written by something else).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// The storage interface: one trait, two real backends ([`SqliteStore`], [`PgStore`]).
///
/// Every method is one short transaction; writes that happen per run go through
/// [`Store::commit`] / [`Store::write_batch`], which [`AuditLog`] calls with many operations at
/// once (group commit). What each write means is defined once, in `rules`, for both backends.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// This process's instance id (recorded on runs it starts).
    fn instance_id(&self) -> &str;

    /// Whether the database answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Creates `thread_id` owned by `owner` if it does not exist, then reports who owns it.
    /// Atomic across connections and processes: of principals racing on a new id, exactly one
    /// becomes the owner.
    async fn claim_thread(
        &self,
        owner: &PrincipalKey,
        thread_id: &str,
        now: i64,
    ) -> Result<ThreadAccess, StoreError>;

    /// The owner's threads, most recently used first.
    async fn list_threads(&self, owner: &PrincipalKey) -> Result<Vec<ThreadSummary>, StoreError>;

    /// Applies `ops` in order in ONE transaction (all or nothing).
    async fn write_batch(&self, ops: &[WriteOp]) -> Result<(), StoreError>;

    /// The group commit of run starts: claims each start's thread for its principal (as
    /// [`Store::claim_thread`]) and, where the principal owns it, records the run and its audit
    /// record; then applies `ops`. Returns each start's [`ThreadAccess`], in order.
    ///
    /// All of it is one transaction: a batch commits whole or not at all (a refused batch
    /// owns nothing).
    async fn commit(
        &self,
        starts: &[StartRequest],
        ops: &[WriteOp],
    ) -> Result<Vec<ThreadAccess>, StoreError>;

    /// One run.
    async fn get_run(&self, thread_id: &str, run_id: &str)
    -> Result<Option<RunRecord>, StoreError>;

    /// Records that this process is alive (an upsert of its instance row).
    async fn heartbeat(&self, now: i64) -> Result<(), StoreError>;

    /// Marks `abandoned` every open run of another instance whose last heartbeat is before
    /// `stale_before` (or that has no heartbeat). Returns how many runs were marked.
    async fn mark_abandoned_runs(&self, stale_before: i64, now: i64) -> Result<u64, StoreError>;

    /// Audit records matching `filter`, oldest first.
    async fn query_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError>;

    /// Deletes audit records older than `before` (retention). Returns how many.
    async fn delete_audit_before(&self, before: i64) -> Result<u64, StoreError>;

    /// Deletes the history of runs whose last chunk is older than `before` (retention; a run
    /// goes whole, so no replay starts in the middle of one). Returns how many chunks.
    async fn delete_history_before(&self, before: i64) -> Result<u64, StoreError>;

    /// The thread's owner, without claiming it (`None`: no such thread).
    async fn thread_owner(&self, thread_id: &str) -> Result<Option<PrincipalKey>, StoreError>;

    /// Every stored history chunk of the thread, in replay order: runs by start, chunks by
    /// number.
    async fn history(&self, thread_id: &str) -> Result<Vec<HistoryChunk>, StoreError>;

    /// One run's chunks from `from_chunk` on, in order (following a run another replica runs).
    async fn run_history(
        &self,
        thread_id: &str,
        run_id: &str,
        from_chunk: i64,
    ) -> Result<Vec<HistoryChunk>, StoreError>;

    /// What a `connect` needs of a thread, in one statement (one round trip, one snapshot): its
    /// owner and, only when `reader` owns it (or `any_owner`: an admin's read), its history in
    /// replay order and its open runs, so a refused caller costs no history read.
    async fn thread_replay(
        &self,
        thread_id: &str,
        reader: &PrincipalKey,
        any_owner: bool,
    ) -> Result<ThreadReplay, StoreError>;

    /// The thread's runs that have no recorded end, with their instances' last heartbeats.
    async fn open_runs(&self, thread_id: &str) -> Result<Vec<OpenRun>, StoreError>;

    /// Sends `notice` to the other replicas sharing this database (PostgreSQL `NOTIFY`; a
    /// no-op for SQLite, one process per file).
    async fn publish(&self, notice: &Notice) -> Result<(), StoreError> {
        let _ = notice;
        Ok(())
    }

    /// The notices other replicas publish (and history commits announce), if this backend
    /// carries any: `None` for SQLite.
    fn notices(&self) -> Option<tokio::sync::broadcast::Receiver<Notice>> {
        None
    }

    /// Deletes one subject's threads (with their history), runs and audit records (of one
    /// issuer, or of all issuers when `issuer` is `None`), in one transaction.
    async fn forget_subject(
        &self,
        issuer: Option<&str>,
        subject: &str,
    ) -> Result<ForgetCounts, StoreError>;
}

/// Opens the store at `url` (`sqlite:` / `sqlite://` or `postgres://` / `postgresql://`), runs
/// the embedded migrations and returns it.
///
/// # Errors
///
/// [`StoreError::InvalidUrl`] for an unknown scheme; [`StoreError::Database`] when the database
/// cannot be reached; [`StoreError::Migrate`] when the schema cannot be brought up to date.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url).await?))
    } else {
        let scheme = url.split(':').next().unwrap_or_default();
        Err(StoreError::InvalidUrl(format!(
            "unsupported scheme `{scheme}:` (expected sqlite: or postgres:)"
        )))
    }
}

/// The default store URL of `serve`: a file under `./data/`, created if missing.
pub const DEFAULT_SQLITE_URL: &str = "sqlite://./data/agui.db?mode=rwc";

/// The store URL of `dev` and tests: a private in-memory database.
pub const MEMORY_SQLITE_URL: &str = "sqlite::memory:";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// A fresh instance id for this process: time-ordered and unique (UUID v7).
pub(crate) fn new_instance_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
