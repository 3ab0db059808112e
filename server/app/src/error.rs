//! HTTP errors before the stream: one enum, mapped to a status, a stable code and a safe message
//! in exactly one place ([`IntoResponse`]). The internal cause goes to the log, never to the
//! client. Every code is listed in `proto-schemas/api/errors.json`: the test
//! `tests/catalogue.rs` renders [`ApiError::catalogue_samples`], one value of every variant, so a
//! new variant fails to compile until it has a sample, and a sample whose code or status differs
//! from the catalogue fails the test.

use agui_auth::AuthError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A request refused before any stream byte.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not declared as JSON.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The body is not valid JSON.
    #[error("malformed JSON")]
    InvalidJson,
    /// The JSON is not a valid `RunAgentInput`.
    #[error("invalid input at {field:?}: {message}")]
    InvalidInput {
        /// JSON Pointer of the offending member (`/messages/0/role`); `""` (the root) when the
        /// body as a whole is wrong, e.g. not an object.
        field: String,
        /// What is wrong (names fields, never echoes values).
        message: String,
    },
    /// The body is larger than allowed.
    #[error("payload too large")]
    PayloadTooLarge,
    /// The request head (request line and header fields) is larger than allowed.
    #[error("request head too large")]
    HeadersTooLarge,
    /// A frontend tool has the name of one of the agent's backend tools.
    #[error("tool name conflict at {field}")]
    ToolNameConflict {
        /// JSON Pointer of the clashing name, `/tools/<i>/name`.
        field: String,
    },
    /// The request's `protocolVersion` has a major version this server does not speak.
    #[error("unsupported protocol version")]
    UnsupportedProtocolVersion,
    /// Authentication or authorization failed (RFC 6750).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The server is at its maximum of open streams.
    #[error("too many open streams")]
    ServerBusy,
    /// The server is shutting down and takes no new runs.
    #[error("shutting down")]
    ShuttingDown,
    /// `GET /readyz`: the server cannot take runs yet (or any more).
    #[error("not ready: {message}")]
    NotReady {
        /// Which precondition is missing (a fixed text).
        message: &'static str,
    },
    /// No route for this path.
    #[error("not found")]
    NotFound,
    /// No agent by that name.
    #[error("agent not found")]
    AgentNotFound,
    /// The request body could not be read (the upload broke off).
    #[error("body unreadable")]
    BodyUnreadable,
    /// The request body did not arrive within `limits.body_read_timeout_secs`, or arrived slower
    /// than `limits.min_body_bytes_per_sec` (the connection is closed).
    #[error("body read timed out")]
    BodyTimeout,
    /// The server-wide budget for buffered request bodies is spent (`server_busy`; the
    /// connection is closed, the rest of the body is not read).
    #[error("body buffer budget exhausted")]
    BodyBudgetExhausted,
    /// The route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The thread belongs to another principal (its existence is not revealed).
    #[error("thread not found")]
    ThreadNotFound,
    /// A per-principal limit (run rate or concurrent streams).
    #[error(transparent)]
    Limited(crate::limits::LimitExceeded),
    /// The limiter (Redis) cannot be asked; runs are refused rather than unlimited.
    #[error("limits unavailable")]
    LimitsUnavailable,
    /// The store cannot be reached; runs are refused rather than unrecorded.
    #[error("store unavailable")]
    StoreUnavailable,
    /// The audit log cannot write; runs are refused (`audit.fail_closed`).
    #[error("audit unavailable")]
    AuditUnavailable,
}

/// The JSON error body: `{"error": <code>, "message": <text>, "field"?: <pointer>}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// Stable code.
    pub error: &'a str,
    /// Safe, human text.
    pub message: &'a str,
    /// JSON Pointer of the offending input member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::InvalidJson
            | Self::InvalidInput { .. }
            | Self::ToolNameConflict { .. }
            | Self::UnsupportedProtocolVersion
            | Self::BodyUnreadable => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Auth(error) => error.status(),
            Self::ServerBusy
            | Self::BodyBudgetExhausted
            | Self::ShuttingDown
            | Self::NotReady { .. }
            | Self::LimitsUnavailable
            | Self::StoreUnavailable
            | Self::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound | Self::AgentNotFound | Self::ThreadNotFound => StatusCode::NOT_FOUND,
            Self::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::InvalidJson => "invalid_json",
            Self::InvalidInput { .. } => "invalid_input",
            Self::ToolNameConflict { .. } => "tool_name_conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::HeadersTooLarge => "headers_too_large",
            Self::UnsupportedProtocolVersion => "unsupported_protocol_version",
            Self::Auth(error) => error.code(),
            Self::ServerBusy | Self::BodyBudgetExhausted => "server_busy",
            Self::ShuttingDown => "shutting_down",
            Self::NotReady { .. } => "not_ready",
            Self::NotFound => "not_found",
            Self::AgentNotFound => "agent_not_found",
            Self::BodyUnreadable => "body_unreadable",
            Self::BodyTimeout => "body_timeout",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::ThreadNotFound => "thread_not_found",
            Self::Limited(exceeded) => exceeded.kind.code(),
            Self::LimitsUnavailable => "limits_unavailable",
            Self::StoreUnavailable => "store_unavailable",
            Self::AuditUnavailable => "audit_unavailable",
        }
    }

    /// The safe message.
    pub fn message(&self) -> &str {
        match self {
            Self::UnsupportedMediaType => {
                "The request body must be JSON (Content-Type: application/json)."
            }
            Self::InvalidJson => "The request body is not valid JSON.",
            Self::InvalidInput { message, .. } => message,
            Self::ToolNameConflict { .. } => {
                "A frontend tool has the name of one of this agent's backend tools; rename it."
            }
            Self::PayloadTooLarge => "The request body is larger than this server accepts.",
            Self::HeadersTooLarge => "The request headers are larger than this server accepts.",
            Self::UnsupportedProtocolVersion => {
                "This server speaks AG-UI 1.x (and 0.0.x clients that send no protocolVersion)."
            }
            Self::Auth(error) => error.message(),
            Self::ServerBusy => "The server has too many open streams; retry shortly.",
            Self::ShuttingDown => "The server is shutting down; retry on another instance.",
            Self::NotReady { message } => message,
            Self::NotFound => "No such endpoint.",
            Self::AgentNotFound => "No agent by that name.",
            Self::BodyUnreadable => "The request body could not be read completely.",
            Self::BodyTimeout => "The request body arrived too slowly; the connection is closed.",
            Self::BodyBudgetExhausted => {
                "The server is reading too many request bodies at once; retry shortly."
            }
            Self::MethodNotAllowed => "This endpoint does not accept that method.",
            Self::ThreadNotFound => "No such thread.",
            Self::Limited(exceeded) => match exceeded.kind {
                crate::limits::LimitKind::RunRate => {
                    "Too many runs started in a short time; retry after the Retry-After delay."
                }
                crate::limits::LimitKind::ConcurrentStreams => {
                    "Too many of your streams are open at once; close one or retry later."
                }
            },
            Self::LimitsUnavailable => "Usage limits cannot be checked right now; retry shortly.",
            Self::StoreUnavailable => "The server's store is unavailable; retry shortly.",
            Self::AuditUnavailable => {
                "The audit log cannot record this run right now; retry shortly."
            }
        }
    }

    /// One value of every variant (each limit kind, each auth code), for the catalogue test.
    ///
    /// The list and an exhaustive `match` are generated from the same entries, so adding a
    /// variant fails to compile until it has an entry here (never add a `_` entry), and each
    /// sample is checked to be of its entry's variant. The auth crate's enum is
    /// `#[non_exhaustive]`; its samples are compared with `AuthError::ALL_CODES` by the test.
    pub fn catalogue_samples() -> Vec<ApiError> {
        use crate::limits::{LimitExceeded, LimitKind};
        use agui_auth::{InvalidRequestReason, InvalidTokenReason};

        macro_rules! samples {
            ($($pattern:pat => [$($sample:expr),+ $(,)?]),+ $(,)?) => {{
                fn exhaustive(error: &ApiError) {
                    match error {
                        $($pattern => {})+
                    }
                }
                let mut all = Vec::new();
                $($(
                    let sample: ApiError = $sample;
                    assert!(
                        matches!(sample, $pattern),
                        "{sample:?} is listed under another variant"
                    );
                    exhaustive(&sample);
                    all.push(sample);
                )+)+
                all
            }};
        }

        let limited = |kind| LimitExceeded {
            kind,
            retry_after_secs: 3,
        };
        samples![
            ApiError::UnsupportedMediaType => [ApiError::UnsupportedMediaType],
            ApiError::InvalidJson => [ApiError::InvalidJson],
            ApiError::InvalidInput { .. } => [ApiError::InvalidInput {
                field: "/messages/0/role".into(),
                message: "unknown role".into(),
            }],
            ApiError::PayloadTooLarge => [ApiError::PayloadTooLarge],
            ApiError::HeadersTooLarge => [ApiError::HeadersTooLarge],
            ApiError::ToolNameConflict { .. } => [ApiError::ToolNameConflict {
                field: "/tools/0/name".into(),
            }],
            ApiError::UnsupportedProtocolVersion => [ApiError::UnsupportedProtocolVersion],
            ApiError::Auth(_) => [
                ApiError::Auth(AuthError::MissingCredentials),
                ApiError::Auth(AuthError::InvalidRequest {
                    reason: InvalidRequestReason::EmptyToken,
                }),
                ApiError::Auth(AuthError::InvalidToken {
                    reason: InvalidTokenReason::Malformed,
                }),
                ApiError::Auth(AuthError::InsufficientScope {
                    scope: "documents:write".into(),
                }),
                ApiError::Auth(AuthError::AccessDenied),
                ApiError::Auth(AuthError::IssuerUnavailable {
                    retry_after_secs: 5,
                }),
            ],
            ApiError::ServerBusy => [ApiError::ServerBusy],
            ApiError::ShuttingDown => [ApiError::ShuttingDown],
            ApiError::NotReady { .. } => [ApiError::NotReady {
                message: "No issuer has usable keys yet.",
            }],
            ApiError::NotFound => [ApiError::NotFound],
            ApiError::AgentNotFound => [ApiError::AgentNotFound],
            ApiError::BodyUnreadable => [ApiError::BodyUnreadable],
            ApiError::BodyTimeout => [ApiError::BodyTimeout],
            ApiError::BodyBudgetExhausted => [ApiError::BodyBudgetExhausted],
            ApiError::MethodNotAllowed => [ApiError::MethodNotAllowed],
            ApiError::ThreadNotFound => [ApiError::ThreadNotFound],
            ApiError::Limited(LimitExceeded {
                kind: LimitKind::RunRate,
                ..
            }) => [ApiError::Limited(limited(LimitKind::RunRate))],
            ApiError::Limited(LimitExceeded {
                kind: LimitKind::ConcurrentStreams,
                ..
            }) => [ApiError::Limited(limited(LimitKind::ConcurrentStreams))],
            ApiError::LimitsUnavailable => [ApiError::LimitsUnavailable],
            ApiError::StoreUnavailable => [ApiError::StoreUnavailable],
            ApiError::AuditUnavailable => [ApiError::AuditUnavailable],
        ]
    }

    /// Whether the answer closes the connection (`Connection: close`, which hyper honours): an
    /// unread oversized body or head is not worth reading to the end to reuse the connection, a
    /// body abandoned half-read (too slow, or over the buffer budgets) leaves the connection
    /// unusable, and a server shutting down takes no further request on it. The close lingers
    /// (`serve::linger`), so a client still sending reads the answer.
    fn closes_connection(&self) -> bool {
        matches!(
            self,
            Self::PayloadTooLarge
                | Self::HeadersTooLarge
                | Self::ShuttingDown
                | Self::BodyTimeout
                | Self::BodyBudgetExhausted
        )
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Auth(error) => error.retry_after(),
            Self::ServerBusy | Self::BodyBudgetExhausted => Some(1),
            Self::ShuttingDown
            | Self::LimitsUnavailable
            | Self::StoreUnavailable
            | Self::AuditUnavailable => Some(5),
            Self::Limited(exceeded) => Some(exceeded.retry_after_secs.max(1)),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let field = match &self {
            Self::InvalidInput { field, .. } => Some(field.as_str()),
            Self::ToolNameConflict { field } => Some(field.as_str()),
            _ => None,
        };
        let body = ErrorBody {
            error: self.code(),
            message: self.message(),
            field,
        };
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        if let Self::Auth(error) = &self
            && let Some(challenge) = error.www_authenticate()
        {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(seconds) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.closes_connection() {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}
