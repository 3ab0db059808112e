//! Tools gated per user, shared state, named agents and frontend-tool rules, through the real
//! server with the scripted model driving the calls.

use crate::common::*;
use agui_server::agents::AgentConfig;
use serde_json::{Value, json};

#[tokio::test]
async fn a_viewer_cannot_delete_even_when_the_model_asks_and_the_document_survives() {
    let server = start().await;
    let viewer = mint_with_roles(&server.idp, "vera", AUDIENCE, &["viewer"]);
    let events = server
        .run_as("/chat", &viewer, &input("Delete document 2", Some("1.0")))
        .await;
    assert_eq!(tool_result(&events)["error"], "tool_not_allowed");
    assert_eq!(
        terminal(&events)["type"],
        "RUN_FINISHED",
        "a denial is a result the model reads, not a failure"
    );
    // Checked server-side: the document still exists.
    let vera = server
        .state
        .auth
        .authenticate(&viewer, agui_auth::CredentialSource::Header)
        .await
        .unwrap();
    assert!(server.state.documents.get(&vera, 2).is_some());
    // And through the server: listing still shows it.
    let events = server
        .run_as("/chat", &viewer, &input("list my documents", Some("1.0")))
        .await;
    let ids: Vec<u64> = tool_result(&events)["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3]);
    server.stop().await;
}

#[tokio::test]
async fn an_admin_can_delete_positive_control() {
    let server = start().await;
    let admin = mint_with_roles(&server.idp, "ada", AUDIENCE, &["admin"]);
    let events = server
        .run_as("/chat", &admin, &input("delete document 2", Some("1.0")))
        .await;
    assert_eq!(tool_result(&events), json!({"deleted": 2}));
    let events = server
        .run_as("/chat", &admin, &input("list my documents", Some("1.0")))
        .await;
    let ids: Vec<u64> = tool_result(&events)["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 3]);
    server.stop().await;
}

#[tokio::test]
async fn user_a_never_sees_user_b_documents() {
    let server = start().await;
    let bob = server.token("bob");
    let alice = server.token("alice");
    let events = server
        .run_as("/chat", &bob, &input("show document 1", Some("1.0")))
        .await;
    assert!(
        tool_result(&events)["body"]
            .as_str()
            .unwrap()
            .contains("owner: Test bob")
    );
    for message in [
        "show document 1",
        "show document 2",
        "show document 3",
        "list my documents",
    ] {
        let events = server
            .run_as("/chat", &alice, &input(message, Some("1.0")))
            .await;
        let text = tool_result(&events).to_string();
        assert!(!text.contains("bob"), "{message}: {text}");
    }
    let events = server
        .run_as("/chat", &alice, &input("show document 99", Some("1.0")))
        .await;
    assert_eq!(tool_result(&events)["error"], "not_found");
    server.stop().await;
}

#[tokio::test]
async fn denied_tools_are_not_offered_to_the_model() {
    let server = start().await;
    let agent = &server.state.agents["default"];
    let viewer = server
        .state
        .auth
        .authenticate(
            &mint_with_roles(&server.idp, "v", AUDIENCE, &["viewer"]),
            agui_auth::CredentialSource::Header,
        )
        .await
        .unwrap();
    let admin = server
        .state
        .auth
        .authenticate(
            &mint_with_roles(&server.idp, "a", AUDIENCE, &["admin"]),
            agui_auth::CredentialSource::Header,
        )
        .await
        .unwrap();
    let names = |p| {
        agent
            .tools
            .offered_to(p)
            .into_iter()
            .map(|t| t.name.clone())
            .collect::<Vec<_>>()
    };
    assert!(!names(&viewer).contains(&"delete_document".to_owned()));
    assert!(names(&admin).contains(&"delete_document".to_owned()));
    server.stop().await;
}

#[tokio::test]
async fn set_preference_sends_a_baseline_snapshot_then_a_delta() {
    let server = start().await;
    let mut body = input("set my theme to dark", Some("1.0"));
    body["state"] = json!({"counter": 1});
    let events = server.run("alice", &body).await;
    let kinds = types(&events);
    let snapshot = kinds
        .iter()
        .position(|t| *t == "STATE_SNAPSHOT")
        .expect("a snapshot");
    let delta = kinds
        .iter()
        .position(|t| *t == "STATE_DELTA")
        .expect("a delta");
    assert!(snapshot < delta);
    assert_eq!(
        events[snapshot]["snapshot"],
        json!({"counter": 1}),
        "the baseline is the client's state"
    );
    assert_eq!(
        events[delta]["delta"],
        json!([{"op": "add", "path": "/preferences", "value": {"theme": "dark"}}])
    );
    assert_eq!(terminal(&events)["type"], "RUN_FINISHED");
    // Positive control: a run whose tools change nothing sends no state events.
    let events = server.run("alice", &input("who am i", Some("1.0"))).await;
    assert!(!types(&events).iter().any(|t| t.starts_with("STATE_")));
    server.stop().await;
}

#[tokio::test]
async fn arguments_that_do_not_match_the_schema_never_reach_the_tool() {
    let server = start().await;
    let admin = mint_with_roles(&server.idp, "ada", AUDIENCE, &["admin"]);
    let events = server
        .run_as(
            "/chat",
            &admin,
            &input("/tool delete_document {\"id\": \"2\"}", Some("1.0")),
        )
        .await;
    let result = tool_result(&events);
    assert_eq!(result["error"], "invalid_arguments");
    assert!(result["message"].as_str().unwrap().contains("/id"));
    let events = server
        .run_as("/chat", &admin, &input("list my documents", Some("1.0")))
        .await;
    assert_eq!(
        tool_result(&events)["documents"].as_array().unwrap().len(),
        3,
        "nothing was deleted"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_frontend_tool_named_like_a_backend_tool_is_refused_before_the_stream() {
    let server = start().await;
    let mut body = input("hi", Some("1.0"));
    body["tools"] = json!([{"name": "ok_tool", "description": "fine"}, {"name": "whoami", "description": "clash"}]);
    let response = server
        .post("/chat", Some(&server.token("alice")), &body)
        .await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"], "tool_name_conflict");
    assert_eq!(error["field"], "/tools/1/name");
    body["tools"] = json!([{"name": "ok_tool", "description": "fine"}]);
    assert_eq!(
        server
            .post("/chat", Some(&server.token("alice")), &body)
            .await
            .status(),
        200
    );
    server.stop().await;
}

#[tokio::test]
async fn named_agents_have_their_own_tools_and_access_rules() {
    let server = start_with(
        |c| {
            c.agents.insert(
                "support".into(),
                AgentConfig {
                    tools: Some(vec!["whoami".into()]),
                    ..AgentConfig::default()
                },
            );
            c.agents.insert(
                "admin-desk".into(),
                AgentConfig {
                    required_roles: vec!["admin".into()],
                    ..AgentConfig::default()
                },
            );
        },
        |b| b,
    )
    .await;
    let viewer = mint_with_roles(&server.idp, "vera", AUDIENCE, &["viewer"]);
    let admin = mint_with_roles(&server.idp, "ada", AUDIENCE, &["admin"]);

    // Unknown agent → 404 (after authentication: agent names are not revealed to strangers).
    let response = server
        .post("/agents/nope/chat", Some(&viewer), &input("hi", None))
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "agent_not_found"
    );
    assert_eq!(
        server
            .post("/agents/nope/chat", None, &input("hi", None))
            .await
            .status(),
        401
    );

    // Not allowed → 403 insufficient_scope; the admin may.
    let response = server
        .post("/agents/admin-desk/chat", Some(&viewer), &input("hi", None))
        .await;
    assert_eq!(response.status(), 403);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"insufficient_scope\"")
    );
    let events = server
        .run_as("/agents/admin-desk/chat", &admin, &input("hi", None))
        .await;
    assert_eq!(terminal(&events)["type"], "RUN_FINISHED");

    // Per-agent tools: `support` only has whoami, so the document tool is unknown there.
    let events = server
        .run_as(
            "/agents/support/chat",
            &viewer,
            &input("list my documents", None),
        )
        .await;
    assert_eq!(tool_result(&events)["error"], "unknown_tool");
    let events = server
        .run_as("/agents/support/chat", &viewer, &input("who am i", None))
        .await;
    assert_eq!(tool_result(&events)["subject"], "vera");
    // The default agent still has every tool.
    let events = server
        .run_as(
            "/agents/default/chat",
            &viewer,
            &input("list my documents", None),
        )
        .await;
    assert!(tool_result(&events)["documents"].is_array());
    server.stop().await;
}
