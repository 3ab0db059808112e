//! CORS exactly as DESIGN (off by default; an exact origin list; preflight allows the headers a
//! client sends; the headers a client must read are exposed) and the request-head limit.

use crate::common::*;

#[tokio::test]
async fn cors_is_off_by_default() {
    let server = start().await;
    let response = server
        .http
        .post(format!("{}/chat", server.url))
        .header("origin", "https://app.example.com")
        .bearer_auth(server.token("alice"))
        .json(&input("hi", None))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    server.stop().await;
}

#[tokio::test]
async fn listed_origins_get_cors_and_others_do_not() {
    let server = start_with(
        |c| c.cors_origins = vec!["https://app.example.com".into()],
        |b| b,
    )
    .await;
    let preflight = |origin: &'static str| {
        server
            .http
            .request(reqwest::Method::OPTIONS, format!("{}/chat", server.url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    let headers = allowed.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    let allow_headers = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allow_headers.contains("authorization") && allow_headers.contains("content-type"),
        "{allow_headers}"
    );
    // A CopilotKit app that sends `credentials: "include"` (cookies) may, from a listed
    // origin only: the origin is echoed exactly, never `*`.
    assert_eq!(headers["access-control-allow-credentials"], "true");

    let other = preflight("https://evil.example.com").await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));

    let actual = server
        .http
        .post(format!("{}/chat", server.url))
        .header("origin", "https://app.example.com")
        .json(&input("hi", None))
        .send()
        .await
        .unwrap();
    assert_eq!(actual.status(), 401);
    let expose = actual.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for name in ["www-authenticate", "retry-after", "x-request-id"] {
        assert!(
            expose.contains(name),
            "{name} must be readable by the browser: {expose}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_request_head_is_refused() {
    let server = start_with(|c| c.limits.max_header_bytes = 8192, |b| b).await;
    let response = server
        .http
        .get(format!("{}/healthz", server.url))
        .header("x-padding", "a".repeat(16 * 1024))
        .send()
        .await;
    match response {
        Ok(response) => assert_eq!(response.status(), 431),
        // hyper may close the connection instead of answering; either way nothing is served.
        Err(error) => assert!(
            error.is_request() || error.is_connect() || error.is_body(),
            "{error}"
        ),
    }
    // Positive control: a normal head on the same server is fine.
    let ok = server
        .http
        .get(format!("{}/healthz", server.url))
        .header("x-padding", "a".repeat(1024))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    server.stop().await;
}
