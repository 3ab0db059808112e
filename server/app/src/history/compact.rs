//! Compaction: a reply streamed as 200 deltas is stored, and replayed, as one content event.
//!
//! Only *consecutive* content events of the same message (or tool call, or reasoning message)
//! are merged, so a compacted sequence is the original one with fewer events and the same
//! meaning: every rule the sequence guard checked still holds. (CopilotKit's in-memory runner
//! compacts the same way, one content event per message, `@ag-ui/client` `compactEvents`.)

use agui_protocol::{Event, ReasoningMessageContent, TextMessageContent, ToolCallArgs};

/// Appends `event` to `events`, merged into the last event when both carry content of the same
/// message, tool call or reasoning message.
pub(crate) fn push(events: &mut Vec<Event>, event: Event) {
    if !merge(events.last_mut(), &event) {
        events.push(event);
    }
}

/// [`push`] of a borrowed event: content merged into the last event costs a copy of its delta
/// only (no event is cloned), which is what almost every event of a streamed reply is.
pub(crate) fn push_ref(events: &mut Vec<Event>, event: &Event) {
    if !merge(events.last_mut(), event) {
        events.push(event.clone());
    }
}

/// Room a merged delta gets at its first merge: a fast reply's deltas (16 bytes each, say) then
/// grow it 5 times on the way to 4 KB instead of 8, and a paced reply, whose flush window holds
/// one delta and never merges, keeps its delta's own size.
const MERGED_DELTA_START: usize = 256;

/// Appends `next`'s delta to `last` when both are content of the same item; whether it did.
fn merge(last: Option<&mut Event>, next: &Event) -> bool {
    let (into, more) = match (last, next) {
        (Some(Event::TextMessageContent(last)), Event::TextMessageContent(next))
            if last.message_id == next.message_id =>
        {
            (&mut last.delta, &next.delta)
        }
        (Some(Event::ToolCallArgs(last)), Event::ToolCallArgs(next))
            if last.tool_call_id == next.tool_call_id =>
        {
            (&mut last.delta, &next.delta)
        }
        (Some(Event::ReasoningMessageContent(last)), Event::ReasoningMessageContent(next))
            if last.message_id == next.message_id =>
        {
            (&mut last.delta, &next.delta)
        }
        _ => return false,
    };
    if into.capacity() < MERGED_DELTA_START {
        into.reserve(MERGED_DELTA_START.max(into.len() + more.len()) - into.len());
    }
    into.push_str(more);
    true
}

/// About how many bytes of JSON `events` take, a little over for a reply's text (its escapes)
/// and its fields: a stored chunk is written into one buffer of this size instead of one that
/// doubles its way up from 128 bytes.
pub(crate) fn json_size_hint(events: &[Event]) -> usize {
    events
        .iter()
        .map(|event| match event {
            Event::TextMessageContent(TextMessageContent { delta, .. })
            | Event::ReasoningMessageContent(ReasoningMessageContent { delta, .. }) => {
                delta.len() + delta.len() / 16 + 160
            }
            // Arguments are JSON: their quotes are escaped.
            Event::ToolCallArgs(ToolCallArgs { delta, .. }) => delta.len() + delta.len() / 4 + 160,
            _ => 192,
        })
        .sum::<usize>()
        + 2
}

/// Appends every event of `more`, compacting across the seam.
pub(crate) fn extend(events: &mut Vec<Event>, more: impl IntoIterator<Item = Event>) {
    for event in more {
        push(events, event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agui_protocol::{TextMessageContent, TextMessageEnd, TextMessageStart, ToolCallArgs};

    fn text(id: &str, delta: &str) -> Event {
        Event::TextMessageContent(TextMessageContent::new(id, delta))
    }

    #[test]
    fn consecutive_deltas_of_one_message_become_one_event() {
        let mut events = Vec::new();
        push(
            &mut events,
            Event::TextMessageStart(TextMessageStart::new("m1")),
        );
        for part in ["Hel", "lo, ", "world"] {
            push(&mut events, text("m1", part));
        }
        push(
            &mut events,
            Event::TextMessageEnd(TextMessageEnd::new("m1")),
        );
        assert_eq!(events.len(), 3);
        assert_eq!(events[1], text("m1", "Hello, world"));
    }

    #[test]
    fn content_of_different_items_or_not_adjacent_is_kept_apart() {
        let mut events = Vec::new();
        push(&mut events, text("m1", "a"));
        push(&mut events, text("m2", "b"));
        push(
            &mut events,
            Event::ToolCallArgs(ToolCallArgs::new("c1", "{")),
        );
        push(
            &mut events,
            Event::ToolCallArgs(ToolCallArgs::new("c2", "{")),
        );
        push(
            &mut events,
            Event::ToolCallArgs(ToolCallArgs::new("c1", "}")),
        );
        assert_eq!(events.len(), 5);
        // Across a seam (two stored chunks of one run), the same rule.
        let mut stored = vec![text("m3", "x")];
        extend(&mut stored, [text("m3", "y"), text("m3", "z")]);
        assert_eq!(stored, vec![text("m3", "xyz")]);
    }
}
