//! The error catalogue (`proto-schemas/api/errors.json`) lists exactly the codes the server can
//! emit, tied to the code rather than to hand-kept lists:
//! - HTTP: [`ApiError::catalogue_samples`] holds one value of every variant (an exhaustive match
//!   makes a new variant a compile error until it has one); each sample's code, status and
//!   rendered body are checked against the catalogue and `error-body.schema.json`.
//! - Stream: every `RunErrorCode` (an exhaustive match below), plus the dialect's legacy
//!   `cancelled` code, which must be `RunErrorCode::Cancelled`.

use std::collections::{BTreeMap, BTreeSet};

use agui_agent::RunErrorCode;
use agui_server::error::ApiError;
use axum::response::IntoResponse;
use serde_json::Value;

use crate::common::error_body::assert_valid_error_body;

fn read_json(name: &str) -> Value {
    let path = format!(
        "{}/../../proto-schemas/api/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `code` → catalogue entry, for one section (`http` or `stream`); codes are unique.
fn section(name: &str) -> BTreeMap<String, Value> {
    let mut entries = BTreeMap::new();
    for entry in read_json("errors.json")[name].as_array().unwrap() {
        let code = entry["code"].as_str().unwrap().to_owned();
        assert!(
            entries.insert(code.clone(), entry.clone()).is_none(),
            "{code} is catalogued twice"
        );
    }
    entries
}

/// Every `RunErrorCode`: the list and an exhaustive `match` come from the same names, so a new
/// variant fails to compile here until it is listed.
macro_rules! every {
    ($enum:ident: $($variant:ident),+ $(,)?) => {{
        fn exhaustive(code: $enum) {
            match code {
                $($enum::$variant)|+ => {}
            }
        }
        let all = vec![$($enum::$variant),+];
        all.iter().copied().for_each(exhaustive);
        all
    }};
}

fn every_run_error_code() -> Vec<RunErrorCode> {
    every!(RunErrorCode:
        ModelError,
        ModelUnauthorized,
        ModelRateLimited,
        ModelUnavailable,
        ModelProtocolError,
        ModelTimeout,
        ToolFailed,
        RunTimeout,
        ServerShutdown,
        ProtocolViolation,
        MaxTurns,
        Cancelled,
        Abort,
        Abandoned,
        InternalError,
    )
}

#[tokio::test]
async fn every_http_error_is_catalogued_with_its_status_and_a_valid_body() {
    let catalogue = section("http");
    let samples = ApiError::catalogue_samples();
    let mut emitted = BTreeSet::new();
    for error in samples {
        let code = error.code();
        let status = error.status();
        emitted.insert(code.to_owned());
        let entry = catalogue
            .get(code)
            .unwrap_or_else(|| panic!("{code} ({error:?}) is missing from errors.json"));
        assert_eq!(
            entry["status"].as_u64(),
            Some(u64::from(status.as_u16())),
            "{code}: errors.json says {} but the server answers {status}",
            entry["status"]
        );
        assert!(
            !entry["when"].as_str().unwrap_or_default().is_empty(),
            "{code}: say when it happens"
        );
        // What a client actually receives.
        let response = error.into_response();
        assert_eq!(response.status(), status);
        assert_eq!(response.headers()["content-type"], "application/json");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"], code);
        assert_valid_error_body(&body);
    }
    let listed: BTreeSet<String> = catalogue.keys().cloned().collect();
    assert_eq!(
        listed, emitted,
        "errors.json `http` lists codes the server cannot emit (left only) or misses some"
    );
}

#[test]
fn the_auth_samples_cover_every_auth_code() {
    let sampled: BTreeSet<&str> = ApiError::catalogue_samples()
        .iter()
        .filter(|e| matches!(e, ApiError::Auth(_)))
        .map(ApiError::code)
        .collect();
    let declared: BTreeSet<&str> = agui_auth::AuthError::ALL_CODES.into_iter().collect();
    assert_eq!(sampled, declared);
}

#[test]
fn every_stream_code_is_catalogued_and_nothing_else() {
    let every = every_run_error_code();
    // The agent's own list (used elsewhere) agrees with the exhaustive one.
    assert_eq!(
        every
            .iter()
            .copied()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        RunErrorCode::ALL.len()
    );
    assert!(every.iter().all(|c| RunErrorCode::ALL.contains(c)));
    let emitted: BTreeSet<String> = every.iter().map(|c| c.as_str().to_owned()).collect();
    let listed: BTreeSet<String> = section("stream").into_keys().collect();
    assert_eq!(listed, emitted);
    for code in every {
        assert!(!code.message().trim().is_empty(), "{code:?}");
    }
}

#[test]
fn the_legacy_dialects_cancelled_code_is_the_catalogued_one() {
    // The protocol crate cannot depend on the agent crate, so it spells the code itself.
    assert_eq!(
        agui_protocol::dialect::LEGACY_CANCELLED_CODE,
        RunErrorCode::Cancelled.as_str()
    );
    assert_eq!(
        agui_protocol::dialect::LEGACY_CANCELLED_MESSAGE,
        RunErrorCode::Cancelled.message()
    );
}

#[test]
fn the_schema_validation_rejects_a_bad_body_positive_control() {
    let good = serde_json::json!({"error": "invalid_input", "message": "m", "field": ""});
    assert_valid_error_body(&good);
    for bad in [
        serde_json::json!({"error": "invalid_input"}),
        serde_json::json!({"error": "invalid_input", "message": ""}),
        serde_json::json!({"error": "Bad Code", "message": "m"}),
        serde_json::json!({"error": "x", "message": "m", "extra": 1}),
        serde_json::json!({"error": "x", "message": "m", "field": "no-slash"}),
    ] {
        let caught = std::panic::catch_unwind(|| assert_valid_error_body(&bad)).is_err();
        assert!(caught, "{bad} should be rejected");
    }
}
