//! Stable codes for in-stream `RUN_ERROR` events.
//!
//! Once the SSE response has started, failures can only be reported in-stream. Each one carries a
//! stable `code` from this catalogue and a fixed, safe message: never the internal cause, which goes
//! to the log. The HTTP error codes (4xx/5xx before the stream) live in the server crate; both lists
//! are published in `proto-schemas/api/errors.json` and a test keeps them in step.

/// The reason a run ended with `RUN_ERROR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunErrorCode {
    /// The model provider failed (the scripted model's `/fail`, or a generic provider error).
    ModelError,
    /// The model provider refused our credentials (HTTP 401/403 from the provider).
    ModelUnauthorized,
    /// The model provider rate-limited us (HTTP 429) beyond the retries.
    ModelRateLimited,
    /// The model provider is down or unreachable (5xx, connection errors) beyond the retries.
    ModelUnavailable,
    /// The model provider sent a malformed stream, or stopped without `[DONE]`.
    ModelProtocolError,
    /// The model provider did not answer in time (connect, first byte, or between chunks).
    ModelTimeout,
    /// A backend tool panicked; the run cannot continue safely.
    ToolFailed,
    /// The run exceeded the server's maximum run duration.
    RunTimeout,
    /// The server is shutting down.
    ServerShutdown,
    /// An agent or tool tried to emit an event that would break the AG-UI sequence rules.
    ProtocolViolation,
    /// The model kept calling tools beyond the configured number of turns.
    MaxTurns,
    /// A deliberate stop, sent as `RUN_ERROR` to 0.0.x clients that cannot parse a cancelled outcome.
    Cancelled,
    /// In a thread's replay to 0.0.x clients: a run that was stopped on purpose. `abort` is the
    /// code `@ag-ui/client` itself gives a run its user aborted, which CopilotKit does not
    /// report as an error again on every reload.
    Abort,
    /// In a thread's replay: the server running this run stopped (crashed, killed) before the
    /// run ended, so its stored events end here.
    Abandoned,
    /// Anything else: a bug. The log has the cause.
    InternalError,
}

impl RunErrorCode {
    /// The code for a model failure, from the provider error's stable code.
    pub fn for_model_code(code: &str) -> Self {
        match code {
            "model_unauthorized" => Self::ModelUnauthorized,
            "model_rate_limited" => Self::ModelRateLimited,
            "model_unavailable" => Self::ModelUnavailable,
            "model_protocol_error" => Self::ModelProtocolError,
            "model_timeout" => Self::ModelTimeout,
            _ => Self::ModelError,
        }
    }

    /// Every code, for the catalogue test.
    pub const ALL: [RunErrorCode; 15] = [
        Self::ModelError,
        Self::ModelUnauthorized,
        Self::ModelRateLimited,
        Self::ModelUnavailable,
        Self::ModelProtocolError,
        Self::ModelTimeout,
        Self::ToolFailed,
        Self::RunTimeout,
        Self::ServerShutdown,
        Self::ProtocolViolation,
        Self::MaxTurns,
        Self::Cancelled,
        Self::Abort,
        Self::Abandoned,
        Self::InternalError,
    ];

    /// The wire value of `RUN_ERROR.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ModelError => "model_error",
            Self::ModelUnauthorized => "model_unauthorized",
            Self::ModelRateLimited => "model_rate_limited",
            Self::ModelUnavailable => "model_unavailable",
            Self::ModelProtocolError => "model_protocol_error",
            Self::ModelTimeout => "model_timeout",
            Self::ToolFailed => "tool_failed",
            Self::RunTimeout => "run_timeout",
            Self::ServerShutdown => "server_shutdown",
            Self::ProtocolViolation => "protocol_violation",
            Self::MaxTurns => "max_turns",
            Self::Cancelled => "cancelled",
            Self::Abort => "abort",
            Self::Abandoned => "abandoned",
            Self::InternalError => "internal_error",
        }
    }

    /// The fixed, safe `RUN_ERROR.message` shown to users.
    pub fn message(self) -> &'static str {
        match self {
            Self::ModelError => "The model failed to produce a reply.",
            Self::ModelUnauthorized => "The model provider refused the server's credentials.",
            Self::ModelRateLimited => {
                "The model provider is rate-limiting requests; try again shortly."
            }
            Self::ModelUnavailable => "The model provider is unavailable; try again shortly.",
            Self::ModelProtocolError => "The model provider sent an invalid response.",
            Self::ModelTimeout => "The model provider did not answer in time.",
            Self::ToolFailed => "A tool failed unexpectedly.",
            Self::RunTimeout => "The run took longer than the server allows.",
            Self::ServerShutdown => "The server is shutting down; please retry.",
            Self::ProtocolViolation => "The agent produced an invalid event sequence.",
            Self::MaxTurns => "The agent called tools too many times in one run.",
            Self::Cancelled => "The run was cancelled.",
            Self::Abort => "The run was stopped.",
            Self::Abandoned => "The server stopped before this run ended; its reply is cut here.",
            Self::InternalError => "An internal error ended the run.",
        }
    }
}
