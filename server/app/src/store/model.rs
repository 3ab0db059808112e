//! The store's data: who owns a thread, runs, audit records, and the writes the audit log
//! batches. Plain values; every backend reads and writes exactly these.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::now_ms;

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
    /// The start of its first user message, when its first run had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The agent of its most recent run (none before its first run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
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
    /// The thread's title, should this run create the thread.
    pub title: Option<String>,
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

    /// An `access_denied` record: who, why (`reason`), the token's fingerprint, and the
    /// reason's own fields (`extra`, a JSON object).
    pub fn denial(
        key: &PrincipalKey,
        reason: &str,
        token_fingerprint: Option<&str>,
        extra: Value,
    ) -> Self {
        let mut detail =
            serde_json::json!({ "reason": reason, "token_fingerprint": token_fingerprint });
        if let (Some(detail), Value::Object(extra)) = (detail.as_object_mut(), extra) {
            detail.extend(extra);
        }
        Self::now(AuditKind::AccessDenied)
            .principal(key)
            .detail(detail)
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
    /// Append one chunk of a run's history.
    History(HistoryChunk),
    /// Keep only the newest `keep_runs` runs of the thread's history (the per-thread cap).
    TrimHistory {
        /// The thread.
        thread_id: String,
        /// How many runs' history to keep.
        keep_runs: u32,
    },
    /// Count one backend tool call on a run. Runs are keyed by thread and run id together:
    /// run ids are chosen by clients, and another user's thread may reuse one.
    ToolCall {
        /// The run's thread.
        thread_id: String,
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
    /// Chunks of the subject's threads' history deleted.
    pub history_chunks: u64,
}

/// One chunk of a run's stored history: the events it streamed in one batch window, compacted
/// (a reply's deltas joined into one content event), as a JSON array.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryChunk {
    /// The thread.
    pub thread_id: String,
    /// The run.
    pub run_id: String,
    /// The chunk's number within its run, from 0.
    pub chunk: i64,
    /// When the run started (ms since the epoch): replay orders runs by it.
    pub started_at: i64,
    /// When the chunk was written.
    pub at: i64,
    /// The events, a JSON array (what the client saw, after its dialect).
    pub events: String,
}

/// What a `connect` reads of a thread in one statement ([`super::Store::thread_replay`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThreadReplay {
    /// The thread's owner (`None`: no such thread).
    pub owner: Option<PrincipalKey>,
    /// Its stored history in replay order (runs by start, chunks by number); empty when the
    /// reader may not read it.
    pub chunks: Vec<ReplayChunk>,
    /// Its runs with no recorded end, by start; empty when the reader may not read it.
    pub open: Vec<OpenRun>,
}

/// One stored history chunk as a replay reads it (its thread is the one asked for).
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayChunk {
    /// The run.
    pub run_id: String,
    /// The chunk's number within its run, from 0.
    pub chunk: i64,
    /// When the run started.
    pub started_at: i64,
    /// The events, a JSON array.
    pub events: String,
}

/// A run of a thread that has not ended (or whose end is not recorded yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRun {
    /// The run id.
    pub run_id: String,
    /// The server process running it.
    pub instance: String,
    /// When it started.
    pub started_at: i64,
    /// That process's last heartbeat, if it ever wrote one.
    pub heartbeat_at: Option<i64>,
}

/// What one replica tells the others through the store (PostgreSQL `LISTEN/NOTIFY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// New history chunks of this run were committed.
    History {
        /// The thread.
        thread_id: String,
        /// The run.
        run_id: String,
    },
    /// Someone asked to stop this thread's run (`run_id`), or every run of the thread.
    Stop {
        /// The thread.
        thread_id: String,
        /// The run, or `None` for the whole thread.
        run_id: Option<String>,
    },
}
