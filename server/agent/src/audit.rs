//! The one interface every feature records through: who ran what, which tools were allowed or
//! denied, and how each run ended. The store (a later piece) replaces [`LogAuditSink`] with durable
//! storage; callers do not change.
//!
//! Records never carry a token: the principal is identified by issuer, subject and a token
//! fingerprint (a short hash).

use std::time::SystemTime;

use serde::Serialize;

/// One audit record.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditEvent {
    /// A run started streaming.
    RunStarted {
        /// Issuer of the principal's token.
        issuer: String,
        /// Subject of the principal.
        subject: String,
        /// The thread the run belongs to.
        thread_id: String,
        /// The run id.
        run_id: String,
        /// The agent that ran.
        agent: String,
        /// Where the credential came from (`header`, `header_raw`, `body`).
        credential_source: &'static str,
    },
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
        /// Subject of the principal.
        subject: String,
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

/// Writes audit records to the log (target `agui::audit`), one structured line each.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogAuditSink;

impl AuditSink for LogAuditSink {
    fn record(&self, event: AuditEvent) {
        let at = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        match serde_json::to_string(&event) {
            Ok(json) => tracing::info!(target: "agui::audit", at, record = %json, "audit"),
            Err(error) => {
                tracing::error!(target: "agui::audit", %error, "audit record not serializable")
            }
        }
    }
}
