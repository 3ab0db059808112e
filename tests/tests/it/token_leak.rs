//! With every log at TRACE, no part of any token used (accepted, rejected, in the header or in
//! `forwardedProps`) appears in what the whole server logged: none of the three JWT segments.

use std::io::Write;
use std::sync::{Arc, Mutex};

use agui_auth::testing::TestIdp;
use agui_server::config::Config;
use agui_server::state::AppState;
use serde_json::json;

fn mint(idp: &TestIdp, subject: &str, audience: &str) -> String {
    let mut claims = idp.claims(subject);
    claims["aud"] = json!(audience);
    idp.sign("rsa-1", &claims)
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_token_segment_appears_in_trace_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let idp = TestIdp::start().await;
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    config.auth =
        agui_auth::AuthConfig::from_env_single_issuer(&idp.issuer_url(), "agui-tests", "").unwrap();
    let listener = agui_server::serve::bind(config.listen, config.backlog).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::builder(config).build().await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(agui_server::run(listener, state, async move {
        let _ = stopped.await;
    }));

    let good = mint(&idp, "alice", "agui-tests");
    let wrong_audience = mint(&idp, "bob", "elsewhere");
    let in_body = mint(&idp, "carol", "agui-tests");
    let conflicting = mint(&idp, "mallory", "agui-tests");
    let http = reqwest::Client::new();
    let body = |text: &str| json!({"threadId": "t", "runId": "r", "messages": [{"id": "m", "role": "user", "content": text}]});
    let statuses = [
        http.post(format!("{url}/chat")).bearer_auth(&good).json(&body("who am i")).send().await.unwrap().status(),
        http.post(format!("{url}/chat")).bearer_auth(&wrong_audience).json(&body("hi")).send().await.unwrap().status(),
        http.post(format!("{url}/chat"))
            .json(&json!({"threadId": "t-carol", "runId": "r2", "messages": [], "forwardedProps": {"authorization": format!("Bearer {in_body}")}}))
            .send()
            .await
            .unwrap()
            .status(),
        http.post(format!("{url}/chat"))
            .bearer_auth(&good)
            .json(&json!({"threadId": "t", "runId": "r3", "messages": [], "forwardedProps": {"authorization": conflicting}}))
            .send()
            .await
            .unwrap()
            .status(),
        http.get(format!("{url}/whoami")).bearer_auth(&good).send().await.unwrap().status(),
    ];
    assert_eq!(
        statuses.map(|s| s.as_u16()),
        [200, 401, 200, 400, 200],
        "the scenario exercised accept and reject paths"
    );
    let _ = stop.send(());
    server.await.unwrap();

    let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("credential refused"),
        "the capture saw the server's logs"
    );
    assert!(
        logs.contains("sub=alice") || logs.contains("alice"),
        "logs identify the subject"
    );
    for token in [&good, &wrong_audience, &in_body, &conflicting] {
        for segment in token.split('.') {
            assert!(
                !logs.contains(segment),
                "a token segment leaked into the logs"
            );
        }
    }
}
