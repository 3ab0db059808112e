//! Runs streaming in this process: what each has produced that the store may not hold yet, and
//! the clients following it.
//!
//! A run's events pass through its [`Tap`] (the run's event sink calls it for every event it
//! puts on the wire). The tap compacts them into `pending` and hands them, live, to whoever
//! follows the run. Every flush window the flusher moves each run's `pending` into `in_flight`
//! as its next chunk and hands every run's chunks to the store in ONE submission
//! ([`LiveRun::take_write`]); once that commits, `committed` counts them and `in_flight` is
//! emptied ([`LiveRun::settle`]); if it fails they stay in `in_flight`, as they were, for the
//! next window. A run has at most one write in the store's queue (`writing`), so its chunks
//! commit in order; its last chunk goes with its end (its `runs` row, its audit record, the
//! thread's trim) in one transaction, after every earlier chunk has committed. So at any
//! moment a run's events are exactly: the committed chunks (in the store), then `in_flight`,
//! then `pending`; and [`LiveRun::join`] takes that picture and a live subscription under one
//! lock, so a client that connects mid-run misses nothing and sees nothing twice. The run is
//! forgotten only once its last chunk has committed: until then a join still finds it here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use agui_agent::EventTap;
use agui_protocol::{Event, Message, RunAgentInput};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::compact;
use crate::store::{HistoryChunk, StoreError, WriteOp, now_ms};

/// Events a follower may fall behind the run before it is cut off (it can connect again).
const FOLLOWER_BUFFER: usize = 4096;

/// Writes of a run's end (its last chunk with its `runs` row) that may fail, one per flush
/// window, before its unwritten chunks are given up (loudly) and its row is queued alone: with
/// the default window, about two seconds of a store that refuses writes.
pub(super) const END_ATTEMPTS: u32 = 8;

/// One run streaming in this process.
#[derive(Debug)]
pub(crate) struct LiveRun {
    pub(crate) thread_id: String,
    pub(crate) run_id: String,
    pub(crate) started_at: i64,
    /// Fires when someone stops the run (CopilotKit's Stop), here or through another replica.
    pub(crate) stop: CancellationToken,
    state: Mutex<LiveState>,
}

#[derive(Debug, Default)]
struct LiveState {
    /// Compacted events not yet handed to the store.
    pending: Vec<Event>,
    /// Chunks handed to the store as numbers `committed..`, not known to be committed yet. A
    /// failed write keeps them as they were: a chunk that committed after all (its answer
    /// lost) is inserted once (`ON CONFLICT DO NOTHING`), so it must not be rewritten bigger.
    in_flight: Vec<Vec<Event>>,
    /// How many chunks of the run the store holds.
    committed: i64,
    /// A write of this run's chunks waits in the store's queue: no other starts before it
    /// settles, so the run's chunks commit in order.
    writing: bool,
    /// The run's end, once it has one: written with its last chunk, in the same transaction.
    end: Option<End>,
    /// [`LiveRun::set_end`] was called.
    end_given: bool,
    /// Followers' subscription (made when the first one joins).
    followers: Option<broadcast::Sender<Arc<Event>>>,
    /// A terminal event (`RUN_FINISHED` / `RUN_ERROR`) has been seen.
    finished: bool,
}

/// What the store must write when a run ends, besides its chunks: its `runs` row and audit
/// record, and the thread's trim. A write of the end moves the ops into the store's queue (no
/// copy); a failed one hands them back ([`LiveRun::settle`]).
#[derive(Debug)]
struct End {
    ops: Vec<WriteOp>,
    /// Writes of the end that failed so far.
    failures: u32,
}

/// What one write took of a run (see [`LiveRun::take_write`]).
#[derive(Debug)]
pub(crate) struct Taken {
    /// How many chunks, from `committed` on.
    pub(super) chunks: usize,
    /// Whether the run's end went with them.
    end: bool,
    /// How many ops of the end went (after the chunks).
    pub(super) end_ops: usize,
}

/// What a settled write leaves the run with.
#[derive(Debug)]
pub(crate) enum Settled {
    /// Still streaming, or its end still to write (next window).
    Open,
    /// Its end committed with its last chunk: the run can be forgotten.
    Written,
    /// It ended while the write was on its way: its end is to be written now.
    EndWaiting,
    /// Its end failed `failures` times: its unwritten chunks are given up, and these ops (its
    /// `runs` row and audit record) are to be queued on their own.
    GivenUp {
        ops: Vec<WriteOp>,
        lost_chunks: usize,
    },
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
        let mut uncommitted = Vec::new();
        for chunk in &state.in_flight {
            compact::extend(&mut uncommitted, chunk.iter().cloned());
        }
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

    /// Whether a write should take this run now: it has something to write and no write of it
    /// is on its way.
    fn wants_write(&self) -> bool {
        let state = self.state();
        !state.writing
            && (!state.pending.is_empty() || !state.in_flight.is_empty() || state.end.is_some())
    }

    /// Hands what the run produced since the last write to `ops` (its next chunk, after any
    /// chunk a failed write left in flight) and, once it has ended, its end; `None` (and
    /// nothing added) when a write of it is already on its way or there is nothing to write.
    /// The caller submits `ops` and calls [`LiveRun::settle`] with the outcome.
    pub(crate) fn take_write(&self, ops: &mut Vec<WriteOp>) -> Option<Taken> {
        let mut state = self.state();
        if state.writing {
            return None;
        }
        if !state.pending.is_empty() {
            let chunk = std::mem::take(&mut state.pending);
            state.in_flight.push(chunk);
        }
        if state.in_flight.is_empty() && state.end.is_none() {
            return None;
        }
        let at = now_ms();
        let mut chunks = Vec::with_capacity(state.in_flight.len());
        for (number, events) in (state.committed..).zip(&state.in_flight) {
            let mut json = Vec::with_capacity(compact::json_size_hint(events));
            let written = serde_json::to_writer(&mut json, events).and_then(|()| {
                String::from_utf8(json).map_err(<serde_json::Error as serde::ser::Error>::custom)
            });
            match written {
                Ok(events) => chunks.push(WriteOp::History(HistoryChunk {
                    thread_id: self.thread_id.clone(),
                    run_id: self.run_id.clone(),
                    chunk: number,
                    started_at: self.started_at,
                    at,
                    events,
                })),
                Err(error) => {
                    // Events serialize infallibly; should one not, the run's history stops here
                    // rather than commit out of order.
                    tracing::error!(target: "agui::history", %error, run_id = %self.run_id, "history chunk not serializable");
                    return None;
                }
            }
        }
        let mut taken = Taken {
            chunks: chunks.len(),
            end: state.end.is_some(),
            end_ops: 0,
        };
        ops.extend(chunks);
        if let Some(end) = &mut state.end {
            taken.end_ops = end.ops.len();
            ops.append(&mut end.ops);
        }
        state.writing = true;
        Some(taken)
    }

    /// Records the outcome of the write that took `taken`: its chunks are committed, or kept
    /// in flight for the next window; `end_ops` are the ops of its end that a failed write
    /// gave back.
    pub(crate) fn settle(
        &self,
        taken: Taken,
        result: &Result<(), StoreError>,
        end_ops: Vec<WriteOp>,
    ) -> Settled {
        let mut state = self.state();
        state.writing = false;
        if result.is_ok() {
            state.committed += taken.chunks as i64;
            state.in_flight.drain(..taken.chunks);
            return if taken.end {
                state.end = None;
                Settled::Written
            } else if state.end.is_some() {
                Settled::EndWaiting
            } else {
                Settled::Open
            };
        }
        let Some(end) = state.end.as_mut().filter(|_| taken.end) else {
            return Settled::Open;
        };
        end.ops = end_ops;
        end.failures += 1;
        if end.failures < END_ATTEMPTS {
            return Settled::Open;
        }
        let ops = std::mem::take(&mut end.ops)
            .into_iter()
            .filter(|op| !matches!(op, WriteOp::TrimHistory { .. }))
            .collect();
        state.end = None;
        let lost_chunks = state.in_flight.len();
        state.in_flight.clear();
        state.pending.clear();
        Settled::GivenUp { ops, lost_chunks }
    }

    /// Gives the run its end: `ops` are written with its last chunk. Whether no write of the
    /// run is on its way (then the caller writes it now; otherwise the write on its way
    /// settles first and its [`Settled::EndWaiting`] says so).
    pub(crate) fn set_end(&self, ops: Vec<WriteOp>) -> bool {
        let mut state = self.state();
        state.end = Some(End { ops, failures: 0 });
        state.end_given = true;
        !state.writing
    }

    /// Whether the run has been given its end ([`LiveRun::set_end`]).
    pub(crate) fn has_end(&self) -> bool {
        self.state().end_given
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
            record_owned(&mut state, event);
        }
    }
}

/// Records one event: to the followers as it is, to `pending` compacted.
fn record(state: &mut LiveState, event: &Event) {
    show_followers(state, event);
    compact::push_ref(&mut state.pending, event);
}

/// [`record`] of an event the tap made itself: moved into `pending`, not copied.
fn record_owned(state: &mut LiveState, event: Event) {
    show_followers(state, &event);
    compact::push(&mut state.pending, event);
}

/// Notes a terminal event and hands `event` to the run's followers, if any.
fn show_followers(state: &mut LiveState, event: &Event) {
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
            record_owned(&mut self.run.state(), Event::RunStarted(started));
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

    /// Forgets a run that ended (and whose history is written, or given up).
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

    /// Every run here with something to write and no write on its way.
    pub(crate) fn to_write(&self) -> Vec<Arc<LiveRun>> {
        self.map()
            .values()
            .flatten()
            .filter(|run| run.wants_write())
            .cloned()
            .collect()
    }

    /// Whether a run here has ended (its end is still to be written).
    pub(crate) fn any_ended(&self) -> bool {
        self.map().values().flatten().any(|run| run.finished())
    }
}
