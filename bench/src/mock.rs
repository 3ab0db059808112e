//! A mock OpenAI-compatible model: `POST …/chat/completions`, streamed or not, written in Rust so
//! the mock is never the bottleneck (shared/reference/perf-peers.md §5: the Python mocks sleep
//! 10 ms per chunk or split per character).
//!
//! Streamed text: a role chunk, `chunks` content chunks of `size` bytes (chunk `i` is the letter
//! `'a' + i % 26`, like the scripted model), a `finish_reason: "stop"` chunk, a usage chunk when
//! `stream_options.include_usage` is set, then `data: [DONE]`. When the request offers `tools`
//! and the last message is the user's, it streams one call of the first tool instead,
//! `{"city":"Paris"}` split over two argument fragments, ending with `finish_reason:
//! "tool_calls"`. Every chunk carries `id`, `object`, `created`, `model` and `choices`, which
//! async-openai requires (perf-peers.md §5).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::floor::FramesBody;
use crate::httpd;

/// What the mock answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MockConfig {
    /// Content chunks per text reply.
    pub chunks: usize,
    /// Bytes per content chunk.
    pub size: usize,
    /// Pause before each content chunk, milliseconds.
    pub delay_ms: u64,
}

/// Serves the mock on `listener` until the process ends.
pub async fn serve(listener: TcpListener, config: MockConfig) {
    let text = Arc::new(text_frames(config.chunks, config.size, false));
    let text_usage = Arc::new(text_frames(config.chunks, config.size, true));
    httpd::serve(listener, move |request| {
        let (text, text_usage) = (text.clone(), text_usage.clone());
        async move {
            if request.method() != http::Method::POST
                || !request.uri().path().ends_with("/chat/completions")
            {
                return left(httpd::full(
                    404,
                    "application/json",
                    r#"{"error":{"message":"not found"}}"#,
                ));
            }
            let body = match request.into_body().collect().await {
                Ok(body) => body.to_bytes(),
                Err(_) => Bytes::new(),
            };
            let Ok(request) = serde_json::from_slice::<Value>(&body) else {
                return left(httpd::full(
                    400,
                    "application/json",
                    r#"{"error":{"message":"bad json"}}"#,
                ));
            };
            let tool = tool_to_call(&request);
            let stream = request["stream"].as_bool().unwrap_or(false);
            let usage = request["stream_options"]["include_usage"]
                .as_bool()
                .unwrap_or(false);
            if !stream {
                return left(httpd::full(
                    200,
                    "application/json",
                    completion(tool.as_deref(), config).to_string(),
                ));
            }
            let (frames, delay) = match tool {
                Some(name) => (Arc::new(tool_frames(&name, usage)), 0),
                None if usage => (text_usage, config.delay_ms),
                None => (text, config.delay_ms),
            };
            // The pause applies to content chunks only: after the role chunk, before the finish.
            let deltas = 1..frames.len().saturating_sub(if usage { 3 } else { 2 });
            let response = http::Response::builder()
                .header(http::header::CONTENT_TYPE, "text/event-stream")
                .body(FramesBody::with_delay_range(frames, delay, deltas))
                .unwrap_or_else(|_| http::Response::new(FramesBody::new(Arc::default(), 0)));
            response.map(Either::Right)
        }
    })
    .await;
}

fn left(response: http::Response<Full<Bytes>>) -> http::Response<MockBody> {
    response.map(Either::Left)
}

/// The tool to call: the first offered tool when the last message is the user's.
fn tool_to_call(request: &Value) -> Option<String> {
    let last_is_user = request["messages"]
        .as_array()
        .and_then(|m| m.last())
        .is_some_and(|m| m["role"] == "user");
    let name = request["tools"].as_array()?.first()?["function"]["name"].as_str()?;
    last_is_user.then(|| name.to_owned())
}

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "mock",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    })
}

fn usage_chunk() -> Value {
    json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "mock",
        "choices": [],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
    })
}

fn frame(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// The frames of a streamed text reply.
pub fn text_frames(chunks: usize, size: usize, usage: bool) -> Vec<Bytes> {
    let mut frames = vec![frame(&chunk(
        json!({"role": "assistant", "content": ""}),
        None,
    ))];
    for i in 0..chunks {
        let content: String =
            std::iter::repeat_n(char::from(b'a' + (i % 26) as u8), size).collect();
        frames.push(frame(&chunk(json!({"content": content}), None)));
    }
    frames.push(frame(&chunk(json!({}), Some("stop"))));
    if usage {
        frames.push(frame(&usage_chunk()));
    }
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    frames
}

/// The frames of a streamed call of `name` with `{"city":"Paris"}`.
pub fn tool_frames(name: &str, usage: bool) -> Vec<Bytes> {
    let call = |fields: Value| json!({"tool_calls": [fields]});
    let mut frames = vec![
        frame(&chunk(
            json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_mock_1", "type": "function", "function": {"name": name, "arguments": ""}}]}),
            None,
        )),
        frame(&chunk(
            call(json!({"index": 0, "function": {"arguments": "{\"city\":"}})),
            None,
        )),
        frame(&chunk(
            call(json!({"index": 0, "function": {"arguments": "\"Paris\"}"}})),
            None,
        )),
        frame(&chunk(json!({}), Some("tool_calls"))),
    ];
    if usage {
        frames.push(frame(&usage_chunk()));
    }
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    frames
}

fn completion(tool: Option<&str>, config: MockConfig) -> Value {
    let (message, finish) = match tool {
        Some(name) => (
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_mock_1", "type": "function", "function": {"name": name, "arguments": "{\"city\":\"Paris\"}"}}]}),
            "tool_calls",
        ),
        None => {
            let text: String = (0..config.chunks)
                .flat_map(|i| std::iter::repeat_n(char::from(b'a' + (i % 26) as u8), config.size))
                .collect();
            (json!({"role": "assistant", "content": text}), "stop")
        }
    };
    json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "mock",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
    })
}

/// The body type of both answers.
pub type MockBody = Either<Full<Bytes>, FramesBody>;

#[cfg(test)]
mod tests {
    use super::*;

    fn data(frames: &[Bytes]) -> Vec<Value> {
        frames
            .iter()
            .filter(|f| !f.starts_with(b"data: [DONE]"))
            .map(|f| serde_json::from_slice(&f[6..f.len() - 2]).unwrap())
            .collect()
    }

    #[test]
    fn text_reply_has_role_content_finish_usage_done() {
        let frames = text_frames(3, 2, true);
        assert_eq!(
            frames.last().unwrap(),
            &Bytes::from_static(b"data: [DONE]\n\n")
        );
        let chunks = data(&frames);
        assert_eq!(chunks.len(), 6);
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(chunks[2]["choices"][0]["delta"]["content"], "bb");
        assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");
        assert_eq!(chunks[5]["usage"]["total_tokens"], 30);
        for chunk in &chunks {
            for field in ["id", "object", "created", "model", "choices"] {
                assert!(chunk.get(field).is_some(), "{field} missing in {chunk}");
            }
        }
    }

    #[test]
    fn tool_call_is_offered_only_when_the_user_spoke_last() {
        let tools = json!([{"type": "function", "function": {"name": "get_weather"}}]);
        let asked = json!({"messages": [{"role": "user", "content": "hi"}], "tools": tools});
        assert_eq!(tool_to_call(&asked).as_deref(), Some("get_weather"));
        let answered = json!({"messages": [{"role": "user"}, {"role": "tool", "content": "x"}], "tools": tools});
        assert_eq!(tool_to_call(&answered), None);
        let no_tools = json!({"messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(tool_to_call(&no_tools), None);
    }

    #[test]
    fn tool_arguments_join_to_json() {
        let chunks = data(&tool_frames("get_weather", false));
        let args: String = chunks
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
            })
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&args).unwrap(),
            json!({"city": "Paris"})
        );
        assert_eq!(
            chunks.last().unwrap()["choices"][0]["finish_reason"],
            "tool_calls"
        );
    }
}
