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
//! Each run's stored `RUN_STARTED` carries the messages that run added (`input.messages`):
//! that is where a CopilotKit client takes the user's messages from when it rebuilds the
//! conversation. It never carries `forwardedProps` (where a client's token travels).

use std::sync::Arc;
use std::time::Duration;

use agui_agent::RunErrorCode;
use agui_protocol::{Dialect, Encoding, Event, MessagesSnapshot, RunError, proto, sse};
use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};

use super::History;
use super::compact;
use super::live::Joined;
use crate::store::{HistoryChunk, Notice, OpenRun, Store, StoreError, now_ms};

/// How often a follower of another replica's run re-reads the store (notices can be lost).
const POLL: Duration = Duration::from_secs(1);

/// A thread's replay: its runs so far, and the runs still to follow.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    /// The stored (and not yet stored) events, compacted, in order.
    pub(crate) events: Vec<Event>,
    /// Runs streaming now, to follow after the replay, in start order.
    pub(crate) follow: Vec<Follow>,
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
    events: Vec<Event>,
    /// The next chunk number expected from the store.
    next_chunk: i64,
    /// Chunks from this number on are not to be read from the store (they are in a picture).
    read_until: Option<i64>,
}

impl RunParts {
    fn new(run_id: &str, started_at: i64, read_until: Option<i64>) -> Self {
        Self {
            run_id: run_id.to_owned(),
            started_at,
            events: Vec::new(),
            next_chunk: 0,
            read_until,
        }
    }

    /// Adds the run's next stored chunk. A gap (a later chunk committed before an earlier
    /// one) ends the stored part there; a corrupt chunk is skipped, loudly.
    fn add(&mut self, chunk: &HistoryChunk) {
        if chunk.chunk != self.next_chunk
            || self.read_until.is_some_and(|limit| chunk.chunk >= limit)
        {
            return;
        }
        match serde_json::from_str::<Vec<Event>>(&chunk.events) {
            Ok(events) => compact::extend(&mut self.events, events),
            Err(error) => tracing::error!(
                target: "agui::history", %error, thread_id = %chunk.thread_id,
                run_id = %chunk.run_id, chunk = chunk.chunk, "unreadable history chunk skipped"
            ),
        }
        self.next_chunk += 1;
    }
}

/// Loads the thread's replay. `instance_timeout` is how long a replica may go without a
/// heartbeat before its open runs count as dead.
///
/// # Errors
/// The store cannot be read.
pub(crate) async fn load(
    store: &dyn Store,
    history: &History,
    thread_id: &str,
    instance_timeout: Duration,
) -> Result<Replay, StoreError> {
    // First the picture of the runs streaming here, then the store: whatever is committed
    // after the picture is in the picture, and is not read from the store.
    let mut here: Vec<(String, i64, Joined)> = history
        .live_runs(thread_id)
        .into_iter()
        .map(|run| (run.run_id.clone(), run.started_at, run.join()))
        .collect();
    let chunks = store.history(thread_id).await?;
    let open: Vec<OpenRun> = store.open_runs(thread_id).await?;

    let mut runs: Vec<RunParts> = Vec::new();
    for chunk in &chunks {
        if runs.last().is_none_or(|last| last.run_id != chunk.run_id) {
            let limit = here
                .iter()
                .find(|(run_id, ..)| *run_id == chunk.run_id)
                .map(|(.., joined)| joined.committed);
            runs.push(RunParts::new(&chunk.run_id, chunk.started_at, limit));
        }
        if let Some(run) = runs.last_mut() {
            run.add(chunk);
        }
    }
    for (run_id, started_at, _) in &here {
        if !runs.iter().any(|r| &r.run_id == run_id) {
            runs.push(RunParts::new(run_id, *started_at, Some(0)));
        }
    }
    for o in &open {
        if !runs.iter().any(|r| r.run_id == o.run_id) {
            runs.push(RunParts::new(&o.run_id, o.started_at, None));
        }
    }
    runs.sort_by(|a, b| (a.started_at, &a.run_id).cmp(&(b.started_at, &b.run_id)));

    let now = now_ms();
    let timeout = i64::try_from(instance_timeout.as_millis()).unwrap_or(i64::MAX);
    let mut replay = Replay::default();
    for mut run in runs {
        if let Some(i) = here.iter().position(|(run_id, ..)| *run_id == run.run_id) {
            let (.., joined) = here.swap_remove(i);
            compact::extend(&mut run.events, joined.uncommitted);
            compact::extend(&mut replay.events, run.events);
            if let Some(live) = joined.live {
                replay.follow.push(Follow::Here(live));
            }
            continue;
        }
        let ended = ends_with_terminal(&run.events);
        let alive_elsewhere = !ended
            && open.iter().any(|o| {
                o.run_id == run.run_id && o.heartbeat_at.is_some_and(|beat| now - beat < timeout)
            });
        compact::extend(&mut replay.events, run.events);
        if alive_elsewhere {
            replay.follow.push(Follow::Elsewhere {
                thread_id: thread_id.to_owned(),
                run_id: run.run_id,
                next_chunk: run.next_chunk,
            });
        } else if !ended && run.next_chunk > 0 {
            replay.events.push(abandoned());
        }
    }
    Ok(replay)
}

fn ends_with_terminal(events: &[Event]) -> bool {
    matches!(
        events.last(),
        Some(Event::RunFinished(_) | Event::RunError(_))
    )
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
        let Some(event) = adapt_replayed(self.dialect, event) else {
            return Ok(());
        };
        let mut frame = Vec::with_capacity(256);
        match self.encoding {
            Encoding::Sse => sse::encode_into(&event, &mut frame),
            Encoding::Proto => proto::encode_frame_into(&event, &mut frame),
        }
        self.tx.send(Bytes::from(frame)).await.map_err(|_| Gone)
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
    let mut input = match &event {
        Event::RunStarted(started) => started.input.clone(),
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
