//! proptest strategies over AG-UI events, shared by the property tests of this binary and by
//! `examples/guard_sequences.rs` (which includes this file with `#[path]`).
//!
//! Two families:
//! - [`event`]: any of the common event variants with arbitrary strings (any Unicode, `\n`,
//!   `\r`, quotes, control characters) and base fields, for encoder round trips;
//! - [`sequence_candidate`]: events over a small set of ids, step names and subagents, so that
//!   random sequences hit the sequence rules often; [`guard_accepted`] filters one through the
//!   guard and closes what it left open.
#![allow(dead_code)]

use agui_protocol::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Any string, weighted towards the characters that break framings and log lines.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        2 => "[a-z \\n\\r\\t\"\\\\\u{1b}\u{85}\u{2028}é✓🙂]{0,24}",
        1 => Just(String::new()),
    ]
}

/// JSON values whose numbers survive a round trip through `google.protobuf.Value` (a double)
/// and back: integers within ±2^31, no floats (those are compared as doubles elsewhere).
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec((text(), inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

fn non_null_json() -> impl Strategy<Value = Value> {
    json_value().prop_filter("not null", |v| !v.is_null())
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    vec((text(), json_value()), 0..3).prop_map(|entries| entries.into_iter().collect())
}

/// Base fields: an optional integer timestamp, optional non-null `rawEvent` and `metadata`.
pub fn base() -> impl Strategy<Value = BaseEvent> {
    (
        option::of(any::<i64>()),
        option::weighted(0.2, non_null_json()),
        option::weighted(0.2, json_object()),
    )
        .prop_map(|(timestamp, raw_event, metadata)| BaseEvent {
            timestamp,
            raw_event: raw_event.map(Box::new),
            metadata: metadata.map(Box::new),
        })
}

fn text_role() -> impl Strategy<Value = TextRole> {
    prop_oneof![
        Just(TextRole::Assistant),
        Just(TextRole::User),
        Just(TextRole::System),
        Just(TextRole::Developer),
    ]
}

fn outcome() -> impl Strategy<Value = Option<RunFinishedOutcome>> {
    prop_oneof![
        Just(None),
        // Not `Some([])`: the protobuf binding has no way to tell it from absent.
        option::of(vec(text().prop_map(ToolCallId::from), 1..3)).prop_map(|pending| Some(
            RunFinishedOutcome::Success {
                pending_tool_call_ids: pending,
            }
        )),
        Just(Some(RunFinishedOutcome::Cancelled)),
        vec((text(), text()), 1..3).prop_map(|list| Some(RunFinishedOutcome::Interrupt {
            interrupts: list
                .into_iter()
                .map(|(id, reason)| Interrupt::new(id, reason))
                .collect(),
        })),
    ]
}

fn tool_content() -> impl Strategy<Value = UserContent> {
    prop_oneof![
        text().prop_map(UserContent::Text),
        vec(text().prop_map(ContentPart::text), 1..3).prop_map(UserContent::Parts),
    ]
}

/// One event of the common variants, every string arbitrary.
pub fn event() -> impl Strategy<Value = Event> {
    let s = text;
    let os = || option::of(text());
    prop_oneof![
        (s(), s(), os(), os(), base()).prop_map(|(t, r, v, p, base)| RunStarted {
            thread_id: t.into(),
            run_id: r.into(),
            protocol_version: v,
            parent_run_id: p.map(Into::into),
            input: None,
            base,
        }
        .into()),
        (s(), s(), option::of(non_null_json()), outcome(), base()).prop_map(
            |(t, r, result, outcome, base)| RunFinished {
                thread_id: t.into(),
                run_id: r.into(),
                result,
                outcome,
                usage: None,
                base,
            }
            .into()
        ),
        (s(), os(), base()).prop_map(|(message, code, base)| RunError {
            message,
            code,
            usage: None,
            base,
        }
        .into()),
        (s(), os(), base()).prop_map(|(step_name, subagent_run_id, base)| StepStarted {
            step_name,
            subagent_run_id,
            base,
        }
        .into()),
        (s(), os(), base()).prop_map(|(step_name, subagent_run_id, base)| StepFinished {
            step_name,
            subagent_run_id,
            base,
        }
        .into()),
        (s(), option::of(text_role()), os(), os(), base()).prop_map(
            |(id, role, name, sub, base)| {
                TextMessageStart {
                    message_id: id.into(),
                    role,
                    name,
                    subagent_run_id: sub,
                    base,
                }
                .into()
            }
        ),
        (s(), s(), os(), base()).prop_map(|(id, delta, sub, base)| TextMessageContent {
            message_id: id.into(),
            delta,
            subagent_run_id: sub,
            base,
        }
        .into()),
        (s(), os(), base()).prop_map(|(id, sub, base)| TextMessageEnd {
            message_id: id.into(),
            subagent_run_id: sub,
            base,
        }
        .into()),
        (os(), option::of(text_role()), os(), os(), os(), base()).prop_map(
            |(id, role, delta, name, sub, base)| TextMessageChunk {
                message_id: id.map(Into::into),
                role,
                delta,
                name,
                subagent_run_id: sub,
                base,
            }
            .into()
        ),
        (s(), s(), os(), os(), base()).prop_map(|(id, name, parent, sub, base)| ToolCallStart {
            tool_call_id: id.into(),
            tool_call_name: name,
            parent_message_id: parent.map(Into::into),
            subagent_run_id: sub,
            base,
        }
        .into()),
        (s(), s(), os(), base()).prop_map(|(id, delta, sub, base)| ToolCallArgs {
            tool_call_id: id.into(),
            delta,
            subagent_run_id: sub,
            base,
        }
        .into()),
        (s(), os(), base()).prop_map(|(id, sub, base)| ToolCallEnd {
            tool_call_id: id.into(),
            subagent_run_id: sub,
            base,
        }
        .into()),
        (s(), s(), tool_content(), any::<bool>(), os(), base()).prop_map(
            |(message_id, call, content, role, sub, base)| ToolCallResult {
                message_id: message_id.into(),
                tool_call_id: call.into(),
                content,
                role: role.then_some(ToolRole::Tool),
                subagent_run_id: sub,
                base,
            }
            .into()
        ),
        (json_value(), os(), base()).prop_map(|(snapshot, sub, base)| StateSnapshot {
            snapshot,
            subagent_run_id: sub,
            base,
        }
        .into()),
        (s(), json_value(), os(), base()).prop_map(|(name, value, sub, base)| Custom {
            name,
            value,
            subagent_run_id: sub,
            base,
        }
        .into()),
        (json_value(), os(), os(), base()).prop_map(|(event, source, sub, base)| Raw {
            event,
            source,
            subagent_run_id: sub,
            base,
        }
        .into()),
        (s(), os(), base()).prop_map(|(id, sub, base)| ReasoningStart {
            message_id: id.into(),
            subagent_run_id: sub,
            base,
        }
        .into()),
        (s(), s(), os(), base()).prop_map(|(id, delta, sub, base)| ReasoningMessageContent {
            message_id: id.into(),
            delta,
            subagent_run_id: sub,
            base,
        }
        .into()),
    ]
}

// ---------------------------------------------------------------------------------------------
// Sequences for the guard.

fn one_of(names: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    proptest::sample::select(names).prop_map(str::to_owned)
}

fn message_id() -> impl Strategy<Value = String> + Clone {
    one_of(&["m1", "m2", "m3"])
}

fn call_id() -> impl Strategy<Value = String> + Clone {
    one_of(&["c1", "c2", "c3"])
}

fn owner() -> impl Strategy<Value = Option<String>> + Clone {
    prop_oneof![6 => Just(None), 1 => Just(Some("s1".to_owned())), 1 => Just(Some("s2".to_owned()))]
}

/// A candidate event over a small id space: lifecycle (on one thread/run pair, sometimes a
/// stray one), steps, text, tool calls and results, reasoning, chunks, state, custom events and
/// subagents. Most random candidates break a rule; [`guard_accepted`] keeps those that do not.
pub fn sequence_candidate() -> impl Strategy<Value = Event> {
    let run = one_of(&["r1", "r1", "r1", "r2"]);
    prop_oneof![
        2 => run.clone().prop_map(|r| RunStarted::new("t1", r).into()),
        2 => (run, outcome()).prop_map(|(r, outcome)| {
            let mut e = RunFinished::new("t1", r);
            // Interrupt outcomes and stray pending ids are fine for the rules; keep them.
            e.outcome = outcome;
            e.into()
        }),
        1 => Just(RunError::with_code("failed", "model_error").into()),
        2 => (one_of(&["plan", "act"]), owner()).prop_map(|(name, sub)| StepStarted {
            subagent_run_id: sub,
            ..StepStarted::new(name)
        }.into()),
        2 => (one_of(&["plan", "act"]), owner()).prop_map(|(name, sub)| StepFinished {
            subagent_run_id: sub,
            ..StepFinished::new(name)
        }.into()),
        4 => (message_id(), owner()).prop_map(|(id, sub)| TextMessageStart {
            subagent_run_id: sub,
            ..TextMessageStart::new(id)
        }.into()),
        4 => (message_id(), text(), owner()).prop_map(|(id, delta, sub)| TextMessageContent {
            subagent_run_id: sub,
            ..TextMessageContent::new(id, delta)
        }.into()),
        4 => (message_id(), owner()).prop_map(|(id, sub)| TextMessageEnd {
            subagent_run_id: sub,
            ..TextMessageEnd::new(id)
        }.into()),
        4 => (call_id(), option::of(message_id()), owner()).prop_map(|(id, parent, sub)| {
            ToolCallStart {
                parent_message_id: parent.map(Into::into),
                subagent_run_id: sub,
                ..ToolCallStart::new(id, "lookup")
            }
            .into()
        }),
        4 => (call_id(), text(), owner()).prop_map(|(id, delta, sub)| ToolCallArgs {
            subagent_run_id: sub,
            ..ToolCallArgs::new(id, delta)
        }.into()),
        4 => (call_id(), owner()).prop_map(|(id, sub)| ToolCallEnd {
            subagent_run_id: sub,
            ..ToolCallEnd::new(id)
        }.into()),
        2 => (one_of(&["tm1", "tm2"]), call_id(), tool_content(), owner()).prop_map(
            |(message_id, call, content, sub)| ToolCallResult {
                subagent_run_id: sub,
                ..ToolCallResult::new(message_id, call, content)
            }.into()
        ),
        2 => (one_of(&["rs1", "rs2"]), owner()).prop_map(|(id, sub)| ReasoningStart {
            subagent_run_id: sub,
            ..ReasoningStart::new(id)
        }.into()),
        2 => (one_of(&["rs1", "rs2"]), owner()).prop_map(|(id, sub)| ReasoningEnd {
            subagent_run_id: sub,
            ..ReasoningEnd::new(id)
        }.into()),
        2 => (one_of(&["rm1", "rm2"]), owner()).prop_map(|(id, sub)| ReasoningMessageStart {
            subagent_run_id: sub,
            ..ReasoningMessageStart::new(id)
        }.into()),
        2 => (one_of(&["rm1", "rm2"]), text(), owner()).prop_map(|(id, delta, sub)| {
            ReasoningMessageContent {
                subagent_run_id: sub,
                ..ReasoningMessageContent::new(id, delta)
            }
            .into()
        }),
        2 => (one_of(&["rm1", "rm2"]), owner()).prop_map(|(id, sub)| ReasoningMessageEnd {
            subagent_run_id: sub,
            ..ReasoningMessageEnd::new(id)
        }.into()),
        2 => (one_of(&["k1", "k2", "m1"]), option::of(text()), owner()).prop_map(
            |(id, delta, sub)| TextMessageChunk {
                message_id: Some(id.into()),
                role: None,
                delta,
                name: None,
                subagent_run_id: sub,
                base: BaseEvent::default(),
            }.into()
        ),
        2 => (one_of(&["kc1", "kc2", "c1"]), option::of(text()), owner()).prop_map(
            |(id, delta, sub)| ToolCallChunk {
                tool_call_id: Some(id.into()),
                tool_call_name: Some("chunked".into()),
                parent_message_id: None,
                delta,
                subagent_run_id: sub,
                base: BaseEvent::default(),
            }.into()
        ),
        1 => json_value().prop_map(|snapshot| StateSnapshot::new(snapshot).into()),
        1 => (text(), json_value()).prop_map(|(name, value)| Custom::new(name, value).into()),
        2 => (one_of(&["s1", "s2"]), option::of(one_of(&["s1", "s2"]))).prop_map(
            |(id, parent)| SubagentStarted {
                parent_subagent_run_id: parent,
                ..SubagentStarted::new(id, "helper")
            }.into()
        ),
        2 => one_of(&["s1", "s2"]).prop_map(|id| SubagentFinished::new(id).into()),
        1 => one_of(&["s1", "s2"]).prop_map(|id| SubagentError::new(id, "failed").into()),
    ]
}

/// The events the guard accepts from `candidates`, in order (a rejected candidate is dropped;
/// the guard's state is unchanged by a rejection), then whatever closes the last run: the
/// open items' end events, innermost first, and `RUN_FINISHED` (or, when `error_at_end`,
/// `RUN_ERROR`). Every event returned was accepted by one guard, in this order.
pub fn guard_accepted(candidates: Vec<Event>, error_at_end: bool) -> Vec<Event> {
    let mut guard = SequenceGuard::new();
    let mut accepted = Vec::new();
    let mut offer = |guard: &mut SequenceGuard, event: Event| {
        if guard.check(&event).is_ok() {
            accepted.push(event);
        }
    };
    offer(&mut guard, RunStarted::new("t1", "r1").into());
    for event in candidates {
        offer(&mut guard, event);
    }
    if guard.run_active() {
        if error_at_end {
            offer(
                &mut guard,
                RunError::with_code("failed", "model_error").into(),
            );
        } else {
            for close in closing_events(&guard) {
                offer(&mut guard, close);
            }
            // The run's own ids (rule 12): whichever RUN_STARTED opened it.
            for run in ["r1", "r2"] {
                offer(&mut guard, RunFinished::new("t1", run).into());
            }
        }
    }
    accepted
}

/// End events for everything the guard has open, in reverse opening order, each tried with
/// every owner (the guard refuses the wrong one).
fn closing_events(guard: &SequenceGuard) -> Vec<Event> {
    let open = guard.open_items();
    let owners = [None, Some("s1".to_owned()), Some("s2".to_owned())];
    let mut out = Vec::new();
    for owner in &owners {
        for id in open.text_messages.iter().rev() {
            out.push(
                TextMessageEnd {
                    subagent_run_id: owner.clone(),
                    ..TextMessageEnd::new(id.clone())
                }
                .into(),
            );
        }
        for id in open.tool_calls.iter().rev() {
            out.push(
                ToolCallEnd {
                    subagent_run_id: owner.clone(),
                    ..ToolCallEnd::new(id.clone())
                }
                .into(),
            );
        }
        for id in open.reasoning_messages.iter().rev() {
            out.push(
                ReasoningMessageEnd {
                    subagent_run_id: owner.clone(),
                    ..ReasoningMessageEnd::new(id.clone())
                }
                .into(),
            );
        }
        for id in open.reasoning_spans.iter().rev() {
            out.push(
                ReasoningEnd {
                    subagent_run_id: owner.clone(),
                    ..ReasoningEnd::new(id.clone())
                }
                .into(),
            );
        }
        for name in open.steps.iter().rev() {
            out.push(
                StepFinished {
                    subagent_run_id: owner.clone(),
                    ..StepFinished::new(name.clone())
                }
                .into(),
            );
        }
    }
    // Subagents last, children before parents.
    for id in open.subagents.iter().rev() {
        out.push(SubagentFinished::new(id.clone()).into());
    }
    out
}
