//! Bad input gets a JSON error before any stream byte: 415, 400 (+ field), 413, 405, 404,
//! unsupported protocol versions, and RFC 6750 answers for missing or bad credentials. Every
//! rejection has a positive control: the same request without the defect streams.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The JSON error body, checked against `error-body.schema.json` (required members, a
/// non-empty `message`, nothing else).
async fn error_body(response: reqwest::Response) -> Value {
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    crate::common::error_body::assert_valid_error_body(&body);
    body
}

#[tokio::test]
async fn valid_request_streams_positive_control() {
    let server = start().await;
    let response = server
        .post("/chat", Some(&server.token("alice")), &input("hi", None))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn non_json_content_type_gets_415() {
    let server = start().await;
    let response = server
        .http
        .post(format!("{}/chat", server.url))
        .bearer_auth(server.token("alice"))
        .header("content-type", "text/plain")
        .body(input("hi", None).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        error_body(response).await["error"],
        "unsupported_media_type"
    );
    server.stop().await;
}

#[tokio::test]
async fn malformed_json_gets_400_invalid_json() {
    let server = start().await;
    let response = server
        .http
        .post(format!("{}/chat", server.url))
        .bearer_auth(server.token("alice"))
        .header("content-type", "application/json")
        .body("{\"threadId\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_body(response).await["error"], "invalid_json");
    server.stop().await;
}

#[tokio::test]
async fn json_that_is_not_a_run_input_names_the_field() {
    let server = start().await;
    let token = server.token("alice");
    let cases = [
        (json!({"runId": "r", "messages": []}), "/threadId"),
        (
            json!({"threadId": "t", "runId": "r", "messages": [{"id": "m", "role": "wizard", "content": "x"}]}),
            "/messages/0",
        ),
        (
            json!({"threadId": "t", "runId": "r", "messages": "hello"}),
            "/messages",
        ),
    ];
    for (body, pointer) in cases {
        let response = server.post("/chat", Some(&token), &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let error = error_body(response).await;
        assert_eq!(error["error"], "invalid_input");
        let field = error["field"].as_str().unwrap();
        assert!(
            field.starts_with(pointer),
            "{body}: field {field} should start with {pointer}"
        );
        assert!(
            !error["message"].as_str().unwrap().contains("wizard"),
            "values are never echoed"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_body_that_is_not_an_object_gets_invalid_input_at_the_root() {
    let server = start().await;
    let token = server.token("alice");
    for body in [json!([]), json!("x"), json!(3), json!(null), json!(true)] {
        let response = server.post("/chat", Some(&token), &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let error = error_body(response).await;
        assert_eq!(error["error"], "invalid_input", "{body}");
        assert_eq!(error["field"], "", "{body}: the root pointer");
    }
    // Positive control: an object with the same token streams.
    let response = server
        .post("/chat", Some(&token), &input("hi", Some("1.0")))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn unknown_members_are_ignored() {
    let server = start().await;
    let mut body = input("hi", Some("1.0"));
    body["somethingNew"] = json!({"nested": true});
    body["messages"][0]["extra"] = json!(1);
    let events = server.run("alice", &body).await;
    assert_eq!(terminal(&events)["type"], "RUN_FINISHED");
    server.stop().await;
}

#[tokio::test]
async fn body_over_the_limit_gets_413() {
    let server = start_with(|c| c.limits.max_body_bytes = 4096, |b| b).await;
    let token = server.token("alice");
    let mut big = input("hi", None);
    big["state"] = json!({"blob": "x".repeat(5000)});
    let response = server.post("/chat", Some(&token), &big).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_body(response).await["error"], "payload_too_large");
    // Positive control: the same request under the limit streams.
    let mut small = input("hi", None);
    small["state"] = json!({"blob": "x".repeat(100)});
    assert_eq!(
        server.post("/chat", Some(&token), &small).await.status(),
        StatusCode::OK
    );
    server.stop().await;
}

/// The default limit is 8 MiB (CopilotKit resends the whole thread each run): a body of exactly
/// 8 MiB is accepted, one byte more is refused before it is read.
#[tokio::test]
async fn the_default_body_limit_is_8_mib() {
    const LIMIT: usize = 8 * 1024 * 1024;
    let server = start().await;
    let token = server.token("alice");
    let body_of = |len: usize| {
        let mut body = input("hi", None);
        body["state"] = json!({"blob": ""});
        let bare = body.to_string().len();
        body["state"]["blob"] = json!("x".repeat(len - bare));
        let text = body.to_string();
        assert_eq!(text.len(), len);
        text
    };
    let send = |text: String| {
        server
            .http
            .post(format!("{}/chat", server.url))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(text)
            .send()
    };
    let over = send(body_of(LIMIT + 1)).await.unwrap();
    assert_eq!(over.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_body(over).await["error"], "payload_too_large");
    // Positive control: at the limit it streams (the response is dropped unread).
    let at_limit = send(body_of(LIMIT)).await.unwrap();
    assert_eq!(at_limit.status(), StatusCode::OK);
    drop(at_limit);
    server.stop().await;
}

#[tokio::test]
async fn wrong_method_gets_405_and_unknown_path_404_as_json() {
    let server = start().await;
    let response = server
        .http
        .get(format!("{}/chat", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_body(response).await["error"], "method_not_allowed");
    let response = server
        .http
        .get(format!("{}/nope", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_body(response).await["error"], "not_found");
    server.stop().await;
}

/// `protocolVersion` follows its semver major (`Dialect::negotiate`): major 1 is the 1.0
/// dialect, major 0 the 0.0.x one, another major or a non-version is refused.
#[tokio::test]
async fn another_major_protocol_version_gets_400() {
    let server = start().await;
    let token = server.token("alice");
    for version in ["2.0", "banana", "", "1.", "01.0", "1.0.0.0", "v1.0"] {
        let response = server
            .post("/chat", Some(&token), &input("hi", Some(version)))
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{version}");
        assert_eq!(
            error_body(response).await["error"],
            "unsupported_protocol_version"
        );
    }
    for version in ["1.0", "1.3", "1", "1.0.0-rc1", "1.2.3+build.5"] {
        let events = server
            .run_as("/chat", &token, &input("hi", Some(version)))
            .await;
        assert_eq!(
            events[0]["protocolVersion"], "1.0",
            "{version}: the 1.0 dialect"
        );
    }
    // A pre-1.0 version is served the 0.0.x dialect, like a request without one.
    for version in [Some("0.9"), Some("0.0.59"), None] {
        let events = server.run_as("/chat", &token, &input("hi", version)).await;
        assert_eq!(events[0]["type"], "RUN_STARTED");
        assert!(
            events[0].get("protocolVersion").is_none(),
            "{version:?}: the 0.0.x dialect"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn unauthenticated_chat_gets_401_with_a_bare_challenge() {
    let server = start().await;
    let response = server.post("/chat", None, &input("hi", None)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"agui\""
    );
    assert_eq!(error_body(response).await["error"], "unauthorized");
    server.stop().await;
}

#[tokio::test]
async fn another_scheme_gets_the_bare_challenge() {
    let server = start().await;
    let response = server
        .http
        .post(format!("{}/chat", server.url))
        .header("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")
        .json(&input("hi", None))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"agui\""
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_token_gets_invalid_token_and_is_counted_by_reason() {
    let server = start().await;
    let wrong_audience = mint(&server.idp, "alice", "someone-else");
    let response = server
        .post("/chat", Some(&wrong_audience), &input("hi", None))
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer realm=\"agui\", error=\"invalid_token\""),
        "{challenge}"
    );
    assert_eq!(error_body(response).await["error"], "invalid_token");
    let metrics = server
        .http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("agui_auth_failures_total{reason="),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn token_in_forwarded_props_is_accepted_and_removed() {
    let server = start().await;
    let mut body = input("hi", None);
    body["forwardedProps"] =
        json!({"authorization": format!("Bearer {}", server.token("bob")), "tenant": "acme"});
    let response = server.post("/chat", None, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let events = sse_events(&response.text().await.unwrap());
    assert_eq!(text(&events), "Hello, Test bob! You said: \"hi\"");
    let metrics = server
        .http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("agui_authenticated_requests_total{credential_source=\"body\"} 1"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn different_header_and_body_tokens_get_400_invalid_request() {
    let server = start().await;
    let mut body = input("hi", None);
    body["forwardedProps"] = json!({"authorization": server.token("mallory")});
    let response = server
        .post("/chat", Some(&server.token("bob")), &body)
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("error=\"invalid_request\""),
        "{challenge}"
    );
    // Positive control: the same token in both places is fine.
    let token = server.token("bob");
    body["forwardedProps"] = json!({"authorization": format!("Bearer {token}")});
    assert_eq!(
        server.post("/chat", Some(&token), &body).await.status(),
        StatusCode::OK
    );
    server.stop().await;
}

#[tokio::test]
async fn body_source_switched_off_only_the_header_works() {
    let server = start_with(|c| c.auth.accept_body_token = false, |b| b).await;
    let token = server.token("bob");
    let mut body = input("hi", None);
    body["forwardedProps"] = json!({"authorization": token.clone()});
    let response = server.post("/chat", None, &body).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"agui\""
    );
    assert_eq!(
        server
            .post("/chat", Some(&token), &input("hi", None))
            .await
            .status(),
        StatusCode::OK
    );
    server.stop().await;
}

#[tokio::test]
async fn whoami_returns_the_verified_principal() {
    let server = start().await;
    let response = server
        .http
        .get(format!("{}/whoami", server.url))
        .bearer_auth(server.token("carol"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["subject"], "carol");
    assert_eq!(me["issuer"], server.idp.issuer_url());
    assert_eq!(me["name"], "Test carol");
    let response = server
        .http
        .get(format!("{}/whoami", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = start().await;
    let health = server
        .http
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = server
        .http
        .get(format!("{}/readyz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    for _ in 0..3 {
        server.run("alice", &input("/stream 2", None)).await;
    }
    server.run("alice", &input("/fail", None)).await;
    let metrics = server
        .http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap();
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.text().await.unwrap();
    // Runs are counted when their task ends, which can trail the response by a moment: the
    // counters checked here are the ones recorded before the response completes.
    assert!(
        text.contains("agui_http_requests_total{route=\"/chat\",status=\"200\"} 4"),
        "{text}"
    );
    assert!(
        text.contains("agui_authenticated_requests_total{credential_source=\"header\"} 4"),
        "{text}"
    );
    assert!(text.contains("# TYPE agui_active_streams gauge"), "{text}");
    // Runs are counted when their task ends; stopping the server waits for every run task.
    let state = server.state.clone();
    server.stop().await;
    let text = state.metrics_text();
    assert!(
        text.contains("agui_runs_total{outcome=\"success\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("agui_runs_total{outcome=\"error\"} 1"),
        "{text}"
    );
    assert!(text.contains("agui_active_streams 0"), "{text}");
}

/// After a few runs: time to first event and model latency histograms, and tool calls by tool
/// and decision (a viewer's delete is counted as denied).
#[tokio::test]
async fn metrics_have_latency_histograms_and_tool_calls_by_decision() {
    let server = start().await;
    server.run("alice", &input("hello", Some("1.0"))).await;
    server
        .run("alice", &input("/tool whoami {}", Some("1.0")))
        .await;
    let viewer = mint_with_roles(&server.idp, "vera", AUDIENCE, &["viewer"]);
    server
        .run_as("/chat", &viewer, &input("delete document 2", Some("1.0")))
        .await;
    let text = server
        .http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |line: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `{line}` in\n{text}"))
    };
    assert_eq!(
        value("agui_tool_calls_total{tool=\"whoami\",decision=\"allowed\"}"),
        1.0
    );
    assert_eq!(
        value("agui_tool_calls_total{tool=\"delete_document\",decision=\"denied\"}"),
        1.0
    );
    assert_eq!(value("agui_time_to_first_event_seconds_count"), 3.0);
    assert_eq!(
        value("agui_time_to_first_event_seconds_bucket{le=\"+Inf\"}"),
        3.0
    );
    // One model turn for the greeting, two for each tool run (call, then the answer).
    assert_eq!(value("agui_model_latency_seconds_count"), 5.0);
    assert!(value("agui_time_to_first_event_seconds_sum") > 0.0);
    server.stop().await;
}
