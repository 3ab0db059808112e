//! Every rule, accepted and rejected: each negative has a positive control next to it.

use super::*;
use crate::events::*;
use crate::input::{AssistantMessage, RunAgentInput, ToolCall, UserMessage};

fn started() -> Event {
    RunStarted::new("t", "r").into()
}

fn finished() -> Event {
    RunFinished::new("t", "r").into()
}

fn error() -> Event {
    RunError::new("boom").into()
}

/// Runs `events` through a fresh guard; all must pass.
fn accept(events: &[Event]) -> SequenceGuard {
    let mut guard = SequenceGuard::new();
    for (i, event) in events.iter().enumerate() {
        if let Err(v) = guard.check(event) {
            panic!("event {i} ({}) rejected: {v}", event.event_type());
        }
    }
    guard
}

/// Runs `prefix` (all must pass), then expects `last` to be refused with `expected`, and the
/// guard's state to be unchanged by the refusal.
fn reject(prefix: &[Event], last: Event, expected: Violation) {
    let mut guard = accept(prefix);
    let before = guard.open_items();
    let phase = guard.phase;
    assert_eq!(guard.check(&last), Err(expected));
    assert_eq!(
        guard.open_items(),
        before,
        "a refused event must not change state"
    );
    assert_eq!(guard.phase, phase);
}

fn tagged(mut event: Event, subagent: &str) -> Event {
    let tag = Some(subagent.to_owned());
    match &mut event {
        Event::TextMessageStart(e) => e.subagent_run_id = tag,
        Event::TextMessageContent(e) => e.subagent_run_id = tag,
        Event::TextMessageEnd(e) => e.subagent_run_id = tag,
        Event::TextMessageChunk(e) => e.subagent_run_id = tag,
        Event::ToolCallStart(e) => e.subagent_run_id = tag,
        Event::ToolCallArgs(e) => e.subagent_run_id = tag,
        Event::ToolCallEnd(e) => e.subagent_run_id = tag,
        Event::ToolCallResult(e) => e.subagent_run_id = tag,
        Event::ReasoningStart(e) => e.subagent_run_id = tag,
        Event::ReasoningEnd(e) => e.subagent_run_id = tag,
        Event::ReasoningMessageStart(e) => e.subagent_run_id = tag,
        Event::ReasoningMessageContent(e) => e.subagent_run_id = tag,
        Event::ReasoningEncryptedValue(e) => e.subagent_run_id = tag,
        Event::ReasoningMessageChunk(e) => e.subagent_run_id = tag,
        Event::ToolCallChunk(e) => e.subagent_run_id = tag,
        Event::StepStarted(e) => e.subagent_run_id = tag,
        Event::StepFinished(e) => e.subagent_run_id = tag,
        Event::ActivitySnapshot(e) => e.subagent_run_id = tag,
        Event::ActivityDelta(e) => e.subagent_run_id = tag,
        other => panic!("tagged() does not handle {}", other.event_type()),
    }
    event
}

fn text_start(id: &str) -> Event {
    TextMessageStart::new(id).into()
}
fn text_content(id: &str) -> Event {
    TextMessageContent::new(id, "x").into()
}
fn text_end(id: &str) -> Event {
    TextMessageEnd::new(id).into()
}
fn tool_start(id: &str) -> Event {
    ToolCallStart::new(id, "search").into()
}
fn tool_args(id: &str) -> Event {
    ToolCallArgs::new(id, "{}").into()
}
fn tool_end(id: &str) -> Event {
    ToolCallEnd::new(id).into()
}

// ---- Rules 1–4: run lifecycle -------------------------------------------------------------

#[test]
fn rule1_first_event_must_start_the_run() {
    accept(&[started()]);
    accept(&[error()]);
    let mut guard = SequenceGuard::new();
    assert_eq!(
        guard.check(&text_start("m")),
        Err(Violation::FirstEventNotRunStarted(
            EventType::TextMessageStart
        ))
    );
    assert_eq!(
        guard.check(&finished()),
        Err(Violation::FirstEventNotRunStarted(EventType::RunFinished))
    );
    assert!(!guard.run_active());
    assert!(!guard.finished());
}

#[test]
fn rule2_after_run_finished_only_a_new_run_or_a_late_error() {
    let guard = accept(&[started(), finished(), error()]);
    assert!(guard.finished());
    accept(&[started(), finished(), started(), finished()]);
    reject(
        &[started(), finished()],
        Custom::new("c", serde_json::Value::Bool(true)).into(),
        Violation::AfterRunFinished(EventType::Custom),
    );
    reject(
        &[started(), finished()],
        finished(),
        Violation::AfterRunFinished(EventType::RunFinished),
    );
}

#[test]
fn rule3_after_run_error_only_a_new_run() {
    let guard = accept(&[started(), error(), started()]);
    assert!(guard.run_active());
    accept(&[error(), started(), finished()]);
    reject(
        &[started(), error()],
        error(),
        Violation::AfterRunError(EventType::RunError),
    );
    reject(
        &[started(), error()],
        text_start("m"),
        Violation::AfterRunError(EventType::TextMessageStart),
    );
    reject(
        &[started(), finished(), error()],
        finished(),
        Violation::AfterRunError(EventType::RunFinished),
    );
}

#[test]
fn rule4_no_nested_run() {
    accept(&[started(), finished(), started()]);
    reject(&[started()], started(), Violation::RunAlreadyActive);
}

#[test]
fn sequential_runs_reset_state() {
    // The same ids may be reused by the next run, and an item left open by an errored run
    // does not leak into the next one.
    let guard = accept(&[
        started(),
        text_start("m"),
        error(),
        started(),
        text_start("m"),
        text_end("m"),
        finished(),
    ]);
    assert!(guard.open_items().is_empty());
}

#[test]
fn run_active_and_finished_track_the_phase() {
    let mut guard = SequenceGuard::new();
    assert!(!guard.run_active() && !guard.finished());
    guard.check(&started()).unwrap();
    assert!(guard.run_active() && !guard.finished());
    guard.check(&finished()).unwrap();
    assert!(!guard.run_active() && guard.finished());
    guard.check(&error()).unwrap();
    assert!(!guard.run_active() && guard.finished());
}

// ---- Rules 5–7: items -----------------------------------------------------------------------

#[test]
fn rule5_text_messages() {
    accept(&[
        started(),
        text_start("m"),
        text_content("m"),
        text_end("m"),
        finished(),
    ]);
    // A closed id may be opened again.
    accept(&[
        started(),
        text_start("m"),
        text_end("m"),
        text_start("m"),
        text_end("m"),
    ]);
    // Two messages may be open at once.
    accept(&[
        started(),
        text_start("a"),
        text_start("b"),
        text_end("a"),
        text_end("b"),
    ]);
    reject(
        &[started(), text_start("m")],
        text_start("m"),
        Violation::TextMessageAlreadyActive {
            event: EventType::TextMessageStart,
            id: "m".into(),
        },
    );
    reject(
        &[started()],
        text_content("m"),
        Violation::TextMessageNotActive {
            event: EventType::TextMessageContent,
            id: "m".into(),
        },
    );
    reject(
        &[started(), text_start("m"), text_end("m")],
        text_end("m"),
        Violation::TextMessageNotActive {
            event: EventType::TextMessageEnd,
            id: "m".into(),
        },
    );
}

#[test]
fn rule6_tool_calls() {
    accept(&[
        started(),
        tool_start("c"),
        tool_args("c"),
        tool_end("c"),
        finished(),
    ]);
    accept(&[
        started(),
        tool_start("c"),
        tool_end("c"),
        tool_start("c"),
        tool_end("c"),
    ]);
    reject(
        &[started(), tool_start("c")],
        tool_start("c"),
        Violation::ToolCallAlreadyActive {
            event: EventType::ToolCallStart,
            id: "c".into(),
        },
    );
    reject(
        &[started()],
        tool_args("c"),
        Violation::ToolCallNotActive {
            event: EventType::ToolCallArgs,
            id: "c".into(),
        },
    );
    reject(
        &[started()],
        tool_end("c"),
        Violation::ToolCallNotActive {
            event: EventType::ToolCallEnd,
            id: "c".into(),
        },
    );
}

#[test]
fn rule6_tool_call_result_is_not_checked_against_calls() {
    // Neither for an unknown call nor for a call still open.
    accept(&[
        started(),
        ToolCallResult::new("tm", "never-started", "r").into(),
    ]);
    accept(&[
        started(),
        tool_start("c"),
        ToolCallResult::new("tm", "c", "r").into(),
        tool_end("c"),
        finished(),
    ]);
}

#[test]
fn rule7_reasoning_spans_and_messages_are_tracked_separately() {
    // The same id may be both a span and a message.
    accept(&[
        started(),
        ReasoningStart::new("r").into(),
        ReasoningMessageStart::new("r").into(),
        ReasoningMessageContent::new("r", "hm").into(),
        ReasoningMessageEnd::new("r").into(),
        ReasoningEnd::new("r").into(),
        finished(),
    ]);
    reject(
        &[started(), ReasoningStart::new("r").into()],
        ReasoningStart::new("r").into(),
        Violation::ReasoningSpanAlreadyActive("r".into()),
    );
    reject(
        &[started()],
        ReasoningEnd::new("r").into(),
        Violation::ReasoningSpanNotActive("r".into()),
    );
    reject(
        &[started(), ReasoningMessageStart::new("r").into()],
        ReasoningMessageStart::new("r").into(),
        Violation::ReasoningMessageAlreadyActive {
            event: EventType::ReasoningMessageStart,
            id: "r".into(),
        },
    );
    // A span does not make a message active.
    reject(
        &[started(), ReasoningStart::new("r").into()],
        ReasoningMessageContent::new("r", "x").into(),
        Violation::ReasoningMessageNotActive {
            event: EventType::ReasoningMessageContent,
            id: "r".into(),
        },
    );
    reject(
        &[started()],
        ReasoningMessageEnd::new("r").into(),
        Violation::ReasoningMessageNotActive {
            event: EventType::ReasoningMessageEnd,
            id: "r".into(),
        },
    );
}

// ---- Rule 8: steps --------------------------------------------------------------------------

#[test]
fn rule8_steps() {
    accept(&[
        started(),
        StepStarted::new("plan").into(),
        StepFinished::new("plan").into(),
        StepStarted::new("plan").into(),
        StepFinished::new("plan").into(),
        finished(),
    ]);
    reject(
        &[started(), StepStarted::new("plan").into()],
        StepStarted::new("plan").into(),
        Violation::StepAlreadyActive("plan".into()),
    );
    reject(
        &[started()],
        StepFinished::new("plan").into(),
        Violation::StepNotStarted("plan".into()),
    );
}

#[test]
fn rule8_steps_belong_to_their_owner() {
    // The same name may be active under two owners at once.
    accept(&[
        started(),
        StepStarted::new("plan").into(),
        tagged(StepStarted::new("plan").into(), "s1"),
        tagged(StepFinished::new("plan").into(), "s1"),
        StepFinished::new("plan").into(),
    ]);
    reject(
        &[started(), StepStarted::new("plan").into()],
        tagged(StepFinished::new("plan").into(), "s1"),
        Violation::StepOwnedByOther("plan".into()),
    );
}

// ---- Rules 9 and 10: what may be open at the end -------------------------------------------

#[test]
fn rule9_run_finished_needs_everything_closed() {
    let cases: Vec<(Event, &str, &str)> = vec![
        (StepStarted::new("s").into(), "steps", "s"),
        (text_start("m"), "text messages", "m"),
        (
            ReasoningMessageStart::new("rm").into(),
            "reasoning messages",
            "rm",
        ),
        (ReasoningStart::new("rs").into(), "reasoning spans", "rs"),
        (tool_start("c"), "tool calls", "c"),
        (
            SubagentStarted::new("sa", "helper").into(),
            "subagents",
            "sa",
        ),
    ];
    for (opener, kind, ids) in cases {
        reject(
            &[started(), opener],
            finished(),
            Violation::RunFinishedWithOpenItems {
                kind,
                ids: ids.into(),
            },
        );
    }
    // Positive control: all of them opened and closed.
    accept(&[
        started(),
        StepStarted::new("s").into(),
        text_start("m"),
        text_end("m"),
        ReasoningMessageStart::new("rm").into(),
        ReasoningMessageEnd::new("rm").into(),
        ReasoningStart::new("rs").into(),
        ReasoningEnd::new("rs").into(),
        tool_start("c"),
        tool_end("c"),
        SubagentStarted::new("sa", "helper").into(),
        SubagentFinished::new("sa").into(),
        StepFinished::new("s").into(),
        finished(),
    ]);
}

#[test]
fn rule9_reports_steps_first_and_lists_ids_in_opening_order() {
    reject(
        &[
            started(),
            tool_start("c2"),
            tool_start("c1"),
            StepStarted::new("s").into(),
        ],
        finished(),
        Violation::RunFinishedWithOpenItems {
            kind: "steps",
            ids: "s".into(),
        },
    );
    reject(
        &[started(), tool_start("c2"), tool_start("c1")],
        finished(),
        Violation::RunFinishedWithOpenItems {
            kind: "tool calls",
            ids: "c2, c1".into(),
        },
    );
}

#[test]
fn rule10_run_error_ends_everything_open() {
    let mut guard = accept(&[
        started(),
        text_start("m"),
        tool_start("c"),
        StepStarted::new("s").into(),
        SubagentStarted::new("sa", "n").into(),
    ]);
    assert!(!guard.open_items().is_empty());
    guard.check(&error()).unwrap();
    assert!(guard.open_items().is_empty());
    assert!(guard.finished());
}

#[test]
fn open_items_lists_each_kind_in_opening_order() {
    let guard = accept(&[
        started(),
        text_start("m2"),
        text_start("m1"),
        tool_start("c1"),
        ReasoningStart::new("rs").into(),
        ReasoningMessageStart::new("rm").into(),
        StepStarted::new("step").into(),
        SubagentStarted::new("sa", "n").into(),
        text_end("m2"),
    ]);
    assert_eq!(
        guard.open_items(),
        OpenItems {
            text_messages: vec!["m1".into()],
            tool_calls: vec!["c1".into()],
            reasoning_messages: vec!["rm".into()],
            reasoning_spans: vec!["rs".into()],
            steps: vec!["step".into()],
            subagents: vec!["sa".into()],
        }
    );
}

// ---- Rule 11: subagents ---------------------------------------------------------------------

#[test]
fn rule11_subagent_lifecycle() {
    let mut child = SubagentStarted::new("s2", "child");
    child.parent_subagent_run_id = Some("s1".into());
    accept(&[
        started(),
        SubagentStarted::new("s1", "parent").into(),
        child.clone().into(),
        SubagentError::new("s2", "failed").into(),
        SubagentFinished::new("s1").into(),
        finished(),
    ]);
    // A finished parent still counts as started.
    accept(&[
        started(),
        SubagentStarted::new("s1", "parent").into(),
        SubagentFinished::new("s1").into(),
        child.clone().into(),
    ]);
    reject(
        &[started()],
        child.into(),
        Violation::SubagentParentNotStarted("s1".into()),
    );
    reject(
        &[started(), SubagentStarted::new("s1", "n").into()],
        SubagentStarted::new("s1", "n").into(),
        Violation::SubagentAlreadyActive("s1".into()),
    );
    reject(
        &[
            started(),
            SubagentStarted::new("s1", "n").into(),
            SubagentFinished::new("s1").into(),
        ],
        SubagentStarted::new("s1", "n").into(),
        Violation::SubagentReused("s1".into()),
    );
    reject(
        &[started()],
        SubagentFinished::new("s1").into(),
        Violation::SubagentNotActive {
            event: EventType::SubagentFinished,
            id: "s1".into(),
        },
    );
    reject(
        &[
            started(),
            SubagentStarted::new("s1", "n").into(),
            SubagentFinished::new("s1").into(),
        ],
        SubagentError::new("s1", "late").into(),
        Violation::SubagentNotActive {
            event: EventType::SubagentError,
            id: "s1".into(),
        },
    );
    // Subagent ids are per run: the next run may reuse them.
    accept(&[
        started(),
        SubagentStarted::new("s1", "n").into(),
        SubagentFinished::new("s1").into(),
        finished(),
        started(),
        SubagentStarted::new("s1", "n").into(),
    ]);
}

fn owner_mismatch(
    event: EventType,
    tag: &str,
    entity: &'static str,
    id: &str,
    owner: &str,
) -> Violation {
    Violation::OwnerMismatch {
        event,
        tag: tag.into(),
        entity,
        id: id.into(),
        owner: owner.into(),
    }
}

#[test]
fn rule11_continuations_agree_with_the_opener() {
    // Same tag, or no tag at all, is fine.
    accept(&[
        started(),
        tagged(text_start("m"), "s1"),
        tagged(text_content("m"), "s1"),
        text_content("m"),
        tagged(text_end("m"), "s1"),
    ]);
    reject(
        &[started(), tagged(text_start("m"), "s1")],
        tagged(text_content("m"), "s2"),
        owner_mismatch(
            EventType::TextMessageContent,
            "s2",
            "message",
            "m",
            "subagent 's1'",
        ),
    );
    reject(
        &[started(), text_start("m")],
        tagged(text_end("m"), "s2"),
        owner_mismatch(
            EventType::TextMessageEnd,
            "s2",
            "message",
            "m",
            "the parent agent",
        ),
    );
    reject(
        &[started(), tagged(tool_start("c"), "s1")],
        tagged(tool_args("c"), "s2"),
        owner_mismatch(
            EventType::ToolCallArgs,
            "s2",
            "tool call",
            "c",
            "subagent 's1'",
        ),
    );
    reject(
        &[
            started(),
            tagged(ReasoningMessageStart::new("r").into(), "s1"),
        ],
        tagged(ReasoningMessageContent::new("r", "x").into(), "s2"),
        owner_mismatch(
            EventType::ReasoningMessageContent,
            "s2",
            "reasoning message",
            "r",
            "subagent 's1'",
        ),
    );
    reject(
        &[started(), ReasoningStart::new("r").into()],
        tagged(ReasoningEnd::new("r").into(), "s2"),
        owner_mismatch(
            EventType::ReasoningEnd,
            "s2",
            "reasoning message",
            "r",
            "the parent agent",
        ),
    );
}

#[test]
fn rule11_owner_outlives_the_item_within_a_run() {
    // Reopening a closed message under another subagent is refused; under the same one it
    // is fine.
    let prefix = [started(), tagged(text_start("m"), "s1"), text_end("m")];
    let mut ok = prefix.to_vec();
    ok.push(tagged(text_start("m"), "s1"));
    accept(&ok);
    reject(
        &prefix,
        tagged(text_start("m"), "s2"),
        owner_mismatch(
            EventType::TextMessageStart,
            "s2",
            "message",
            "m",
            "subagent 's1'",
        ),
    );
}

#[test]
fn rule11_tool_call_inherits_its_parent_messages_owner() {
    let mut call = ToolCallStart::new("c", "search");
    call.parent_message_id = Some("m".into());
    let call: Event = call.into();
    accept(&[
        started(),
        tagged(text_start("m"), "s1"),
        tagged(call.clone(), "s1"),
    ]);
    // Untagged: inherits s1, so a later s2-tagged ARGS is refused.
    reject(
        &[started(), tagged(text_start("m"), "s1"), call.clone()],
        tagged(tool_args("c"), "s2"),
        owner_mismatch(
            EventType::ToolCallArgs,
            "s2",
            "tool call",
            "c",
            "subagent 's1'",
        ),
    );
    reject(
        &[started(), tagged(text_start("m"), "s1")],
        tagged(call.clone(), "s2"),
        owner_mismatch(
            EventType::ToolCallStart,
            "s2",
            "message",
            "m",
            "subagent 's1'",
        ),
    );
    // A call first owned by the parent agent cannot be reopened under an s1 message.
    reject(
        &[
            started(),
            tool_start("c"),
            tool_end("c"),
            tagged(text_start("m"), "s1"),
        ],
        call,
        owner_mismatch(
            EventType::ToolCallStart,
            "s1",
            "tool call",
            "c",
            "the parent agent",
        ),
    );
}

#[test]
fn rule11_encrypted_values_and_activity_deltas_are_ownership_checked() {
    let enc =
        |subtype, id: &str| -> Event { ReasoningEncryptedValue::new(subtype, id, "xyz").into() };
    accept(&[
        started(),
        tagged(tool_start("c"), "s1"),
        tagged(enc(ReasoningEncryptedValueSubtype::ToolCall, "c"), "s1"),
        // Unknown entities are not checked.
        tagged(
            enc(ReasoningEncryptedValueSubtype::Message, "unknown"),
            "s9",
        ),
    ]);
    reject(
        &[started(), tagged(tool_start("c"), "s1")],
        tagged(enc(ReasoningEncryptedValueSubtype::ToolCall, "c"), "s2"),
        owner_mismatch(
            EventType::ReasoningEncryptedValue,
            "s2",
            "tool call",
            "c",
            "subagent 's1'",
        ),
    );
    reject(
        &[
            started(),
            tagged(ReasoningMessageStart::new("r").into(), "s1"),
        ],
        tagged(enc(ReasoningEncryptedValueSubtype::Message, "r"), "s2"),
        owner_mismatch(
            EventType::ReasoningEncryptedValue,
            "s2",
            "message",
            "r",
            "subagent 's1'",
        ),
    );
    let snapshot: Event = ActivitySnapshot::new("a", "plan", serde_json::Map::new()).into();
    let delta: Event = ActivityDelta::new("a", "plan", vec![]).into();
    accept(&[
        started(),
        tagged(snapshot.clone(), "s1"),
        tagged(delta.clone(), "s1"),
    ]);
    reject(
        &[started(), tagged(snapshot, "s1")],
        tagged(delta, "s2"),
        owner_mismatch(
            EventType::ActivityDelta,
            "s2",
            "activity",
            "a",
            "subagent 's1'",
        ),
    );
}

#[test]
fn rule11_owners_are_seeded_from_input_and_snapshots() {
    let mut user = UserMessage::new("u1", "hi");
    user.subagent_run_id = Some("s1".into());
    let mut assistant = AssistantMessage {
        id: "a1".into(),
        tool_calls: Some(vec![ToolCall::new("c1", "search", "{}")]),
        ..AssistantMessage::default()
    };
    assistant.subagent_run_id = Some("s1".into());
    let mut run = RunStarted::new("t", "r");
    run.input = Some(Box::new(RunAgentInput::new(
        "t",
        "r",
        vec![Message::User(user), Message::Assistant(assistant.clone())],
    )));
    let run: Event = run.into();
    accept(&[
        run.clone(),
        tagged(text_start("u1"), "s1"),
        tagged(tool_start("c1"), "s1"),
    ]);
    reject(
        std::slice::from_ref(&run),
        tagged(text_start("u1"), "s2"),
        owner_mismatch(
            EventType::TextMessageStart,
            "s2",
            "message",
            "u1",
            "subagent 's1'",
        ),
    );
    reject(
        &[run],
        tagged(tool_start("c1"), "s2"),
        owner_mismatch(
            EventType::ToolCallStart,
            "s2",
            "tool call",
            "c1",
            "subagent 's1'",
        ),
    );
    // A snapshot is authoritative: it re-assigns ownership.
    assistant.subagent_run_id = Some("s2".into());
    let snapshot: Event = MessagesSnapshot::new(vec![Message::Assistant(assistant)]).into();
    accept(&[
        started(),
        tagged(text_start("a1"), "s1"),
        text_end("a1"),
        snapshot.clone(),
        tagged(text_start("a1"), "s2"),
    ]);
    reject(
        &[started(), snapshot],
        tagged(text_start("a1"), "s1"),
        owner_mismatch(
            EventType::TextMessageStart,
            "s1",
            "message",
            "a1",
            "subagent 's2'",
        ),
    );
}

#[test]
fn rule11_tool_call_result_mints_an_owned_message() {
    let result: Event = ToolCallResult::new("tm", "c", "r").into();
    accept(&[
        started(),
        tagged(result.clone(), "s1"),
        tagged(text_start("tm"), "s1"),
    ]);
    reject(
        &[started(), tagged(result, "s1")],
        tagged(text_start("tm"), "s2"),
        owner_mismatch(
            EventType::TextMessageStart,
            "s2",
            "message",
            "tm",
            "subagent 's1'",
        ),
    );
}

// ---- Rule 12: run ids ---------------------------------------------------------------------

#[test]
fn rule12_run_finished_carries_the_runs_ids() {
    accept(&[started(), finished()]);
    reject(
        &[started()],
        RunFinished::new("t", "other").into(),
        Violation::RunIdsMismatch,
    );
    reject(
        &[started()],
        RunFinished::new("other", "r").into(),
        Violation::RunIdsMismatch,
    );
    // Each run is compared with its own RUN_STARTED.
    accept(&[
        started(),
        finished(),
        RunStarted::new("t", "r2").into(),
        RunFinished::new("t", "r2").into(),
    ]);
    reject(
        &[started(), finished(), RunStarted::new("t", "r2").into()],
        finished(),
        Violation::RunIdsMismatch,
    );
}

// ---- Chunks -------------------------------------------------------------------------------

fn text_chunk(id: Option<&str>, role: Option<TextRole>) -> Event {
    TextMessageChunk {
        message_id: id.map(Into::into),
        role,
        delta: Some("x".into()),
        ..TextMessageChunk::default()
    }
    .into()
}

fn tool_chunk(id: Option<&str>, name: Option<&str>) -> Event {
    ToolCallChunk {
        tool_call_id: id.map(Into::into),
        tool_call_name: name.map(Into::into),
        delta: Some("{}".into()),
        ..ToolCallChunk::default()
    }
    .into()
}

#[test]
fn chunks_need_their_ids() {
    accept(&[
        started(),
        text_chunk(Some("m"), None),
        text_chunk(Some("m"), None),
        tool_chunk(Some("c"), Some("search")),
        ReasoningMessageChunk {
            message_id: Some("r".into()),
            ..ReasoningMessageChunk::default()
        }
        .into(),
        // Chunk-opened items are closed by the client itself.
        finished(),
    ]);
    reject(
        &[started()],
        text_chunk(None, None),
        Violation::ChunkMissingField {
            event: EventType::TextMessageChunk,
            field: "messageId",
        },
    );
    reject(
        &[started()],
        tool_chunk(Some("c"), None),
        Violation::ChunkMissingField {
            event: EventType::ToolCallChunk,
            field: "toolCallName",
        },
    );
    reject(
        &[started()],
        tool_chunk(None, Some("search")),
        Violation::ChunkMissingField {
            event: EventType::ToolCallChunk,
            field: "toolCallId",
        },
    );
    reject(
        &[started()],
        ReasoningMessageChunk::default().into(),
        Violation::ChunkMissingField {
            event: EventType::ReasoningMessageChunk,
            field: "messageId",
        },
    );
}

#[test]
fn chunks_do_not_mix_with_open_explicit_items() {
    accept(&[
        started(),
        text_start("m"),
        text_end("m"),
        text_chunk(Some("m"), None),
    ]);
    reject(
        &[started(), text_start("m")],
        text_chunk(Some("m"), None),
        Violation::ChunkOnExplicitItem {
            event: EventType::TextMessageChunk,
            id: "m".into(),
        },
    );
    reject(
        &[started(), tool_start("c")],
        tool_chunk(Some("c"), Some("search")),
        Violation::ChunkOnExplicitItem {
            event: EventType::ToolCallChunk,
            id: "c".into(),
        },
    );
}

#[test]
fn chunk_continuations_keep_their_openers_fields() {
    accept(&[
        started(),
        text_chunk(Some("m"), Some(TextRole::Assistant)),
        text_chunk(Some("m"), None),
        text_chunk(Some("m"), Some(TextRole::Assistant)),
        // A different id starts a new lane, with its own role.
        text_chunk(Some("n"), Some(TextRole::User)),
    ]);
    reject(
        &[
            started(),
            text_chunk(Some("m"), Some(TextRole::Assistant)),
            text_chunk(Some("m"), None),
        ],
        text_chunk(Some("m"), Some(TextRole::User)),
        Violation::ChunkConflict {
            event: EventType::TextMessageChunk,
            id: "m".into(),
            field: "role",
        },
    );
    reject(
        &[started(), tool_chunk(Some("c"), Some("search"))],
        tool_chunk(Some("c"), Some("fetch")),
        Violation::ChunkConflict {
            event: EventType::ToolCallChunk,
            id: "c".into(),
            field: "toolCallName",
        },
    );
}

#[test]
fn chunks_follow_the_owner_rule() {
    accept(&[
        started(),
        tagged(text_chunk(Some("m"), None), "s1"),
        tagged(text_chunk(Some("m"), None), "s1"),
    ]);
    reject(
        &[started(), tagged(text_start("m"), "s1"), text_end("m")],
        tagged(text_chunk(Some("m"), None), "s2"),
        owner_mismatch(
            EventType::TextMessageChunk,
            "s2",
            "message",
            "m",
            "subagent 's1'",
        ),
    );
}

/// The client assembles chunks in one lane per owner and an explicit event closes only its
/// own lane (`transformChunks`), so a chunk stream of another owner is still open when a START
/// of the same id arrives: to `verifyEvents` a duplicate START. Found by the conformance check
/// that runs guard-accepted random sequences through the official clients.
#[test]
fn a_chunk_stream_blocks_a_start_of_the_same_id_from_another_owner() {
    // Positive controls: a START of the chunk's own owner closes the stream first...
    accept(&[
        started(),
        text_chunk(Some("m"), None),
        text_start("m"),
        text_end("m"),
        finished(),
    ]);
    accept(&[
        started(),
        tagged(text_chunk(Some("m"), None), "s1"),
        tagged(text_start("m"), "s1"),
    ]);
    // ...and so does any explicit event of that owner, its SUBAGENT_FINISHED, or a chunk of
    // another item in its lane.
    accept(&[
        started(),
        tagged(text_chunk(Some("m"), None), "s1"),
        tagged(StepStarted::new("plan").into(), "s1"),
        text_start("m"),
    ]);
    accept(&[
        started(),
        SubagentStarted::new("s1", "helper").into(),
        tagged(text_chunk(Some("m"), None), "s1"),
        SubagentFinished::new("s1").into(),
        text_start("m"),
    ]);
    accept(&[
        started(),
        tagged(text_chunk(Some("m"), None), "s1"),
        tagged(text_chunk(Some("n"), None), "s1"),
        text_start("m"),
    ]);
    // Events of other owners, RAW and SUBAGENT_STARTED leave it open.
    reject(
        &[
            started(),
            tagged(text_chunk(Some("m"), None), "s2"),
            text_start("x"),
            SubagentStarted::new("s1", "helper").into(),
            Raw::new(serde_json::json!({})).into(),
        ],
        text_start("m"),
        Violation::TextMessageAlreadyActive {
            event: EventType::TextMessageStart,
            id: "m".into(),
        },
    );
    reject(
        &[started(), text_chunk(Some("m"), None)],
        tagged(text_start("m"), "s1"),
        Violation::TextMessageAlreadyActive {
            event: EventType::TextMessageStart,
            id: "m".into(),
        },
    );
    reject(
        &[
            started(),
            tagged(tool_chunk(Some("c"), Some("search")), "s2"),
        ],
        tool_start("c"),
        Violation::ToolCallAlreadyActive {
            event: EventType::ToolCallStart,
            id: "c".into(),
        },
    );
    reject(
        &[
            started(),
            tagged(
                ReasoningMessageChunk {
                    message_id: Some("r".into()),
                    ..ReasoningMessageChunk::default()
                }
                .into(),
                "s1",
            ),
        ],
        ReasoningMessageStart::new("r").into(),
        Violation::ReasoningMessageAlreadyActive {
            event: EventType::ReasoningMessageStart,
            id: "r".into(),
        },
    );
    // Run-level events close every lane.
    accept(&[
        started(),
        tagged(text_chunk(Some("m"), None), "s1"),
        MessagesSnapshot::new(vec![]).into(),
        text_start("m"),
    ]);
}

/// A continuation chunk belongs to the lane holding its stream; naming another owner there is
/// refused by the client's `transformChunks`.
#[test]
fn a_chunk_continuation_keeps_its_lane() {
    accept(&[
        started(),
        text_chunk(Some("m"), None),
        text_chunk(Some("m"), None),
    ]);
    // The message's owner is s1 (its first START), but the open stream is in the parent lane.
    reject(
        &[
            started(),
            tagged(text_start("m"), "s1"),
            text_end("m"),
            text_chunk(Some("m"), None),
        ],
        tagged(text_chunk(Some("m"), None), "s1"),
        Violation::ChunkConflict {
            event: EventType::TextMessageChunk,
            id: "m".into(),
            field: "subagentRunId",
        },
    );
}

#[test]
fn violations_name_their_rule() {
    assert_eq!(Violation::RunAlreadyActive.rule(), 4);
    assert_eq!(Violation::RunIdsMismatch.rule(), 12);
    let v = Violation::RunFinishedWithOpenItems {
        kind: "tool calls",
        ids: "c1, c2".into(),
    };
    assert_eq!(v.rule(), 9);
    assert_eq!(
        v.to_string(),
        "rule 9: cannot send RUN_FINISHED while tool calls are still active: c1, c2"
    );
}
