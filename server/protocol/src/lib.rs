//! AG-UI 1.0 protocol for agui-server: types, encoders, dialects and the sequence guard.
//!
//! This crate knows nothing of HTTP, async or auth (DESIGN.md "Crates"): it turns
//! [`Event`]s into bytes, request bodies into a validated [`RunAgentInput`], and decides what a
//! client can read. Facts come from `shared/reference/agui-1.0.md` (cited as "reference §N").
//!
//! # Layout
//!
//! - [`events`]: the 31 events ([`Event`], [`EventType`], [`BaseEvent`]) and their sub-types
//!   (outcomes, interrupts, token usage, JSON Patch operations).
//! - [`input`]: [`RunAgentInput`], [`Message`] and friends, and [`parse_run_input`], which
//!   validates a body and points at the offending member.
//! - [`content`]: content parts shared by messages and tool results.
//! - [`ids`]: the id newtypes ([`ThreadId`], [`RunId`], [`MessageId`], [`ToolCallId`]) and
//!   the bound on ids a client sends ([`check_id`], [`MAX_ID_BYTES`]).
//! - [`sse`]: `data: <json>\n\n` framing and the keep-alive comment.
//! - [`accept`]: `Accept` negotiation between SSE and protobuf.
//! - [`dialect`]: AG-UI 1.0 vs the 0.0.x clients CopilotKit ships; the one place that decides
//!   ([`Dialect`], and [`DialectAdapter`] for a whole stream).
//! - [`guard`]: [`SequenceGuard`], the server-side twin of the client's `verifyEvents`.
//!
//! A typical sink: `guard.check(&event)?`, then `adapter.adapt(event)` (a [`DialectAdapter`]),
//! then [`sse::encode_into`] (or the protobuf encoder).

pub mod accept;
pub mod content;
pub mod dialect;
pub mod events;
pub mod guard;
pub mod ids;
pub mod input;
mod input_error;
pub mod proto;
pub mod sse;

pub use accept::{Encoding, PROTO_MEDIA_TYPE};
pub use content::*;
pub use dialect::{Dialect, DialectAdapter, PROTOCOL_VERSION, UnsupportedProtocolVersion};
pub use events::*;
pub use guard::{OpenItems, SequenceGuard, Violation};
pub use ids::*;
pub use input::*;
