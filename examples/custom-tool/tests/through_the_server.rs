//! The example tool through the real server: the model (scripted) calls it, the caller's team
//! scopes the answer, and the policy keeps out callers without the scope.

use std::sync::Arc;

use agui_auth::testing::TestIdp;
use agui_example_custom_tool::TeamDirectory;
use agui_server::AppState;
use agui_server::config::Config;
use serde_json::{Value, json};

async fn start() -> (TestIdp, String) {
    let idp = TestIdp::start().await;
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    config.auth =
        agui_auth::AuthConfig::from_env_single_issuer(&idp.issuer_url(), "agui", "").unwrap();
    let mut tools = agui_agent::ToolRegistry::with_builtins();
    tools.register(Arc::new(TeamDirectory::demo()));
    let listener = agui_server::serve::bind(config.listen, config.backlog).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::builder(config)
        .tools(tools)
        .build()
        .await
        .unwrap();
    tokio::spawn(agui_server::run(listener, state, std::future::pending()));
    (idp, url)
}

fn token(idp: &TestIdp, sub: &str, team: &str, scope: &str) -> String {
    let mut claims = idp.claims(sub);
    claims["team"] = json!(team);
    claims["scope"] = json!(scope);
    idp.sign("rsa-1", &claims)
}

async fn tool_result(url: &str, token: &str) -> Value {
    // A thread belongs to the user whose run created it: each call gets a new one.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let body = json!({"threadId": format!("t{n}"), "runId": format!("r{n}"), "protocolVersion": "1.0",
        "messages": [{"id": "m", "role": "user", "content": "/tool team_directory {\"prefix\": \"A\"}"}]});
    let text = reqwest::Client::new()
        .post(format!("{url}/chat"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let result = text
        .split("\n\n")
        .filter_map(|frame| frame.strip_prefix("data: "))
        .map(|json| serde_json::from_str::<Value>(json).unwrap())
        .find(|event| event["type"] == "TOOL_CALL_RESULT")
        .expect("a tool result");
    serde_json::from_str(result["content"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn the_callers_team_scopes_the_answer() {
    let (idp, url) = start().await;
    let red = tool_result(&url, &token(&idp, "u1", "red", "directory:read")).await;
    assert_eq!(red, json!({"team": "red", "members": ["Ada"]}));
    let blue = tool_result(&url, &token(&idp, "u2", "blue", "directory:read")).await;
    assert_eq!(blue, json!({"team": "blue", "members": ["Alan"]}));
}

#[tokio::test]
async fn callers_without_the_scope_are_refused() {
    let (idp, url) = start().await;
    let refused = tool_result(&url, &token(&idp, "u3", "red", "chat")).await;
    assert_eq!(refused["error"], "tool_not_allowed");
}
