//! What the scripted model says in words: one short sentence after a tool's result, and the help.
//!
//! The sentence reads the result the way the sample app's cards do (web/src/toolResults.ts): an
//! `{"error": <code>, "message": <text>}` object is a refusal or failure (the shape of
//! [`ToolError::to_result`](crate::tools::ToolError::to_result), which the app's frontend tool
//! uses too), anything else is the tool's answer. It never dumps the raw JSON: the card shows the
//! data, the sentence says what happened.

use serde_json::{Map, Value};

/// Quoted text (a title, a message, a client's tool result) is cut to this many characters.
const QUOTE_LIMIT: usize = 200;
/// A document list names at most this many documents.
const LISTED_LIMIT: usize = 10;

/// The sentence after the result `content` of the tool `name`.
pub(super) fn after_tool(name: &str, content: &str) -> String {
    let value: Option<Value> = serde_json::from_str(content).ok();
    let object = value.as_ref().and_then(Value::as_object);
    if let Some(object) = object
        && let Some(code) = object.get("error").and_then(Value::as_str)
    {
        let message = object
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or(code);
        return refusal(name, code, &clip(message));
    }
    // CopilotKit's answer when a frontend tool's handler throws (`@copilotkit/core` 1.74).
    if let Some(error) = content.strip_prefix("Error: ") {
        return refusal(name, "tool_error", &clip(error));
    }
    if let Some(object) = object
        && let Some(sentence) = known_answer(name, object)
    {
        return sentence;
    }
    match value {
        Some(Value::Object(object)) => match object.get("message").and_then(Value::as_str) {
            Some(message) => sentence(format!("The {name} tool says: {}", clip(message))),
            None => format!("The {name} tool finished."),
        },
        Some(Value::String(text)) => says(name, &text),
        Some(_) => format!("The {name} tool finished."),
        None => says(name, content),
    }
}

fn says(name: &str, text: &str) -> String {
    if text.trim().is_empty() {
        format!("The {name} tool finished without a result.")
    } else {
        sentence(format!("The {name} tool says: {}", clip(text.trim())))
    }
}

fn refusal(name: &str, code: &str, message: &str) -> String {
    match code {
        "tool_not_allowed" => format!("You are not allowed to use {name}, so nothing was done."),
        "unknown_tool" => format!("There is no tool called {name}."),
        "tool_timeout" => format!("The {name} tool took too long and was stopped."),
        "not_found" => sentence(format!("Not found: {message}")),
        "invalid_arguments" => {
            sentence(format!("The {name} tool refused its arguments: {message}"))
        }
        // The sample app's frontend tool refuses what is not a CSS colour (web/src/ChatTools.tsx).
        _ if name == "change_accent_color" => {
            sentence(format!("That colour was refused: {message}"))
        }
        _ => sentence(format!("The {name} tool failed: {message}")),
    }
}

/// The built-in tools' answers (tools/builtin.rs) and the sample app's frontend tool, in words;
/// `None` when the result is not in the shape the tool documents.
fn known_answer(name: &str, result: &Map<String, Value>) -> Option<String> {
    let text = |key: &str| result.get(key).and_then(Value::as_str);
    Some(match name {
        "whoami" => {
            let who = text("name")
                .or(text("email"))
                .or(text("subject"))
                .filter(|who| !who.is_empty())?;
            let roles: Vec<&str> = result
                .get("roles")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let roles = match roles.len() {
                0 => "no roles".to_owned(),
                1 => format!("role {}", roles[0]),
                _ => format!("roles {}", roles.join(", ")),
            };
            format!("Here is who you are: {}, {roles}.", clip(who))
        }
        "list_my_documents" => {
            let documents = result.get("documents")?.as_array()?;
            let named: Vec<String> = documents
                .iter()
                .take(LISTED_LIMIT)
                .map(|doc| {
                    let title = doc.get("title").and_then(Value::as_str).unwrap_or("");
                    format!("#{} {}", scalar(doc.get("id")), clip(title))
                })
                .collect();
            let more = documents.len().saturating_sub(LISTED_LIMIT);
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            match documents.len() {
                0 => "You have no documents.".to_owned(),
                1 => format!("You have 1 document: {}.", named.join(", ")),
                n => format!("You have {n} documents: {}{tail}.", named.join(", ")),
            }
        }
        "get_document" => {
            let id = result.get("id")?;
            let title = text("title").unwrap_or("");
            format!(
                "Here is document {}, \"{}\".",
                scalar(Some(id)),
                clip(title)
            )
        }
        "delete_document" => format!(
            "Document {} is deleted.",
            scalar(Some(result.get("deleted")?))
        ),
        "set_preference" => {
            let key = text("preference")?;
            let value = result.get("value")?;
            format!("Your {} is now {}.", clip(key), clip(&scalar(Some(value))))
        }
        "change_accent_color" => format!("Accent colour set to {}.", clip(text("color")?)),
        _ => return None,
    })
}

/// A JSON value as a person reads it: strings without quotes, the rest as compact JSON.
fn scalar(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Ends `text` with a full stop unless it already ends a sentence.
fn sentence(mut text: String) -> String {
    if !text.ends_with(['.', '!', '?', '…']) {
        text.push('.');
    }
    text
}

/// `text` cut to [`QUOTE_LIMIT`] characters (on a character boundary), with "…" when cut.
fn clip(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Whether the message asks what the demo can do: "help", "/help", "what can you do?", "what
/// can I do here?" (already lower-cased and trimmed).
pub(super) fn is_help(lower: &str) -> bool {
    let bare = lower.trim_end_matches(['?', '!', '.']).trim();
    bare == "help"
        || bare == "/help"
        || lower.contains("what can you do")
        || lower.contains("what can i do")
}

/// The help: what this caller can ask for (the backend tools they may use, the frontend tools
/// their page offers), then the commands.
pub(super) fn help<'a>(
    backend: impl IntoIterator<Item = &'a str>,
    frontend: impl IntoIterator<Item = &'a str>,
) -> String {
    let mut backend: Vec<&str> = backend.into_iter().collect();
    backend.sort_by_key(|name| (rank(name), *name));
    let mut lines = vec![
        "I am the scripted demo model: no AI, a fixed script that drives every path of the server. You can ask:"
            .to_owned(),
    ];
    lines.extend(
        backend
            .into_iter()
            .map(|name| format!("- {}", example(name, false))),
    );
    lines.extend(
        frontend
            .into_iter()
            .map(|name| format!("- {}", example(name, true))),
    );
    lines.push(
        "Commands: `/tool <name> <json-args>` calls a tool, `/stream <n> [size] [delay_ms]` streams n chunks, `/fail` ends the run with an error. Anything else is echoed back."
            .to_owned(),
    );
    lines.join("\n")
}

/// The built-in tools in the order the demo introduces them; other tools after them.
fn rank(name: &str) -> usize {
    const ORDER: [&str; 5] = [
        "whoami",
        "list_my_documents",
        "get_document",
        "delete_document",
        "set_preference",
    ];
    ORDER
        .iter()
        .position(|known| *known == name)
        .unwrap_or(ORDER.len())
}

fn example(name: &str, frontend: bool) -> String {
    match name {
        "whoami" => "\"Who am I?\": who agui-server verified you as (`whoami`)".to_owned(),
        "list_my_documents" => "\"List my documents\" (`list_my_documents`)".to_owned(),
        "get_document" => "\"Show document 1\" (`get_document`)".to_owned(),
        "delete_document" => "\"Delete document 2\" (`delete_document`, admins only)".to_owned(),
        "set_preference" => {
            "\"Set my theme to dark\": kept in the chat's shared state (`set_preference`)"
                .to_owned()
        }
        "change_accent_color" => {
            "\"Change the accent colour to teal\": runs in your browser (`change_accent_color`)"
                .to_owned()
        }
        other if frontend => format!("a message naming `{other}`: runs in your page"),
        other => format!("`/tool {other} {{…}}`"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn builtin_answers_are_sentences_not_json() {
        let cases = [
            (
                "whoami",
                json!({"issuer": "http://127.0.0.1:8080", "subject": "vera", "name": "Vera Viewer", "email": "vera@example.test", "roles": ["viewer"]}),
                "Here is who you are: Vera Viewer, role viewer.",
            ),
            (
                "whoami",
                json!({"subject": "svc", "name": null, "email": null, "roles": []}),
                "Here is who you are: svc, no roles.",
            ),
            (
                "list_my_documents",
                json!({"documents": [{"id": 1, "title": "Welcome"}, {"id": 3, "title": "Meeting notes"}]}),
                "You have 2 documents: #1 Welcome, #3 Meeting notes.",
            ),
            (
                "list_my_documents",
                json!({"documents": []}),
                "You have no documents.",
            ),
            (
                "get_document",
                json!({"id": 2, "title": "Quarterly plan", "body": "Goals"}),
                "Here is document 2, \"Quarterly plan\".",
            ),
            (
                "delete_document",
                json!({"deleted": 2}),
                "Document 2 is deleted.",
            ),
            (
                "set_preference",
                json!({"preference": "theme", "value": "dark"}),
                "Your theme is now dark.",
            ),
            (
                "change_accent_color",
                json!({"color": "teal"}),
                "Accent colour set to teal.",
            ),
        ];
        for (tool, result, expected) in cases {
            assert_eq!(after_tool(tool, &result.to_string()), expected, "{tool}");
        }
    }

    #[test]
    fn refusals_say_what_was_refused() {
        let error =
            |code: &str, message: &str| json!({"error": code, "message": message}).to_string();
        assert_eq!(
            after_tool(
                "delete_document",
                &error("tool_not_allowed", "you are not allowed to use this tool")
            ),
            "You are not allowed to use delete_document, so nothing was done."
        );
        assert_eq!(
            after_tool(
                "get_document",
                &error("not_found", "you have no document 99")
            ),
            "Not found: you have no document 99."
        );
        assert_eq!(
            after_tool(
                "nosuch",
                &error("unknown_tool", "there is no tool by that name")
            ),
            "There is no tool called nosuch."
        );
        assert_eq!(
            after_tool(
                "hang",
                &error("tool_timeout", "the tool took too long and was stopped")
            ),
            "The hang tool took too long and was stopped."
        );
        assert_eq!(
            after_tool(
                "set_preference",
                &error("invalid_arguments", "/key: too long")
            ),
            "The set_preference tool refused its arguments: /key: too long."
        );
        // The sample app's frontend tool (web/src/ChatTools.tsx) refusing an invalid colour.
        assert_eq!(
            after_tool(
                "change_accent_color",
                &error(
                    "invalid_color",
                    "\"notacolour\" is not a CSS colour; the accent is unchanged"
                )
            ),
            "That colour was refused: \"notacolour\" is not a CSS colour; the accent is unchanged."
        );
        // A frontend handler that threw, as CopilotKit reports it.
        assert_eq!(
            after_tool("change_accent_color", "Error: boom"),
            "That colour was refused: boom."
        );
        assert_eq!(
            after_tool("mytool", &error("tool_error", "the backend is down")),
            "The mytool tool failed: the backend is down."
        );
    }

    #[test]
    fn other_results_are_quoted_briefly_or_summarised() {
        assert_eq!(
            after_tool("change_accent_color", "accent set to teal"),
            "The change_accent_color tool says: accent set to teal."
        );
        assert_eq!(
            after_tool("custom", "\"done!\""),
            "The custom tool says: done!"
        );
        assert_eq!(
            after_tool("custom", "{\"rows\": 3}"),
            "The custom tool finished."
        );
        assert_eq!(after_tool("custom", "[1, 2]"), "The custom tool finished.");
        assert_eq!(
            after_tool("custom", ""),
            "The custom tool finished without a result."
        );
        // A known tool whose result is not in its documented shape is not misread.
        assert_eq!(
            after_tool("whoami", "{\"x\": 1}"),
            "The whoami tool finished."
        );
        assert_eq!(
            after_tool("delete_document", "{}"),
            "The delete_document tool finished."
        );
        // Long client text is cut on a character boundary.
        let long = "é".repeat(QUOTE_LIMIT + 50);
        let said = after_tool("custom", &long);
        assert!(
            said.ends_with('…') && said.chars().count() < QUOTE_LIMIT + 40,
            "{said}"
        );
    }

    #[test]
    fn help_is_recognised_and_lists_what_the_caller_may_use() {
        for asked in [
            "help",
            "/help",
            "help!",
            "what can you do?",
            "so, what can you do here",
            "what can i do",
        ] {
            assert!(is_help(asked), "{asked}");
        }
        // Control: messages that merely contain the word are not the help.
        for other in ["help me list my documents", "who am i", "helpful"] {
            assert!(!is_help(other), "{other}");
        }
        let text = help(
            [
                "set_preference",
                "whoami",
                "get_document",
                "list_my_documents",
            ],
            ["change_accent_color", "openMap"],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("I am the scripted demo model"),
            "{text}"
        );
        assert!(lines[1].contains("\"Who am I?\""), "{text}");
        assert!(lines[2].contains("\"List my documents\""), "{text}");
        assert!(lines[3].contains("\"Show document 1\""), "{text}");
        assert!(lines[4].contains("\"Set my theme to dark\""), "{text}");
        assert!(
            lines[5].contains("\"Change the accent colour to teal\""),
            "{text}"
        );
        assert!(lines[6].contains("`openMap`"), "{text}");
        assert!(lines[7].starts_with("Commands: `/tool"), "{text}");
        // A tool the caller may not use (left out of what the model is offered) is not listed.
        assert!(!text.contains("delete_document"), "{text}");
    }
}
