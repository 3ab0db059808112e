//! Thread history: every run's events, as its client saw them, kept per thread in the store, so
//! a CopilotKit client that reloads (or another replica's client) gets the conversation back
//! and can follow a run that is still streaming.
//!
//! Runs write their history in chunks through the audit log's group commit, one chunk per run
//! per flush window (`history.flush_ms`), compacted, never a transaction per event; a process
//! killed mid-run loses at most its last window, and the replay of such a run still ends with a
//! terminal event. Replicas learn of each other's chunks and stops through the store (PostgreSQL
//! `LISTEN/NOTIFY`).
//!
//! # Layout
//!
//! - this file: [`History`], the runs streaming here, the flusher, stops.
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
use crate::store::{AuditLog, Notice, WriteOp};

/// How often a final flush is retried while the store refuses it.
const FINAL_FLUSH_ATTEMPTS: u32 = 3;

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

    /// Ends a run's history: gives it a terminal event if it sent none, writes what is left,
    /// trims the thread to its cap (`trim`: a thread this run created has one run, nothing to
    /// trim) and forgets the run.
    pub(crate) async fn finish(
        &self,
        run: &Arc<LiveRun>,
        log: &AuditLog,
        ending: Ending,
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
        let mut written = false;
        for attempt in 1..=FINAL_FLUSH_ATTEMPTS {
            match run.flush(log).await {
                Ok(()) => {
                    written = true;
                    break;
                }
                Err(error) => {
                    tracing::warn!(target: "agui::history", %error, attempt, run_id = %run.run_id, "history not written yet");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
            }
        }
        if !written {
            tracing::error!(target: "agui::history", run_id = %run.run_id, "the end of the run's history could not be written");
        } else if trim {
            log.submit(WriteOp::TrimHistory {
                thread_id: run.thread_id.clone(),
                keep_runs: self.config.max_runs_per_thread,
            });
        }
        self.live.remove(run);
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
                    history.flush_all(&connected.log).await;
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

    /// One flush window: every run with unwritten events writes them as its next chunk, all in
    /// the same group commit.
    async fn flush_all(&self, log: &AuditLog) {
        let runs = self.live.with_pending();
        if runs.is_empty() {
            return;
        }
        let flushes = runs.iter().map(|run| run.flush(log));
        for result in futures::future::join_all(flushes).await {
            if let Err(error) = result {
                tracing::warn!(target: "agui::history", %error, "history chunk not written; kept for the next window");
            }
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
mod tests {
    use super::*;
    use agui_protocol::{AssistantMessage, UserMessage};

    #[test]
    fn a_runs_new_messages_are_those_after_the_last_assistant_message() {
        let user = |id: &str| Message::User(UserMessage::new(id, "hi"));
        let assistant = Message::Assistant(AssistantMessage {
            id: "a1".into(),
            ..AssistantMessage::default()
        });
        assert_eq!(new_messages(&[user("u1")]), vec![user("u1")]);
        assert_eq!(
            new_messages(&[user("u1"), assistant.clone(), user("u2")]),
            vec![user("u2")]
        );
        assert!(new_messages(&[user("u1"), assistant]).is_empty());
    }
}
