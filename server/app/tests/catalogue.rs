//! The error catalogue (`proto-schemas/api/errors.json`) lists exactly the codes the server can
//! emit: every HTTP code (ours and the auth crate's) and every in-stream `RUN_ERROR` code.

use std::collections::BTreeSet;

use agui_agent::RunErrorCode;
use agui_server::error::HTTP_ERROR_CODES;
use serde_json::Value;

fn catalogue() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../proto-schemas/api/errors.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn codes(section: &str) -> BTreeSet<String> {
    catalogue()[section]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_http_code_is_catalogued_and_nothing_else() {
    let listed = codes("http");
    let mut emitted: BTreeSet<String> = HTTP_ERROR_CODES.iter().map(|c| (*c).to_owned()).collect();
    emitted.extend(
        agui_auth::AuthError::ALL_CODES
            .iter()
            .map(|c| (*c).to_owned()),
    );
    assert_eq!(
        listed, emitted,
        "proto-schemas/api/errors.json `http` differs from the server's codes"
    );
}

#[test]
fn every_stream_code_is_catalogued_and_nothing_else() {
    let listed = codes("stream");
    let emitted: BTreeSet<String> = RunErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    assert_eq!(listed, emitted);
}

#[test]
fn every_catalogued_http_entry_has_a_status_and_the_body_schema_names_the_fields() {
    for entry in catalogue()["http"].as_array().unwrap() {
        let status = entry["status"].as_u64().unwrap();
        assert!((400..600).contains(&status), "{entry}");
    }
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../proto-schemas/api/error-body.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(schema["required"], serde_json::json!(["error", "message"]));
}
