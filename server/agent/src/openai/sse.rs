//! An incremental server-sent-events decoder for the model's response body.
//!
//! Follows the WHATWG HTML "Server-sent events" parsing rules that matter for chat-completion
//! streams: lines end with LF, CRLF or CR; a line starting with `:` is a comment (keep-alives);
//! `data:` lines (one optional space after the colon) accumulate, joined with LF; `event:` names
//! the event; an empty line dispatches it. Bytes may be split anywhere by the network, so the
//! decoder buffers until a line is complete. A line or event larger than [`MAX_EVENT_BYTES`]
//! is a protocol error rather than unbounded memory.

/// The largest event (or line) accepted from the provider.
pub(crate) const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, empty when absent.
    pub event: String,
    /// The `data:` lines joined with LF.
    pub data: String,
}

/// Why the byte stream is not valid SSE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SseError {
    /// A line is not UTF-8.
    NotUtf8,
    /// A line or event exceeds [`MAX_EVENT_BYTES`].
    TooLarge,
}

/// Feeds bytes in, takes complete events out.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    buffer: Vec<u8>,
    /// The previous chunk ended with CR: a leading LF in the next one belongs to it.
    skip_lf: bool,
    event: String,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    /// Appends `bytes` and returns every event they complete.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut bytes = bytes;
        if self.skip_lf && !bytes.is_empty() {
            self.skip_lf = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < self.buffer.len() {
            match self.buffer[i] {
                b'\n' => {
                    self.line(start, i, &mut events)?;
                    i += 1;
                    start = i;
                }
                b'\r' => {
                    self.line(start, i, &mut events)?;
                    i += 1;
                    if i == self.buffer.len() {
                        self.skip_lf = true;
                    } else if self.buffer[i] == b'\n' {
                        i += 1;
                    }
                    start = i;
                }
                _ => i += 1,
            }
        }
        self.buffer.drain(..start);
        if self.buffer.len() > MAX_EVENT_BYTES {
            return Err(SseError::TooLarge);
        }
        Ok(events)
    }

    /// Whether bytes of an unfinished line or event are pending (the stream ended mid-event).
    pub(crate) fn has_partial(&self) -> bool {
        !self.buffer.is_empty() || self.has_data
    }

    fn line(
        &mut self,
        start: usize,
        end: usize,
        events: &mut Vec<SseEvent>,
    ) -> Result<(), SseError> {
        let line = std::str::from_utf8(&self.buffer[start..end]).map_err(|_| SseError::NotUtf8)?;
        if line.is_empty() {
            if self.has_data {
                events.push(SseEvent {
                    event: std::mem::take(&mut self.event),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event.clear();
            self.has_data = false;
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.find(':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                if self.data.len() > MAX_EVENT_BYTES {
                    return Err(SseError::TooLarge);
                }
            }
            "event" => value.clone_into(&mut self.event),
            // `id` and `retry` only matter to reconnecting EventSource clients.
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(d: &str) -> SseEvent {
        SseEvent {
            event: String::new(),
            data: d.into(),
        }
    }

    #[test]
    fn decodes_events_split_at_any_byte() {
        let wire = b": keep-alive\r\ndata: {\"a\":1}\r\n\r\ndata:two\ndata: lines\n\nevent: error\ndata: x\r\rdata: [DONE]\n\n";
        let expected = vec![
            data("{\"a\":1}"),
            data("two\nlines"),
            SseEvent {
                event: "error".into(),
                data: "x".into(),
            },
            data("[DONE]"),
        ];
        for split in 1..wire.len() {
            let mut decoder = SseDecoder::default();
            let mut events = Vec::new();
            for piece in wire.chunks(split) {
                events.extend(decoder.push(piece).unwrap());
            }
            assert_eq!(events, expected, "split every {split} bytes");
            assert!(!decoder.has_partial());
        }
    }

    #[test]
    fn reports_partial_events_and_bad_bytes() {
        let mut decoder = SseDecoder::default();
        assert!(decoder.push(b"data: {\"a\"").unwrap().is_empty());
        assert!(decoder.has_partial());
        let mut decoder = SseDecoder::default();
        assert!(decoder.push(b"data: x\n").unwrap().is_empty());
        assert!(
            decoder.has_partial(),
            "data without its blank line is unfinished"
        );
        let mut decoder = SseDecoder::default();
        assert_eq!(decoder.push(b"data: \xff\n\n"), Err(SseError::NotUtf8));
        let mut decoder = SseDecoder::default();
        let huge = vec![b'a'; MAX_EVENT_BYTES + 1];
        assert_eq!(decoder.push(&huge), Err(SseError::TooLarge));
    }
}
