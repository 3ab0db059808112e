//! Runs streaming in this process: what each has produced that the store may not hold yet, and
//! the clients following it.
//!
//! A run's events pass through its [`Tap`] (the run's event sink calls it for every event it
//! puts on the wire). The tap compacts them into `pending` and hands them, live, to whoever
//! follows the run. Every flush window the flusher moves `pending` into `in_flight` and commits
//! it as the run's next history chunk; once the commit returns, `committed` counts it and
//! `in_flight` is emptied. So at any moment a run's events are exactly: the committed chunks
//! (in the store), then `in_flight`, then `pending`; and [`LiveRun::join`] takes that picture
//! and a live subscription under one lock, so a client that connects mid-run misses nothing and
//! sees nothing twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use agui_agent::EventTap;
use agui_protocol::{Event, Message, RunAgentInput};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::compact;
use crate::store::{AuditLog, HistoryChunk, StoreError, WriteOp, now_ms};

/// Events a follower may fall behind the run before it is cut off (it can connect again).
const FOLLOWER_BUFFER: usize = 4096;

/// One run streaming in this process.
#[derive(Debug)]
pub(crate) struct LiveRun {
    pub(crate) thread_id: String,
    pub(crate) run_id: String,
    pub(crate) started_at: i64,
    /// Fires when someone stops the run (CopilotKit's Stop), here or through another replica.
    pub(crate) stop: CancellationToken,
    state: Mutex<LiveState>,
    /// One flush at a time, so chunks commit in order.
    flushing: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct LiveState {
    /// Compacted events not yet handed to the store.
    pending: Vec<Event>,
    /// Handed to the store as chunk number `committed`, not yet committed.
    in_flight: Vec<Event>,
    /// How many chunks of the run the store holds.
    committed: i64,
    /// Followers' subscription (made when the first one joins).
    followers: Option<broadcast::Sender<Arc<Event>>>,
    /// A terminal event (`RUN_FINISHED` / `RUN_ERROR`) has been seen.
    finished: bool,
}

/// What a client joining a run gets: where the store's part ends, what the store does not hold
/// yet, and the events from here on (`None` when the run has already finished).
#[derive(Debug)]
pub(crate) struct Joined {
    /// Chunks `0..committed` are in the store; later ones are not to be read from it.
    pub(crate) committed: i64,
    /// The events after the committed chunks, compacted.
    pub(crate) uncommitted: Vec<Event>,
    /// Every later event, as the run sends it.
    pub(crate) live: Option<broadcast::Receiver<Arc<Event>>>,
}

impl LiveRun {
    fn new(thread_id: String, run_id: String, started_at: i64) -> Self {
        Self {
            thread_id,
            run_id,
            started_at,
            stop: CancellationToken::new(),
            state: Mutex::new(LiveState::default()),
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> MutexGuard<'_, LiveState> {
        // Held for a push or a snapshot only, never across an await.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The run as a client joining now sees it (see the module docs).
    pub(crate) fn join(&self) -> Joined {
        let mut state = self.state();
        let mut uncommitted = state.in_flight.clone();
        compact::extend(&mut uncommitted, state.pending.iter().cloned());
        let live = (!state.finished).then(|| {
            state
                .followers
                .get_or_insert_with(|| broadcast::channel(FOLLOWER_BUFFER).0)
                .subscribe()
        });
        Joined {
            committed: state.committed,
            uncommitted,
            live,
        }
    }

    /// Whether anything waits to be written.
    fn has_pending(&self) -> bool {
        let state = self.state();
        !state.pending.is_empty() || !state.in_flight.is_empty()
    }

    /// Writes what the run produced since the last flush as its next chunk and waits for the
    /// commit. A failed commit keeps the events for the next flush.
    ///
    /// # Errors
    /// The store refused or could not be reached.
    pub(crate) async fn flush(&self, log: &AuditLog) -> Result<(), StoreError> {
        let _one_at_a_time = self.flushing.lock().await;
        let chunk = {
            let mut state = self.state();
            if state.in_flight.is_empty() {
                if state.pending.is_empty() {
                    return Ok(());
                }
                state.in_flight = std::mem::take(&mut state.pending);
            }
            HistoryChunk {
                thread_id: self.thread_id.clone(),
                run_id: self.run_id.clone(),
                chunk: state.committed,
                started_at: self.started_at,
                at: now_ms(),
                events: serde_json::to_string(&state.in_flight)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            }
        };
        log.record_durable(vec![WriteOp::History(chunk)]).await?;
        let mut state = self.state();
        state.committed += 1;
        // Freed, not cleared: the next flush takes `pending`'s buffer, so a kept one would
        // only sit here for the rest of the run (events are a few hundred bytes each).
        state.in_flight = Vec::new();
        Ok(())
    }

    /// Whether the run has sent its terminal event.
    pub(crate) fn finished(&self) -> bool {
        self.state().finished
    }

    /// Records `event` as the run's end if it has none yet (a run whose client left, or that
    /// was cut), so its replay still ends with a terminal event.
    pub(crate) fn end_with(&self, event: Event) {
        let mut state = self.state();
        if !state.finished {
            record(&mut state, &event);
        }
    }
}

/// Records one event: to the followers as it is, to `pending` compacted.
fn record(state: &mut LiveState, event: &Event) {
    if matches!(event, Event::RunFinished(_) | Event::RunError(_)) {
        state.finished = true;
    }
    if let Some(followers) = &state.followers
        && followers.receiver_count() > 0
    {
        // A follower that fell a whole buffer behind is cut off (it sees `Lagged`).
        let _ = followers.send(Arc::new(event.clone()));
    }
    if state.pending.capacity() == 0 {
        // A paced reply's flush window usually holds one event, its merged content: room for
        // one, not the four a first push reserves.
        state.pending.reserve_exact(1);
    }
    compact::push_ref(&mut state.pending, event);
}

/// The event sink's tap of one run.
pub(crate) struct Tap {
    run: Arc<LiveRun>,
    /// The messages this run added to the thread, put on the stored `RUN_STARTED` as its
    /// `input`: a replay rebuilds the user's messages from them (the only place a CopilotKit
    /// client takes them from).
    new_messages: Option<Vec<Message>>,
}

impl EventTap for Tap {
    fn event(&mut self, event: &Event) {
        if let (Event::RunStarted(started), Some(messages)) = (event, self.new_messages.take()) {
            let mut started = started.clone();
            let mut input =
                RunAgentInput::new(started.thread_id.clone(), started.run_id.clone(), messages);
            input.parent_run_id = started.parent_run_id.clone();
            started.input = Some(Box::new(input));
            record(&mut self.run.state(), &Event::RunStarted(started));
            return;
        }
        record(&mut self.run.state(), event);
    }
}

/// The runs streaming in this process, by thread.
#[derive(Debug, Default)]
pub(crate) struct LiveRuns {
    by_thread: Mutex<HashMap<String, Vec<Arc<LiveRun>>>>,
}

impl LiveRuns {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Vec<Arc<LiveRun>>>> {
        // No await while held.
        self.by_thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a run that starts now; its tap records `new_messages` with its start.
    pub(crate) fn start(
        &self,
        thread_id: &str,
        run_id: &str,
        started_at: i64,
        new_messages: Vec<Message>,
    ) -> (Arc<LiveRun>, Tap) {
        let run = Arc::new(LiveRun::new(
            thread_id.to_owned(),
            run_id.to_owned(),
            started_at,
        ));
        self.map()
            .entry(thread_id.to_owned())
            .or_default()
            .push(run.clone());
        let tap = Tap {
            run: run.clone(),
            new_messages: Some(new_messages),
        };
        (run, tap)
    }

    /// Forgets a run that ended (and whose history is written).
    pub(crate) fn remove(&self, run: &Arc<LiveRun>) {
        let mut map = self.map();
        if let Some(runs) = map.get_mut(&run.thread_id) {
            runs.retain(|r| !Arc::ptr_eq(r, run));
            if runs.is_empty() {
                map.remove(&run.thread_id);
            }
        }
    }

    /// The thread's runs streaming here, oldest first.
    pub(crate) fn of_thread(&self, thread_id: &str) -> Vec<Arc<LiveRun>> {
        self.map().get(thread_id).cloned().unwrap_or_default()
    }

    /// Every run streaming here with events to write.
    pub(crate) fn with_pending(&self) -> Vec<Arc<LiveRun>> {
        self.map()
            .values()
            .flatten()
            .filter(|run| run.has_pending())
            .cloned()
            .collect()
    }
}
