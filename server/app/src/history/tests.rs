//! The history: a run's new messages, and its writes against a real store (SQLite in memory) and the real audit log: one
//! write per flush window for all runs, a run's end with its last chunk and after its earlier
//! ones, retries of a failed end, and what a join sees meanwhile.
//!
//! The tests run on Tokio's current-thread runtime: the audit log's writer runs only when a test
//! awaits, so what is queued, and in which order, is up to the test.

use std::sync::Arc;
use std::time::Duration;

use agui_agent::{AuditEvent, EventTap};
use agui_protocol::{
    AssistantMessage, Event, Message, RunFinished, RunStarted, TextMessageContent, TextMessageEnd,
    TextMessageStart, UserMessage,
};

use super::live::{LiveRun, Tap};
use super::{Ending, History, new_messages, replay};
use crate::config::HistoryConfig;
use crate::store::audit_log::ops_for_event;
use crate::store::{
    AuditLog, AuditLogOptions, MEMORY_SQLITE_URL, PrincipalKey, RunOutcome, RunStart, SqliteStore,
    Store, WriteOp, now_ms,
};

const ISSUER: &str = "https://idp.test";

fn alice() -> PrincipalKey {
    PrincipalKey::new(ISSUER, "alice")
}

struct Fixture {
    sqlite: SqliteStore,
    store: Arc<dyn Store>,
    log: AuditLog,
    history: Arc<History>,
}

impl Fixture {
    /// A store in memory, an audit log whose queue holds `queue` messages, history on.
    async fn new(queue: usize) -> Self {
        let sqlite = SqliteStore::connect(MEMORY_SQLITE_URL).await.unwrap();
        let store: Arc<dyn Store> = Arc::new(sqlite.clone());
        let log = AuditLog::start(
            store.clone(),
            AuditLogOptions {
                queue_capacity: queue,
                ..AuditLogOptions::default()
            },
        );
        Self {
            sqlite,
            store,
            log,
            history: History::new(HistoryConfig::default()),
        }
    }

    /// Starts `run` on `thread` (alice's): its `runs` row, and its live run with `RUN_STARTED`
    /// and the start of its reply.
    async fn start(&self, thread: &str, run: &str) -> (Arc<LiveRun>, Tap) {
        self.store.claim_thread(&alice(), thread, 1).await.unwrap();
        self.store
            .write_batch(&[WriteOp::RunStarted(RunStart {
                principal: alice(),
                thread_id: thread.into(),
                run_id: run.into(),
                agent: "default".into(),
                credential_source: "header".into(),
                started_at: 2,
                title: None,
            })])
            .await
            .unwrap();
        let (live, mut tap) = self.history.live.start(thread, run, 2, Vec::new());
        tap.event(&Event::RunStarted(RunStarted::new(thread, run)));
        tap.event(&Event::TextMessageStart(TextMessageStart::new(message(
            run,
        ))));
        (live, tap)
    }

    /// Starts run `r` on thread `t` with one reply, `text`, makes every insert into `history`
    /// fail, then ends the run and flushes its window once.
    async fn end_while_history_inserts_fail(&self, text: &str) {
        let (live, mut tap) = self.start("t", "r").await;
        delta(&mut tap, "r", text);
        finish_reply(&mut tap, "t", "r");
        self.sqlite
            .execute_raw(
                "CREATE TRIGGER history_fail BEFORE INSERT ON history \
                 BEGIN SELECT RAISE(ABORT, 'injected'); END",
            )
            .await
            .unwrap();
        self.history
            .finish(&live, &self.log, Ending::Cancelled, end_ops("t", "r"), true);
        self.log.flush().await;
    }

    /// Undoes [`Self::end_while_history_inserts_fail`]'s failing inserts.
    async fn history_inserts_work(&self) {
        self.sqlite
            .execute_raw("DROP TRIGGER history_fail")
            .await
            .unwrap();
    }

    /// What a `connect` of `thread` replays now (its stored part and what this process holds).
    async fn replay(&self, thread: &str) -> Vec<Event> {
        replay::read(self.store.as_ref(), &self.history, thread, &alice(), false)
            .await
            .unwrap()
            .into_replay(thread, Duration::from_secs(60))
            .stored
            .into_events()
    }
}

fn message(run: &str) -> String {
    format!("{run}-m")
}

fn delta(tap: &mut Tap, run: &str, text: &str) {
    tap.event(&Event::TextMessageContent(TextMessageContent::new(
        message(run),
        text,
    )));
}

fn finish_reply(tap: &mut Tap, thread: &str, run: &str) {
    tap.event(&Event::TextMessageEnd(TextMessageEnd::new(message(run))));
    tap.event(&Event::RunFinished(RunFinished::new(thread, run)));
}

/// The ops of the agent's `RunEnded` audit event for a successful run.
fn end_ops(thread: &str, run: &str) -> Vec<WriteOp> {
    ops_for_event(
        AuditEvent::RunEnded {
            issuer: ISSUER.into(),
            subject: "alice".into(),
            thread_id: thread.into(),
            run_id: run.into(),
            outcome: "success",
            code: None,
        },
        now_ms(),
    )
}

/// The replayed reply of each run, in order.
fn texts(events: &[Event]) -> Vec<String> {
    let mut texts: Vec<String> = Vec::new();
    for event in events {
        match event {
            Event::RunStarted(_) => texts.push(String::new()),
            Event::TextMessageContent(content) => {
                texts.last_mut().unwrap().push_str(&content.delta);
            }
            _ => {}
        }
    }
    texts
}

fn is_terminal(event: Option<&Event>) -> bool {
    matches!(event, Some(Event::RunFinished(_) | Event::RunError(_)))
}

#[tokio::test(flavor = "current_thread")]
async fn a_flush_window_of_many_runs_is_one_queue_message_and_one_transaction() {
    // A queue of 16 messages and 400 runs: one message per run would overflow it.
    let fx = Fixture::new(16).await;
    let mut runs = Vec::new();
    for i in 0..400 {
        let (thread, run) = (format!("t{}", i % 20), format!("r{i}"));
        let (live, mut tap) = fx.start(&thread, &run).await;
        delta(&mut tap, &run, "one ");
        runs.push((thread, run, live, tap));
    }
    fx.log.flush().await;
    let before = fx.log.stats();

    fx.history.flush_all(&fx.log);
    fx.log.flush().await;
    let after = fx.log.stats();
    assert_eq!(after.commits, before.commits + 1, "{after:?}");
    assert_eq!(after.written, before.written + 400, "{after:?}");
    assert_eq!(after.dropped, 0);
    assert!(fx.log.healthy());
    assert_eq!(
        fx.sqlite
            .query_int("SELECT COUNT(*) FROM history")
            .await
            .unwrap(),
        400
    );
    for (_, _, live, _) in &runs {
        assert_eq!(live.join().committed, 1, "every run's chunk is committed");
    }

    // Between two windows a connect sees each run's stored chunk, then what only memory holds:
    // every delta once.
    for (_, run, _, tap) in &mut runs {
        delta(tap, run, "two");
    }
    for thread in ["t0", "t7", "t19"] {
        let texts = texts(&fx.replay(thread).await);
        assert_eq!(texts, vec!["one two".to_owned(); 20], "{thread}");
    }

    // The second window: the same, one more transaction.
    fx.history.flush_all(&fx.log);
    fx.log.flush().await;
    assert_eq!(fx.log.stats().commits, after.commits + 1);
    assert_eq!(
        fx.sqlite
            .query_int("SELECT COUNT(*) FROM history")
            .await
            .unwrap(),
        800
    );
    assert_eq!(
        texts(&fx.replay("t3").await),
        vec!["one two".to_owned(); 20]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_runs_end_never_commits_before_an_earlier_chunk_that_failed() {
    let fx = Fixture::new(64).await;
    let (live, mut tap) = fx.start("t", "r").await;
    delta(&mut tap, "r", "first ");
    // Chunk 0 cannot be written, anything after it could.
    fx.sqlite
        .execute_raw(
            "CREATE TRIGGER chunk0_fail BEFORE INSERT ON history WHEN NEW.chunk = 0 \
             BEGIN SELECT RAISE(ABORT, 'injected'); END",
        )
        .await
        .unwrap();
    // A window takes chunk 0; the writer has not run yet when the run ends, so its end waits
    // for that write.
    fx.history.flush_all(&fx.log);
    delta(&mut tap, "r", "last");
    finish_reply(&mut tap, "t", "r");
    fx.history
        .finish(&live, &fx.log, Ending::Cancelled, end_ops("t", "r"), true);

    // A join meanwhile sees the whole run, once, ended.
    let events = fx.replay("t").await;
    assert_eq!(texts(&events), vec!["first last".to_owned()]);
    assert!(is_terminal(events.last()));

    fx.log.flush().await;
    assert!(fx.log.stats().failures >= 1, "the window's write failed");
    let stored = fx
        .sqlite
        .query_int("SELECT COUNT(*) FROM history WHERE run_id = 'r'")
        .await
        .unwrap();
    assert_eq!(
        stored, 0,
        "the last chunk did not go ahead of the failed one"
    );
    let row = fx.store.get_run("t", "r").await.unwrap().unwrap();
    assert_eq!(row.outcome, None);
    assert_eq!(live.join().committed, 0);
    assert_eq!(texts(&fx.replay("t").await), vec!["first last".to_owned()]);

    // The store takes chunk 0 again: the next window writes it, then the rest with the end, in
    // order, in one transaction.
    fx.sqlite
        .execute_raw("DROP TRIGGER chunk0_fail")
        .await
        .unwrap();
    let before = fx.log.stats().commits;
    fx.history.flush_all(&fx.log);
    fx.log.flush().await;
    assert_eq!(fx.log.stats().commits, before + 1);
    let row = fx.store.get_run("t", "r").await.unwrap().unwrap();
    assert_eq!(row.outcome, Some(RunOutcome::Success));
    assert!(
        fx.history.live_runs("t").is_empty(),
        "forgotten once written"
    );
    let chunks = fx
        .sqlite
        .query_int("SELECT COUNT(*) FROM history WHERE run_id = 'r' AND chunk IN (0, 1)")
        .await
        .unwrap();
    assert_eq!(chunks, 2);
    let events = fx.replay("t").await;
    assert_eq!(texts(&events), vec!["first last".to_owned()]);
    assert!(matches!(events.last(), Some(Event::RunFinished(_))));
}

#[tokio::test(flavor = "current_thread")]
async fn a_runs_end_its_row_and_last_chunk_are_one_transaction() {
    let fx = Fixture::new(64).await;
    let (live, mut tap) = fx.start("t", "r").await;
    delta(&mut tap, "r", "all of it");
    finish_reply(&mut tap, "t", "r");
    fx.log.flush().await;
    let before = fx.log.stats().commits;
    fx.history
        .finish(&live, &fx.log, Ending::Cancelled, end_ops("t", "r"), true);
    fx.log.flush().await;
    assert_eq!(fx.log.stats().commits, before + 1);
    let row = fx.store.get_run("t", "r").await.unwrap().unwrap();
    assert_eq!(row.outcome, Some(RunOutcome::Success));
    let events = fx.replay("t").await;
    assert_eq!(texts(&events), vec!["all of it".to_owned()]);
    assert!(matches!(events.last(), Some(Event::RunFinished(_))));
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_end_is_kept_and_written_by_the_next_window() {
    let fx = Fixture::new(64).await;
    fx.end_while_history_inserts_fail("kept").await;
    assert!(fx.log.stats().failures >= 1);
    let row = fx.store.get_run("t", "r").await.unwrap().unwrap();
    assert_eq!(
        row.outcome, None,
        "nothing of the failed transaction is written"
    );
    assert_eq!(
        fx.history.live_runs("t").len(),
        1,
        "kept for the next window"
    );
    // Meanwhile a join still gets all of it.
    assert_eq!(texts(&fx.replay("t").await), vec!["kept".to_owned()]);

    fx.history_inserts_work().await;
    fx.history.flush_all(&fx.log);
    fx.log.flush().await;
    let row = fx.store.get_run("t", "r").await.unwrap().unwrap();
    assert_eq!(row.outcome, Some(RunOutcome::Success));
    assert!(fx.history.live_runs("t").is_empty());
    let events = fx.replay("t").await;
    assert_eq!(texts(&events), vec!["kept".to_owned()]);
    assert!(matches!(events.last(), Some(Event::RunFinished(_))));
}

#[tokio::test(flavor = "current_thread")]
async fn an_end_the_store_keeps_refusing_is_given_up_but_its_row_is_still_written() {
    let fx = Fixture::new(64).await;
    fx.end_while_history_inserts_fail("lost").await;
    for _ in 1..super::live::END_ATTEMPTS {
        assert_eq!(fx.history.live_runs("t").len(), 1, "still retried");
        fx.history.flush_all(&fx.log);
        fx.log.flush().await;
    }
    // Given up: the run is forgotten, and its row and audit record went on their own.
    assert!(fx.history.live_runs("t").is_empty());
    fx.log.flush().await;
    let row = fx.store.get_run("t", "r").await.unwrap().unwrap();
    assert_eq!(row.outcome, Some(RunOutcome::Success));
    let ended = fx
        .sqlite
        .query_int("SELECT COUNT(*) FROM audit WHERE kind = 'run_ended'")
        .await
        .unwrap();
    assert_eq!(ended, 1);
}

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
