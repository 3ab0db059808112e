//! Thread history: every run's events, as its client saw them, kept per thread in the store, so
//! a CopilotKit client that reloads (or another replica's client) gets the conversation back
//! and can follow a run that is still streaming.
//!
//! Runs write their history in chunks through the audit log's group commit, compacted, never a
//! transaction per event: each flush window (`history.flush_ms`) hands every run's new chunk to
//! the store as ONE submission (one queue message, one transaction, however many runs stream),
//! and a run's last chunk goes with its end (its `runs` row, its audit record, the thread's
//! trim) in one transaction that the run's task does not wait for. A process killed mid-run
//! loses at most its last window, and the replay of such a run still ends with a terminal
//! event. Replicas learn of each other's chunks and stops through the store (PostgreSQL
//! `LISTEN/NOTIFY`).
//!
//! # Layout
//!
//! - this file: [`History`], the runs streaming here, the flusher and the runs' ends, stops.
//! - `live`: one streaming run's unwritten events, its tap and its followers.
//! - `compact`: one content event per reply instead of one per delta.
//! - `replay`: a thread's history as the event stream `connect` answers with, and following a
//!   run to its end (here, or on another replica).
//! - `view`: a replay as messages and state, for the runtime's thread endpoints.

mod compact;
mod live;
pub(crate) mod replay;
pub(crate) mod view;

use std::sync::Arc;
use std::time::Duration;

use agui_protocol::{Event, Message, RunAgentInput, RunError, RunFinished, RunFinishedOutcome};
use tokio_util::sync::CancellationToken;

use live::LiveRuns;
pub(crate) use live::{LiveRun, Tap};

use crate::backends::Backends;
use crate::config::HistoryConfig;
use crate::store::{AuditLog, FollowUps, Notice, StoreError, WriteOp};
use live::{Settled, Taken};

/// Flush windows shutdown spends, at most, writing the ends of runs that have ended.
const DRAIN_WINDOWS: u32 = 10;

/// The thread history of one server.
#[derive(Debug)]
pub(crate) struct History {
    config: HistoryConfig,
    live: LiveRuns,
}

/// How a run ended, for its stored end when it sent none.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ending {
    /// Its client left or it was stopped.
    Cancelled,
    /// It failed with this code.
    Error(&'static str),
}

impl History {
    pub(crate) fn new(config: HistoryConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            live: LiveRuns::default(),
        })
    }

    /// Registers a run that starts now, and the tap its event sink feeds. `None` when history
    /// is off.
    pub(crate) fn start(
        &self,
        input: &RunAgentInput,
        started_at: i64,
    ) -> Option<(Arc<LiveRun>, Tap)> {
        if !self.config.enabled {
            return None;
        }
        Some(self.live.start(
            input.thread_id.as_str(),
            input.run_id.as_str(),
            started_at,
            new_messages(&input.messages),
        ))
    }

    /// Ends a run's history without waiting for the store: gives it a terminal event if it sent
    /// none, and queues what is left of it together with `end_ops` (the run's `runs` row and
    /// audit record) and the thread's trim to its cap (`trim`: a thread this run created has
    /// one run, nothing to trim), all in one transaction, after any earlier chunk of the run.
    /// The run is forgotten when that commits; a failed write is retried in the next windows
    /// (see [`live`]).
    pub(crate) fn finish(
        self: &Arc<Self>,
        run: &Arc<LiveRun>,
        log: &AuditLog,
        ending: Ending,
        mut end_ops: Vec<WriteOp>,
        trim: bool,
    ) {
        run.end_with(match ending {
            Ending::Cancelled => {
                let mut finished = RunFinished::new(run.thread_id.as_str(), run.run_id.as_str());
                finished.outcome = Some(RunFinishedOutcome::Cancelled);
                Event::RunFinished(finished)
            }
            Ending::Error(code) => {
                let mut error = RunError::new("The run failed.".to_owned());
                error.code = Some(code.to_owned());
                Event::RunError(error)
            }
        });
        if trim {
            end_ops.push(WriteOp::TrimHistory {
                thread_id: run.thread_id.clone(),
                keep_runs: self.config.max_runs_per_thread,
            });
        }
        if run.set_end(end_ops) {
            self.write(vec![run.clone()], log, None);
        }
    }

    /// Hands the chunks (and ends) of `runs` to the store as ONE submission, one transaction
    /// (queued on `log`, or as the next write through `follow` when a write's outcome asks for
    /// it); runs with a write already on its way are left out (they are written after it
    /// settles).
    fn write(
        self: &Arc<Self>,
        runs: Vec<Arc<LiveRun>>,
        log: &AuditLog,
        follow: Option<&mut FollowUps>,
    ) {
        let mut ops = Vec::new();
        let taken: Vec<(Arc<LiveRun>, Taken)> = runs
            .into_iter()
            .filter_map(|run| run.take_write(&mut ops).map(|taken| (run, taken)))
            .collect();
        if taken.is_empty() {
            return;
        }
        let history = self.clone();
        let settle_log = log.clone();
        let settle = move |result: Result<(), StoreError>,
                           unwritten: Vec<WriteOp>,
                           follow: &mut FollowUps| {
            history.settle(taken, &result, unwritten, &settle_log, follow);
        };
        match follow {
            Some(follow) => follow.submit_then(ops, settle),
            None => log.submit_then(ops, settle),
        }
    }

    /// The outcome of one [`History::write`], for each of its runs; `unwritten` are its ops
    /// when it failed, in the order [`LiveRun::take_write`] put them (each run's chunks, then
    /// its end). Runs on the audit log's writer task: it only updates the runs and queues what
    /// follows.
    fn settle(
        self: &Arc<Self>,
        taken: Vec<(Arc<LiveRun>, Taken)>,
        result: &Result<(), StoreError>,
        unwritten: Vec<WriteOp>,
        log: &AuditLog,
        follow: &mut FollowUps,
    ) {
        if let Err(error) = result {
            tracing::warn!(target: "agui::history", %error, runs = taken.len(), "history not written yet; kept for the next window");
        }
        let mut unwritten = unwritten.into_iter();
        let mut end_now = Vec::new();
        for (run, taken) in taken {
            // The chunks stay in the run as events (a retry writes them again); its end's ops
            // go back to it.
            unwritten.by_ref().take(taken.chunks).for_each(drop);
            let end_ops: Vec<WriteOp> = unwritten.by_ref().take(taken.end_ops).collect();
            match run.settle(taken, result, end_ops) {
                Settled::Open => {}
                Settled::Written => self.live.remove(&run),
                Settled::EndWaiting => end_now.push(run),
                Settled::GivenUp { ops, lost_chunks } => {
                    tracing::error!(
                        target: "agui::history", run_id = %run.run_id, lost_chunks,
                        "the end of the run's history could not be written; its replay ends as abandoned"
                    );
                    // Its row and audit record still go, through the log's own retries.
                    for op in ops {
                        log.submit(op);
                    }
                    self.live.remove(&run);
                }
            }
        }
        if !end_now.is_empty() {
            // Right after the chunk they waited for, before any flush returns.
            self.write(end_now, log, Some(follow));
        }
    }

    /// Shutdown, once the runs have ended: writes what they left (their ends first of all),
    /// for at most [`DRAIN_WINDOWS`] windows.
    pub(crate) async fn drain(self: &Arc<Self>, log: &AuditLog) {
        for _ in 0..DRAIN_WINDOWS {
            self.flush_all(log);
            log.flush().await;
            if !self.live.any_ended() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(self.config.flush_ms)).await;
        }
    }

    /// The thread's runs streaming in this process.
    pub(crate) fn live_runs(&self, thread_id: &str) -> Vec<Arc<LiveRun>> {
        self.live.of_thread(thread_id)
    }

    /// Stops the thread's run `run_id` (or every run of the thread) if it streams here; whether
    /// one was.
    pub(crate) fn stop_here(&self, thread_id: &str, run_id: Option<&str>) -> bool {
        let mut stopped = false;
        for run in self.live.of_thread(thread_id) {
            if run_id.is_none_or(|id| id == run.run_id) && !run.finished() {
                run.stop.cancel();
                stopped = true;
            }
        }
        stopped
    }

    /// Starts the background jobs: the flusher (every `history.flush_ms`) and, when the store
    /// carries notices from other replicas, the listener that stops runs here on their behalf.
    /// Both end with `shutdown`.
    pub(crate) fn spawn(self: &Arc<Self>, backends: Arc<Backends>, shutdown: CancellationToken) {
        if !self.config.enabled {
            return;
        }
        let period = Duration::from_millis(self.config.flush_ms);
        let history = self.clone();
        let flusher_backends = backends.clone();
        let flusher_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = flusher_shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Some(connected) = flusher_backends.connected() {
                    history.flush_all(&connected.log);
                }
            }
        });
        let history = self.clone();
        tokio::spawn(async move {
            // The store connects in the background when it was down at start-up.
            let notices = loop {
                if let Some(connected) = backends.connected() {
                    break connected.store().notices();
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            };
            let Some(mut notices) = notices else { return };
            loop {
                let notice = tokio::select! {
                    () = shutdown.cancelled() => return,
                    notice = notices.recv() => notice,
                };
                match notice {
                    Ok(Notice::Stop { thread_id, run_id }) => {
                        if history.stop_here(&thread_id, run_id.as_deref()) {
                            tracing::info!(target: "agui::history", %thread_id, "run stopped on another replica's request");
                        }
                    }
                    Ok(Notice::History { .. }) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(target: "agui::history", missed, "store notices missed");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    /// One flush window: every run with something to write (new events, a chunk a failed
    /// write kept, its end) and no write on its way hands it to the store, all of them in ONE
    /// submission: one queue message and one transaction however many runs stream (10,000
    /// open streams must not be 10,000 messages in the audit log's queue).
    fn flush_all(self: &Arc<Self>, log: &AuditLog) {
        let runs = self.live.to_write();
        if !runs.is_empty() {
            self.write(runs, log, None);
        }
    }
}

/// The messages a run added to its thread: everything after the last assistant message of its
/// input (the user's new message, or the results of frontend tools). CopilotKit sends the whole
/// thread with every run; what came before was stored with the earlier runs.
fn new_messages(messages: &[Message]) -> Vec<Message> {
    let start = messages
        .iter()
        .rposition(|m| matches!(m, Message::Assistant(_)))
        .map_or(0, |i| i + 1);
    messages[start..].to_vec()
}

#[cfg(test)]
mod tests;
