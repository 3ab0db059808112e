//! An incremental reader of AG-UI server-sent events, cheap enough to keep up with a million
//! events per second on one core.
//!
//! Frames are `\n\n`-terminated (AG-UI's SSE encoding is `data: <json>\n\n`, LF only). The reader
//! does not parse the JSON: it only takes each event's `"type"` so it can tell when the first
//! event arrived and whether the stream ended with `RUN_FINISHED`. Comment frames (`: keepalive`)
//! are not events.

/// What a finished stream looked like, for the validity rule "every stream ends in
/// `RUN_FINISHED`".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The last event was `RUN_FINISHED` and nothing followed it.
    Finished,
    /// The last event was `RUN_ERROR`.
    RunError,
    /// The body ended after another event, or with no event at all.
    Truncated,
    /// The body ended in the middle of a frame.
    PartialFrame,
}

/// Incremental SSE reader: feed it body chunks as they arrive.
#[derive(Debug, Default)]
pub struct SseReader {
    /// Bytes of the frame not yet terminated.
    pending: Vec<u8>,
    events: u64,
    bytes: u64,
    last_type: Option<EventKind>,
    /// The concatenated `delta`s of the text-content events, when asked for ([`Self::collecting`]).
    text: Option<String>,
}

/// The event types the benchmark needs to tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKind {
    RunFinished,
    RunError,
    Other,
}

impl SseReader {
    /// A reader at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// A reader that also keeps the text of the reply (every `TEXT_MESSAGE_CONTENT` delta, in
    /// order), for scenarios that check that a client got the whole reply (`join`). It parses
    /// those frames' JSON, so the load scenarios do not use it.
    pub fn collecting() -> Self {
        Self {
            text: Some(String::new()),
            ..Self::default()
        }
    }

    /// The reply's text so far (empty unless [`Self::collecting`]).
    pub fn text(&self) -> &str {
        self.text.as_deref().unwrap_or("")
    }

    /// Consumes one chunk of the body; returns how many complete events it finished.
    pub fn feed(&mut self, chunk: &[u8]) -> u64 {
        self.bytes += chunk.len() as u64;
        let before = self.events;
        if self.pending.is_empty() {
            // The common case: chunks hold whole frames, so nothing is copied.
            let rest = self.scan(chunk);
            self.pending.extend_from_slice(rest);
        } else {
            // A frame was split across chunks: look for its end from one byte before the join,
            // since the `\n\n` itself may be split.
            let start = self.pending.len().saturating_sub(1);
            self.pending.extend_from_slice(chunk);
            let pending = std::mem::take(&mut self.pending);
            let rest = match find_frame_end(&pending[start..]) {
                Some(_) => {
                    let rest = self.scan(&pending);
                    rest.to_vec()
                }
                None => pending.clone(),
            };
            self.pending = rest;
        }
        self.events - before
    }

    /// Splits `data` into complete frames, records them, and returns the unterminated tail.
    fn scan<'a>(&mut self, mut data: &'a [u8]) -> &'a [u8] {
        while let Some(end) = find_frame_end(data) {
            self.frame(&data[..end]);
            data = &data[end + 2..];
        }
        data
    }

    fn frame(&mut self, frame: &[u8]) {
        // A frame made only of comment lines (`:` first) carries no event.
        let is_event = frame
            .split(|b| *b == b'\n')
            .any(|line| line.starts_with(b"data:"));
        if !is_event {
            return;
        }
        self.events += 1;
        let kind = event_type(frame);
        if let (Some(text), Some(b"TEXT_MESSAGE_CONTENT")) = (&mut self.text, kind) {
            text.push_str(&delta_of(frame).unwrap_or_default());
        }
        self.last_type = Some(match kind {
            Some(b"RUN_FINISHED") => EventKind::RunFinished,
            Some(b"RUN_ERROR") => EventKind::RunError,
            _ => EventKind::Other,
        });
    }

    /// Complete events read so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Body bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// How the stream ended, once the body is complete.
    pub fn ending(&self) -> Ending {
        if !self.pending.iter().all(|b| *b == b'\n') {
            return Ending::PartialFrame;
        }
        match self.last_type {
            Some(EventKind::RunFinished) => Ending::Finished,
            Some(EventKind::RunError) => Ending::RunError,
            _ => Ending::Truncated,
        }
    }
}

/// The `delta` of a text-content frame (its `data:` lines joined, parsed as JSON).
fn delta_of(frame: &[u8]) -> Option<String> {
    let data: Vec<u8> = frame
        .split(|b| *b == b'\n')
        .filter_map(|line| line.strip_prefix(b"data:"))
        .flat_map(|line| line.strip_prefix(b" ").unwrap_or(line).iter().copied())
        .collect();
    let value: serde_json::Value = serde_json::from_slice(&data).ok()?;
    Some(value.get("delta")?.as_str()?.to_owned())
}

/// Position of the first `\n\n` in `data`.
fn find_frame_end(data: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = data[from..].iter().position(|b| *b == b'\n') {
        let at = from + i;
        if data.get(at + 1) == Some(&b'\n') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The value of the first `"type":"…"` member of an event frame.
fn event_type(frame: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"\"type\":";
    let at = frame.windows(KEY.len()).position(|w| w == KEY)?;
    let rest = &frame[at + KEY.len()..];
    let rest = &rest[rest.iter().position(|b| *b == b'"')? + 1..];
    let end = rest.iter().position(|b| *b == b'"')?;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = concat!(
        "data: {\"type\":\"RUN_STARTED\",\"threadId\":\"t\",\"runId\":\"r\"}\n\n",
        ": keepalive\n\n",
        "data: {\"type\":\"TEXT_MESSAGE_CONTENT\",\"messageId\":\"m\",\"delta\":\"\\\"type\\\"\"}\n\n",
        "data: {\"type\":\"RUN_FINISHED\",\"threadId\":\"t\",\"runId\":\"r\"}\n\n",
    );

    #[test]
    fn whole_stream_in_one_chunk_counts_events_not_comments() {
        let mut reader = SseReader::new();
        assert_eq!(reader.feed(STREAM.as_bytes()), 3);
        assert_eq!(reader.events(), 3);
        assert_eq!(reader.bytes(), STREAM.len() as u64);
        assert_eq!(reader.ending(), Ending::Finished);
    }

    #[test]
    fn every_split_point_gives_the_same_result() {
        // Frames split anywhere, including between the two newlines of a terminator.
        for split in 0..=STREAM.len() {
            let (a, b) = STREAM.as_bytes().split_at(split);
            let mut reader = SseReader::new();
            let n = reader.feed(a) + reader.feed(b);
            assert_eq!(n, 3, "split at {split}");
            assert_eq!(reader.ending(), Ending::Finished, "split at {split}");
        }
    }

    #[test]
    fn byte_by_byte_feeding_reports_each_event_when_it_completes() {
        let mut reader = SseReader::new();
        let mut completed_at = Vec::new();
        for (i, byte) in STREAM.as_bytes().iter().enumerate() {
            if reader.feed(std::slice::from_ref(byte)) == 1 {
                completed_at.push(i);
            }
        }
        let ends: Vec<usize> = STREAM.match_indices("}\n\n").map(|(i, _)| i + 2).collect();
        assert_eq!(completed_at, ends);
    }

    #[test]
    fn a_collecting_reader_keeps_the_deltas_and_a_plain_one_does_not() {
        let mut reader = SseReader::collecting();
        reader.feed(STREAM.as_bytes());
        assert_eq!(reader.text(), "\"type\"");
        let mut plain = SseReader::new();
        plain.feed(STREAM.as_bytes());
        assert_eq!(plain.text(), "");
        assert_eq!(plain.events(), reader.events());
    }

    #[test]
    fn a_stream_without_run_finished_is_truncated() {
        let cut = STREAM.rfind("data: {\"type\":\"RUN_FINISHED").unwrap();
        let mut reader = SseReader::new();
        reader.feed(&STREAM.as_bytes()[..cut]);
        assert_eq!(reader.events(), 2);
        assert_eq!(reader.ending(), Ending::Truncated);
        // Positive control: the same reader given the rest finishes.
        reader.feed(&STREAM.as_bytes()[cut..]);
        assert_eq!(reader.ending(), Ending::Finished);
    }

    #[test]
    fn a_body_ending_mid_frame_is_a_partial_frame() {
        let mut reader = SseReader::new();
        reader.feed(&STREAM.as_bytes()[..STREAM.len() - 1]);
        assert_eq!(reader.ending(), Ending::PartialFrame);
    }

    #[test]
    fn empty_body_and_run_error_are_not_finished() {
        assert_eq!(SseReader::new().ending(), Ending::Truncated);
        let mut reader = SseReader::new();
        reader.feed(b"data: {\"type\":\"RUN_ERROR\",\"message\":\"x\"}\n\n");
        assert_eq!(reader.ending(), Ending::RunError);
    }

    #[test]
    fn events_after_run_finished_make_it_not_the_last() {
        let mut reader = SseReader::new();
        reader.feed(STREAM.as_bytes());
        reader.feed(b"data: {\"type\":\"TEXT_MESSAGE_CONTENT\"}\n\n");
        assert_eq!(reader.ending(), Ending::Truncated);
    }
}
