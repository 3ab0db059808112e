//! CopilotKit's runtime protocol under `/copilotkit`, over real HTTP: info, run, connect
//! (replay and live follow), stop, the thread endpoints and the single-route transport, with
//! the owner rule on every one of them. (The headless `@copilotkit/core` and browser suites
//! drive the same routes with CopilotKit's own client: web/e2e.)

use std::time::Duration;

use agui_server::config::AgentConfig;
use agui_server::store::{AuditFilter, AuditKind, RunOutcome};
use serde_json::{Value, json};

use crate::common::*;

/// A run body as CopilotKit's client sends it: the whole thread, the token (when given) in
/// `forwardedProps.authorization` (what the app's `properties` become), no `protocolVersion`.
fn body(thread: &str, run: &str, text: &str, token: Option<&str>) -> Value {
    let mut body = json!({
        "threadId": thread,
        "runId": run,
        "messages": [{"id": format!("{run}-u"), "role": "user", "content": text}],
        "tools": [],
        "context": [],
        "state": {},
        "forwardedProps": {},
    });
    if let Some(token) = token {
        body["forwardedProps"]["authorization"] = json!(token);
    }
    body
}

/// A connect body: CopilotKit sends a full RunAgentInput with a fresh run id and no messages.
fn connect_body(thread: &str, token: Option<&str>) -> Value {
    let mut body = body(thread, "connect-probe", "", token);
    body["messages"] = json!([]);
    body
}

async fn post(
    server: &TestServer,
    path: &str,
    bearer: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut request = server
        .http
        .post(format!("{}/copilotkit{path}", server.url))
        .json(body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("the server answers")
}

async fn get(server: &TestServer, path: &str, bearer: Option<&str>) -> reqwest::Response {
    let mut request = server.http.get(format!("{}/copilotkit{path}", server.url));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("the server answers")
}

/// The events of a replay: several runs in one stream, so each run is checked on its own
/// (what the client does: it skips whole-stream verification on connect).
fn replay_events(text: &str) -> Vec<Value> {
    let frames: Vec<&str> = text
        .split("\n\n")
        .filter(|f| !f.is_empty() && !f.starts_with(':'))
        .collect();
    let mut runs: Vec<String> = Vec::new();
    for frame in frames {
        if frame.contains("\"type\":\"RUN_STARTED\"") || runs.is_empty() {
            runs.push(String::new());
        }
        let run = runs.last_mut().unwrap();
        run.push_str(frame);
        run.push_str("\n\n");
    }
    runs.iter().flat_map(|run| sse_events(run)).collect()
}

fn joined_text(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "TEXT_MESSAGE_CONTENT")
        .map(|e| e["delta"].as_str().unwrap())
        .collect()
}

async fn run_record(
    server: &TestServer,
    thread: &str,
    run: &str,
) -> Option<agui_server::store::RunRecord> {
    let connected = server.state.backends.connected().unwrap();
    connected.log.flush().await;
    connected.store().get_run(thread, run).await.unwrap()
}

/// Waits (bounded) until the run's record says how it ended.
async fn outcome(server: &TestServer, thread: &str, run: &str) -> Option<RunOutcome> {
    for _ in 0..400 {
        if let Some(outcome) = run_record(server, thread, run)
            .await
            .and_then(|r| r.outcome)
        {
            return Some(outcome);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    None
}

#[tokio::test]
async fn info_lists_the_agents_the_caller_may_run_and_refuses_a_bad_credential() {
    let server = start_with(
        |c| {
            c.agents.insert(
                "admin-desk".into(),
                AgentConfig {
                    required_roles: vec!["admin".into()],
                    description: Some("For admins".into()),
                    ..AgentConfig::default()
                },
            );
        },
        |b| b,
    )
    .await;
    let agents = |info: &Value| {
        let mut ids: Vec<String> = info["agents"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        ids.sort();
        ids
    };
    // Before any token exists in the app: the agents that need nothing.
    let anonymous: Value = get(&server, "/info", None).await.json().await.unwrap();
    assert_eq!(agents(&anonymous), ["default"]);
    assert_eq!(anonymous["mode"], "sse");
    assert_eq!(anonymous["telemetryDisabled"], true);
    assert_eq!(anonymous["threadEndpoints"]["mutations"], false);
    let viewer = mint_with_roles(&server.idp, "vera", AUDIENCE, &["viewer"]);
    let admin = mint_with_roles(&server.idp, "ada", AUDIENCE, &["admin"]);
    let as_viewer: Value = get(&server, "/info", Some(&viewer))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(agents(&as_viewer), ["default"]);
    let as_admin: Value = get(&server, "/info", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(agents(&as_admin), ["admin-desk", "default"]);
    assert_eq!(
        as_admin["agents"]["admin-desk"]["description"],
        "For admins"
    );
    // A credential that does not verify is refused, not taken for none.
    let bad = mint(&server.idp, "mallory", "another-audience");
    let refused = get(&server, "/info", Some(&bad)).await;
    assert_eq!(refused.status(), 401);
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    server.stop().await;
}

#[tokio::test]
async fn a_run_with_the_token_in_properties_replays_on_connect_without_the_token() {
    let server = start().await;
    let alice = server.token("alice");
    let run = post(
        &server,
        "/agent/default/run",
        None,
        &body("t-replay", "r1", "hello there", Some(&alice)),
    )
    .await;
    assert_eq!(run.status(), 200);
    let live = sse_events(&run.text().await.unwrap());
    assert_eq!(terminal(&live)["type"], "RUN_FINISHED");
    let reply = joined_text(&live);
    assert!(reply.contains("hello there"), "{reply}");

    // A reload: a new connect with the same credential path (properties only).
    let connect = post(
        &server,
        "/agent/default/connect",
        None,
        &connect_body("t-replay", Some(&alice)),
    )
    .await;
    assert_eq!(connect.status(), 200);
    assert_eq!(connect.headers()["content-type"], "text/event-stream");
    let text = connect.text().await.unwrap();
    assert!(!text.contains(&alice), "the token is never replayed");
    let replay = replay_events(&text);
    assert_eq!(
        types(&replay),
        [
            "RUN_STARTED",
            "TEXT_MESSAGE_START",
            "TEXT_MESSAGE_CONTENT",
            "TEXT_MESSAGE_END",
            "RUN_FINISHED"
        ],
        "compacted: one content event per reply"
    );
    assert_eq!(joined_text(&replay), reply);
    // The user's message comes back with its run (how CopilotKit rebuilds it).
    let input = &replay[0]["input"];
    assert_eq!(input["messages"][0]["content"], "hello there");
    assert!(input.get("forwardedProps").is_none());
    server.stop().await;
}

#[tokio::test]
async fn connect_is_the_owners_a_new_thread_replays_nothing_and_anyone_else_gets_404() {
    let server = start().await;
    let alice = server.token("alice");
    let bob = server.token("bob");
    let _ = post(
        &server,
        "/agent/default/run",
        Some(&alice),
        &body("t-owned", "r1", "alice's secret", None),
    )
    .await
    .text()
    .await;
    // A thread nobody ran on: 200 and an empty stream (not an error the client would raise).
    let fresh = post(
        &server,
        "/agent/default/connect",
        Some(&bob),
        &connect_body("t-fresh", None),
    )
    .await;
    assert_eq!(fresh.status(), 200);
    assert_eq!(fresh.text().await.unwrap(), "");
    // Someone else's: 404, as a run would get, and nothing of it.
    let theirs = post(
        &server,
        "/agent/default/connect",
        Some(&bob),
        &connect_body("t-owned", None),
    )
    .await;
    assert_eq!(theirs.status(), 404);
    let text = theirs.text().await.unwrap();
    assert!(
        text.contains("thread_not_found") && !text.contains("secret"),
        "{text}"
    );
    // The control: the owner gets it.
    let mine = post(
        &server,
        "/agent/default/connect",
        Some(&alice),
        &connect_body("t-owned", None),
    )
    .await;
    assert!(mine.text().await.unwrap().contains("alice's secret"));
    // The refusal is audited.
    let connected = server.state.backends.connected().unwrap();
    connected.log.flush().await;
    let denials = connected
        .store()
        .query_audit(&AuditFilter {
            kinds: vec![AuditKind::AccessDenied],
            thread_id: Some("t-owned".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(denials.len(), 1);
    assert_eq!(denials[0].subject.as_deref(), Some("bob"));
    assert_eq!(denials[0].detail["action"], "connect");
    server.stop().await;
}

/// CopilotKit's `useThreads` asks for one agent's threads (`?agentId=`): each thread is listed
/// under the agent of its latest run, and only under it.
#[tokio::test]
async fn the_thread_list_names_each_threads_agent_and_keeps_to_the_one_asked_for() {
    let server = start_with(
        |c| {
            c.agents.insert("research".into(), AgentConfig::default());
        },
        |b| b,
    )
    .await;
    let alice = server.token("alice");
    for (agent, thread) in [("default", "t-chat"), ("research", "t-study")] {
        let run = post(
            &server,
            &format!("/agent/{agent}/run"),
            Some(&alice),
            &body(thread, "r1", "hello", None),
        )
        .await;
        assert_eq!(run.status(), 200, "{agent}");
        let _ = run.text().await;
    }
    let listed = |query: &'static str| {
        let (server, alice) = (&server, &alice);
        async move {
            let list: Value = get(server, &format!("/threads{query}"), Some(alice))
                .await
                .json()
                .await
                .unwrap();
            let mut pairs: Vec<(String, String)> = list["threads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    let field = |name: &str| t[name].as_str().unwrap().to_owned();
                    (field("id"), field("agentId"))
                })
                .collect();
            pairs.sort();
            pairs
        }
    };
    let pair = |id: &str, agent: &str| (id.to_owned(), agent.to_owned());
    // The control: without the parameter, both threads, each with its own agent.
    assert_eq!(
        listed("").await,
        [pair("t-chat", "default"), pair("t-study", "research")]
    );
    assert_eq!(
        listed("?agentId=default").await,
        [pair("t-chat", "default")]
    );
    assert_eq!(
        listed("?agentId=research&limit=10").await,
        [pair("t-study", "research")]
    );
    assert!(listed("?agentId=nobody").await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn another_user_can_neither_run_on_stop_nor_read_the_owners_thread() {
    let server = start().await;
    let alice = server.token("alice");
    let bob = server.token("bob");
    let _ = post(
        &server,
        "/agent/default/run",
        Some(&alice),
        &body("t-private", "r1", "alice's plan", None),
    )
    .await
    .text()
    .await;
    let run = post(
        &server,
        "/agent/default/run",
        Some(&bob),
        &body("t-private", "r2", "hi", None),
    )
    .await;
    assert_eq!(run.status(), 404);
    let stop = post(
        &server,
        "/agent/default/stop/t-private",
        Some(&bob),
        &json!({}),
    )
    .await;
    assert_eq!(stop.status(), 404);
    for path in ["messages", "events", "state"] {
        let read = get(&server, &format!("/threads/t-private/{path}"), Some(&bob)).await;
        assert_eq!(read.status(), 404, "{path}");
    }
    let bobs: Value = get(&server, "/threads", Some(&bob))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bobs["threads"], json!([]));
    // The controls: Alice lists and reads it.
    let hers: Value = get(&server, "/threads", Some(&alice))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(hers["threads"][0]["id"], "t-private");
    assert_eq!(hers["threads"][0]["name"], "alice's plan");
    let messages: Value = get(&server, "/threads/t-private/messages", Some(&alice))
        .await
        .json()
        .await
        .unwrap();
    let roles: Vec<&str> = messages["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant"]);
    assert!(
        messages["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("alice's plan")
    );
    server.stop().await;
}

#[tokio::test]
async fn connecting_during_a_run_joins_it_and_ends_with_the_whole_reply() {
    let server = start().await;
    let alice = server.token("alice");
    let mut run = post(
        &server,
        "/agent/default/run",
        Some(&alice),
        &body("t-live", "r1", "/stream 30 4 40", None),
    )
    .await;
    assert_eq!(run.status(), 200);
    let _ = run.chunk().await.unwrap();
    let joined = post(
        &server,
        "/agent/default/connect",
        Some(&alice),
        &connect_body("t-live", None),
    )
    .await;
    assert_eq!(joined.status(), 200);
    // The connect ends by itself when the run does (it does not hang open).
    let events = replay_events(
        &tokio::time::timeout(HANG_GUARD, joined.text())
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(terminal(&events)["type"], "RUN_FINISHED");
    let expected: String = (0..30)
        .map(|i| ((b'a' + (i % 26) as u8) as char).to_string().repeat(4))
        .collect();
    assert_eq!(joined_text(&events), expected);
    drop(run);
    server.stop().await;
}

#[tokio::test]
async fn a_run_outlives_its_client_and_a_reconnect_follows_it_to_the_end() {
    let server = start().await;
    let alice = server.token("alice");
    let mut run = post(
        &server,
        "/agent/default/run",
        Some(&alice),
        &body("t-reload", "r1", "/stream 20 4 40", None),
    )
    .await;
    let _ = run.chunk().await.unwrap();
    // The browser reloads: its run request goes away.
    drop(run);
    let again = post(
        &server,
        "/agent/default/connect",
        Some(&alice),
        &connect_body("t-reload", None),
    )
    .await;
    let events = replay_events(&again.text().await.unwrap());
    assert_eq!(terminal(&events)["type"], "RUN_FINISHED");
    assert_eq!(joined_text(&events).len(), 80);
    assert_eq!(
        outcome(&server, "t-reload", "r1").await,
        Some(RunOutcome::Success)
    );
    server.stop().await;
}

#[tokio::test]
async fn a_stop_ends_the_run_its_stream_closes_and_it_is_recorded_cancelled() {
    let server = start().await;
    let alice = server.token("alice");
    let mut run = post(
        &server,
        "/agent/default/run",
        Some(&alice),
        &body("t-stop", "r1", "/stream 200 4 50", None),
    )
    .await;
    let _ = run.chunk().await.unwrap();
    // A run id that is not the active one stops nothing.
    let other: Value = post(
        &server,
        "/agent/default/stop/t-stop",
        Some(&alice),
        &json!({"runId": "zz"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        other,
        json!({"stopped": false, "message": "Run 'zz' is not the active run for thread 't-stop'."})
    );
    let stopped: Value = post(
        &server,
        "/agent/default/stop/t-stop",
        Some(&alice),
        &json!({"runId": "r1"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(stopped["stopped"], true);
    assert_eq!(stopped["interrupt"]["code"], "STOPPED");
    // The run's own stream ends (the Stop button would stay stuck otherwise).
    let mut rest = String::new();
    while let Some(chunk) = tokio::time::timeout(HANG_GUARD, run.chunk())
        .await
        .unwrap()
        .unwrap()
    {
        rest.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        rest.contains(r#""type":"RUN_ERROR""#) && rest.contains(r#""code":"cancelled""#),
        "{rest}"
    );
    assert_eq!(
        outcome(&server, "t-stop", "r1").await,
        Some(RunOutcome::Cancelled)
    );
    // Nothing runs any more.
    let again: Value = post(
        &server,
        "/agent/default/stop/t-stop",
        Some(&alice),
        &json!({}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(again["stopped"], false);
    // Replayed, the stop is `abort`: CopilotKit does not raise it again on every reload.
    let replay = post(
        &server,
        "/agent/default/connect",
        Some(&alice),
        &connect_body("t-stop", None),
    )
    .await
    .text()
    .await
    .unwrap();
    let events = replay_events(&replay);
    assert_eq!(terminal(&events)["code"], "abort");
    // Stop bodies other than {} / {runId} are refused.
    for bad in [json!({"runid": "r1"}), json!({"runId": ""}), json!([])] {
        let response = post(&server, "/agent/default/stop/t-stop", Some(&alice), &bad).await;
        assert_eq!(response.status(), 400, "{bad}");
    }
    // A thread id in the path is bounded like any id (here: a control character).
    let bad_id = post(
        &server,
        "/agent/default/stop/t%0Astop",
        Some(&alice),
        &json!({}),
    )
    .await;
    assert_eq!(bad_id.status(), 400);
    let long = "x".repeat(257);
    let too_long = get(&server, &format!("/threads/{long}/messages"), Some(&alice)).await;
    assert_eq!(too_long.status(), 400);
    // A stop needs the header credential (it has no body token).
    let anonymous = post(&server, "/agent/default/stop/t-stop", None, &json!({})).await;
    assert_eq!(anonymous.status(), 401);
    server.stop().await;
}

#[tokio::test]
async fn the_single_route_transport_serves_the_same_methods() {
    let server = start().await;
    let alice = server.token("alice");
    let envelope = |method: &str, params: Value, body: Option<Value>| {
        let mut e = json!({ "method": method, "params": params });
        if let Some(body) = body {
            e["body"] = body;
        }
        e
    };
    let single = async |e: &Value, bearer: Option<&str>| {
        let mut request = server
            .http
            .post(format!("{}/copilotkit", server.url))
            .json(e);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    };
    let info: Value = single(&envelope("info", json!({}), None), None)
        .await
        .json()
        .await
        .unwrap();
    assert!(info["agents"]["default"].is_object());
    let run = single(
        &envelope(
            "agent/run",
            json!({"agentId": "default"}),
            Some(body("t-single", "r1", "via one route", Some(&alice))),
        ),
        None,
    )
    .await;
    assert_eq!(run.status(), 200);
    assert_eq!(
        terminal(&sse_events(&run.text().await.unwrap()))["type"],
        "RUN_FINISHED"
    );
    let connect = single(
        &envelope(
            "agent/connect",
            json!({"agentId": "default"}),
            Some(connect_body("t-single", Some(&alice))),
        ),
        None,
    )
    .await;
    assert!(joined_text(&replay_events(&connect.text().await.unwrap())).contains("via one route"));
    let stop: Value = single(
        &envelope(
            "agent/stop",
            json!({"agentId": "default", "threadId": "t-single"}),
            None,
        ),
        Some(&alice),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(stop["stopped"], false);
    // Refusals: an unknown method, a missing parameter, a run without its body.
    assert_eq!(
        single(&envelope("bogus", json!({}), None), None)
            .await
            .status(),
        404
    );
    assert_eq!(
        single(&envelope("agent/run", json!({}), Some(json!({}))), None)
            .await
            .status(),
        400
    );
    assert_eq!(
        single(
            &envelope("agent/run", json!({"agentId": "default"}), None),
            Some(&alice)
        )
        .await
        .status(),
        400
    );
    server.stop().await;
}

#[tokio::test]
async fn anything_else_under_the_base_is_404_json_and_without_credentials_401() {
    let server = start().await;
    for path in [
        "/agent/default/suggest",
        "/transcribe",
        "/memories",
        "/nope",
    ] {
        let response = post(&server, path, None, &json!({})).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["error"],
            "not_found"
        );
    }
    let unknown_agent = post(
        &server,
        "/agent/nope/run",
        Some(&server.token("alice")),
        &body("t", "r", "hi", None),
    )
    .await;
    assert_eq!(unknown_agent.status(), 404);
    assert_eq!(
        unknown_agent.json::<Value>().await.unwrap()["error"],
        "agent_not_found"
    );
    for (path, response) in [
        (
            "run",
            post(
                &server,
                "/agent/default/run",
                None,
                &body("t", "r", "hi", None),
            )
            .await,
        ),
        (
            "connect",
            post(
                &server,
                "/agent/default/connect",
                None,
                &connect_body("t", None),
            )
            .await,
        ),
        ("threads", get(&server, "/threads", None).await),
    ] {
        assert_eq!(response.status(), 401, "{path}");
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Bearer realm="agui""#,
            "{path}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_thread_on_a_sqlite_file_replays_after_the_server_restarts() {
    let dir =
        std::env::temp_dir().join(format!("agui-ck-restart-{}", uuid::Uuid::new_v4().simple()));
    let url = format!("sqlite://{}?mode=rwc", dir.join("agui.db").display());
    let on_file =
        |url: String| move |c: &mut agui_server::config::Config| c.store.database_url = Some(url);
    let server = start_with(on_file(url.clone()), |b| b).await;
    let alice = server.token("alice");
    let _ = post(
        &server,
        "/agent/default/run",
        Some(&alice),
        &body("t-durable", "r1", "remember me", None),
    )
    .await
    .text()
    .await;
    let idp = server.stop_keeping_idp().await;
    let restarted = start_with_idp(idp, on_file(url), |b| b).await;
    let replay = post(
        &restarted,
        "/agent/default/connect",
        Some(&alice),
        &connect_body("t-durable", None),
    )
    .await;
    let events = replay_events(&replay.text().await.unwrap());
    assert_eq!(events[0]["input"]["messages"][0]["content"], "remember me");
    assert!(joined_text(&events).contains("remember me"));
    restarted.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn runs_through_chat_are_a_threads_history_too() {
    let server = start().await;
    let alice = server.token("alice");
    let mut chat = input("via chat", None);
    chat["threadId"] = json!("t-chat");
    let _ = server.run_as("/chat", &alice, &chat).await;
    let replay = post(
        &server,
        "/agent/default/connect",
        Some(&alice),
        &connect_body("t-chat", None),
    )
    .await;
    assert!(joined_text(&replay_events(&replay.text().await.unwrap())).contains("via chat"));
    server.stop().await;
}

#[tokio::test]
async fn a_runs_task_and_permits_end_with_its_stream_while_the_store_cannot_commit() {
    let dir = std::env::temp_dir().join(format!("agui-ck-busy-{}", uuid::Uuid::new_v4().simple()));
    let db = dir.join("agui.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let server = start_with(|c| c.store.database_url = Some(url), |b| b).await;
    let alice = server.token("alice");
    let mut run = post(
        &server,
        "/agent/default/run",
        Some(&alice),
        &body("t-busy", "r1", "/stream 10 4 20", None),
    )
    .await;
    assert_eq!(run.status(), 200);
    let mut text = String::from_utf8(run.chunk().await.unwrap().unwrap().to_vec()).unwrap();

    // Another connection takes SQLite's write lock: nothing commits until it lets go.
    let lock = rusqlite::Connection::open(&db).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let connected = server.state.backends.connected().unwrap().clone();
    let failures = connected.log.stats().failures;
    while let Some(chunk) = run.chunk().await.unwrap() {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(terminal(&sse_events(&text))["type"], "RUN_FINISHED");
    crate::common::raw::until(
        "the run's task has ended and its stream permit is free",
        async || server.state.runs.is_empty() && server.state.stream_cap.open() == 0,
    )
    .await;
    // It ended without its history's end being written (nothing can be) and before any write
    // gave up waiting for the lock: it did not wait for the store.
    assert_eq!(connected.log.stats().failures, failures);
    let row = connected
        .store()
        .get_run("t-busy", "r1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.outcome, None,
        "the store has not been able to commit the end"
    );

    lock.execute_batch("ROLLBACK").unwrap();
    assert_eq!(
        outcome(&server, "t-busy", "r1").await,
        Some(RunOutcome::Success)
    );
    let replay = post(
        &server,
        "/agent/default/connect",
        Some(&alice),
        &connect_body("t-busy", None),
    )
    .await;
    let events = replay_events(&replay.text().await.unwrap());
    assert_eq!(terminal(&events)["type"], "RUN_FINISHED");
    assert_eq!(joined_text(&events).len(), 40);
    drop(lock);
    server.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}
