//! The one interface the run loop records through: which tools were allowed or denied, and how
//! each run ended. The server's store implements it (its group-commit audit log); the run's
//! start is recorded by the server itself, durably, before the stream opens.
//!
//! Records never carry a token: the principal is identified by issuer and subject.

use serde::Serialize;

/// One audit record of a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditEvent {
    /// A run ended.
    RunEnded {
        /// Issuer of the principal's token.
        issuer: String,
        /// Subject of the principal.
        subject: String,
        /// The thread the run belongs to.
        thread_id: String,
        /// The run id.
        run_id: String,
        /// `success`, `error`, `cancelled`.
        outcome: &'static str,
        /// The `RUN_ERROR` code when `outcome` is `error`.
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<&'static str>,
    },
    /// A backend tool call was allowed or denied.
    ToolCall {
        /// Issuer of the principal's token.
        issuer: String,
        /// Subject of the principal.
        subject: String,
        /// The thread the run belongs to.
        thread_id: String,
        /// The run id.
        run_id: String,
        /// The tool's name.
        tool: String,
        /// `allowed` or `denied`.
        decision: &'static str,
        /// `ok`, `error`, `denied`, `panicked`.
        outcome: &'static str,
    },
}

/// Where audit records go.
pub trait AuditSink: Send + Sync + 'static {
    /// Records one event. Implementations must not block on I/O in the caller's task for long;
    /// batching is theirs to do.
    fn record(&self, event: AuditEvent);
}
