//! Fail closed, but stay up: an issuer unreachable at start-up leaves the server running and not
//! ready, answers 503 with Retry-After for that issuer's tokens (a 401 would make clients throw
//! away a good token), and recovers by itself once the issuer is back.

use std::time::Duration;

use crate::common::*;
use agui_auth::testing::TestIdp;
use agui_server::config::Config;
use agui_server::state::AppState;

#[tokio::test]
async fn cold_start_with_the_issuer_down_is_503_then_recovers() {
    let idp = TestIdp::start().await;
    idp.set_down(true);
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    config.auth =
        agui_auth::AuthConfig::from_env_single_issuer(&idp.issuer_url(), AUDIENCE, "").unwrap();
    let listener = agui_server::serve::bind(config.listen, config.backlog).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::builder(config)
        .build()
        .await
        .expect("an unreachable issuer does not stop start-up");
    tokio::spawn(agui_server::run(listener, state, std::future::pending()));
    let http = reqwest::Client::new();
    let token = mint(&idp, "alice", AUDIENCE);

    let ready = http.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "not ready while no issuer has keys");
    let chat = http
        .post(format!("{url}/chat"))
        .bearer_auth(&token)
        .json(&input("hi", None))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 503);
    assert!(chat.headers().contains_key("retry-after"));
    assert!(
        !chat.headers().contains_key("www-authenticate"),
        "not the token's fault: no challenge"
    );
    assert_eq!(
        chat.json::<serde_json::Value>().await.unwrap()["error"],
        "issuer_unavailable"
    );

    idp.set_down(false);
    let recovered = tokio::time::timeout(HANG_GUARD, async {
        loop {
            let chat = http
                .post(format!("{url}/chat"))
                .bearer_auth(&token)
                .json(&input("hi", None))
                .send()
                .await
                .unwrap();
            if chat.status() == 200 {
                return chat.text().await.unwrap();
            }
            assert_eq!(chat.status(), 503, "only 503 while the keys are not back");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the server retries the issuer with backoff and recovers");
    assert_eq!(
        text(&sse_events(&recovered)),
        "Hello, Test alice! You said: \"hi\""
    );
    let ready = http.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn issuer_down_after_warm_up_keeps_cached_keys_working() {
    let server = start().await;
    let token = server.token("alice");
    server.run_warmup(&token).await;
    server.idp.set_down(true);
    let events = server.run("alice", &input("hi", None)).await;
    assert_eq!(terminal(&events)["type"], "RUN_FINISHED");
    assert_eq!(
        server
            .http
            .get(format!("{}/readyz", server.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    server.stop().await;
}
