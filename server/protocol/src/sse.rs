//! Server-sent events framing (reference §3.2, spec `transports/http-sse.mdx`).
//!
//! One event per frame: `data: <one-line JSON>\n\n`, LF only (a CRLF-framed stream breaks the
//! TS parser, which splits on `/\n\n/`), no `event:`/`id:` lines, exactly what
//! `@ag-ui/encoder` writes. serde_json's compact writer escapes control characters inside
//! strings (`\n` → `\\n`) and emits no whitespace, so the JSON is always one line.

use bytes::Bytes;

use crate::events::Event;

/// `Content-Type` of an SSE response.
pub const CONTENT_TYPE: &str = "text/event-stream";

/// A comment frame sent on silence so proxies and load balancers keep the stream open;
/// consumers MUST tolerate comment lines (spec `http-sse.mdx`).
pub const KEEPALIVE: &[u8] = b": keepalive\n\n";

const DATA_PREFIX: &[u8] = b"data: ";
const FRAME_END: &[u8] = b"\n\n";

/// Appends one SSE frame for `event` to `buf`, serializing straight into it (no intermediate
/// `String`).
///
/// # Panics
///
/// Never in practice: serializing an [`Event`] cannot fail, since every map key is a string
/// and `serde_json::Value` cannot hold a non-finite number; the `expect` documents that.
pub fn encode_into(event: &Event, buf: &mut Vec<u8>) {
    buf.extend_from_slice(DATA_PREFIX);
    if !write_content(event, buf) {
        serde_json::to_writer(&mut *buf, event)
            .expect("an Event always serializes: string keys only, finite numbers only");
    }
    buf.extend_from_slice(FRAME_END);
}

/// Writes the JSON of a content event (`TEXT_MESSAGE_CONTENT`, `TOOL_CALL_ARGS`,
/// `REASONING_MESSAGE_CONTENT`) without a `rawEvent` or `metadata` straight into `buf`, byte for
/// byte what serde writes (the property test `the_sse_fast_path_writes_what_serde_writes`
/// holds it to that); false, with nothing written, for any other event.
///
/// These are almost every event of a streamed reply, and serde's general path spends most of
/// their encoding on what never varies: the internally tagged `type`, the flattened base
/// fields' buffering, and escaping the keys. Here only the two strings that can need it are
/// escaped (serde_json's own escaping, so the bytes cannot differ).
fn write_content(event: &Event, buf: &mut Vec<u8>) -> bool {
    let (head, id, delta, subagent, base) = match event {
        Event::TextMessageContent(e) => (
            &br#"{"type":"TEXT_MESSAGE_CONTENT","messageId":"#[..],
            &*e.message_id,
            &e.delta,
            &e.subagent_run_id,
            &e.base,
        ),
        Event::ToolCallArgs(e) => (
            &br#"{"type":"TOOL_CALL_ARGS","toolCallId":"#[..],
            &*e.tool_call_id,
            &e.delta,
            &e.subagent_run_id,
            &e.base,
        ),
        Event::ReasoningMessageContent(e) => (
            &br#"{"type":"REASONING_MESSAGE_CONTENT","messageId":"#[..],
            &*e.message_id,
            &e.delta,
            &e.subagent_run_id,
            &e.base,
        ),
        _ => return false,
    };
    if base.raw_event.is_some() || base.metadata.is_some() {
        return false;
    }
    buf.extend_from_slice(head);
    write_str(id, buf);
    buf.extend_from_slice(br#","delta":"#);
    write_str(delta, buf);
    if let Some(subagent) = subagent {
        buf.extend_from_slice(br#","subagentRunId":"#);
        write_str(subagent, buf);
    }
    if let Some(timestamp) = base.timestamp {
        buf.extend_from_slice(br#","timestamp":"#);
        buf.extend_from_slice(itoa::Buffer::new().format(timestamp).as_bytes());
    }
    buf.push(b'}');
    true
}

/// `s` as a JSON string, escaped exactly as serde_json escapes it.
fn write_str(s: &str, buf: &mut Vec<u8>) {
    serde_json::to_writer(&mut *buf, s).expect("writing to a Vec cannot fail");
}

/// Appends one SSE frame around `json`: an event already serialized as compact JSON (by
/// [`encode_into`] or `serde_json::to_string`, so it has no line break), e.g. a stored one.
pub fn frame_json_into(json: &str, buf: &mut Vec<u8>) {
    buf.extend_from_slice(DATA_PREFIX);
    buf.extend_from_slice(json.as_bytes());
    buf.extend_from_slice(FRAME_END);
}

/// One SSE frame for `event` as `Bytes`, ready for a response body.
pub fn encode(event: &Event) -> Bytes {
    // Most frames are small deltas; 128 bytes avoids regrowth for them.
    let mut buf = Vec::with_capacity(128);
    encode_into(event, &mut buf);
    Bytes::from(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::*;
    use serde_json::json;

    #[test]
    fn text_message_start_matches_the_reference_bytes() {
        let event = Event::from(TextMessageStart::new("m1")).with_timestamp(1_700_000_000_000);
        assert_eq!(
            &encode(&event)[..],
            b"data: {\"type\":\"TEXT_MESSAGE_START\",\"messageId\":\"m1\",\"role\":\"assistant\",\"timestamp\":1700000000000}\n\n"
        );
    }

    #[test]
    fn newlines_in_content_stay_escaped_on_one_line() {
        let event = Event::from(TextMessageContent::new("m1", "a\nb\r\nc"));
        let frame = encode(&event);
        assert_eq!(
            &frame[..],
            b"data: {\"type\":\"TEXT_MESSAGE_CONTENT\",\"messageId\":\"m1\",\"delta\":\"a\\nb\\r\\nc\"}\n\n"
        );
        // Exactly one LF pair, at the end, and no CR anywhere.
        assert_eq!(frame.iter().filter(|&&b| b == b'\n').count(), 2);
        assert!(!frame.contains(&b'\r'));
    }

    #[test]
    fn encode_into_appends_frames_back_to_back() {
        let mut buf = KEEPALIVE.to_vec();
        encode_into(&Event::from(RunStarted::new("t", "r")), &mut buf);
        encode_into(&Event::from(RunFinished::new("t", "r")), &mut buf);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            ": keepalive\n\n\
             data: {\"type\":\"RUN_STARTED\",\"threadId\":\"t\",\"runId\":\"r\"}\n\n\
             data: {\"type\":\"RUN_FINISHED\",\"threadId\":\"t\",\"runId\":\"r\"}\n\n"
        );
    }

    #[test]
    fn nested_json_values_are_compact() {
        let event = Event::from(StateSnapshot::new(json!({"a": [1, {"b": "x y"}]})));
        assert_eq!(
            &encode(&event)[..],
            b"data: {\"type\":\"STATE_SNAPSHOT\",\"snapshot\":{\"a\":[1,{\"b\":\"x y\"}]}}\n\n"
        );
    }

    #[test]
    fn constants_are_exact() {
        assert_eq!(KEEPALIVE, b": keepalive\n\n");
        assert_eq!(CONTENT_TYPE, "text/event-stream");
    }
}
