//! A replay seen as a conversation: the messages and the shared state its events build, for the
//! runtime's thread endpoints (`…/threads/{id}/messages` and `…/state`).

use agui_protocol::{Event, JsonPatchOperation, Message, UserContent};
use serde_json::{Map, Value, json};

/// The messages the events build, in the shape CopilotKit's runtime serves them: assistant
/// `{id, role, content?, toolCalls?: [{id, name, args}]}`, tool `{id, role, content,
/// toolCallId}`, others `{id, role, content?}`.
pub(crate) fn messages(events: &[Event]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let position = |out: &Vec<Value>, id: &str| out.iter().position(|m| m["id"] == id);
    for event in events {
        match event {
            Event::RunStarted(started) => {
                for message in started.input.iter().flat_map(|input| &input.messages) {
                    let mapped = input_message(message);
                    if position(&out, mapped["id"].as_str().unwrap_or_default()).is_none() {
                        out.push(mapped);
                    }
                }
            }
            Event::TextMessageStart(start)
                if position(&out, start.message_id.as_str()).is_none() =>
            {
                out.push(json!({ "id": start.message_id, "role": "assistant", "content": "" }));
            }
            Event::TextMessageContent(content) => {
                if let Some(i) = position(&out, content.message_id.as_str()) {
                    let text = out[i]["content"].as_str().unwrap_or_default().to_owned();
                    out[i]["content"] = json!(text + &content.delta);
                }
            }
            Event::ToolCallStart(start) => {
                let parent = start
                    .parent_message_id
                    .as_ref()
                    .map_or(start.tool_call_id.as_str(), |p| p.as_str());
                let i = match position(&out, parent) {
                    Some(i) => i,
                    None => {
                        out.push(json!({ "id": parent, "role": "assistant" }));
                        out.len() - 1
                    }
                };
                let call =
                    json!({ "id": start.tool_call_id, "name": start.tool_call_name, "args": "" });
                match out[i].get_mut("toolCalls").and_then(Value::as_array_mut) {
                    Some(calls) => calls.push(call),
                    None => out[i]["toolCalls"] = json!([call]),
                }
            }
            Event::ToolCallArgs(args) => {
                for message in out.iter_mut().rev() {
                    if let Some(call) = message
                        .get_mut("toolCalls")
                        .and_then(Value::as_array_mut)
                        .and_then(|calls| {
                            calls
                                .iter_mut()
                                .find(|c| c["id"] == args.tool_call_id.as_str())
                        })
                    {
                        let text = call["args"].as_str().unwrap_or_default().to_owned();
                        call["args"] = json!(text + &args.delta);
                        break;
                    }
                }
            }
            Event::ToolCallResult(result) => {
                let content = match &result.content {
                    UserContent::Text(text) => text.clone(),
                    UserContent::Parts(parts) => agui_protocol::dialect::flatten_content(parts),
                };
                out.push(json!({
                    "id": result.message_id,
                    "role": "tool",
                    "content": content,
                    "toolCallId": result.tool_call_id,
                }));
            }
            _ => {}
        }
    }
    out
}

fn input_message(message: &Message) -> Value {
    let mut value = serde_json::to_value(message).unwrap_or(Value::Null);
    if let Message::Tool(tool) = message
        && let UserContent::Parts(parts) = &tool.content
    {
        value["content"] = json!(agui_protocol::dialect::flatten_content(parts));
    }
    value
}

/// The shared state the events leave: the last `STATE_SNAPSHOT` with the `STATE_DELTA`s after
/// it applied (RFC 6902); `None` when no run set any state.
pub(crate) fn state(events: &[Event]) -> Option<Value> {
    let mut state: Option<Value> = None;
    for event in events {
        match event {
            Event::StateSnapshot(snapshot) => state = Some(snapshot.snapshot.clone()),
            Event::StateDelta(delta) => {
                let target = state.get_or_insert_with(|| Value::Object(Map::new()));
                let mut patched = target.clone();
                if delta
                    .delta
                    .iter()
                    .all(|op| apply(&mut patched, op).is_some())
                {
                    *target = patched;
                }
            }
            _ => {}
        }
    }
    state
}

/// One RFC 6902 operation; `None` when it does not apply (the whole patch is then skipped, as
/// §5 says).
fn apply(doc: &mut Value, op: &JsonPatchOperation) -> Option<()> {
    match op {
        JsonPatchOperation::Add { path, value } => add(doc, path, value.clone()),
        JsonPatchOperation::Remove { path } => remove(doc, path).map(drop),
        JsonPatchOperation::Replace { path, value } => {
            *doc.pointer_mut(path)? = value.clone();
            Some(())
        }
        JsonPatchOperation::Move { from, path } => {
            let value = remove(doc, from)?;
            add(doc, path, value)
        }
        JsonPatchOperation::Copy { from, path } => {
            let value = doc.pointer(from)?.clone();
            add(doc, path, value)
        }
        JsonPatchOperation::Test { path, value } => (doc.pointer(path)? == value).then_some(()),
    }
}

/// Splits a JSON Pointer into its parent and its last, unescaped token.
fn split(path: &str) -> Option<(&str, String)> {
    let cut = path.rfind('/')?;
    Some((
        &path[..cut],
        path[cut + 1..].replace("~1", "/").replace("~0", "~"),
    ))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Option<()> {
    if path.is_empty() {
        *doc = value;
        return Some(());
    }
    let (parent, token) = split(path)?;
    match doc.pointer_mut(parent)? {
        Value::Object(map) => {
            map.insert(token, value);
            Some(())
        }
        Value::Array(items) if token == "-" => {
            items.push(value);
            Some(())
        }
        Value::Array(items) => {
            let index: usize = token.parse().ok()?;
            (index <= items.len()).then(|| items.insert(index, value))
        }
        _ => None,
    }
}

fn remove(doc: &mut Value, path: &str) -> Option<Value> {
    let (parent, token) = split(path)?;
    match doc.pointer_mut(parent)? {
        Value::Object(map) => map.remove(&token),
        Value::Array(items) => {
            let index: usize = token.parse().ok()?;
            (index < items.len()).then(|| items.remove(index))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agui_protocol::{StateDelta, StateSnapshot};

    #[test]
    fn state_is_the_last_snapshot_with_the_deltas_after_it() {
        let delta =
            |ops: Value| Event::StateDelta(StateDelta::new(serde_json::from_value(ops).unwrap()));
        let events = vec![
            Event::StateSnapshot(StateSnapshot::new(json!({"theme": "light", "n": [1]}))),
            delta(
                json!([{"op": "replace", "path": "/theme", "value": "dark"}, {"op": "add", "path": "/n/-", "value": 2}]),
            ),
            // A patch that does not apply is skipped whole.
            delta(
                json!([{"op": "add", "path": "/x", "value": 1}, {"op": "remove", "path": "/missing"}]),
            ),
            delta(json!([{"op": "move", "from": "/theme", "path": "/colours~1theme"}])),
        ];
        assert_eq!(
            state(&events),
            Some(json!({"colours/theme": "dark", "n": [1, 2]}))
        );
        assert_eq!(state(&[]), None);
    }
}
