//! A thread's history as the event stream a CopilotKit `connect` answers with, and following a
//! run that is still streaming until it ends.
//!
//! The replay is every run of the thread in start order, each compacted (one content event per
//! reply), each ending with its terminal event: a run whose process died before it ended gets
//! `RUN_ERROR abandoned`, so a replay is never an open-ended stream. A run still streaming is
//! replayed as far as it got and then followed live: here through its [`Joined`] subscription,
//! on another replica through the store's chunks (announced by `NOTIFY`, and re-read every
//! [`POLL`] in case a notice was lost) until its terminal event, or until its replica is known
//! dead (no heartbeat for the instance timeout).
//!
//! A connect costs one store statement ([`Store::thread_replay`]: owner, chunks and open runs
//! together, the history only for its owner) and no per-event re-serialization: each stored
//! chunk is split into its events' JSON spans (checked as JSON, not decoded), and an event the
//! client reads as stored (SSE, and not one of the few its dialect changes) is framed as it is,
//! into writes of [`REPLAY_WRITE`] bytes. Only those few events, and content merged across a
//! chunk seam, are decoded. (Profiled in bench/PROFILE.md, "Connect replay".)
//!
//! Each run's stored `RUN_STARTED` carries the messages that run added (`input.messages`):
//! that is where a CopilotKit client takes the user's messages from when it rebuilds the
//! conversation. It never carries `forwardedProps` (where a client's token travels).

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use agui_agent::RunErrorCode;
use agui_protocol::{Dialect, Encoding, Event, EventType, MessagesSnapshot, RunError, proto, sse};
use bytes::Bytes;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::value::RawValue;
use tokio::sync::{broadcast, mpsc};

use super::History;
use super::compact;
use super::live::Joined;
use crate::store::{Notice, PrincipalKey, ReplayChunk, Store, StoreError, ThreadReplay, now_ms};

/// How often a follower of another replica's run re-reads the store (notices can be lost).
const POLL: Duration = Duration::from_secs(1);

/// A replay is written to its client in writes of about this many bytes (a 50-run thread is
/// about 200 KB: a handful of writes, not one per event).
const REPLAY_WRITE: usize = 32 * 1024;

/// A thread's replay: its runs so far, and the runs still to follow.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    /// What the client gets before anything live.
    pub(crate) stored: Stored,
    /// Runs streaming now, to follow after the replay, in start order.
    pub(crate) follow: Vec<Follow>,
}

/// The events of a replay, compacted, in order: mostly spans of the stored chunks' JSON, sent
/// as they are (a stored event is the JSON the run's client got: for a client of either
/// dialect, only the few events [`needs_adapting`] must be decoded and encoded again).
#[derive(Debug, Default)]
pub(crate) struct Stored {
    /// The stored chunks the spans point into.
    chunks: Vec<ReplayChunk>,
    items: Vec<Item>,
}

#[derive(Debug)]
enum Item {
    /// One stored event: `chunks[chunk].events[span]`, of type `kind`.
    Stored {
        chunk: usize,
        span: Range<usize>,
        kind: EventType,
    },
    /// An event not in the store (yet), one merged across two chunks, or one made for the
    /// replay (`RUN_ERROR abandoned`). Boxed: most items are spans.
    Event(Box<Event>),
}

impl Stored {
    /// How many events the replay has.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// The replay's events, decoded (for the thread endpoints). A stored event that does not
    /// decode is left out, loudly.
    pub(crate) fn into_events(self) -> Vec<Event> {
        let Self { chunks, items } = self;
        items
            .into_iter()
            .filter_map(|item| match item {
                Item::Event(event) => Some(*event),
                Item::Stored { chunk, span, .. } => decode(&chunks[chunk].events[span]),
            })
            .collect()
    }

    fn text(&self, chunk: usize, span: &Range<usize>) -> &str {
        &self.chunks[chunk].events[span.clone()]
    }

    /// The type of the last event, if it is one.
    fn last_type(&self) -> Option<EventType> {
        match self.items.last()? {
            Item::Stored { kind, .. } => Some(*kind),
            Item::Event(event) => Some(event.event_type()),
        }
    }

    /// Appends one event, merged into the last one when both are content of the same item
    /// (only at the seam of two chunks, or of the store and what it does not hold yet: each
    /// chunk is compacted when it is written).
    fn push(&mut self, item: Item) {
        let kind = match &item {
            Item::Stored { kind, .. } => *kind,
            Item::Event(event) => event.event_type(),
        };
        if is_content(kind) && self.last_type().is_some_and(is_content) {
            let last = match self.items.pop() {
                Some(Item::Stored { chunk, span, .. }) => decode(self.text(chunk, &span)),
                Some(Item::Event(event)) => Some(*event),
                None => None,
            };
            let next = match item {
                Item::Stored { chunk, span, .. } => decode(self.text(chunk, &span)),
                Item::Event(event) => Some(*event),
            };
            let mut events: Vec<Event> = last.into_iter().collect();
            compact::extend(&mut events, next);
            self.items
                .extend(events.into_iter().map(|event| Item::Event(Box::new(event))));
            return;
        }
        self.items.push(item);
    }

    /// Appends the events of the stored chunk `chunk` (a JSON array). A chunk that is not an
    /// array is skipped, loudly; so is an element that is not an event.
    fn push_chunk(&mut self, chunk: usize, spans: &mut Vec<Range<usize>>) {
        spans.clear();
        let text = &self.chunks[chunk].events;
        if let Err(error) = element_spans(text, spans) {
            let c = &self.chunks[chunk];
            tracing::error!(
                target: "agui::history", %error, run_id = %c.run_id, chunk = c.chunk,
                "unreadable history chunk skipped"
            );
            return;
        }
        // Sent as stored only when written compactly (no line break could end an SSE line).
        let compact = !text.contains('\n') && !text.contains('\r');
        for span in spans.drain(..) {
            let raw = &self.chunks[chunk].events[span.clone()];
            let item = match wire_type(raw).filter(|_| compact) {
                Some(kind) => Item::Stored { chunk, span, kind },
                None => match decode(raw) {
                    Some(event) => Item::Event(Box::new(event)),
                    None => continue,
                },
            };
            self.push(item);
        }
    }
}

/// The byte spans of the elements of the JSON array `text`, checked as JSON (no element is
/// decoded).
fn element_spans(text: &str, spans: &mut Vec<Range<usize>>) -> Result<(), serde_json::Error> {
    struct Spans<'a> {
        base: usize,
        spans: &'a mut Vec<Range<usize>>,
    }
    impl<'de> Visitor<'de> for Spans<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON array of events")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(raw) = seq.next_element::<&'de RawValue>()? {
                let start = raw.get().as_ptr() as usize - self.base;
                self.spans.push(start..start + raw.get().len());
            }
            Ok(())
        }
    }
    impl<'de> DeserializeSeed<'de> for Spans<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    Spans {
        base: text.as_ptr() as usize,
        spans,
    }
    .deserialize(&mut de)?;
    de.end()
}

/// The type of a stored event written by this server (`{"type":"…",` first, as `Event`
/// serializes), if it is one of AG-UI's; `None` for anything else (then it is decoded).
fn wire_type(raw: &str) -> Option<EventType> {
    let rest = raw.strip_prefix(r#"{"type":""#)?;
    let name = &rest[..rest.find('"')?];
    EventType::from_wire(name)
}

fn decode(raw: &str) -> Option<Event> {
    serde_json::from_str(raw)
        .inspect_err(|error| {
            tracing::error!(target: "agui::history", %error, "unreadable history event skipped");
        })
        .ok()
}

/// Content of a message, tool call or reasoning message: what compaction merges.
fn is_content(kind: EventType) -> bool {
    matches!(
        kind,
        EventType::TextMessageContent
            | EventType::ToolCallArgs
            | EventType::ReasoningMessageContent
    )
}

fn is_terminal(kind: EventType) -> bool {
    matches!(kind, EventType::RunFinished | EventType::RunError)
}

/// The events [`adapt_replayed`] may change for a client of `dialect`: the others are replayed
/// byte for byte as stored (a test checks this against `adapt_replayed` for every type).
fn needs_adapting(dialect: Dialect, kind: EventType) -> bool {
    dialect != Dialect::V1
        && matches!(
            kind,
            EventType::RunStarted
                | EventType::RunFinished
                | EventType::RunError
                | EventType::ToolCallResult
                | EventType::MessagesSnapshot
        )
}

/// Whether a stored event of a type [`needs_adapting`] names is one [`adapt_replayed`] leaves
/// as it is for a 0.0.x client, told from its JSON (as this server writes it: compact) without
/// decoding it. Conservative: a member name that only appears inside a value costs a decode.
/// (A `RUN_STARTED` of a 0.0.x client's run, a `RUN_FINISHED` without an outcome and a
/// `RUN_ERROR` other than a stop are most of them.)
fn stays_as_stored(kind: EventType, raw: &str) -> bool {
    match kind {
        EventType::RunFinished => !raw.contains(r#""outcome""#),
        EventType::RunError => !raw.contains(RunErrorCode::Cancelled.as_str()),
        EventType::RunStarted => ![
            r#""protocolVersion""#,
            r#""forwardedProps""#,
            r#""role":"tool""#,
            r#""content":["#,
        ]
        .iter()
        .any(|member| raw.contains(member)),
        _ => false,
    }
}

/// A run to follow to its end.
#[derive(Debug)]
pub(crate) enum Follow {
    /// Streaming in this process.
    Here(broadcast::Receiver<Arc<Event>>),
    /// Streaming on another replica; its chunks from `next_chunk` on are still to come.
    Elsewhere {
        thread_id: String,
        run_id: String,
        next_chunk: i64,
    },
}

/// One run of the replay while it is assembled.
struct RunParts {
    run_id: String,
    started_at: i64,
    /// Its readable chunks: `chunks[first..first + count]` of the store's answer.
    first: usize,
    /// The next chunk number expected from the store.
    next_chunk: i64,
    /// Chunks from this number on are not to be read from the store (they are in a picture).
    read_until: Option<i64>,
}

impl RunParts {
    fn new(run_id: &str, started_at: i64, first: usize, read_until: Option<i64>) -> Self {
        Self {
            run_id: run_id.to_owned(),
            started_at,
            first,
            next_chunk: 0,
            read_until,
        }
    }

    /// Takes the run's next stored chunk if it is the one expected: a gap (a later chunk
    /// committed before an earlier one) ends the stored part there.
    fn take(&mut self, chunk: &ReplayChunk) {
        if chunk.chunk == self.next_chunk && self.read_until.is_none_or(|limit| chunk.chunk < limit)
        {
            self.next_chunk += 1;
        }
    }
}

/// What [`read`] found: the thread's owner, and what its replay is made of.
pub(crate) struct Loaded {
    /// The thread's owner (`None`: nobody has run on it).
    pub(crate) owner: Option<PrincipalKey>,
    stored: ThreadReplay,
    here: Vec<(String, i64, Joined)>,
}

/// Reads the thread for `reader` in one store statement: its owner and, when `reader` owns it
/// (or `any_owner`), its history, its open runs and the picture of its runs streaming here.
/// The caller decides from the owner whether the replay may be sent ([`Loaded::into_replay`]).
///
/// # Errors
/// The store cannot be read.
pub(crate) async fn read(
    store: &dyn Store,
    history: &History,
    thread_id: &str,
    reader: &PrincipalKey,
    any_owner: bool,
) -> Result<Loaded, StoreError> {
    // First the picture of the runs streaming here, then the store: whatever is committed
    // after the picture is in the picture, and is not read from the store.
    let here: Vec<(String, i64, Joined)> = history
        .live_runs(thread_id)
        .into_iter()
        .map(|run| (run.run_id.clone(), run.started_at, run.join()))
        .collect();
    let stored = store.thread_replay(thread_id, reader, any_owner).await?;
    let readable = any_owner || stored.owner.as_ref() == Some(reader);
    Ok(Loaded {
        owner: stored.owner.clone(),
        here: if readable { here } else { Vec::new() },
        stored,
    })
}

impl Loaded {
    /// The thread's replay. `instance_timeout` is how long a replica may go without a
    /// heartbeat before its open runs count as dead.
    pub(crate) fn into_replay(self, thread_id: &str, instance_timeout: Duration) -> Replay {
        let Self {
            stored: ThreadReplay { chunks, open, .. },
            mut here,
            ..
        } = self;
        // A run's rows are consecutive (by start, run, chunk number) and the ones it takes are a
        // prefix of them: `first..first + next_chunk`.
        let mut runs: Vec<RunParts> = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            if runs.last().is_none_or(|last| last.run_id != chunk.run_id) {
                let limit = here
                    .iter()
                    .find(|(run_id, ..)| *run_id == chunk.run_id)
                    .map(|(.., joined)| joined.committed);
                runs.push(RunParts::new(&chunk.run_id, chunk.started_at, i, limit));
            }
            if let Some(run) = runs.last_mut() {
                run.take(chunk);
            }
        }
        let none = chunks.len();
        for (run_id, started_at, _) in &here {
            if !runs.iter().any(|r| &r.run_id == run_id) {
                runs.push(RunParts::new(run_id, *started_at, none, Some(0)));
            }
        }
        for o in &open {
            if !runs.iter().any(|r| r.run_id == o.run_id) {
                runs.push(RunParts::new(&o.run_id, o.started_at, none, None));
            }
        }
        runs.sort_by(|a, b| (a.started_at, &a.run_id).cmp(&(b.started_at, &b.run_id)));

        let now = now_ms();
        let timeout = i64::try_from(instance_timeout.as_millis()).unwrap_or(i64::MAX);
        let mut replay = Replay {
            stored: Stored {
                chunks,
                items: Vec::new(),
            },
            follow: Vec::new(),
        };
        let mut spans = Vec::new();
        for run in runs {
            let begin = replay.stored.items.len();
            let count = usize::try_from(run.next_chunk).unwrap_or(0);
            for chunk in run.first..(run.first + count).min(replay.stored.chunks.len()) {
                replay.stored.push_chunk(chunk, &mut spans);
            }
            if let Some(i) = here.iter().position(|(run_id, ..)| *run_id == run.run_id) {
                let (.., joined) = here.swap_remove(i);
                for event in joined.uncommitted {
                    replay.stored.push(Item::Event(Box::new(event)));
                }
                if let Some(live) = joined.live {
                    replay.follow.push(Follow::Here(live));
                }
                continue;
            }
            let ended = replay.stored.items.len() > begin
                && replay.stored.last_type().is_some_and(is_terminal);
            let alive_elsewhere = !ended
                && open.iter().any(|o| {
                    o.run_id == run.run_id
                        && o.heartbeat_at.is_some_and(|beat| now - beat < timeout)
                });
            if alive_elsewhere {
                replay.follow.push(Follow::Elsewhere {
                    thread_id: thread_id.to_owned(),
                    run_id: run.run_id,
                    next_chunk: run.next_chunk,
                });
            } else if !ended && run.next_chunk > 0 {
                replay.stored.push(Item::Event(Box::new(abandoned())));
            }
        }
        replay
    }
}

/// The end of a run whose process died before it ended.
fn abandoned() -> Event {
    let code = RunErrorCode::Abandoned;
    let mut error = RunError::new(code.message().to_owned());
    error.code = Some(code.as_str().to_owned());
    Event::RunError(error)
}

/// Writes a replay to one client: each event adapted to the client's dialect (as replayed
/// history, see [`adapt_replayed`]) and encoded.
pub(crate) struct ReplaySink {
    tx: mpsc::Sender<Bytes>,
    dialect: Dialect,
    encoding: Encoding,
}

/// The client is gone.
#[derive(Debug)]
pub(crate) struct Gone;

impl ReplaySink {
    pub(crate) fn new(tx: mpsc::Sender<Bytes>, dialect: Dialect, encoding: Encoding) -> Self {
        Self {
            tx,
            dialect,
            encoding,
        }
    }

    /// Sends one event.
    pub(crate) async fn send(&mut self, event: Event) -> Result<(), Gone> {
        let mut frame = Vec::with_capacity(256);
        self.encode_into(event, &mut frame);
        if frame.is_empty() {
            return Ok(());
        }
        self.tx.send(Bytes::from(frame)).await.map_err(|_| Gone)
    }

    /// Sends the stored part of a replay, in writes of about [`REPLAY_WRITE`] bytes. A stored
    /// event that this client reads as it was stored (SSE, and not an event its dialect
    /// changes) is copied into the frame as it is: no decoding, no encoding.
    pub(crate) async fn send_stored(&mut self, stored: Stored) -> Result<(), Gone> {
        let Stored { chunks, items } = stored;
        let mut buf = Vec::with_capacity(REPLAY_WRITE + REPLAY_WRITE / 4);
        for item in items {
            match item {
                Item::Stored { chunk, span, kind } => {
                    let raw = &chunks[chunk].events[span];
                    if self.encoding == Encoding::Sse
                        && (!needs_adapting(self.dialect, kind) || stays_as_stored(kind, raw))
                    {
                        sse::frame_json_into(raw, &mut buf);
                    } else if let Some(event) = decode(raw) {
                        self.encode_into(event, &mut buf);
                    }
                }
                Item::Event(event) => self.encode_into(*event, &mut buf),
            }
            if buf.len() >= REPLAY_WRITE {
                let full = std::mem::replace(
                    &mut buf,
                    Vec::with_capacity(REPLAY_WRITE + REPLAY_WRITE / 4),
                );
                self.tx.send(Bytes::from(full)).await.map_err(|_| Gone)?;
            }
        }
        if !buf.is_empty() {
            self.tx.send(Bytes::from(buf)).await.map_err(|_| Gone)?;
        }
        Ok(())
    }

    /// Appends `event`'s frame (adapted; nothing when the dialect drops it) to `buf`.
    fn encode_into(&self, event: Event, buf: &mut Vec<u8>) {
        let Some(event) = adapt_replayed(self.dialect, event) else {
            return;
        };
        match self.encoding {
            Encoding::Sse => sse::encode_into(&event, buf),
            Encoding::Proto => proto::encode_frame_into(&event, buf),
        }
    }
}

/// Adapts a replayed event to `dialect`. Besides the live mapping (`Dialect::adapt`): a 0.0.x
/// client keeps `RUN_STARTED.input` (it is how it gets the user's messages back), with the
/// messages made readable for it; and a run stopped on purpose (`RUN_ERROR cancelled` for such
/// clients) is replayed with `@ag-ui/client`'s own code for it, `abort`, which CopilotKit does
/// not raise as an error again on every reload.
pub(crate) fn adapt_replayed(dialect: Dialect, event: Event) -> Option<Event> {
    if dialect == Dialect::V1 {
        return dialect.adapt(event);
    }
    let mut event = event;
    // Taken before the live mapping drops it (not cloned: it holds the run's messages).
    let mut input = match &mut event {
        Event::RunStarted(started) => started.input.take(),
        _ => None,
    };
    let mut event = dialect.adapt(event)?;
    match &mut event {
        Event::RunStarted(started) => {
            if let Some(input) = input.as_mut() {
                input.forwarded_props = None;
                input.protocol_version = None;
                let snapshot = Event::MessagesSnapshot(MessagesSnapshot::new(std::mem::take(
                    &mut input.messages,
                )));
                if let Some(Event::MessagesSnapshot(snapshot)) = dialect.adapt(snapshot) {
                    input.messages = snapshot.messages;
                }
            }
            started.input = input;
        }
        Event::RunError(error)
            if error.code.as_deref() == Some(RunErrorCode::Cancelled.as_str()) =>
        {
            error.code = Some(RunErrorCode::Abort.as_str().to_owned());
            RunErrorCode::Abort.message().clone_into(&mut error.message);
        }
        _ => {}
    }
    Some(event)
}

/// Follows one run to its end, writing its events to `sink`.
pub(crate) async fn follow(
    follow: Follow,
    store: &dyn Store,
    instance_timeout: Duration,
    sink: &mut ReplaySink,
) -> Result<(), Gone> {
    match follow {
        Follow::Here(mut live) => loop {
            match live.recv().await {
                Ok(event) => {
                    let terminal = matches!(*event, Event::RunFinished(_) | Event::RunError(_));
                    sink.send((*event).clone()).await?;
                    if terminal {
                        return Ok(());
                    }
                }
                // The run ended and its history is written (it no longer streams here).
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(target: "agui::history", missed, "a follower fell behind its run and was cut off");
                    return Err(Gone);
                }
            }
        },
        Follow::Elsewhere {
            thread_id,
            run_id,
            next_chunk,
        } => {
            follow_elsewhere(
                store,
                &thread_id,
                &run_id,
                next_chunk,
                instance_timeout,
                sink,
            )
            .await
        }
    }
}

/// Follows a run another replica streams: its chunks as they are committed, until its terminal
/// event, or its replica's heartbeat is too old (then `RUN_ERROR abandoned`).
async fn follow_elsewhere(
    store: &dyn Store,
    thread_id: &str,
    run_id: &str,
    mut next_chunk: i64,
    instance_timeout: Duration,
    sink: &mut ReplaySink,
) -> Result<(), Gone> {
    let mut notices = store.notices();
    let timeout = i64::try_from(instance_timeout.as_millis()).unwrap_or(i64::MAX);
    loop {
        if send_new_chunks(store, thread_id, run_id, &mut next_chunk, sink).await? {
            return Ok(());
        }
        // No terminal yet: does the run still stream on a live replica?
        let open = match store.open_runs(thread_id).await {
            Ok(open) => open,
            Err(error) => {
                tracing::warn!(target: "agui::history", %error, "following a run: the store cannot be read");
                wait_for_news(&mut notices, thread_id, run_id).await;
                continue;
            }
        };
        let now = now_ms();
        let alive = open
            .iter()
            .any(|o| o.run_id == run_id && o.heartbeat_at.is_some_and(|beat| now - beat < timeout));
        if !alive {
            // It ended (its last chunks may have just been committed) or its replica is dead:
            // what the store holds is all there will be.
            if !send_new_chunks(store, thread_id, run_id, &mut next_chunk, sink).await? {
                sink.send(abandoned()).await?;
            }
            return Ok(());
        }
        wait_for_news(&mut notices, thread_id, run_id).await;
    }
}

/// Sends the run's chunks from `next_chunk` on (in order, stopping at a gap); whether its
/// terminal event was among them.
async fn send_new_chunks(
    store: &dyn Store,
    thread_id: &str,
    run_id: &str,
    next_chunk: &mut i64,
    sink: &mut ReplaySink,
) -> Result<bool, Gone> {
    let chunks = match store.run_history(thread_id, run_id, *next_chunk).await {
        Ok(chunks) => chunks,
        Err(error) => {
            tracing::warn!(target: "agui::history", %error, "following a run: the store cannot be read");
            return Ok(false);
        }
    };
    for chunk in chunks {
        if chunk.chunk != *next_chunk {
            break;
        }
        *next_chunk += 1;
        let Ok(events) = serde_json::from_str::<Vec<Event>>(&chunk.events) else {
            continue;
        };
        for event in events {
            let terminal = matches!(event, Event::RunFinished(_) | Event::RunError(_));
            sink.send(event).await?;
            if terminal {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Waits for a notice about this run's history, or [`POLL`].
async fn wait_for_news(
    notices: &mut Option<broadcast::Receiver<Notice>>,
    thread_id: &str,
    run_id: &str,
) {
    let Some(receiver) = notices else {
        tokio::time::sleep(POLL).await;
        return;
    };
    let deadline = tokio::time::sleep(POLL);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => return,
            notice = receiver.recv() => match notice {
                Ok(Notice::History { thread_id: t, run_id: r }) if t == thread_id && r == run_id => return,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => return,
                Err(broadcast::error::RecvError::Closed) => {
                    *notices = None;
                    return;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agui_protocol::{TextMessageContent, TextMessageEnd, TextMessageStart};

    /// Every event type, with and without its optional members (the protocol crate's corpus).
    fn corpus() -> Vec<Event> {
        let values: Vec<serde_json::Value> = serde_json::from_str(include_str!(
            "../../../protocol/tests/fixtures/proto/events.json"
        ))
        .unwrap();
        let events: Vec<Event> = values
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect();
        for ty in EventType::ALL {
            assert!(events.iter().any(|e| e.event_type() == ty), "{ty:?}");
        }
        events
    }

    #[test]
    fn the_events_that_stay_as_stored_for_a_legacy_client_are_not_changed_by_adapting() {
        let (mut kept, mut decoded) = (0, 0);
        for event in corpus() {
            let json = serde_json::to_string(&event).unwrap();
            let kind = event.event_type();
            if needs_adapting(Dialect::Legacy, kind) && stays_as_stored(kind, &json) {
                kept += 1;
                assert_eq!(
                    adapt_replayed(Dialect::Legacy, event.clone()).as_ref(),
                    Some(&event),
                    "{json}"
                );
            } else if needs_adapting(Dialect::Legacy, kind) {
                decoded += 1;
            }
        }
        // Both sides of the rule are exercised by the corpus.
        assert!(kept >= 3 && decoded >= 3, "kept {kept}, decoded {decoded}");
    }

    #[test]
    fn only_the_events_needs_adapting_names_change_in_a_replay() {
        for dialect in [Dialect::V1, Dialect::Legacy] {
            for event in corpus() {
                if !needs_adapting(dialect, event.event_type()) {
                    assert_eq!(
                        adapt_replayed(dialect, event.clone()).as_ref(),
                        Some(&event),
                        "{dialect:?}"
                    );
                }
            }
        }
    }

    /// The replay as it was before stored events were sent as stored: every chunk decoded,
    /// compacted, each event adapted and encoded.
    fn decoded_replay(chunks: &[String], dialect: Dialect, encoding: Encoding) -> Vec<u8> {
        let mut events = Vec::new();
        for chunk in chunks {
            compact::extend(
                &mut events,
                serde_json::from_str::<Vec<Event>>(chunk).unwrap(),
            );
        }
        let mut out = Vec::new();
        for event in events {
            if let Some(event) = adapt_replayed(dialect, event) {
                match encoding {
                    Encoding::Sse => sse::encode_into(&event, &mut out),
                    Encoding::Proto => proto::encode_frame_into(&event, &mut out),
                }
            }
        }
        out
    }

    async fn sent_replay(chunks: &[String], dialect: Dialect, encoding: Encoding) -> Vec<u8> {
        let mut stored = Stored {
            chunks: chunks
                .iter()
                .enumerate()
                .map(|(i, events)| ReplayChunk {
                    run_id: "r1".into(),
                    chunk: i as i64,
                    started_at: 1,
                    events: events.clone(),
                })
                .collect(),
            items: Vec::new(),
        };
        let mut spans = Vec::new();
        for i in 0..chunks.len() {
            stored.push_chunk(i, &mut spans);
        }
        let (tx, mut rx) = mpsc::channel(1024);
        let mut sink = ReplaySink::new(tx, dialect, encoding);
        sink.send_stored(stored).await.unwrap();
        drop(sink);
        let mut out = Vec::new();
        while let Some(frame) = rx.recv().await {
            out.extend_from_slice(&frame);
        }
        out
    }

    #[tokio::test]
    async fn a_replay_sent_as_stored_is_byte_for_byte_the_decoded_one() {
        let text = |delta: &str| Event::TextMessageContent(TextMessageContent::new("m9", delta));
        // Every type, then a reply whose content spans three chunks (merged at the seams),
        // and a chunk written with line breaks (decoded, not sent as stored).
        let mut chunks: Vec<String> = corpus()
            .chunks(7)
            .map(|events| serde_json::to_string(events).unwrap())
            .collect();
        chunks.push(
            serde_json::to_string(&[
                Event::TextMessageStart(TextMessageStart::new("m9")),
                text("Hel"),
            ])
            .unwrap(),
        );
        chunks.push(serde_json::to_string(&[text("lo, ")]).unwrap());
        chunks.push(
            serde_json::to_string_pretty(&[
                text("world"),
                Event::TextMessageEnd(TextMessageEnd::new("m9")),
            ])
            .unwrap(),
        );
        for dialect in [Dialect::V1, Dialect::Legacy] {
            for encoding in [Encoding::Sse, Encoding::Proto] {
                let expected = decoded_replay(&chunks, dialect, encoding);
                let sent = sent_replay(&chunks, dialect, encoding).await;
                assert!(expected.len() > 2_000, "a real corpus: {}", expected.len());
                assert!(
                    sent == expected,
                    "{dialect:?} {encoding:?}: {}\n---\n{}",
                    String::from_utf8_lossy(&sent),
                    String::from_utf8_lossy(&expected)
                );
            }
        }
        // Positive control of the seams: one content event of the whole reply.
        let sent = sent_replay(&chunks, Dialect::V1, Encoding::Sse).await;
        let sent = String::from_utf8(sent).unwrap();
        assert!(sent.contains(r#""delta":"Hello, world""#), "{sent}");
    }

    #[test]
    fn a_chunk_that_is_not_an_array_of_events_is_skipped() {
        let mut stored = Stored {
            chunks: [
                "{}",
                "[1,{\"type\":\"NOPE\"}]",
                "[{\"type\":\"RUN_FINISHED\",\"threadId\":\"t\",\"runId\":\"r\"}]",
            ]
            .iter()
            .enumerate()
            .map(|(i, events)| ReplayChunk {
                run_id: "r".into(),
                chunk: i as i64,
                started_at: 1,
                events: (*events).into(),
            })
            .collect(),
            items: Vec::new(),
        };
        let mut spans = Vec::new();
        for i in 0..3 {
            stored.push_chunk(i, &mut spans);
        }
        assert_eq!(stored.len(), 1);
        assert_eq!(stored.last_type(), Some(EventType::RunFinished));
    }
}
