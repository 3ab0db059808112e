//! Protocol dialects: the one place that decides what a client can read.
//!
//! CopilotKit (`@copilotkit/runtime` 1.75, `@copilotkit/react-core` 1.74) pins
//! `@ag-ui/client` 0.0.59, which never sends `protocolVersion`; 1.0 clients send `"1.0"`
//! (DESIGN.md "Two dialects"). A request without `protocolVersion` is answered in the
//! 0.0.x-compatible subset ([`Dialect::Legacy`]), a `1.x` request in full 1.0
//! ([`Dialect::V1`]), anything else is refused before the stream opens. The exact rule is on
//! [`Dialect::negotiate`].
//!
//! What the official clients send (read from the installed packages in `tests/conformance`):
//! `@ag-ui/client` 0.0.59 has no `protocolVersion` anywhere (neither its `RunAgentInput` schema
//! nor its `HttpAgent`), so it never sends one; 1.0.0's `prepareRunAgentInput` sends its
//! `PROTOCOL_VERSION`, `"1.0"`, and omits the member only when the agent's
//! `maxProtocolVersion` is pinned below that. No official client sends a `0.x` version.
//!
//! # What was verified, and how
//!
//! Checked on 2026-11-22 by parsing hand-written events with `EventSchemas.safeParse` from
//! the installed `@ag-ui/core` 0.0.59 (`tests/conformance/v0/node_modules`) and 1.0.0
//! (`tests/conformance/v1/node_modules`, `dist/schemas.js`), with a throwaway node script, and
//! by reading 0.0.59's `dist/index.js`. The 0.0.59 client runs `EventSchemas.parse` on every
//! SSE frame and fails the run on any error.
//!
//! 0.0.59 **rejects** (1.0 accepts all of them):
//! - `RUN_FINISHED.outcome {type:"success", pendingToolCallIds}`: "Unrecognized key(s) in
//!   object: 'pendingToolCallIds'" (its success outcome is `.strict()`);
//! - `RUN_FINISHED.outcome {type:"cancelled"}`: "Invalid discriminator value. Expected
//!   'success' | 'interrupt'";
//! - `TOOL_CALL_RESULT.content` as an array: "Expected string, received array";
//! - in `MESSAGES_SNAPSHOT`: a `tool` message whose `content` is an array ("Expected string"),
//!   and a media part whose source is `{type:"file"}` (its sources are `data` | `url` only);
//! - in `RUN_STARTED.input`: the same message shapes, and an input without `tools`/`context`;
//! - an unknown event `type` (fatal, where 1.0 drops it with a warning). All 31 types of
//!   1.0 are known to 0.0.59, including `REASONING_*`, `ACTIVITY_*` and `SUBAGENT_*`.
//!
//! 0.0.59 **accepts**: `usage` on `RUN_FINISHED`/`RUN_ERROR` (it silently strips
//! `cacheWriteInputTokens`, which it does not define), `metadata`, `subagentRunId`,
//! interrupt outcomes, `SUBAGENT_FINISHED` outcomes, content parts on user messages (it strips
//! part `id`s silently), float timestamps, and unknown members on events: its base event
//! schema is `.passthrough()`, so e.g. `protocolVersion` on `RUN_STARTED` passes untouched
//! even though 0.0.59 does not define it.
//!
//! # The legacy mapping ([`Dialect::adapt`])
//!
//! - `RUN_STARTED`: `input` and `protocolVersion` are removed (0.0.59 defines neither; the
//!   echo could carry message shapes it rejects).
//! - `RUN_FINISHED` success: `pendingToolCallIds` is removed, `{type:"success"}` is kept.
//! - `RUN_FINISHED` cancelled: sent as `RUN_ERROR {code:"cancelled", message:"The run was
//!   cancelled."}` (usage and base fields kept). 0.0.59 has no way to say "cancelled", and
//!   the 1.0 spec itself allows `RUN_ERROR` when a stop cannot be reported as an outcome
//!   (reference §7 "Cancelled"). `RUN_ERROR` is admitted wherever `RUN_FINISHED` was.
//! - `TOOL_CALL_RESULT` with parts: the content becomes one string (see [`flatten_content`]).
//! - `MESSAGES_SNAPSHOT`: tool messages' part lists become strings the same way; media parts
//!   with a `file` source are removed from user messages (a producer may skip parts a
//!   consumer cannot use, reference §2).
//! - Everything else passes unchanged.
//!
//! One case needs the stream, not the event ([`DialectAdapter`]): the sequence guard admits a
//! late `RUN_ERROR` after `RUN_FINISHED` (reference §4 rule 2), but once a cancelled
//! `RUN_FINISHED` has become a `RUN_ERROR`, a 0.0.x client accepts nothing but `RUN_STARTED`
//! (rule 3: "The run has already errored"). The adapter drops such an event: the client
//! already has the run's terminal event. Found by the conformance check that runs
//! guard-accepted random sequences through both official clients.

use serde_json::Value;

use crate::content::{ContentPart, PartSource, UserContent};
use crate::events::{Event, RunError, RunFinishedOutcome};
use crate::input::Message;

/// The `RUN_ERROR.code` a cancelled run is reported with to 0.0.x clients.
pub const LEGACY_CANCELLED_CODE: &str = "cancelled";
/// The `RUN_ERROR.message` a cancelled run is reported with to 0.0.x clients.
pub const LEGACY_CANCELLED_MESSAGE: &str = "The run was cancelled.";

/// The protocol version this crate speaks, sent as `RUN_STARTED.protocolVersion` to 1.0
/// clients (reference §1, `PROTOCOL_VERSION = "1.0"`).
pub const PROTOCOL_VERSION: &str = "1.0";

/// Which flavour of AG-UI a client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// `@ag-ui/client` 0.0.x (CopilotKit 1.7x): the request has no `protocolVersion` (or one
    /// whose major is 0).
    Legacy,
    /// AG-UI 1.x: the request's `protocolVersion` has major 1 (`"1.0"`, `"1.2.3"`, …).
    V1,
}

/// A `protocolVersion` this server does not speak; the server answers 400
/// `unsupported_protocol_version` before opening the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported protocol version")]
pub struct UnsupportedProtocolVersion {
    /// The version the client asked for (for logs; not echoed to the client by `Display`).
    pub requested: String,
}

impl Dialect {
    /// Chooses the dialect from `RunAgentInput.protocolVersion`, by its semver major.
    ///
    /// - absent → [`Dialect::Legacy`] (every 0.0.x client);
    /// - a version whose major is `1` → [`Dialect::V1`]: `"1"`, `"1.0"`, `"1.9"`, `"1.0.0"`,
    ///   `"1.0.0-rc1"`, `"1.2.3+build.5"`. A newer 1.x minor "only adds to 1.0" (spec 1.1
    ///   changelog), so its client reads 1.0; a 1.x pre-release is still that major;
    /// - a version whose major is `0` (`"0.0.59"`, `"0.9"`) → [`Dialect::Legacy`]: no official
    ///   client sends one, but a client that says it is pre-1.0 reads the 0.0.x-compatible
    ///   subset, so it is served that rather than refused;
    /// - any other major (`"2.0"`) → refused: its rules are unknown.
    ///
    /// A version is semver 2.0.0 (§2, §9, §10) with the minor and patch optional: `MAJOR[.MINOR
    /// [.PATCH[-PRERELEASE][+BUILD]]]`, numbers in decimal without leading zeros, pre-release and
    /// build identifiers non-empty `[0-9A-Za-z-]` separated by dots. Nothing else is a version
    /// (no `v` prefix, no surrounding spaces, no wildcards, no fourth number).
    ///
    /// # Errors
    ///
    /// [`UnsupportedProtocolVersion`] for another major, or for anything that is not a version:
    /// `""`, `"abc"`, `"1."`, `"01.0"`, `"1.0-beta"` (a pre-release needs all three numbers),
    /// `"1.0.0.0"`, `" 1.0"`, `"v1.0"`, `"1.x"`.
    pub fn negotiate(
        protocol_version: Option<&str>,
    ) -> Result<Dialect, UnsupportedProtocolVersion> {
        let Some(version) = protocol_version else {
            return Ok(Dialect::Legacy);
        };
        match semver_major(version) {
            Some("1") => Ok(Dialect::V1),
            Some("0") => Ok(Dialect::Legacy),
            _ => Err(UnsupportedProtocolVersion {
                requested: version.to_owned(),
            }),
        }
    }

    /// Rewrites `event` into what this dialect's clients accept; `None` would mean "do not
    /// send" (no event is dropped by either dialect today).
    ///
    /// [`Dialect::V1`] returns the event unchanged. [`Dialect::Legacy`] applies the mapping in
    /// the module docs.
    pub fn adapt(self, event: Event) -> Option<Event> {
        match self {
            Dialect::V1 => Some(event),
            Dialect::Legacy => Some(adapt_legacy(event)),
        }
    }
}

/// The major number of `version` if it is a (partial) semver version (see
/// [`Dialect::negotiate`]), `None` otherwise.
fn semver_major(version: &str) -> Option<&str> {
    // Semver §10: build metadata after the first `+`; §9: pre-release after the first `-` of
    // what is left.
    let (version, build) = match version.split_once('+') {
        Some((version, build)) => (version, Some(build)),
        None => (version, None),
    };
    let (core, pre) = match version.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (version, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    if numbers.len() > 3 || !numbers.iter().all(|n| is_numeric_identifier(n)) {
        return None;
    }
    if (pre.is_some() || build.is_some()) && numbers.len() != 3 {
        return None;
    }
    let identifiers_ok = |list: &str, numeric_rule: bool| {
        list.split('.').all(|id| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                // §9: a numeric pre-release identifier has no leading zeros; build metadata
                // may (§10).
                && (!numeric_rule || !id.bytes().all(|b| b.is_ascii_digit()) || is_numeric_identifier(id))
        })
    };
    if pre.is_some_and(|pre| !identifiers_ok(pre, true))
        || build.is_some_and(|build| !identifiers_ok(build, false))
    {
        return None;
    }
    Some(numbers[0])
}

/// Semver §2: a non-negative decimal integer without leading zeros.
fn is_numeric_identifier(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n == "0" || !n.starts_with('0'))
}

/// [`Dialect::adapt`] over one response stream: what the sink uses. It also drops what a
/// client cannot accept after the adapted stream's own `RUN_ERROR` (anything but a new
/// `RUN_STARTED`; see the module docs), which only the legacy mapping can cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialectAdapter {
    dialect: Dialect,
    /// The last event sent was a `RUN_ERROR`.
    errored: bool,
}

impl DialectAdapter {
    /// An adapter for a stream where nothing has been sent yet.
    pub fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            errored: false,
        }
    }

    /// The client's dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The event as this client reads it, or `None` when it must not be sent.
    pub fn adapt(&mut self, event: Event) -> Option<Event> {
        let event = self.dialect.adapt(event)?;
        if self.errored && !matches!(event, Event::RunStarted(_)) {
            return None;
        }
        self.errored = matches!(event, Event::RunError(_));
        Some(event)
    }
}

fn adapt_legacy(event: Event) -> Event {
    match event {
        Event::RunStarted(mut e) => {
            e.input = None;
            e.protocol_version = None;
            Event::RunStarted(e)
        }
        Event::RunFinished(mut e) => match e.outcome {
            Some(RunFinishedOutcome::Cancelled) => Event::RunError(RunError {
                message: LEGACY_CANCELLED_MESSAGE.to_owned(),
                code: Some(LEGACY_CANCELLED_CODE.to_owned()),
                usage: e.usage,
                base: e.base,
            }),
            Some(RunFinishedOutcome::Success {
                pending_tool_call_ids: Some(_),
            }) => {
                e.outcome = Some(RunFinishedOutcome::Success {
                    pending_tool_call_ids: None,
                });
                Event::RunFinished(e)
            }
            _ => Event::RunFinished(e),
        },
        Event::ToolCallResult(mut e) => {
            if let UserContent::Parts(parts) = &e.content {
                e.content = UserContent::Text(flatten_content(parts));
            }
            Event::ToolCallResult(e)
        }
        Event::MessagesSnapshot(mut e) => {
            for message in &mut e.messages {
                legacy_message(message);
            }
            Event::MessagesSnapshot(e)
        }
        other => other,
    }
}

/// Makes one message readable by 0.0.59 (see the module docs).
fn legacy_message(message: &mut Message) {
    match message {
        Message::Tool(m) => {
            if let UserContent::Parts(parts) = &m.content {
                m.content = UserContent::Text(flatten_content(parts));
            }
        }
        Message::User(m) => {
            if let UserContent::Parts(parts) = &mut m.content {
                parts.retain(|part| !has_file_source(part));
            }
        }
        _ => {}
    }
}

fn has_file_source(part: &ContentPart) -> bool {
    match part {
        ContentPart::Text(_) => false,
        ContentPart::Image(p)
        | ContentPart::Audio(p)
        | ContentPart::Video(p)
        | ContentPart::Document(p) => {
            matches!(p.source, PartSource::File { .. })
        }
    }
}

/// Turns a part list into the single string a 0.0.x client can read: text parts contribute
/// their text, any other part its compact JSON, joined with `"\n"`. The model-facing meaning
/// survives (text stays text) and nothing is silently lost.
pub fn flatten_content(parts: &[ContentPart]) -> String {
    let mut out = String::new();
    for part in parts {
        if !out.is_empty() {
            out.push('\n');
        }
        match part {
            ContentPart::Text(text) => out.push_str(&text.text),
            other => {
                // Serializing our own types to a String cannot fail (no non-string map keys).
                let json = serde_json::to_string(other).unwrap_or_else(|_| Value::Null.to_string());
                out.push_str(&json);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{MediaPart, TextPart};
    use crate::events::*;
    use crate::input::{RunAgentInput, ToolMessage, UserMessage};
    use serde_json::json;

    fn both() -> [Dialect; 2] {
        [Dialect::Legacy, Dialect::V1]
    }

    #[test]
    fn absent_version_is_legacy() {
        assert_eq!(Dialect::negotiate(None), Ok(Dialect::Legacy));
    }

    #[test]
    fn every_version_with_major_1_is_v1() {
        for v in [
            "1",
            "1.0",
            "1.1",
            "1.9",
            "1.0.0",
            "1.12.3",
            "1.0.0-rc1",
            "1.0.0-rc.1",
            "1.0.0-0.3.7",
            "1.0.0-x-y-z.--",
            "1.2.3+build.5",
            "1.2.3+001",
            "1.0.0-alpha+exp.sha.5114f85",
        ] {
            assert_eq!(Dialect::negotiate(Some(v)), Ok(Dialect::V1), "{v}");
        }
    }

    #[test]
    fn a_version_with_major_0_is_legacy() {
        for v in ["0", "0.9", "0.0.59", "0.0.59-beta.1", "0.1.0+sha.1"] {
            assert_eq!(Dialect::negotiate(Some(v)), Ok(Dialect::Legacy), "{v}");
        }
    }

    #[test]
    fn other_majors_and_non_versions_are_refused() {
        for v in [
            // Another major.
            "2",
            "2.0",
            "2.0.0",
            "10",
            "10.0",
            "3.1.4-rc1",
            // Not a version.
            "",
            "abc",
            "1.",
            ".1",
            "1..0",
            "01",
            "01.0",
            "1.00",
            "1.0.01",
            "1.x",
            "1.*",
            "1.0.0.0",
            " 1.0",
            "1.0 ",
            "v1.0",
            "1.0-beta",
            "1-rc1",
            "1.0.0-",
            "1.0.0-rc..1",
            "1.0.0-01",
            "1.0.0+",
            "1.0.0+a..b",
            "1.0.0-rc_1",
            "1.0.0-ünï",
            "1.0\n",
            "-1.0",
            "+1.0",
            "１.0",
        ] {
            let err = Dialect::negotiate(Some(v)).unwrap_err();
            assert_eq!(err.requested, v);
            assert_eq!(err.to_string(), "unsupported protocol version");
        }
    }

    #[test]
    fn a_late_run_error_after_a_cancelled_run_is_dropped_for_legacy_only() {
        let cancelled = finished(Some(RunFinishedOutcome::Cancelled));
        let late: Event = RunError::with_code("late", "model_error").into();
        let next: Event = RunStarted::new("t", "r2").into();
        let mut legacy = DialectAdapter::new(Dialect::Legacy);
        assert!(matches!(
            legacy.adapt(cancelled.clone()),
            Some(Event::RunError(_))
        ));
        assert_eq!(legacy.adapt(late.clone()), None, "0.0.59: already errored");
        assert_eq!(
            legacy.adapt(next.clone()),
            Some(next.clone()),
            "a new run passes"
        );
        // Positive controls: 1.0 keeps the late RUN_ERROR after RUN_FINISHED (rule 2), and so
        // does the legacy dialect after a successful RUN_FINISHED.
        let mut v1 = DialectAdapter::new(Dialect::V1);
        assert_eq!(
            v1.adapt(cancelled),
            Some(finished(Some(RunFinishedOutcome::Cancelled)))
        );
        assert_eq!(v1.adapt(late.clone()), Some(late.clone()));
        let mut legacy = DialectAdapter::new(Dialect::Legacy);
        assert!(legacy.adapt(finished(None)).is_some());
        assert_eq!(legacy.adapt(late.clone()), Some(late));
        assert_eq!(legacy.dialect(), Dialect::Legacy);
    }

    fn rich_run_started() -> Event {
        let mut e = RunStarted::new("t", "r");
        e.protocol_version = Some(PROTOCOL_VERSION.into());
        e.parent_run_id = Some("p".into());
        e.input = Some(Box::new(RunAgentInput::new("t", "r", vec![])));
        e.base.timestamp = Some(5);
        e.into()
    }

    #[test]
    fn run_started_keeps_input_and_version_in_v1_only() {
        let event = rich_run_started();
        assert_eq!(Dialect::V1.adapt(event.clone()), Some(event.clone()));
        let Some(Event::RunStarted(legacy)) = Dialect::Legacy.adapt(event) else {
            panic!("RUN_STARTED must stay RUN_STARTED")
        };
        assert_eq!(legacy.input, None);
        assert_eq!(legacy.protocol_version, None);
        assert_eq!(legacy.parent_run_id.as_deref(), Some("p"));
        assert_eq!(legacy.base.timestamp, Some(5));
    }

    fn finished(outcome: Option<RunFinishedOutcome>) -> Event {
        let mut e = RunFinished::new("t", "r");
        e.outcome = outcome;
        e.usage = Some(vec![TokenUsage {
            total_tokens: Some(3),
            ..TokenUsage::default()
        }]);
        e.base.timestamp = Some(9);
        e.into()
    }

    #[test]
    fn pending_tool_call_ids_are_dropped_for_legacy_only() {
        let event = finished(Some(RunFinishedOutcome::Success {
            pending_tool_call_ids: Some(vec!["c1".into()]),
        }));
        assert_eq!(Dialect::V1.adapt(event.clone()), Some(event.clone()));
        let legacy = Dialect::Legacy.adapt(event).unwrap();
        let json = serde_json::to_value(&legacy).unwrap();
        assert_eq!(json["outcome"], json!({"type": "success"}));
        assert_eq!(json["usage"], json!([{"totalTokens": 3}]));
    }

    #[test]
    fn cancelled_becomes_run_error_for_legacy_only() {
        let event = finished(Some(RunFinishedOutcome::Cancelled));
        assert_eq!(Dialect::V1.adapt(event.clone()), Some(event.clone()));
        let legacy = Dialect::Legacy.adapt(event).unwrap();
        assert_eq!(
            serde_json::to_string(&legacy).unwrap(),
            r#"{"type":"RUN_ERROR","message":"The run was cancelled.","code":"cancelled","usage":[{"totalTokens":3}],"timestamp":9}"#
        );
    }

    #[test]
    fn other_outcomes_pass_both_dialects() {
        for outcome in [
            None,
            Some(RunFinishedOutcome::Success {
                pending_tool_call_ids: None,
            }),
            Some(RunFinishedOutcome::Interrupt {
                interrupts: vec![Interrupt::new("i1", "confirmation")],
            }),
        ] {
            let event = finished(outcome);
            for dialect in both() {
                assert_eq!(
                    dialect.adapt(event.clone()),
                    Some(event.clone()),
                    "{dialect:?}"
                );
            }
        }
    }

    fn parts() -> Vec<ContentPart> {
        vec![
            ContentPart::text("first"),
            ContentPart::Image(MediaPart::new(PartSource::Url {
                value: "https://x/a.png".into(),
                mime_type: None,
            })),
            ContentPart::Text(TextPart::new("second")),
        ]
    }

    #[test]
    fn tool_result_parts_become_a_string_for_legacy_only() {
        let event: Event = ToolCallResult::new("m", "c", parts()).into();
        assert_eq!(Dialect::V1.adapt(event.clone()), Some(event.clone()));
        let Some(Event::ToolCallResult(legacy)) = Dialect::Legacy.adapt(event) else {
            panic!()
        };
        assert_eq!(
            legacy.content,
            UserContent::Text(
                "first\n{\"type\":\"image\",\"source\":{\"type\":\"url\",\"value\":\"https://x/a.png\"}}\nsecond"
                    .into()
            )
        );
        // String content is untouched in both dialects.
        let event: Event = ToolCallResult::new("m", "c", "plain").into();
        for dialect in both() {
            assert_eq!(dialect.adapt(event.clone()), Some(event.clone()));
        }
    }

    #[test]
    fn messages_snapshot_is_made_legacy_readable() {
        let file_part = ContentPart::Document(MediaPart::new(PartSource::File {
            value: "file-1".into(),
            provider: None,
            mime_type: None,
        }));
        let mut user_parts = parts();
        user_parts.push(file_part);
        let event: Event = MessagesSnapshot::new(vec![
            Message::User(UserMessage::new("u1", user_parts)),
            Message::Tool(ToolMessage::new("t1", "c1", parts())),
        ])
        .into();
        assert_eq!(Dialect::V1.adapt(event.clone()), Some(event.clone()));
        let Some(Event::MessagesSnapshot(legacy)) = Dialect::Legacy.adapt(event) else {
            panic!()
        };
        let Message::User(user) = &legacy.messages[0] else {
            panic!()
        };
        assert_eq!(
            user.content,
            UserContent::Parts(parts()),
            "only the file part goes"
        );
        let Message::Tool(tool) = &legacy.messages[1] else {
            panic!()
        };
        assert!(matches!(&tool.content, UserContent::Text(s) if s.starts_with("first\n")));
    }

    #[test]
    fn everything_else_passes_both_dialects_unchanged() {
        let events: Vec<Event> = vec![
            TextMessageStart::new("m").into(),
            ToolCallStart::new("c", "tool").into(),
            RunError::with_code("boom", "model_error").into(),
            ReasoningMessageStart::new("r").into(),
            SubagentStarted::new("s", "n").into(),
            ActivitySnapshot::new("a", "kind", serde_json::Map::new()).into(),
            StateSnapshot::new(json!({"a": 1})).into(),
        ];
        for event in events {
            for dialect in both() {
                assert_eq!(dialect.adapt(event.clone()), Some(event.clone()));
            }
        }
    }
}
