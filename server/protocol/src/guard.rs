//! The sequence guard: the server-side twin of the 1.0 client's `verifyEvents`.
//!
//! Sits in the event sink so the server cannot emit a stream the client would reject, even
//! when an agent or a tool misbehaves (STYLE.md "Modelling the protocol"). Rules, numbered
//! as in reference §4 and checked against `@ag-ui/client` 1.0.0 `src/verify/verify.ts`:
//!
//! 1. The first event is `RUN_STARTED` or `RUN_ERROR`.
//! 2. After `RUN_FINISHED` only `RUN_STARTED` (a new run) or `RUN_ERROR` (late failure).
//! 3. After `RUN_ERROR` only `RUN_STARTED`.
//! 4. No `RUN_STARTED` while a run is active; sequential runs are fine and reset all state.
//! 5. Text messages: no `START` on an open id; `CONTENT`/`END` only on an open id. A closed id
//!    may be opened again.
//! 6. Tool calls: the same for `TOOL_CALL_START`/`ARGS`/`END`. `TOOL_CALL_RESULT` is not
//!    checked against calls.
//! 7. Reasoning spans (`REASONING_START`/`END`) and reasoning messages
//!    (`REASONING_MESSAGE_START`/`CONTENT`/`END`) are tracked separately, same discipline.
//! 8. Steps: no `STEP_STARTED` for an active name (per owning subagent); `STEP_FINISHED` only
//!    for a started one, by the same owner.
//! 9. `RUN_FINISHED` only when no step, text message, reasoning message, reasoning span, tool
//!    call or subagent is open (checked in that order, like the client).
//! 10. `RUN_ERROR` is allowed at any time and ends whatever is open.
//! 11. Subagents: `SUBAGENT_STARTED` needs a fresh id (not active, not used earlier in the
//!     run) and a started parent; `SUBAGENT_FINISHED`/`ERROR` need an active subagent. An
//!     event naming a `subagentRunId` must agree with the owner recorded when its item (text
//!     message, tool call, reasoning, activity) was first opened; a tool call inherits its
//!     parent message's owner. (`subagentRunId: null` and bad outcome types, also rule 11 in
//!     the client, cannot be represented by these types.)
//! 12. Server-side strictness the client does not check: `RUN_FINISHED.threadId`/`runId` must
//!     equal those of the run's `RUN_STARTED` (the spec requires it, `run-input.mdx`).
//!
//! **Chunks** (reference §4 "Chunk expansion"). The client expands `*_CHUNK` events into
//! start/content/end before verifying; our server never emits chunks, so the guard applies a
//! simple rule that is *stricter* than the client's and therefore never lets through a stream
//! it would reject: every `TEXT_MESSAGE_CHUNK`/`REASONING_MESSAGE_CHUNK` carries `messageId`
//! and every `TOOL_CALL_CHUNK` carries `toolCallId` and `toolCallName` (the client requires
//! them on the first chunk only); a chunk may not name an item opened with the explicit
//! `*_START` form and still open; a chunk continuing the previous chunk's id must not change
//! `role`/`name`/`toolCallName`/`parentMessageId`; and a chunk obeys the owner rule of the
//! `START` it stands for. Chunk-opened items never block `RUN_FINISHED` (the client closes
//! them itself).
//!
//! **Chunk lanes.** The client assembles chunks in one *lane* per owner (the chunk's
//! `subagentRunId`, absent = the parent agent), and an explicit event closes only the stream of
//! its own lane (`transformChunks` in both 0.0.59 and 1.0.0). So a chunk-opened item stays open
//! while events of other owners pass, and an explicit `*_START` of the same id from another
//! owner would be a duplicate START to `verifyEvents`. The guard keeps the open chunk stream of
//! each lane and refuses such a START; a chunk continuing a stream must not name another owner
//! than the lane holding it. A lane's stream closes, as in the client, on a chunk of another
//! item in that lane, on any explicit text, tool, step, state, custom or reasoning event of that
//! owner, on the owner's `SUBAGENT_FINISHED`/`ERROR`, and on any run-level event or
//! `MESSAGES_SNAPSHOT`.
//!
//! Bookkeeping is cheap on the hot path: open items live in one small `Vec` in opening order
//! (typically 0–3 entries), scanned linearly; `CONTENT`/`ARGS` deltas allocate nothing.

use std::collections::{HashMap, HashSet};

use crate::events::{Event, EventType, ReasoningEncryptedValueSubtype, TextRole};
use crate::ids::{MessageId, RunId, ThreadId, ToolCallId};
use crate::input::Message;

/// Who owns an item: `None` is the parent agent, `Some(id)` a subagent run.
type Owner = Option<String>;

/// What kind of item is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    ToolCall,
    ReasoningMessage,
    ReasoningSpan,
    Step,
    Subagent,
}

#[derive(Debug, Clone)]
struct OpenEntry {
    kind: Kind,
    id: String,
    owner: Owner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing sent yet.
    Fresh,
    /// Between `RUN_STARTED` and its terminal event.
    Active,
    /// `RUN_FINISHED` sent.
    Finished,
    /// `RUN_ERROR` sent.
    Errored,
}

/// The last chunk of one lane, to catch a continuation that changes its opener's fields.
#[derive(Debug, Clone, Default)]
struct ChunkLane {
    id: String,
    role: Option<TextRole>,
    name: Option<String>,
    parent: Option<MessageId>,
}

/// Items open at this moment, each list in opening order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenItems {
    /// Open text messages.
    pub text_messages: Vec<MessageId>,
    /// Open tool calls.
    pub tool_calls: Vec<ToolCallId>,
    /// Open reasoning messages.
    pub reasoning_messages: Vec<MessageId>,
    /// Open reasoning spans.
    pub reasoning_spans: Vec<MessageId>,
    /// Active step names.
    pub steps: Vec<String>,
    /// Active subagent run ids.
    pub subagents: Vec<String>,
}

impl OpenItems {
    /// True when nothing is open.
    pub fn is_empty(&self) -> bool {
        self.text_messages.is_empty()
            && self.tool_calls.is_empty()
            && self.reasoning_messages.is_empty()
            && self.reasoning_spans.is_empty()
            && self.steps.is_empty()
            && self.subagents.is_empty()
    }
}

/// A broken sequence rule. Messages are stable and name the rule (reference §4 numbering).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// Rule 1.
    #[error("rule 1: the first event must be RUN_STARTED or RUN_ERROR, not {0}")]
    FirstEventNotRunStarted(EventType),
    /// Rule 2.
    #[error(
        "rule 2: cannot send {0}: the run has already finished with RUN_FINISHED; start a new run with RUN_STARTED"
    )]
    AfterRunFinished(EventType),
    /// Rule 3.
    #[error(
        "rule 3: cannot send {0}: the run has already errored with RUN_ERROR; no further events can be sent"
    )]
    AfterRunError(EventType),
    /// Rule 4.
    #[error("rule 4: cannot send RUN_STARTED while a run is still active")]
    RunAlreadyActive,
    /// Rule 5.
    #[error("rule 5: cannot send {event}: a text message with id '{id}' is already in progress")]
    TextMessageAlreadyActive {
        /// The offending event.
        event: EventType,
        /// The message id.
        id: String,
    },
    /// Rule 5.
    #[error("rule 5: cannot send {event}: no active text message with id '{id}'")]
    TextMessageNotActive {
        /// The offending event.
        event: EventType,
        /// The message id.
        id: String,
    },
    /// Rule 6.
    #[error("rule 6: cannot send {event}: a tool call with id '{id}' is already in progress")]
    ToolCallAlreadyActive {
        /// The offending event.
        event: EventType,
        /// The tool call id.
        id: String,
    },
    /// Rule 6.
    #[error("rule 6: cannot send {event}: no active tool call with id '{id}'")]
    ToolCallNotActive {
        /// The offending event.
        event: EventType,
        /// The tool call id.
        id: String,
    },
    /// Rule 7.
    #[error(
        "rule 7: cannot send REASONING_START: a reasoning span with id '{0}' is already in progress"
    )]
    ReasoningSpanAlreadyActive(String),
    /// Rule 7.
    #[error("rule 7: cannot send REASONING_END: no active reasoning span with id '{0}'")]
    ReasoningSpanNotActive(String),
    /// Rule 7.
    #[error(
        "rule 7: cannot send {event}: a reasoning message with id '{id}' is already in progress"
    )]
    ReasoningMessageAlreadyActive {
        /// The offending event.
        event: EventType,
        /// The reasoning message id.
        id: String,
    },
    /// Rule 7.
    #[error("rule 7: cannot send {event}: no active reasoning message with id '{id}'")]
    ReasoningMessageNotActive {
        /// The offending event.
        event: EventType,
        /// The reasoning message id.
        id: String,
    },
    /// Rule 8.
    #[error("rule 8: step \"{0}\" is already active for STEP_STARTED")]
    StepAlreadyActive(String),
    /// Rule 8.
    #[error("rule 8: cannot send STEP_FINISHED for step \"{0}\" that was not started")]
    StepNotStarted(String),
    /// Rule 8.
    #[error(
        "rule 8: cannot send STEP_FINISHED for step \"{0}\": it is open under another owner; a step must be finished by whoever started it"
    )]
    StepOwnedByOther(String),
    /// Rule 9.
    #[error("rule 9: cannot send RUN_FINISHED while {kind} are still active: {ids}")]
    RunFinishedWithOpenItems {
        /// `steps`, `text messages`, `reasoning messages`, `reasoning spans`, `tool calls` or
        /// `subagents`.
        kind: &'static str,
        /// The open ids, comma separated.
        ids: String,
    },
    /// Rule 11.
    #[error(
        "rule 11: cannot send {event}: subagentRunId '{tag}' does not match the owner of {entity} '{id}' ({owner})"
    )]
    OwnerMismatch {
        /// The offending event.
        event: EventType,
        /// The event's `subagentRunId`.
        tag: String,
        /// `message`, `tool call`, `reasoning message` or `activity`.
        entity: &'static str,
        /// The entity's id.
        id: String,
        /// The recorded owner (`the parent agent` or `subagent 'x'`).
        owner: String,
    },
    /// Rule 11.
    #[error("rule 11: cannot send SUBAGENT_STARTED: subagent '{0}' is already active")]
    SubagentAlreadyActive(String),
    /// Rule 11.
    #[error(
        "rule 11: cannot send SUBAGENT_STARTED: subagent '{0}' already finished in this run; subagent ids cannot be reused"
    )]
    SubagentReused(String),
    /// Rule 11.
    #[error(
        "rule 11: cannot send SUBAGENT_STARTED: parentSubagentRunId '{0}' has not been started in this run"
    )]
    SubagentParentNotStarted(String),
    /// Rule 11.
    #[error("rule 11: cannot send {event}: no active subagent with id '{id}'")]
    SubagentNotActive {
        /// The offending event.
        event: EventType,
        /// The subagent run id.
        id: String,
    },
    /// Rule 12 (server-side strictness).
    #[error("rule 12: RUN_FINISHED must carry the threadId and runId of its RUN_STARTED")]
    RunIdsMismatch,
    /// Chunk rule: every chunk must carry its ids.
    #[error("chunk rule: every {event} must carry {field}")]
    ChunkMissingField {
        /// The offending event.
        event: EventType,
        /// The missing member.
        field: &'static str,
    },
    /// Chunk rule: a chunk may not continue an item opened in explicit form.
    #[error("chunk rule: {event} names '{id}', which is open in the explicit START form")]
    ChunkOnExplicitItem {
        /// The offending event.
        event: EventType,
        /// The item id.
        id: String,
    },
    /// Chunk rule: a continuation may not change its opener's fields.
    #[error("chunk rule: {event} for '{id}' changes {field} from the first chunk")]
    ChunkConflict {
        /// The offending event.
        event: EventType,
        /// The item id.
        id: String,
        /// The changed member.
        field: &'static str,
    },
}

impl Violation {
    /// The rule number of reference §4 (12 for ours, 0 for the chunk rules).
    pub fn rule(&self) -> u8 {
        match self {
            Violation::FirstEventNotRunStarted(_) => 1,
            Violation::AfterRunFinished(_) => 2,
            Violation::AfterRunError(_) => 3,
            Violation::RunAlreadyActive => 4,
            Violation::TextMessageAlreadyActive { .. } | Violation::TextMessageNotActive { .. } => {
                5
            }
            Violation::ToolCallAlreadyActive { .. } | Violation::ToolCallNotActive { .. } => 6,
            Violation::ReasoningSpanAlreadyActive(_)
            | Violation::ReasoningSpanNotActive(_)
            | Violation::ReasoningMessageAlreadyActive { .. }
            | Violation::ReasoningMessageNotActive { .. } => 7,
            Violation::StepAlreadyActive(_)
            | Violation::StepNotStarted(_)
            | Violation::StepOwnedByOther(_) => 8,
            Violation::RunFinishedWithOpenItems { .. } => 9,
            Violation::OwnerMismatch { .. }
            | Violation::SubagentAlreadyActive(_)
            | Violation::SubagentReused(_)
            | Violation::SubagentParentNotStarted(_)
            | Violation::SubagentNotActive { .. } => 11,
            Violation::RunIdsMismatch => 12,
            Violation::ChunkMissingField { .. }
            | Violation::ChunkOnExplicitItem { .. }
            | Violation::ChunkConflict { .. } => 0,
        }
    }
}

/// Owner maps of one run: who first opened each id (rule 11).
#[derive(Debug, Default)]
struct Owners {
    message: HashMap<String, Owner>,
    tool_call: HashMap<String, Owner>,
    activity: HashMap<String, Owner>,
    reasoning: HashMap<String, Owner>,
}

/// Checks every event of one response stream against the AG-UI sequence rules.
///
/// One guard per response stream (one or more sequential runs). [`SequenceGuard::check`]
/// validates an event and, only when it is valid, records its effect.
#[derive(Debug)]
pub struct SequenceGuard {
    phase: Phase,
    run_ids: Option<(ThreadId, RunId)>,
    open: Vec<OpenEntry>,
    owners: Owners,
    closed_subagents: HashSet<String>,
    text_lane: Option<ChunkLane>,
    tool_lane: Option<ChunkLane>,
    reasoning_lane: Option<ChunkLane>,
    /// The stream each chunk lane is assembling, at most one per owner (see "Chunk lanes").
    chunk_streams: Vec<ChunkStream>,
}

/// The item a chunk lane holds open in the client's `transformChunks`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ChunkStream {
    kind: Kind,
    id: String,
    lane: Owner,
}

impl Default for SequenceGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl SequenceGuard {
    /// A guard for a stream where nothing has been sent yet.
    pub fn new() -> Self {
        Self {
            phase: Phase::Fresh,
            run_ids: None,
            open: Vec::new(),
            owners: Owners::default(),
            closed_subagents: HashSet::new(),
            text_lane: None,
            tool_lane: None,
            reasoning_lane: None,
            chunk_streams: Vec::new(),
        }
    }

    /// True between `RUN_STARTED` and the run's terminal event.
    pub fn run_active(&self) -> bool {
        self.phase == Phase::Active
    }

    /// True when a terminal event (`RUN_FINISHED` or `RUN_ERROR`) was sent for the current
    /// run.
    pub fn finished(&self) -> bool {
        matches!(self.phase, Phase::Finished | Phase::Errored)
    }

    /// The items open right now, each kind in opening order. Empty after `RUN_ERROR`.
    pub fn open_items(&self) -> OpenItems {
        let mut items = OpenItems::default();
        for entry in &self.open {
            let id = entry.id.clone();
            match entry.kind {
                Kind::Text => items.text_messages.push(MessageId::from(id)),
                Kind::ToolCall => items.tool_calls.push(ToolCallId::from(id)),
                Kind::ReasoningMessage => items.reasoning_messages.push(MessageId::from(id)),
                Kind::ReasoningSpan => items.reasoning_spans.push(MessageId::from(id)),
                Kind::Step => items.steps.push(id),
                Kind::Subagent => items.subagents.push(id),
            }
        }
        items
    }

    /// Checks `event` against the rules; when it passes, records its effect.
    ///
    /// # Errors
    ///
    /// The [`Violation`] of the first rule the event breaks; the guard's state is then
    /// unchanged, so the caller may send something else instead (e.g. a `RUN_ERROR`).
    pub fn check(&mut self, event: &Event) -> Result<(), Violation> {
        let ty = event.event_type();
        self.check_lifecycle(ty)?;
        match event {
            Event::RunStarted(e) => {
                self.reset_run();
                self.phase = Phase::Active;
                self.run_ids = Some((e.thread_id.clone(), e.run_id.clone()));
                if let Some(input) = &e.input {
                    self.seed_owners(&input.messages, false);
                }
                Ok(())
            }
            Event::RunFinished(e) => self.run_finished(&e.thread_id, &e.run_id),
            Event::RunError(_) => {
                // Rule 10: RUN_ERROR ends whatever is open.
                self.phase = Phase::Errored;
                self.open.clear();
                self.clear_lanes();
                Ok(())
            }
            Event::MessagesSnapshot(e) => {
                self.seed_owners(&e.messages, true);
                // The client closes every chunk lane on a snapshot.
                self.chunk_streams.clear();
                Ok(())
            }
            _ => {
                self.check_chunk_lanes(event, ty)?;
                self.check_item(event, ty)?;
                self.advance_chunk_lanes(event);
                Ok(())
            }
        }
    }

    /// The chunk-lane rules (module docs, "Chunk lanes"), without changing anything.
    fn check_chunk_lanes(&self, event: &Event, ty: EventType) -> Result<(), Violation> {
        let tag = event.subagent_run_id();
        if let Some((kind, id)) = chunk_item(event) {
            // A chunk naming an open stream continues it in the lane that holds it; naming
            // another owner there is refused by the client.
            if let Some(held) = self.chunk_stream(kind, id)
                && tag.is_some()
                && held.lane.as_deref() != tag
            {
                return Err(Violation::ChunkConflict {
                    event: ty,
                    id: id.to_owned(),
                    field: "subagentRunId",
                });
            }
            return Ok(());
        }
        let opened = match event {
            Event::TextMessageStart(e) => Some((Kind::Text, e.message_id.as_str())),
            Event::ToolCallStart(e) => Some((Kind::ToolCall, e.tool_call_id.as_str())),
            Event::ReasoningMessageStart(e) => {
                Some((Kind::ReasoningMessage, e.message_id.as_str()))
            }
            _ => None,
        };
        // The START closes its own lane first; a stream of the same id in another lane stays
        // open, so to the client this START is a duplicate.
        if let Some((kind, id)) = opened
            && let Some(held) = self.chunk_stream(kind, id)
            && held.lane.as_deref() != tag
        {
            return Err(already_active(kind, ty, id));
        }
        Ok(())
    }

    /// Records what an accepted event does to the chunk lanes.
    fn advance_chunk_lanes(&mut self, event: &Event) {
        let tag = event.subagent_run_id().map(str::to_owned);
        if let Some((kind, id)) = chunk_item(event) {
            if self.chunk_stream(kind, id).is_some() {
                return; // a continuation
            }
            // A new stream in the chunk's own lane, replacing whatever that lane held.
            self.chunk_streams.retain(|stream| stream.lane != tag);
            self.chunk_streams.push(ChunkStream {
                kind,
                id: id.to_owned(),
                lane: tag,
            });
            return;
        }
        match event {
            Event::SubagentFinished(e) => self.close_lane(Some(&e.subagent_run_id)),
            Event::SubagentError(e) => self.close_lane(Some(&e.subagent_run_id)),
            Event::Raw(_)
            | Event::ActivitySnapshot(_)
            | Event::ActivityDelta(_)
            | Event::ReasoningEncryptedValue(_)
            | Event::SubagentStarted(_) => {}
            _ => self.close_lane(tag.as_ref()),
        }
    }

    fn close_lane(&mut self, lane: Option<&String>) {
        self.chunk_streams
            .retain(|stream| stream.lane.as_ref() != lane);
    }

    fn chunk_stream(&self, kind: Kind, id: &str) -> Option<&ChunkStream> {
        self.chunk_streams
            .iter()
            .find(|stream| stream.kind == kind && stream.id == id)
    }

    /// Rules 1–4: what the run's phase allows.
    fn check_lifecycle(&self, ty: EventType) -> Result<(), Violation> {
        match (self.phase, ty) {
            (Phase::Fresh, EventType::RunStarted | EventType::RunError) => Ok(()),
            (Phase::Fresh, _) => Err(Violation::FirstEventNotRunStarted(ty)),
            (Phase::Errored, EventType::RunStarted) => Ok(()),
            (Phase::Errored, _) => Err(Violation::AfterRunError(ty)),
            (Phase::Finished, EventType::RunStarted | EventType::RunError) => Ok(()),
            (Phase::Finished, _) => Err(Violation::AfterRunFinished(ty)),
            (Phase::Active, EventType::RunStarted) => Err(Violation::RunAlreadyActive),
            (Phase::Active, _) => Ok(()),
        }
    }

    fn reset_run(&mut self) {
        self.run_ids = None;
        self.open.clear();
        self.owners = Owners::default();
        self.closed_subagents.clear();
        self.clear_lanes();
    }

    fn clear_lanes(&mut self) {
        self.text_lane = None;
        self.tool_lane = None;
        self.reasoning_lane = None;
        self.chunk_streams.clear();
    }

    /// Rules 9 and 12.
    fn run_finished(&mut self, thread_id: &ThreadId, run_id: &RunId) -> Result<(), Violation> {
        // Same order as the client's checks, so the same first complaint is reported.
        for (kind, label) in [
            (Kind::Step, "steps"),
            (Kind::Text, "text messages"),
            (Kind::ReasoningMessage, "reasoning messages"),
            (Kind::ReasoningSpan, "reasoning spans"),
            (Kind::ToolCall, "tool calls"),
            (Kind::Subagent, "subagents"),
        ] {
            let ids: Vec<&str> = self
                .open
                .iter()
                .filter(|entry| entry.kind == kind)
                .map(|entry| entry.id.as_str())
                .collect();
            if !ids.is_empty() {
                return Err(Violation::RunFinishedWithOpenItems {
                    kind: label,
                    ids: ids.join(", "),
                });
            }
        }
        match &self.run_ids {
            Some((thread, run)) if thread == thread_id && run == run_id => {}
            // A RUN_FINISHED with no RUN_STARTED is already refused by rules 1–3.
            _ => return Err(Violation::RunIdsMismatch),
        }
        self.phase = Phase::Finished;
        self.clear_lanes();
        Ok(())
    }

    /// Rules 5–8, 11 and the chunk rules, for events inside an active run.
    fn check_item(&mut self, event: &Event, ty: EventType) -> Result<(), Violation> {
        let tag = event.subagent_run_id();
        match event {
            Event::TextMessageStart(e) => self.open_item(Kind::Text, &e.message_id, tag, ty),
            Event::TextMessageContent(e) => {
                self.continue_item(Kind::Text, &e.message_id, tag, ty, false)
            }
            Event::TextMessageEnd(e) => {
                self.continue_item(Kind::Text, &e.message_id, tag, ty, true)
            }
            Event::ToolCallStart(e) => self.tool_call_start(
                &e.tool_call_id,
                e.parent_message_id.as_ref().map(|id| id.as_str()),
                tag,
            ),
            Event::ToolCallArgs(e) => {
                self.continue_item(Kind::ToolCall, &e.tool_call_id, tag, ty, false)
            }
            Event::ToolCallEnd(e) => {
                self.continue_item(Kind::ToolCall, &e.tool_call_id, tag, ty, true)
            }
            Event::ReasoningStart(e) => self.open_item(Kind::ReasoningSpan, &e.message_id, tag, ty),
            Event::ReasoningEnd(e) => {
                self.continue_item(Kind::ReasoningSpan, &e.message_id, tag, ty, true)
            }
            Event::ReasoningMessageStart(e) => {
                self.open_item(Kind::ReasoningMessage, &e.message_id, tag, ty)
            }
            Event::ReasoningMessageContent(e) => {
                self.continue_item(Kind::ReasoningMessage, &e.message_id, tag, ty, false)
            }
            Event::ReasoningMessageEnd(e) => {
                self.continue_item(Kind::ReasoningMessage, &e.message_id, tag, ty, true)
            }
            Event::StepStarted(e) => self.step_started(&e.step_name, tag),
            Event::StepFinished(e) => self.step_finished(&e.step_name, tag),
            Event::ToolCallResult(e) => {
                // Not checked against calls (rule 6); it mints a message owned by its tag.
                self.owners
                    .message
                    .insert(e.message_id.as_str().to_owned(), tag.map(str::to_owned));
                Ok(())
            }
            Event::ActivitySnapshot(e) => {
                let known = self.owners.activity.contains_key(e.message_id.as_str());
                if !known || e.replace != Some(false) {
                    self.owners
                        .activity
                        .insert(e.message_id.as_str().to_owned(), tag.map(str::to_owned));
                }
                Ok(())
            }
            Event::ActivityDelta(e) => {
                let owner = self.owners.activity.get(e.message_id.as_str());
                owner_check(ty, tag, owner, "activity", &e.message_id)
            }
            Event::ReasoningEncryptedValue(e) => {
                let (owner, entity) = match e.subtype {
                    ReasoningEncryptedValueSubtype::ToolCall => {
                        (self.owners.tool_call.get(&e.entity_id), "tool call")
                    }
                    ReasoningEncryptedValueSubtype::Message => (
                        self.owners
                            .message
                            .get(&e.entity_id)
                            .or_else(|| self.owners.reasoning.get(&e.entity_id)),
                        "message",
                    ),
                };
                owner_check(ty, tag, owner, entity, &e.entity_id)
            }
            Event::SubagentStarted(e) => {
                self.subagent_started(&e.subagent_run_id, e.parent_subagent_run_id.as_deref())
            }
            Event::SubagentFinished(e) => self.subagent_ended(&e.subagent_run_id, ty),
            Event::SubagentError(e) => self.subagent_ended(&e.subagent_run_id, ty),
            Event::TextMessageChunk(_)
            | Event::ToolCallChunk(_)
            | Event::ReasoningMessageChunk(_) => self.chunk(event, ty, tag),
            // STATE_*, RAW, CUSTOM: no sequence rule.
            _ => Ok(()),
        }
    }

    fn find_open(&self, kind: Kind, id: &str) -> Option<usize> {
        self.open
            .iter()
            .position(|entry| entry.kind == kind && entry.id == id)
    }

    fn owner_map(&self, kind: Kind) -> &HashMap<String, Owner> {
        match kind {
            Kind::ToolCall => &self.owners.tool_call,
            Kind::ReasoningMessage | Kind::ReasoningSpan => &self.owners.reasoning,
            _ => &self.owners.message,
        }
    }

    fn owner_map_mut(&mut self, kind: Kind) -> &mut HashMap<String, Owner> {
        match kind {
            Kind::ToolCall => &mut self.owners.tool_call,
            Kind::ReasoningMessage | Kind::ReasoningSpan => &mut self.owners.reasoning,
            _ => &mut self.owners.message,
        }
    }

    /// `*_START` of a text message, reasoning message or reasoning span.
    fn open_item(
        &mut self,
        kind: Kind,
        id: &str,
        tag: Option<&str>,
        ty: EventType,
    ) -> Result<(), Violation> {
        if self.find_open(kind, id).is_some() {
            return Err(already_active(kind, ty, id));
        }
        let existing = self.owner_map(kind).get(id);
        owner_check(ty, tag, existing, entity_name(kind), id)?;
        let owner = match existing {
            Some(owner) => owner.clone(),
            None => {
                let owner = tag.map(str::to_owned);
                self.owner_map_mut(kind)
                    .insert(id.to_owned(), owner.clone());
                owner
            }
        };
        self.open.push(OpenEntry {
            kind,
            id: id.to_owned(),
            owner,
        });
        Ok(())
    }

    /// `*_CONTENT`/`*_ARGS` (`close == false`) or `*_END` (`close == true`).
    fn continue_item(
        &mut self,
        kind: Kind,
        id: &str,
        tag: Option<&str>,
        ty: EventType,
        close: bool,
    ) -> Result<(), Violation> {
        let Some(index) = self.find_open(kind, id) else {
            return Err(not_active(kind, ty, id));
        };
        owner_check(
            ty,
            tag,
            Some(&self.open[index].owner),
            entity_name(kind),
            id,
        )?;
        if close {
            self.open.remove(index);
        }
        Ok(())
    }

    /// `TOOL_CALL_START`: rule 6 plus the parent-message owner rules of rule 11.
    fn tool_call_start(
        &mut self,
        id: &str,
        parent: Option<&str>,
        tag: Option<&str>,
    ) -> Result<(), Violation> {
        let ty = EventType::ToolCallStart;
        if self.find_open(Kind::ToolCall, id).is_some() {
            return Err(already_active(Kind::ToolCall, ty, id));
        }
        let inherited: Option<Owner> = self.inherited_owner(parent, tag)?.cloned();
        let existing = self.owners.tool_call.get(id);
        if let Some(existing) = existing {
            owner_check(ty, tag, Some(existing), "tool call", id)?;
            // An untagged call inherits its parent message's owner, which must then agree
            // with the owner the call already has.
            if tag.is_none()
                && let Some(inherited) = &inherited
                && inherited != existing
            {
                return Err(mismatch(
                    ty,
                    inherited.as_deref().unwrap_or(PARENT),
                    "tool call",
                    id,
                    existing,
                ));
            }
        }
        let owner = match existing {
            Some(owner) => owner.clone(),
            None => {
                let owner = match (tag, inherited) {
                    (Some(tag), _) => Some(tag.to_owned()),
                    (None, Some(inherited)) => inherited,
                    (None, None) => None,
                };
                self.owners.tool_call.insert(id.to_owned(), owner.clone());
                owner
            }
        };
        self.open.push(OpenEntry {
            kind: Kind::ToolCall,
            id: id.to_owned(),
            owner,
        });
        Ok(())
    }

    /// The owner a tool call inherits from its parent message, checking the event's tag
    /// against it.
    fn inherited_owner(
        &self,
        parent: Option<&str>,
        tag: Option<&str>,
    ) -> Result<Option<&Owner>, Violation> {
        let Some(parent) = parent else {
            return Ok(None);
        };
        let Some(parent_owner) = self.owners.message.get(parent) else {
            return Ok(None);
        };
        if let Some(tag) = tag
            && parent_owner.as_deref() != Some(tag)
        {
            return Err(mismatch(
                EventType::ToolCallStart,
                tag,
                "message",
                parent,
                parent_owner,
            ));
        }
        Ok(Some(parent_owner))
    }

    /// Rule 8: steps are keyed by (owner, name).
    fn step_started(&mut self, name: &str, tag: Option<&str>) -> Result<(), Violation> {
        if self.find_step(name, tag).is_some() {
            return Err(Violation::StepAlreadyActive(name.to_owned()));
        }
        self.open.push(OpenEntry {
            kind: Kind::Step,
            id: name.to_owned(),
            owner: tag.map(str::to_owned),
        });
        Ok(())
    }

    fn step_finished(&mut self, name: &str, tag: Option<&str>) -> Result<(), Violation> {
        match self.find_step(name, tag) {
            Some(index) => {
                self.open.remove(index);
                Ok(())
            }
            None if self.find_open(Kind::Step, name).is_some() => {
                Err(Violation::StepOwnedByOther(name.to_owned()))
            }
            None => Err(Violation::StepNotStarted(name.to_owned())),
        }
    }

    fn find_step(&self, name: &str, tag: Option<&str>) -> Option<usize> {
        self.open.iter().position(|entry| {
            entry.kind == Kind::Step && entry.id == name && entry.owner.as_deref() == tag
        })
    }

    /// Rule 11: `SUBAGENT_STARTED`.
    fn subagent_started(&mut self, id: &str, parent: Option<&str>) -> Result<(), Violation> {
        if self.find_open(Kind::Subagent, id).is_some() {
            return Err(Violation::SubagentAlreadyActive(id.to_owned()));
        }
        if self.closed_subagents.contains(id) {
            return Err(Violation::SubagentReused(id.to_owned()));
        }
        if let Some(parent) = parent
            && self.find_open(Kind::Subagent, parent).is_none()
            && !self.closed_subagents.contains(parent)
        {
            return Err(Violation::SubagentParentNotStarted(parent.to_owned()));
        }
        self.open.push(OpenEntry {
            kind: Kind::Subagent,
            id: id.to_owned(),
            owner: None,
        });
        Ok(())
    }

    /// Rule 11: `SUBAGENT_FINISHED` / `SUBAGENT_ERROR`.
    fn subagent_ended(&mut self, id: &str, ty: EventType) -> Result<(), Violation> {
        let Some(index) = self.find_open(Kind::Subagent, id) else {
            return Err(Violation::SubagentNotActive {
                event: ty,
                id: id.to_owned(),
            });
        };
        self.open.remove(index);
        self.closed_subagents.insert(id.to_owned());
        Ok(())
    }

    /// Owner seeding from `RUN_STARTED.input.messages` (not authoritative: keeps what is
    /// known) and `MESSAGES_SNAPSHOT` (authoritative: overwrites), as the client does.
    fn seed_owners(&mut self, messages: &[Message], authoritative: bool) {
        for message in messages {
            let (map, owner, tool_calls) = match message {
                Message::Reasoning(m) => (&mut self.owners.reasoning, &m.subagent_run_id, None),
                Message::Activity(m) => (&mut self.owners.activity, &m.subagent_run_id, None),
                Message::Assistant(m) => (
                    &mut self.owners.message,
                    &m.subagent_run_id,
                    m.tool_calls.as_ref(),
                ),
                Message::Developer(m) => (&mut self.owners.message, &m.subagent_run_id, None),
                Message::System(m) => (&mut self.owners.message, &m.subagent_run_id, None),
                Message::User(m) => (&mut self.owners.message, &m.subagent_run_id, None),
                Message::Tool(m) => (&mut self.owners.message, &m.subagent_run_id, None),
            };
            let id = message.id().as_str();
            if authoritative || !map.contains_key(id) {
                map.insert(id.to_owned(), owner.clone());
            }
            for call in tool_calls.into_iter().flatten() {
                if authoritative || !self.owners.tool_call.contains_key(call.id.as_str()) {
                    self.owners
                        .tool_call
                        .insert(call.id.as_str().to_owned(), owner.clone());
                }
            }
        }
    }

    /// The chunk rules (see the module docs).
    fn chunk(&mut self, event: &Event, ty: EventType, tag: Option<&str>) -> Result<(), Violation> {
        let (kind, lane_id, lane) = match event {
            Event::TextMessageChunk(e) => {
                let id = e.message_id.as_ref().ok_or(Violation::ChunkMissingField {
                    event: ty,
                    field: "messageId",
                })?;
                (
                    Kind::Text,
                    id.as_str(),
                    ChunkLane {
                        id: id.as_str().to_owned(),
                        role: e.role,
                        name: e.name.clone(),
                        parent: None,
                    },
                )
            }
            Event::ToolCallChunk(e) => {
                let id = e
                    .tool_call_id
                    .as_ref()
                    .ok_or(Violation::ChunkMissingField {
                        event: ty,
                        field: "toolCallId",
                    })?;
                let name = e
                    .tool_call_name
                    .as_ref()
                    .ok_or(Violation::ChunkMissingField {
                        event: ty,
                        field: "toolCallName",
                    })?;
                (
                    Kind::ToolCall,
                    id.as_str(),
                    ChunkLane {
                        id: id.as_str().to_owned(),
                        role: None,
                        name: Some(name.clone()),
                        parent: e.parent_message_id.clone(),
                    },
                )
            }
            Event::ReasoningMessageChunk(e) => {
                let id = e.message_id.as_ref().ok_or(Violation::ChunkMissingField {
                    event: ty,
                    field: "messageId",
                })?;
                (
                    Kind::ReasoningMessage,
                    id.as_str(),
                    ChunkLane {
                        id: id.as_str().to_owned(),
                        ..ChunkLane::default()
                    },
                )
            }
            _ => return Ok(()),
        };
        if self.find_open(kind, lane_id).is_some() {
            return Err(Violation::ChunkOnExplicitItem {
                event: ty,
                id: lane_id.to_owned(),
            });
        }
        let previous = match kind {
            Kind::Text => &self.text_lane,
            Kind::ToolCall => &self.tool_lane,
            _ => &self.reasoning_lane,
        };
        if let Some(previous) = previous.as_ref().filter(|p| p.id == lane.id) {
            let conflict = |field| Violation::ChunkConflict {
                event: ty,
                id: lane.id.clone(),
                field,
            };
            if lane.role.is_some() && previous.role.is_some() && lane.role != previous.role {
                return Err(conflict("role"));
            }
            if kind == Kind::Text
                && lane.name.is_some()
                && previous.name.is_some()
                && lane.name != previous.name
            {
                return Err(conflict("name"));
            }
            if kind == Kind::ToolCall && lane.name != previous.name {
                return Err(conflict("toolCallName"));
            }
            if lane.parent.is_some() && previous.parent.is_some() && lane.parent != previous.parent
            {
                return Err(conflict("parentMessageId"));
            }
        }
        // The chunk stands for a START: apply that START's owner rule and record the owner.
        let existing = self.owner_map(kind).get(lane_id);
        owner_check(ty, tag, existing, entity_name(kind), lane_id)?;
        if existing.is_none() {
            self.owner_map_mut(kind)
                .insert(lane.id.clone(), tag.map(str::to_owned));
        }
        let slot = match kind {
            Kind::Text => &mut self.text_lane,
            Kind::ToolCall => &mut self.tool_lane,
            _ => &mut self.reasoning_lane,
        };
        // Keep the first chunk's fields when a continuation omits them.
        match slot {
            Some(previous) if previous.id == lane.id => {
                previous.role = previous.role.or(lane.role);
                if previous.name.is_none() {
                    previous.name = lane.name;
                }
                if previous.parent.is_none() {
                    previous.parent = lane.parent;
                }
            }
            _ => *slot = Some(lane),
        }
        Ok(())
    }
}

/// The kind and id a chunk names (`None` for other events, and for a chunk without its id,
/// which the chunk rules refuse).
fn chunk_item(event: &Event) -> Option<(Kind, &str)> {
    match event {
        Event::TextMessageChunk(e) => Some((Kind::Text, e.message_id.as_deref()?)),
        Event::ToolCallChunk(e) => Some((Kind::ToolCall, e.tool_call_id.as_deref()?)),
        Event::ReasoningMessageChunk(e) => Some((Kind::ReasoningMessage, e.message_id.as_deref()?)),
        _ => None,
    }
}

const PARENT: &str = "the parent agent";

fn entity_name(kind: Kind) -> &'static str {
    match kind {
        Kind::ToolCall => "tool call",
        Kind::ReasoningMessage | Kind::ReasoningSpan => "reasoning message",
        _ => "message",
    }
}

fn describe_owner(owner: &Owner) -> String {
    match owner {
        Some(id) => format!("subagent '{id}'"),
        None => PARENT.to_owned(),
    }
}

fn mismatch(
    event: EventType,
    tag: &str,
    entity: &'static str,
    id: &str,
    owner: &Owner,
) -> Violation {
    Violation::OwnerMismatch {
        event,
        tag: tag.to_owned(),
        entity,
        id: id.to_owned(),
        owner: describe_owner(owner),
    }
}

/// Rule 11: an event that names a subagent must agree with the item's recorded owner. An
/// event without a tag is never in conflict (the client's `subagentTagError`).
fn owner_check(
    event: EventType,
    tag: Option<&str>,
    owner: Option<&Owner>,
    entity: &'static str,
    id: &str,
) -> Result<(), Violation> {
    match (tag, owner) {
        (Some(tag), Some(owner)) if owner.as_deref() != Some(tag) => {
            Err(mismatch(event, tag, entity, id, owner))
        }
        _ => Ok(()),
    }
}

fn already_active(kind: Kind, event: EventType, id: &str) -> Violation {
    let id = id.to_owned();
    match kind {
        Kind::Text => Violation::TextMessageAlreadyActive { event, id },
        Kind::ToolCall => Violation::ToolCallAlreadyActive { event, id },
        Kind::ReasoningSpan => Violation::ReasoningSpanAlreadyActive(id),
        _ => Violation::ReasoningMessageAlreadyActive { event, id },
    }
}

fn not_active(kind: Kind, event: EventType, id: &str) -> Violation {
    let id = id.to_owned();
    match kind {
        Kind::Text => Violation::TextMessageNotActive { event, id },
        Kind::ToolCall => Violation::ToolCallNotActive { event, id },
        Kind::ReasoningSpan => Violation::ReasoningSpanNotActive(id),
        _ => Violation::ReasoningMessageNotActive { event, id },
    }
}

#[cfg(test)]
mod tests;
