//! Our own serde types for `chat.completion.chunk` objects, and the state machine that turns a
//! sequence of chunks into [`ModelDelta`]s.
//!
//! Why not async-openai's `CreateChatCompletionStreamResponse`: its delta has no
//! `reasoning_content`, and it requires `id`, `object`, `created` and `model` on every chunk,
//! which compatible servers do not all send. These types accept everything optional and read:
//! - `choices[].delta.content`, `.refusal` (shown as text), `.tool_calls[]` (OpenAI API reference,
//!   "The chat completion chunk object");
//! - `choices[].delta.reasoning_content` (DeepSeek's reasoning model docs; vLLM's reasoning
//!   outputs; llama.cpp's server) and `.reasoning` (the newer name used by vLLM, Ollama's
//!   OpenAI-compatible API and OpenRouter); when both are present they carry the same text and
//!   `reasoning_content` wins;
//! - `usage` with `prompt_tokens`, `completion_tokens`, `total_tokens`,
//!   `prompt_tokens_details.cached_tokens`, `completion_tokens_details.reasoning_tokens`;
//! - an in-band `error` object, which some servers send mid-stream instead of a status code.
//!
//! Azure OpenAI's first chunk carries `prompt_filter_results` and `choices: []` (Azure OpenAI
//! "content filtering" docs); it maps to nothing, like the usage-only last chunk's choices.

use agui_protocol::TokenUsage;
use serde::Deserialize;
use serde_json::Value;

use crate::model::{ModelDelta, ModelError};

/// One `data:` payload of the stream.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct Choice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallChunk>>,
}

#[derive(Debug, Default, Deserialize)]
struct ToolCallChunk {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionChunk>,
}

#[derive(Debug, Default, Deserialize)]
struct FunctionChunk {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Default, Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

/// A tool call of this turn, as far as the stream has told us.
#[derive(Debug)]
struct CallState {
    index: u32,
    id: Option<String>,
    name: Option<String>,
    started: bool,
    /// Argument fragments that arrived before the name (some servers send the name late).
    pending_args: String,
}

/// Turns chunks into deltas, in order.
#[derive(Debug)]
pub(crate) struct ChunkMapper {
    calls: Vec<CallState>,
    usage: Option<TokenUsage>,
    model: String,
    provider: String,
}

impl ChunkMapper {
    /// A mapper for one turn; `model` names the usage until the stream reports its own.
    pub(crate) fn new(provider: &str, model: &str) -> Self {
        Self {
            calls: Vec::new(),
            usage: None,
            model: model.to_owned(),
            provider: provider.to_owned(),
        }
    }

    /// Parses one `data:` payload and appends its deltas to `out`.
    ///
    /// # Errors
    /// `Protocol` when the payload is not a chunk object; the in-band error's kind when the chunk
    /// carries an `error`.
    pub(crate) fn push(&mut self, data: &str, out: &mut Vec<ModelDelta>) -> Result<(), ModelError> {
        let chunk: Chunk = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(e) => {
                return Err(ModelError::Protocol(format!(
                    "malformed chunk ({e}): {}",
                    truncate(data)
                )));
            }
        };
        if let Some(error) = chunk.error {
            return Err(in_band_error(&error));
        }
        if let Some(model) = chunk.model.filter(|m| !m.is_empty()) {
            self.model = model;
        }
        if let Some(usage) = chunk.usage {
            // Servers that report usage on every chunk (vLLM's `continuous_usage_stats`) send
            // running totals: the last one wins, and it is emitted once, at `[DONE]`.
            self.usage = Some(self.token_usage(&usage));
        }
        // One completion is asked for (`n` unset); other choices would be a server bug.
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(delta) = choice.delta {
                self.delta(delta, out)?;
            }
            match choice.finish_reason.as_deref() {
                Some("length") => tracing::warn!("model stopped at the max_tokens limit"),
                Some("content_filter") => tracing::warn!("model output cut by a content filter"),
                _ => {}
            }
        }
        Ok(())
    }

    /// Called at `[DONE]`: appends the usage, if any was reported.
    ///
    /// # Errors
    /// `Protocol` when a tool call never got a name.
    pub(crate) fn finish(&mut self, out: &mut Vec<ModelDelta>) -> Result<(), ModelError> {
        if let Some(call) = self.calls.iter().find(|c| !c.started) {
            return Err(ModelError::Protocol(format!(
                "tool call at index {} never received a name",
                call.index
            )));
        }
        if let Some(usage) = self.usage.take() {
            out.push(ModelDelta::Usage(Box::new(usage)));
        }
        Ok(())
    }

    fn delta(&mut self, delta: Delta, out: &mut Vec<ModelDelta>) -> Result<(), ModelError> {
        if let Some(reasoning) = delta.reasoning_content.or(delta.reasoning)
            && !reasoning.is_empty()
        {
            out.push(ModelDelta::Reasoning(reasoning));
        }
        for text in [delta.content, delta.refusal].into_iter().flatten() {
            if !text.is_empty() {
                out.push(ModelDelta::Text(text));
            }
        }
        for (position, call) in delta.tool_calls.into_iter().flatten().enumerate() {
            self.tool_call(position, call, out);
        }
        Ok(())
    }

    fn tool_call(&mut self, position: usize, chunk: ToolCallChunk, out: &mut Vec<ModelDelta>) {
        // `index` is required by OpenAI; a server that omits it sends whole calls, in order.
        let index = chunk
            .index
            .unwrap_or_else(|| u32::try_from(position).unwrap_or(u32::MAX));
        let id = chunk.id.filter(|id| !id.is_empty());
        let (name, arguments) = match chunk.function {
            Some(f) => (
                f.name.filter(|n| !n.is_empty()),
                f.arguments.unwrap_or_default(),
            ),
            None => (None, String::new()),
        };
        let existing = self.calls.iter().rposition(|c| c.index == index);
        let slot = match existing {
            // A different id at a known index is a new call: some servers (Gemini's
            // OpenAI-compatible endpoint) put every call at index 0. The run loop sends
            // arguments to the latest call with that index.
            Some(i) if id.is_some() && self.calls[i].id.is_some() && self.calls[i].id != id => None,
            other => other,
        };
        let slot = match slot {
            Some(i) => i,
            None => {
                self.calls.push(CallState {
                    index,
                    id: None,
                    name: None,
                    started: false,
                    pending_args: String::new(),
                });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[slot];
        if call.id.is_none() {
            call.id = id;
        }
        if call.name.is_none() {
            call.name = name;
        }
        if !call.started {
            call.pending_args.push_str(&arguments);
            if let Some(name) = call.name.clone() {
                call.started = true;
                out.push(ModelDelta::ToolCallStart {
                    index,
                    id: call.id.clone(),
                    name,
                });
                let pending = std::mem::take(&mut call.pending_args);
                if !pending.is_empty() {
                    out.push(ModelDelta::ToolCallArgs {
                        index,
                        delta: pending,
                    });
                }
            }
        } else if !arguments.is_empty() {
            out.push(ModelDelta::ToolCallArgs {
                index,
                delta: arguments,
            });
        }
    }

    fn token_usage(&self, usage: &Usage) -> TokenUsage {
        TokenUsage {
            provider: Some(self.provider.clone()),
            model: Some(self.model.clone()),
            input_tokens: usage.prompt_tokens,
            output_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens,
            reasoning_tokens: usage
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens),
            cached_input_tokens: usage
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens),
            cache_write_input_tokens: None,
        }
    }
}

/// Classifies an in-band `{"error": {...}}` object by its `code`/`type`.
fn in_band_error(error: &Value) -> ModelError {
    let field = |name: &str| {
        error
            .get(name)
            .and_then(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .or_else(|| v.as_u64().map(|n| n.to_string()))
            })
            .unwrap_or_default()
    };
    let code = field("code").to_ascii_lowercase();
    let kind = format!("{code} {}", field("type").to_ascii_lowercase());
    let numeric = code.parse::<u16>().ok();
    let detail = format!("in-band error: {}", truncate(&error.to_string()));
    if kind.contains("rate_limit") || numeric == Some(429) {
        ModelError::RateLimited(detail)
    } else if kind.contains("server_error")
        || kind.contains("overloaded")
        || kind.contains("unavailable")
        || numeric.is_some_and(|n| (500..600).contains(&n))
    {
        ModelError::Unavailable(detail)
    } else {
        ModelError::Failed(detail)
    }
}

/// The error carried by an `event: error` SSE event (its data is an error object, bare or
/// wrapped in `{"error": ...}`).
pub(crate) fn in_band_error_event(data: &str) -> ModelError {
    match serde_json::from_str::<Value>(data) {
        Ok(value) => in_band_error(value.get("error").unwrap_or(&value)),
        Err(_) => ModelError::Failed(format!("error event: {}", truncate(data))),
    }
}

/// At most 512 bytes of provider text for a log line.
pub(crate) fn truncate(text: &str) -> String {
    const LIMIT: usize = 512;
    if text.len() <= LIMIT {
        return text.to_owned();
    }
    let mut end = LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&str]) -> Result<Vec<ModelDelta>, ModelError> {
        let mut mapper = ChunkMapper::new("openai", "m");
        let mut out = Vec::new();
        for chunk in chunks {
            mapper.push(chunk, &mut out)?;
        }
        mapper.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn name_arriving_after_arguments_flushes_them_in_order() {
        let out = run(&[
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"arguments":"{\"a\""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":":1}"}}]}}]}"#,
        ])
        .unwrap();
        assert_eq!(
            out,
            vec![
                ModelDelta::ToolCallStart {
                    index: 0,
                    id: Some("c1".into()),
                    name: "f".into()
                },
                // The held fragment and the one that came with the name, in order.
                ModelDelta::ToolCallArgs {
                    index: 0,
                    delta: "{\"a\":1}".into()
                },
            ]
        );
    }

    #[test]
    fn a_new_id_at_a_used_index_starts_a_new_call() {
        let out = run(&[
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"b","function":{"name":"g","arguments":"{}"}}]}}]}"#,
        ])
        .unwrap();
        assert_eq!(
            out,
            vec![
                ModelDelta::ToolCallStart {
                    index: 0,
                    id: Some("a".into()),
                    name: "f".into()
                },
                ModelDelta::ToolCallArgs {
                    index: 0,
                    delta: "{}".into()
                },
                ModelDelta::ToolCallStart {
                    index: 0,
                    id: Some("b".into()),
                    name: "g".into()
                },
                ModelDelta::ToolCallArgs {
                    index: 0,
                    delta: "{}".into()
                },
            ]
        );
    }

    #[test]
    fn a_call_without_a_name_is_a_protocol_error() {
        let err = run(&[
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"arguments":"{}"}}]}}]}"#,
        ])
        .unwrap_err();
        assert_eq!(err.code(), "model_protocol_error");
    }

    #[test]
    fn in_band_errors_are_classified() {
        let err =
            run(&[r#"{"error":{"message":"slow down","type":"rate_limit_error"}}"#]).unwrap_err();
        assert_eq!(err.code(), "model_rate_limited");
        let err = run(&[r#"{"error":{"message":"boom","type":"server_error"}}"#]).unwrap_err();
        assert_eq!(err.code(), "model_unavailable");
        let err =
            run(&[r#"{"error":{"message":"bad","type":"invalid_request_error"}}"#]).unwrap_err();
        assert_eq!(err.code(), "model_error");
        let err = run(&["[1,2]"]).unwrap_err();
        assert_eq!(err.code(), "model_protocol_error");
    }

    #[test]
    fn usage_keeps_the_last_report_and_omits_unknown_counts() {
        let out = run(&[
            r#"{"model":"served-model","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#,
        ])
        .unwrap();
        assert_eq!(
            out,
            vec![ModelDelta::Usage(Box::new(TokenUsage {
                provider: Some("openai".into()),
                model: Some("served-model".into()),
                input_tokens: Some(5),
                output_tokens: Some(7),
                total_tokens: Some(12),
                ..Default::default()
            }))]
        );
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let long = "é".repeat(400);
        let short = truncate(&long);
        assert!(short.len() <= 512 + "…".len());
        assert!(short.ends_with('…'));
    }
}
