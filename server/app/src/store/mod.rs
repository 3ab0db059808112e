//! The store: thread ownership, runs and the audit log, on SQLite (the default, one process) or
//! PostgreSQL (several replicas behind a load balancer).
//!
//! The data model and the audit record format are described in `README.md` next to this file.
//!
//! # Layout
//!
//! - this file: the [`Store`] trait, its data types, [`StoreError`] and [`connect`].
//! - [`sqlite`]: [`SqliteStore`] (a file in WAL mode, or in memory for `dev` and tests).
//! - [`postgres`]: the PostgreSQL store, [`PgStore`].
//! - [`audit_log`]: [`AuditLog`], the group-commit writer in front of a store; it is the
//!   server's [`agui_agent::AuditSink`].
//! - [`auth_failures`]: [`AuthFailureAggregator`], one record per source and reason per window.
//! - [`client_addr`]: [`client_addr()`], the caller's address behind trusted proxies.
//! - [`maintenance`]: start-up and periodic jobs (heartbeat, abandoned runs, retention).
//! - [`cli`]: the library side of `agui-server audit` and `agui-server forget`.

pub mod audit_log;
pub mod auth_failures;
pub mod cli;
pub mod client_addr;
pub mod maintenance;
pub mod postgres;
pub mod sqlite;
mod sqlite_writer;

mod embedded;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use audit_log::{AuditLog, AuditLogOptions, Mirror};
pub use auth_failures::{AuthFailureAggregator, AuthFailureKey};
pub use client_addr::{client_addr, parse_trusted_proxies};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Why the store could not do something. The server maps every variant to 503 (not ready /
/// `audit_unavailable`): it never runs without its store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is not `sqlite:` / `postgres:` or does not parse.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The database cannot be reached or a statement failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The embedded migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The audit writer is gone or its queue is full; nothing can be recorded.
    #[error("audit log unavailable: {0}")]
    AuditUnavailable(&'static str),
    /// The SQLite writer failed (a statement, or the writer thread is gone).
    #[error("database error: {0}")]
    Backend(String),
    /// A stored value could not be decoded (a row written by something else).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// Who owns a thread: the verified issuer and subject. Never a token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PrincipalKey {
    /// The token's `iss`.
    pub issuer: String,
    /// The token's `sub`.
    pub subject: String,
}

impl PrincipalKey {
    /// A key from issuer and subject.
    pub fn new(issuer: impl Into<String>, subject: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            subject: subject.into(),
        }
    }

    /// The key of a verified principal.
    pub fn of(principal: &agui_auth::Principal) -> Self {
        Self::new(principal.issuer.clone(), principal.subject.clone())
    }
}

/// What [`Store::claim_thread`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadAccess {
    /// The caller owns the thread (it was just created for it, or it created it earlier).
    Owner {
        /// Whether this call created the thread.
        created: bool,
    },
    /// Another principal owns the thread. The handler answers 404 `thread_not_found` (the
    /// thread's existence is not revealed) unless an admin role overrides, which is audited.
    NotOwner {
        /// The owner, for the audit record only; never sent to the client.
        owner: PrincipalKey,
    },
}

/// One of the caller's threads, as `GET /threads` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadSummary {
    /// The thread id.
    pub thread_id: String,
    /// When the thread was created (ms since the epoch).
    pub created_at: i64,
    /// When its last run started (ms since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run_at: Option<i64>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// `RUN_FINISHED`.
    Success,
    /// `RUN_ERROR` (with a code).
    Error,
    /// The client went away or the server shut down.
    Cancelled,
    /// The process died while the run streamed; marked at the next start-up.
    Abandoned,
}

impl RunOutcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
            Self::Abandoned => "abandoned",
        }
    }

    /// Parses a stored or reported name (`success`, `error`, `cancelled`, `abandoned`).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "success" => Self::Success,
            "error" => Self::Error,
            "cancelled" => Self::Cancelled,
            "abandoned" => Self::Abandoned,
            _ => return None,
        })
    }
}

/// A run that started.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStart {
    /// Owner of the run (the caller).
    pub principal: PrincipalKey,
    /// The thread.
    pub thread_id: String,
    /// The run id.
    pub run_id: String,
    /// The agent that runs.
    pub agent: String,
    /// Where the credential came from (`header`, `header_raw`, `body`).
    pub credential_source: String,
    /// When (ms since the epoch).
    pub started_at: i64,
}

/// A run that ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    /// The thread.
    pub thread_id: String,
    /// The run id.
    pub run_id: String,
    /// When (ms since the epoch).
    pub ended_at: i64,
    /// How.
    pub outcome: RunOutcome,
    /// The `RUN_ERROR` code when `outcome` is `error`.
    pub error_code: Option<String>,
    /// Token usage as the model reported it (e.g. `{"input_tokens":..,"output_tokens":..}`).
    pub usage: Option<Value>,
}

/// A stored run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    /// The thread.
    pub thread_id: String,
    /// The run id.
    pub run_id: String,
    /// Owner of the run.
    pub issuer: String,
    /// Owner of the run.
    pub subject: String,
    /// The agent.
    pub agent: String,
    /// `header`, `header_raw`, `body`.
    pub credential_source: String,
    /// The server process that ran it.
    pub instance: String,
    /// ms since the epoch.
    pub started_at: i64,
    /// ms since the epoch; `None` while it streams.
    pub ended_at: Option<i64>,
    /// `None` while it streams.
    pub outcome: Option<RunOutcome>,
    /// The `RUN_ERROR` code.
    pub error_code: Option<String>,
    /// Token usage.
    pub usage: Option<Value>,
    /// Backend tool calls recorded for the run.
    pub tool_calls: i64,
}

/// What kind of audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// Authentication failures of one source, reason and issuer over one window (`detail.count`).
    AuthFailure,
    /// An authorization denial: scope, allowlist, thread ownership, agent access, limits.
    AccessDenied,
    /// An admin acted on a thread it does not own.
    AdminAccess,
    /// A run started.
    RunStarted,
    /// A run ended.
    RunEnded,
    /// A backend tool call, allowed or denied.
    ToolCall,
    /// `agui-server forget` removed one subject's data.
    Forget,
}

impl AuditKind {
    /// Every kind, for CLI help and validation.
    pub const ALL: [AuditKind; 7] = [
        Self::AuthFailure,
        Self::AccessDenied,
        Self::AdminAccess,
        Self::RunStarted,
        Self::RunEnded,
        Self::ToolCall,
        Self::Forget,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthFailure => "auth_failure",
            Self::AccessDenied => "access_denied",
            Self::AdminAccess => "admin_access",
            Self::RunStarted => "run_started",
            Self::RunEnded => "run_ended",
            Self::ToolCall => "tool_call",
            Self::Forget => "forget",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// One audit record: the format the store keeps and `agui-server audit` prints (one JSON object
/// per line). It carries issuer, subject and a token fingerprint (in `detail`), never a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Assigned by the store (increasing); absent before the record is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// When (ms since the epoch).
    pub at: i64,
    /// What happened.
    pub kind: AuditKind,
    /// The principal's issuer, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The principal's subject, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The thread, when the record is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// The run, when the record is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Kind-specific fields (a JSON object); see the README's audit record format.
    pub detail: Value,
}

impl AuditRecord {
    /// A record of `kind` at the current time with an empty `detail`.
    pub fn now(kind: AuditKind) -> Self {
        Self {
            id: None,
            at: now_ms(),
            kind,
            issuer: None,
            subject: None,
            thread_id: None,
            run_id: None,
            detail: Value::Object(Default::default()),
        }
    }

    /// Sets issuer and subject.
    pub fn principal(mut self, key: &PrincipalKey) -> Self {
        self.issuer = Some(key.issuer.clone());
        self.subject = Some(key.subject.clone());
        self
    }

    /// Sets the thread.
    pub fn thread(mut self, thread_id: impl Into<String>) -> Self {
        self.thread_id = Some(thread_id.into());
        self
    }

    /// Sets the run.
    pub fn run(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = Some(run_id.into());
        self
    }

    /// Sets `detail` (a JSON object).
    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
}

/// Which audit records to read; every set field must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    /// Only this subject.
    pub subject: Option<String>,
    /// Only this issuer.
    pub issuer: Option<String>,
    /// Only this thread.
    pub thread_id: Option<String>,
    /// Only these kinds (empty: all).
    pub kinds: Vec<AuditKind>,
    /// Only records at or after this time (ms since the epoch).
    pub since: Option<i64>,
    /// Only records before this time (ms since the epoch).
    pub until: Option<i64>,
    /// At most this many, oldest first (`None`: all).
    pub limit: Option<i64>,
}

/// One write the audit writer batches; a batch is applied in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Append an audit record.
    Audit(AuditRecord),
    /// Insert a run (ignored if `(thread_id, run_id)` exists) and touch its thread.
    RunStarted(RunStart),
    /// Close a run that is still open.
    RunEnded(RunEnd),
    /// Count one tool call on a run.
    ToolCall {
        /// The run id.
        run_id: String,
    },
}

/// A run to start on a thread its principal must own: see [`Store::commit`].
#[derive(Debug, Clone, PartialEq)]
pub struct StartRequest {
    /// The run.
    pub start: RunStart,
    /// Its `run_started` audit record.
    pub audit: AuditRecord,
}

/// What [`Store::forget_subject`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ForgetCounts {
    /// Threads deleted.
    pub threads: u64,
    /// Runs deleted.
    pub runs: u64,
    /// Audit records deleted.
    pub audit_records: u64,
}

/// The storage interface: one trait, two real backends ([`SqliteStore`], [`PgStore`]).
///
/// Every method is one short transaction; writes that happen per run go through
/// [`Store::write_batch`], which [`AuditLog`] calls with many operations at once (group commit).
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
    /// A backend should do it all in one transaction (the SQLite file store does, on its writer
    /// thread); the default is [`commit_one_by_one`].
    async fn commit(
        &self,
        starts: &[StartRequest],
        ops: &[WriteOp],
    ) -> Result<Vec<ThreadAccess>, StoreError> {
        commit_one_by_one(self, starts, ops).await
    }

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

    /// Deletes one subject's threads, runs and audit records (of one issuer, or of all issuers
    /// when `issuer` is `None`), in one transaction.
    async fn forget_subject(
        &self,
        issuer: Option<&str>,
        subject: &str,
    ) -> Result<ForgetCounts, StoreError>;
}

/// [`Store::commit`] from the other methods: claims one by one, then one batch for the owned
/// starts and `ops`.
///
/// # Errors
///
/// The first failing claim or the batch's error.
pub async fn commit_one_by_one<S: Store + ?Sized>(
    store: &S,
    starts: &[StartRequest],
    ops: &[WriteOp],
) -> Result<Vec<ThreadAccess>, StoreError> {
    let mut accesses = Vec::with_capacity(starts.len());
    let mut all = Vec::with_capacity(starts.len() * 2 + ops.len());
    for request in starts {
        let start = &request.start;
        let access = store
            .claim_thread(&start.principal, &start.thread_id, start.started_at)
            .await?;
        if matches!(access, ThreadAccess::Owner { .. }) {
            all.push(WriteOp::RunStarted(start.clone()));
            all.push(WriteOp::Audit(request.audit.clone()));
        }
        accesses.push(access);
    }
    all.extend_from_slice(ops);
    if !all.is_empty() {
        store.write_batch(&all).await?;
    }
    Ok(accesses)
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
