//! The offline, deterministic `scripted` model (DESIGN "Interfaces").
//!
//! It lets the demo, the tests and the benchmarks drive every path of the server without a real
//! model. Its contract, matched against the last message of the conversation:
//!
//! | input (last user message, trimmed)   | reply                                                    |
//! |--------------------------------------|----------------------------------------------------------|
//! | `/stream <n> [size] [delay_ms]`      | one text message of `n` deltas; delta `i` is `size` (default 16) bytes of the letter `'a' + i % 26` |
//! | `/tool <name> <json-args>`           | calls that tool (backend, or a frontend tool from the input) |
//! | `/fail`                              | a model error (`RUN_ERROR model_error`)                  |
//! | "help", "/help", "what can you do?"  | the help: what this caller can ask for, and the commands |
//! | contains "who am i"                  | calls `whoami`                                           |
//! | contains "list my documents"         | calls `list_my_documents`                                |
//! | "show document N"                    | calls `get_document {"id": N}`                           |
//! | "delete document N"                  | calls `delete_document {"id": N}`                        |
//! | "set my X to Y"                      | calls `set_preference {"key": X, "value": Y}`            |
//! | names a frontend tool from the input | calls it (see [`match_frontend_tool`])                   |
//! | anything else                        | `Hello, <display name>! You said: "<message>"`          |
//!
//! The help row matches "help" or "/help" alone, or a message containing "what can you do" or
//! "what can i do"; it is checked first. When the conversation ends with a `tool` message it
//! answers with one short sentence about the result (`reply.rs`: "Here is who you are: …",
//! "Accent colour set to teal.", "That colour was refused: …"), never the raw JSON. Matching is
//! case-insensitive. Text is streamed word by word (each delta is a word with its trailing space)
//! with `delay` between deltas (`AGUI_SCRIPTED_DELAY_MS`).

use std::time::Duration;

use agui_protocol::{Message, Tool as FrontendTool};
use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::model::{ModelDelta, ModelError, ModelProvider, ModelRequest, ModelStream};

/// The letters `/stream` cycles through, one per delta.
const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz";

mod reply;

/// The scripted model.
#[derive(Debug, Clone, Default)]
pub struct ScriptedModel {
    /// Pause between text deltas, to simulate a real model.
    pub delay: Duration,
}

impl ScriptedModel {
    /// A scripted model pausing `delay` between text deltas.
    pub fn new(delay: Duration) -> Self {
        Self { delay }
    }
}

/// What the scripted model decided to do this turn.
#[derive(Debug, Clone, PartialEq)]
enum Plan {
    Say(String),
    Stream {
        count: usize,
        size: usize,
        delay: Duration,
    },
    Call {
        name: String,
        args: String,
    },
    Fail,
}

#[async_trait]
impl ModelProvider for ScriptedModel {
    fn name(&self) -> &str {
        "scripted"
    }

    async fn stream(
        &self,
        request: ModelRequest,
        _cancel: CancellationToken,
    ) -> Result<ModelStream, ModelError> {
        let plan = plan(&request);
        let delay = self.delay;
        Ok(match plan {
            Plan::Fail => {
                futures::stream::iter([Err(ModelError::Failed("scripted /fail".into()))]).boxed()
            }
            Plan::Call { name, args } => futures::stream::iter([
                Ok(ModelDelta::ToolCallStart {
                    index: 0,
                    id: None,
                    name,
                }),
                Ok(ModelDelta::ToolCallArgs {
                    index: 0,
                    delta: args,
                }),
            ])
            .boxed(),
            Plan::Say(text) => paced(
                words(&text)
                    .map(|w| Ok(ModelDelta::Text(w.to_owned())))
                    .collect::<Vec<_>>(),
                delay,
            ),
            Plan::Stream { count, size, delay } => {
                let deltas = (0..count).map(move |i| {
                    let at = i % 26;
                    // One allocation, of the delta's size, filled by copies (collecting `char`s
                    // encoded them one by one: a cost no real provider's delta has).
                    Ok(ModelDelta::Text(ALPHABET[at..=at].repeat(size)))
                });
                // Lazily: a paced stream of thousands of deltas holds one at a time, not all.
                paced(deltas, delay)
            }
        })
    }
}

/// Yields `items` with `delay` before each one after the first, producing each when it is due.
fn paced<I>(items: I, delay: Duration) -> ModelStream
where
    I: IntoIterator<Item = Result<ModelDelta, ModelError>>,
    I::IntoIter: Send + 'static,
{
    if delay.is_zero() {
        return futures::stream::iter(items).boxed();
    }
    futures::stream::iter(items.into_iter().enumerate())
        .then(move |(i, item)| async move {
            if i > 0 {
                tokio::time::sleep(delay).await;
            }
            item
        })
        .boxed()
}

/// Splits text into words, each keeping its trailing whitespace, so the deltas join back exactly.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive(' ')
}

fn plan(request: &ModelRequest) -> Plan {
    match request.messages.last() {
        Some(Message::Tool(tool)) => {
            let name = tool_name_for(&request.messages, tool.tool_call_id.as_str())
                .unwrap_or_else(|| "requested".to_owned());
            Plan::Say(reply::after_tool(&name, &tool.content.text()))
        }
        _ => {
            let text = request.last_user_text().unwrap_or_default();
            if reply::is_help(&text.trim().to_lowercase()) {
                return Plan::Say(reply::help(
                    request.tools.iter().map(|tool| tool.name.as_str()),
                    request.frontend_tools.iter().map(|tool| tool.name.as_str()),
                ));
            }
            plan_for_text(
                text.trim(),
                &request.frontend_tools,
                request.principal.display_name(),
            )
        }
    }
}

fn plan_for_text(text: &str, frontend_tools: &[FrontendTool], display_name: &str) -> Plan {
    if let Some(rest) = text.strip_prefix("/stream") {
        let mut numbers = rest.split_whitespace().map(str::parse::<u64>);
        let count = numbers.next().and_then(Result::ok).unwrap_or(1);
        let size = numbers.next().and_then(Result::ok).unwrap_or(16);
        let delay = numbers.next().and_then(Result::ok).unwrap_or(0);
        return Plan::Stream {
            count: usize::try_from(count).unwrap_or(usize::MAX).min(1_000_000),
            size: usize::try_from(size).unwrap_or(16).clamp(1, 65_536),
            delay: Duration::from_millis(delay.min(60_000)),
        };
    }
    if text == "/fail" {
        return Plan::Fail;
    }
    if let Some(rest) = text.strip_prefix("/tool ") {
        let rest = rest.trim();
        let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, "{}"));
        return Plan::Call {
            name: name.to_owned(),
            args: args.trim().to_owned(),
        };
    }
    let lower = text.to_lowercase();
    if let Some(plan) = intent(&lower, text) {
        return plan;
    }
    if let Some((tool, args)) = match_frontend_tool(&lower, frontend_tools) {
        return Plan::Call {
            name: tool.name.clone(),
            args: args.to_string(),
        };
    }
    Plan::Say(format!("Hello, {display_name}! You said: \"{text}\""))
}

/// The plain-language intents table.
fn intent(lower: &str, original: &str) -> Option<Plan> {
    let call = |name: &str, args: Value| {
        Some(Plan::Call {
            name: name.to_owned(),
            args: args.to_string(),
        })
    };
    if lower.contains("who am i") {
        return call("whoami", json!({}));
    }
    if lower.contains("list my documents") {
        return call("list_my_documents", json!({}));
    }
    for (verb, tool) in [
        ("show document", "get_document"),
        ("delete document", "delete_document"),
    ] {
        if let Some(at) = lower.find(verb) {
            let id: String = lower[at + verb.len()..]
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(id) = id.parse::<u64>() {
                return call(tool, json!({ "id": id }));
            }
        }
    }
    if let Some(at) = lower.find("set my ") {
        // Keep the user's casing for the value.
        let rest = &original[at + "set my ".len()..];
        if let Some(split) = rest.to_lowercase().find(" to ") {
            let key = rest[..split].trim();
            let value = rest[split + 4..].trim().trim_end_matches(['.', '!']);
            if !key.is_empty() && !value.is_empty() {
                return call("set_preference", json!({ "key": key, "value": value }));
            }
        }
    }
    None
}

/// A frontend tool is named when every word of its name (split on `_`, `-` and camelCase; "color"
/// also matching "colour") appears in the message. The arguments fill the first required string
/// parameter (else the first string parameter) with the message's last word.
pub fn match_frontend_tool<'a>(
    lower: &str,
    tools: &'a [FrontendTool],
) -> Option<(&'a FrontendTool, Value)> {
    let message_words: Vec<String> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            if w == "colour" {
                "color".to_owned()
            } else {
                w.to_owned()
            }
        })
        .collect();
    let tool = tools.iter().find(|tool| {
        let name_words = split_name(&tool.name);
        !name_words.is_empty() && name_words.iter().all(|w| message_words.contains(w))
    })?;
    let mut args = Map::new();
    if let Some(param) = first_string_parameter(tool.parameters.as_ref())
        && let Some(last) = message_words.last()
    {
        args.insert(param, Value::String(last.clone()));
    }
    Some((tool, Value::Object(args)))
}

fn split_name(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    for c in name.chars() {
        if c == '_' || c == '-' || c == ' ' || (c.is_uppercase() && !current.is_empty()) {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            if c == '_' || c == '-' || c == ' ' {
                continue;
            }
        }
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
        .into_iter()
        .map(|w| if w == "colour" { "color".to_owned() } else { w })
        .collect()
}

fn first_string_parameter(schema: Option<&Value>) -> Option<String> {
    let properties = schema?.get("properties")?.as_object()?;
    let is_string = |name: &str| {
        properties
            .get(name)
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            == Some("string")
    };
    let required = schema?.get("required").and_then(Value::as_array);
    required
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|name| is_string(name))
        .or_else(|| {
            properties
                .keys()
                .map(String::as_str)
                .find(|name| is_string(name))
        })
        .map(str::to_owned)
}

/// The name of the tool whose call has `tool_call_id`, from the assistant messages in history.
fn tool_name_for(messages: &[Message], tool_call_id: &str) -> Option<String> {
    messages.iter().rev().find_map(|message| match message {
        Message::Assistant(assistant) => assistant
            .tool_calls
            .iter()
            .flatten()
            .find(|call| call.id.as_str() == tool_call_id)
            .map(|call| call.function.name.clone()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> FrontendTool {
        serde_json::from_value(json!({
            "name": name, "description": "d",
            "parameters": {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}
        }))
        .unwrap()
    }

    #[test]
    fn stream_command_parses_count_size_and_delay() {
        assert_eq!(
            plan_for_text("/stream 3 4 7", &[], "x"),
            Plan::Stream {
                count: 3,
                size: 4,
                delay: Duration::from_millis(7)
            }
        );
        assert_eq!(
            plan_for_text("/stream 5", &[], "x"),
            Plan::Stream {
                count: 5,
                size: 16,
                delay: Duration::ZERO
            }
        );
    }

    #[test]
    fn intents_map_to_tools() {
        let call = |name: &str, args: Value| Plan::Call {
            name: name.into(),
            args: args.to_string(),
        };
        assert_eq!(
            plan_for_text("Who am I?", &[], "x"),
            call("whoami", json!({}))
        );
        assert_eq!(
            plan_for_text("please LIST MY DOCUMENTS", &[], "x"),
            call("list_my_documents", json!({}))
        );
        assert_eq!(
            plan_for_text("Show document 12", &[], "x"),
            call("get_document", json!({"id": 12}))
        );
        assert_eq!(
            plan_for_text("Delete document 2", &[], "x"),
            call("delete_document", json!({"id": 2}))
        );
        assert_eq!(
            plan_for_text("Set my theme to Dark Blue.", &[], "x"),
            call(
                "set_preference",
                json!({"key": "theme", "value": "Dark Blue"})
            )
        );
        assert_eq!(
            plan_for_text("/tool whoami {}", &[], "x"),
            call("whoami", json!({}))
        );
    }

    #[test]
    fn frontend_tool_is_matched_by_the_words_of_its_name() {
        let tools = [tool("change_accent_color")];
        assert_eq!(
            plan_for_text("Change the accent colour to teal", &tools, "x"),
            Plan::Call {
                name: "change_accent_color".into(),
                args: json!({"color": "teal"}).to_string()
            }
        );
        let camel = [tool("changeAccentColor")];
        assert!(matches!(
            plan_for_text("change the accent color to red", &camel, "x"),
            Plan::Call { .. }
        ));
        // Positive control above; without the word "accent" nothing matches and the model greets.
        assert_eq!(
            plan_for_text("change the color to red", &tools, "Ada"),
            Plan::Say("Hello, Ada! You said: \"change the color to red\"".into())
        );
    }

    fn request(messages: Value, tools: &[&str], frontend_tools: Vec<FrontendTool>) -> ModelRequest {
        let principal = agui_auth::Principal {
            name: Some("Vera Viewer".into()),
            roles: vec!["viewer".into()],
            ..agui_auth::testing::principal("https://idp.example", "vera")
        };
        let tools = tools.iter().map(|name| {
            std::sync::Arc::new(crate::tools::ToolSpec {
                name: (*name).into(),
                description: String::new(),
                parameters: json!({}),
            })
        });
        ModelRequest {
            messages: std::sync::Arc::new(serde_json::from_value(messages).unwrap()),
            tools: tools.collect(),
            frontend_tools: frontend_tools.into(),
            context: std::sync::Arc::new([]),
            principal: std::sync::Arc::new(principal),
        }
    }

    #[test]
    fn after_a_tool_result_the_reply_is_a_sentence_about_it() {
        let messages = |content: &str| {
            json!([
                {"id": "u1", "role": "user", "content": "change the accent colour to notacolour"},
                {"id": "a1", "role": "assistant", "toolCalls": [{"id": "call_1", "type": "function",
                    "function": {"name": "change_accent_color", "arguments": "{\"color\":\"notacolour\"}"}}]},
                {"id": "t1", "role": "tool", "toolCallId": "call_1", "content": content}
            ])
        };
        let refused = json!({"error": "invalid_color", "message": "\"notacolour\" is not a CSS colour; the accent is unchanged"});
        assert_eq!(
            plan(&request(messages(&refused.to_string()), &[], vec![])),
            Plan::Say(
                "That colour was refused: \"notacolour\" is not a CSS colour; the accent is unchanged."
                    .into()
            )
        );
        assert_eq!(
            plan(&request(messages(r#"{"color":"teal"}"#), &[], vec![])),
            Plan::Say("Accent colour set to teal.".into())
        );
    }

    #[test]
    fn help_lists_the_offered_tools_instead_of_echoing() {
        let ask = |text: &str| {
            let messages = json!([{"id": "u1", "role": "user", "content": text}]);
            plan(&request(
                messages,
                &["whoami", "list_my_documents", "set_preference"],
                vec![tool("change_accent_color")],
            ))
        };
        for asked in ["What can you do?", "  help  ", "/help"] {
            let Plan::Say(text) = ask(asked) else {
                panic!("{asked}: not a reply")
            };
            assert!(
                text.contains("\"Who am I?\"") && text.contains("\"Set my theme to dark\""),
                "{text}"
            );
            assert!(
                text.contains("\"Change the accent colour to teal\""),
                "{text}"
            );
            assert!(
                text.contains("/stream") && !text.contains("You said"),
                "{text}"
            );
        }
        // Control: any other message is still greeted and echoed.
        assert_eq!(
            ask("hello"),
            Plan::Say("Hello, Vera Viewer! You said: \"hello\"".into())
        );
    }

    #[test]
    fn greeting_words_join_back_to_the_text() {
        let text = "Hello, Ada! You said: \"hi  there\"";
        assert_eq!(words(text).collect::<String>(), text);
    }
}
