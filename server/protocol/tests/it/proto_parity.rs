//! Byte parity of the protobuf encoder with `@ag-ui/proto@1.0.0` for all 31 event types.
//!
//! `tests/fixtures/proto/events.json` is the corpus; `expected.json` holds, per corpus entry,
//! the frame the official packages produce (`frameHex`) and what their decoder reads back
//! from it (`decoded`). Both files are committed; regenerate `expected.json` with
//! `node tests/conformance/v1/gen-proto-fixtures.mjs` after editing the corpus
//! (proto-schemas/README.md).
//!
//! The corpus is read from `events.json` rather than from `expected.json`'s copy because
//! `JSON.parse` has already moved integer-like object keys to the front there; the encoder must
//! do that reordering itself, and only the original text can show that it does.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use agui_protocol::proto::{decode_frame, encode_frame, from_pb};
use agui_protocol::{Event, EventType};
use serde_json::Value;

const CORPUS: &str = include_str!("../fixtures/proto/events.json");
const EXPECTED: &str = include_str!("../fixtures/proto/expected.json");

struct Case {
    index: usize,
    kind: String,
    json: Value,
    frame_hex: String,
    decoded: Value,
}

fn cases() -> Vec<Case> {
    let corpus: Vec<Value> = serde_json::from_str(CORPUS).expect("events.json is a JSON array");
    let expected: Vec<Value> =
        serde_json::from_str(EXPECTED).expect("expected.json is a JSON array");
    assert_eq!(
        corpus.len(),
        expected.len(),
        "expected.json is stale: regenerate it with `node tests/conformance/v1/gen-proto-fixtures.mjs`"
    );
    corpus
        .into_iter()
        .zip(expected)
        .enumerate()
        .map(|(index, (json, mut fixture))| {
            // Catches a corpus edited without regenerating. Value equality ignores key order,
            // and numbers are compared as the doubles JavaScript parsed them to.
            assert_eq!(
                as_doubles(fixture["event"].clone()),
                as_doubles(json.clone()),
                "corpus entry {index} differs from expected.json: regenerate the fixtures"
            );
            Case {
                index,
                kind: json["type"]
                    .as_str()
                    .expect("every event has a type")
                    .to_owned(),
                frame_hex: fixture["frameHex"].as_str().expect("frameHex").to_owned(),
                decoded: fixture["decoded"].take(),
                json,
            }
        })
        .collect()
}

/// Every number as the double `JSON.parse` makes of it.
fn as_doubles(value: Value) -> Value {
    match value {
        Value::Number(n) => n.as_f64().map_or(Value::Null, Value::from),
        Value::Array(items) => items.into_iter().map(as_doubles).collect(),
        Value::Object(map) => map.into_iter().map(|(k, v)| (k, as_doubles(v))).collect(),
        other => other,
    }
}

fn parse(case: &Case) -> Result<Event, String> {
    serde_json::from_value(case.json.clone())
        .map_err(|e| format!("#{} {}: not a valid Event: {e}", case.index, case.kind))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("frameHex is hex"))
        .collect()
}

fn fail_on(failures: Vec<String>, what: &str, total: usize) {
    assert!(
        failures.is_empty(),
        "{} of {total} {what}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_covers_all_31_event_types() {
    let covered: BTreeSet<String> = cases().into_iter().map(|c| c.kind).collect();
    let missing: Vec<&str> = EventType::ALL
        .iter()
        .map(|t| t.as_str())
        .filter(|t| !covered.contains(*t))
        .collect();
    assert!(
        missing.is_empty(),
        "event types without a parity fixture: {missing:?}"
    );
    assert_eq!(
        covered.len(),
        EventType::ALL.len(),
        "unknown types in the corpus: {covered:?}"
    );
}

#[test]
fn every_event_encodes_to_the_reference_bytes() {
    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        let event = match parse(case) {
            Ok(event) => event,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let ours = hex(&encode_frame(&event));
        if ours != case.frame_hex {
            let at = ours
                .bytes()
                .zip(case.frame_hex.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(ours.len().min(case.frame_hex.len()))
                / 2;
            failures.push(format!(
                "#{} {}: first difference at byte {at}\n  expected {}\n  actual   {ours}",
                case.index, case.kind, case.frame_hex
            ));
        }
    }
    fail_on(
        failures,
        "events encode differently from @ag-ui/proto",
        cases.len(),
    );
}

#[test]
fn decoding_the_reference_frames_matches_the_reference_decoder() {
    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        let bytes = unhex(&case.frame_hex);
        let result = decode_frame(&bytes).and_then(|(message, used)| {
            assert_eq!(used, bytes.len(), "#{}: one frame per fixture", case.index);
            from_pb(message)
        });
        match result {
            Ok(event) => {
                let ours = serde_json::to_value(&event).expect("events serialize");
                if ours != case.decoded {
                    failures.push(format!(
                        "#{} {}:\n  reference {}\n  ours      {ours}",
                        case.index, case.kind, case.decoded
                    ));
                }
            }
            Err(e) => failures.push(format!("#{} {}: {e}", case.index, case.kind)),
        }
    }
    fail_on(
        failures,
        "frames decode differently from @ag-ui/proto",
        cases.len(),
    );
}

#[test]
fn lossless_events_round_trip_through_a_frame() {
    let cases = cases();
    let mut failures = Vec::new();
    let mut lossless = 0;
    for case in &cases {
        // The mapping is lossless for an event exactly when the reference decoder gives the
        // same JSON back (e.g. RUN_STARTED.input gains `resume: []`, so it is not).
        if case.decoded != case.json {
            continue;
        }
        lossless += 1;
        let event = match parse(case) {
            Ok(event) => event,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let frame = encode_frame(&event);
        match decode_frame(&frame).and_then(|(message, _)| from_pb(message)) {
            Ok(back) if back == event => {}
            Ok(back) => failures.push(format!(
                "#{} {}: came back as {}",
                case.index,
                case.kind,
                serde_json::to_string(&back).unwrap_or_default()
            )),
            Err(e) => failures.push(format!("#{} {}: {e}", case.index, case.kind)),
        }
    }
    // Guards against a corpus (or reference) change that would leave this test checking nothing.
    assert!(
        lossless * 10 >= cases.len() * 8,
        "only {lossless} of {} lossless",
        cases.len()
    );
    fail_on(
        failures,
        "lossless events changed in a round trip",
        lossless,
    );
}
