//! The store's write rules, written once for every backend.
//!
//! A backend implements [`WriteTx`]: one SQL statement per method, run inside the transaction it
//! wraps, and nothing else. What the writes *mean* lives here:
//!
//! - a thread belongs to the first principal whose run names it; of principals racing on a new
//!   id exactly one wins (the primary key decides), and a claim that keeps losing its row to a
//!   concurrent `forget` gives up after [`CLAIM_ATTEMPTS`] instead of looping;
//! - the claims of one batch are made in thread-id order, so two replicas' batches never wait on
//!   each other's rows in opposite orders (no deadlock on PostgreSQL);
//! - a run is keyed by `(thread_id, run_id)` everywhere, tool-call counts included: run ids are
//!   chosen by clients and another user's thread may reuse one;
//! - a thread's `last_run_at` only moves forward, whichever backend and whatever order runs
//!   start in, so `/threads` lists threads in the same order on every store;
//! - a thread's history keeps its newest runs up to the cap, and every batch that appended to a
//!   run's history tells the other replicas once (PostgreSQL `NOTIFY`, after the commit).
//!
//! SQLite's [`WriteTx`] is synchronous under the hood (its futures never wait); PostgreSQL's
//! awaits the network. Both run these same functions.

use std::collections::BTreeMap;

use super::{
    AuditRecord, HistoryChunk, Notice, PrincipalKey, RunEnd, RunStart, StartRequest, StoreError,
    ThreadAccess, WriteOp,
};

/// How often a claim retries when its thread disappears between the insert and the read (a
/// concurrent `forget`); then it fails instead of looping.
pub(crate) const CLAIM_ATTEMPTS: usize = 3;

/// One backend's statements inside one transaction.
pub(crate) trait WriteTx {
    /// Inserts the thread unless the id exists; `true` when this call created it.
    async fn insert_thread(
        &mut self,
        thread_id: &str,
        owner: &PrincipalKey,
        created_at: i64,
        run: Option<&RunStart>,
    ) -> Result<bool, StoreError>;

    /// The thread's owner, if the thread exists.
    async fn thread_owner(&mut self, thread_id: &str) -> Result<Option<PrincipalKey>, StoreError>;

    /// Inserts the run unless `(thread_id, run_id)` exists.
    async fn insert_run(&mut self, run: &RunStart) -> Result<(), StoreError>;

    /// Sets the thread's `last_run_at` to `at` unless it is already `at` or later.
    async fn advance_last_run(&mut self, thread_id: &str, at: i64) -> Result<(), StoreError>;

    /// Closes the run if it is still open.
    async fn end_run(&mut self, end: &RunEnd) -> Result<(), StoreError>;

    /// Adds `count` tool calls to the run `(thread_id, run_id)`.
    async fn add_tool_calls(
        &mut self,
        thread_id: &str,
        run_id: &str,
        count: i64,
    ) -> Result<(), StoreError>;

    /// Appends an audit record.
    async fn insert_audit(&mut self, record: &AuditRecord) -> Result<(), StoreError>;

    /// Appends a history chunk (a repeated `(thread, run, chunk)` is ignored).
    async fn insert_history(&mut self, chunk: &HistoryChunk) -> Result<(), StoreError>;

    /// Deletes the history of all but the newest `keep_runs` runs of the thread (by start);
    /// returns how many chunks went.
    async fn trim_history(&mut self, thread_id: &str, keep_runs: u32) -> Result<u64, StoreError>;

    /// Tells the other replicas, once the transaction commits (a no-op for one process).
    async fn notify(&mut self, notice: &Notice) -> Result<(), StoreError>;

    /// Whether [`WriteTx::notify`] reaches anyone: a store of one process skips building the
    /// notices.
    fn has_replicas(&self) -> bool {
        true
    }
}

/// Claims `thread_id` for `owner`: creates it (with `last_run_at` when a run starts it), or
/// reports who owns it.
///
/// # Errors
/// A failing statement, or a thread that kept disappearing for [`CLAIM_ATTEMPTS`] tries.
pub(crate) async fn claim(
    tx: &mut impl WriteTx,
    owner: &PrincipalKey,
    thread_id: &str,
    now: i64,
    run: Option<&RunStart>,
) -> Result<ThreadAccess, StoreError> {
    for _ in 0..CLAIM_ATTEMPTS {
        if tx.insert_thread(thread_id, owner, now, run).await? {
            return Ok(ThreadAccess::Owner { created: true });
        }
        // A concurrent `forget` may delete the row between the insert's conflict and this read:
        // then nobody owns it and the next insert claims it.
        if let Some(found) = tx.thread_owner(thread_id).await? {
            return Ok(if &found == owner {
                ThreadAccess::Owner { created: false }
            } else {
                ThreadAccess::NotOwner { owner: found }
            });
        }
    }
    Err(StoreError::Backend(format!(
        "thread {thread_id} kept disappearing while it was claimed"
    )))
}

/// The group commit of run starts: claims each start's thread for its principal (in thread-id
/// order) and, where the principal owns it, records the run and its audit record; then applies
/// `ops`. Returns each start's [`ThreadAccess`], in the order of `starts`.
///
/// # Errors
/// The first failing statement; the caller's transaction is then rolled back whole.
pub(crate) async fn commit(
    tx: &mut impl WriteTx,
    starts: &[StartRequest],
    ops: &[WriteOp],
) -> Result<Vec<ThreadAccess>, StoreError> {
    let mut order: Vec<usize> = (0..starts.len()).collect();
    order.sort_by(|&a, &b| starts[a].start.thread_id.cmp(&starts[b].start.thread_id));
    let mut accesses = vec![None; starts.len()];
    for index in order {
        let StartRequest { start, audit } = &starts[index];
        let access = claim(
            tx,
            &start.principal,
            &start.thread_id,
            start.started_at,
            Some(start),
        )
        .await?;
        match access {
            // Created by this run, with it as the last: only the run row is left to write.
            ThreadAccess::Owner { created: true } => tx.insert_run(start).await?,
            ThreadAccess::Owner { created: false } => start_run(tx, start).await?,
            ThreadAccess::NotOwner { .. } => {}
        }
        if matches!(access, ThreadAccess::Owner { .. }) {
            tx.insert_audit(audit).await?;
        }
        accesses[index] = Some(access);
    }
    apply(tx, ops).await?;
    Ok(accesses.into_iter().flatten().collect())
}

/// Applies `ops` in order. Tool calls are summed per run and added once at the end; each run
/// whose history grew is announced once.
///
/// # Errors
/// The first failing statement.
pub(crate) async fn apply(tx: &mut impl WriteTx, ops: &[WriteOp]) -> Result<(), StoreError> {
    let mut tool_calls: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    let mut grown: Vec<(&str, &str)> = Vec::new();
    for op in ops {
        match op {
            WriteOp::Audit(record) => tx.insert_audit(record).await?,
            WriteOp::RunStarted(run) => start_run(tx, run).await?,
            WriteOp::RunEnded(end) => tx.end_run(end).await?,
            WriteOp::ToolCall { thread_id, run_id } => {
                *tool_calls.entry((thread_id, run_id)).or_default() += 1;
            }
            WriteOp::History(chunk) => {
                tx.insert_history(chunk).await?;
                let key = (chunk.thread_id.as_str(), chunk.run_id.as_str());
                if tx.has_replicas() && !grown.contains(&key) {
                    grown.push(key);
                }
            }
            WriteOp::TrimHistory {
                thread_id,
                keep_runs,
            } => {
                let removed = tx.trim_history(thread_id, *keep_runs).await?;
                if removed > 0 {
                    tracing::info!(
                        target: "agui::store", %thread_id, keep_runs, chunks = removed,
                        "thread history over its cap: the oldest runs left the replay"
                    );
                }
            }
        }
    }
    for ((thread_id, run_id), count) in tool_calls {
        tx.add_tool_calls(thread_id, run_id, count).await?;
    }
    for (thread_id, run_id) in grown {
        tx.notify(&Notice::History {
            thread_id: thread_id.to_owned(),
            run_id: run_id.to_owned(),
        })
        .await?;
    }
    Ok(())
}

/// A run on an existing thread: its row, and the thread's `last_run_at` moved forward.
async fn start_run(tx: &mut impl WriteTx, run: &RunStart) -> Result<(), StoreError> {
    tx.insert_run(run).await?;
    tx.advance_last_run(&run.thread_id, run.started_at).await
}

/// The tables `forget` deletes one subject's rows from, each with `issuer` and `subject`
/// columns. Literals only: they are formatted into SQL. (The history of the subject's threads
/// goes first, by thread, while the threads still say whose they are.)
pub(crate) const SUBJECT_TABLES: [&str; 3] = ["threads", "runs", "audit"];

/// The title a thread gets from the first user message of the run that creates it: the text's
/// start, on one line, at most this many characters.
pub(crate) const TITLE_CHARS: usize = 80;

/// A thread title from a message's text: whitespace runs (newlines included) become one space,
/// control characters go, and it is cut at [`TITLE_CHARS`] characters (with `…`).
pub fn title_of(text: &str) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let joined: String = words
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if joined.is_empty() {
        return None;
    }
    let mut title: String = joined.chars().take(TITLE_CHARS).collect();
    if joined.chars().count() > TITLE_CHARS {
        title.push('…');
    }
    Some(title)
}

/// The statement of [`super::Store::thread_replay`], with placeholders made by `placeholder`
/// (`?1` / `$1`): parameters thread id, reader's issuer, reader's subject, any-owner flag
/// (0/1). One `UNION ALL` of the owner (part 0), the history chunks (part 1) and the open runs
/// (part 2); the last two only when the reader may read the thread. Every table is read by its
/// primary key's prefix.
pub(crate) fn thread_replay_sql(placeholder: impl Fn(usize) -> String) -> String {
    let [thread, issuer, subject, any] = [1, 2, 3, 4].map(placeholder);
    let readable = format!(
        "EXISTS (SELECT 1 FROM threads o WHERE o.thread_id = {thread} \
         AND ((o.issuer = {issuer} AND o.subject = {subject}) OR {any} = 1))"
    );
    format!(
        "SELECT CAST(0 AS BIGINT) AS part, issuer, subject, CAST(NULL AS TEXT) AS run_id, \
           CAST(NULL AS BIGINT) AS chunk, CAST(NULL AS BIGINT) AS started_at, \
           CAST(NULL AS TEXT) AS events, CAST(NULL AS TEXT) AS instance, \
           CAST(NULL AS BIGINT) AS heartbeat_at \
         FROM threads WHERE thread_id = {thread} \
         UNION ALL \
         SELECT 1, NULL, NULL, h.run_id, CAST(h.chunk AS BIGINT), h.started_at, h.events, NULL, NULL \
         FROM history h WHERE h.thread_id = {thread} AND {readable} \
         UNION ALL \
         SELECT 2, NULL, NULL, r.run_id, NULL, r.started_at, NULL, r.instance, i.heartbeat_at \
         FROM runs r LEFT JOIN instances i ON i.instance_id = r.instance \
         WHERE r.thread_id = {thread} AND r.ended_at IS NULL AND {readable} \
         ORDER BY part, started_at, run_id, chunk"
    )
}

/// A value bound into a query built by [`audit_query`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param<'a> {
    /// A text value.
    Text(&'a str),
    /// An integer.
    Int(i64),
}

/// The `SELECT` of [`super::Store::query_audit`]: the filter as SQL with placeholders made by
/// `placeholder(n)` (1-based: `?` for SQLite, `$n` for PostgreSQL) and the values to bind, in
/// order. `detail` is selected as text.
pub(crate) fn audit_query<'a>(
    filter: &'a super::AuditFilter,
    detail_as_text: &str,
    placeholder: impl Fn(usize) -> String,
) -> (String, Vec<Param<'a>>) {
    let mut sql = format!(
        "SELECT id, at, kind, issuer, subject, thread_id, run_id, {detail_as_text} AS detail \
         FROM audit WHERE 1 = 1"
    );
    let mut params = Vec::new();
    let mut bind = |sql: &mut String, clause: &str, param: Param<'a>| {
        params.push(param);
        sql.push_str(clause);
        sql.push_str(&placeholder(params.len()));
    };
    if let Some(subject) = &filter.subject {
        bind(&mut sql, " AND subject = ", Param::Text(subject));
    }
    if let Some(issuer) = &filter.issuer {
        bind(&mut sql, " AND issuer = ", Param::Text(issuer));
    }
    if let Some(thread_id) = &filter.thread_id {
        bind(&mut sql, " AND thread_id = ", Param::Text(thread_id));
    }
    for (i, kind) in filter.kinds.iter().enumerate() {
        let clause = if i == 0 { " AND kind IN (" } else { ", " };
        bind(&mut sql, clause, Param::Text(kind.as_str()));
    }
    if !filter.kinds.is_empty() {
        sql.push(')');
    }
    if let Some(since) = filter.since {
        bind(&mut sql, " AND at >= ", Param::Int(since));
    }
    if let Some(until) = filter.until {
        bind(&mut sql, " AND at < ", Param::Int(until));
    }
    sql.push_str(" ORDER BY id");
    if let Some(limit) = filter.limit {
        bind(&mut sql, " LIMIT ", Param::Int(limit));
    }
    (sql, params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AuditFilter, AuditKind};

    /// A transaction whose thread is always taken by a conflicting insert and always gone again
    /// when read back: a `forget` racing every attempt.
    #[derive(Default)]
    struct VanishingThread {
        inserts: usize,
        owner: Option<PrincipalKey>,
    }

    impl WriteTx for VanishingThread {
        async fn insert_thread(
            &mut self,
            _: &str,
            _: &PrincipalKey,
            _: i64,
            _: Option<&RunStart>,
        ) -> Result<bool, StoreError> {
            self.inserts += 1;
            Ok(false)
        }
        async fn thread_owner(&mut self, _: &str) -> Result<Option<PrincipalKey>, StoreError> {
            Ok(self.owner.clone())
        }
        async fn insert_run(&mut self, _: &RunStart) -> Result<(), StoreError> {
            Ok(())
        }
        async fn advance_last_run(&mut self, _: &str, _: i64) -> Result<(), StoreError> {
            Ok(())
        }
        async fn end_run(&mut self, _: &RunEnd) -> Result<(), StoreError> {
            Ok(())
        }
        async fn add_tool_calls(&mut self, _: &str, _: &str, _: i64) -> Result<(), StoreError> {
            Ok(())
        }
        async fn insert_audit(&mut self, _: &AuditRecord) -> Result<(), StoreError> {
            Ok(())
        }
        async fn insert_history(&mut self, _: &HistoryChunk) -> Result<(), StoreError> {
            Ok(())
        }
        async fn trim_history(&mut self, _: &str, _: u32) -> Result<u64, StoreError> {
            Ok(0)
        }
        async fn notify(&mut self, _: &Notice) -> Result<(), StoreError> {
            Ok(())
        }
    }

    #[test]
    fn titles_are_one_short_clean_line() {
        assert_eq!(
            title_of("  List my\n documents\t please ").as_deref(),
            Some("List my documents please")
        );
        assert_eq!(title_of("\u{1b}[2Jhi").as_deref(), Some("[2Jhi"));
        assert_eq!(title_of(" \n\t "), None);
        let long = "x".repeat(200);
        let title = title_of(&long).unwrap();
        assert_eq!(title.chars().count(), TITLE_CHARS + 1);
        assert!(title.ends_with('…'));
    }

    #[test]
    fn a_claim_whose_thread_keeps_vanishing_gives_up_after_a_bounded_number_of_tries() {
        let me = PrincipalKey::new("https://idp.test", "alice");
        let mut tx = VanishingThread::default();
        let result = futures::executor::block_on(claim(&mut tx, &me, "t", 1, None));
        assert!(
            matches!(&result, Err(StoreError::Backend(m)) if m.contains("kept disappearing")),
            "{result:?}"
        );
        assert_eq!(tx.inserts, CLAIM_ATTEMPTS);
        // The control: once the row stays, the same claim answers at once.
        let mut tx = VanishingThread {
            owner: Some(me.clone()),
            ..VanishingThread::default()
        };
        let result = futures::executor::block_on(claim(&mut tx, &me, "t", 1, None));
        assert_eq!(result.unwrap(), ThreadAccess::Owner { created: false });
        assert_eq!(tx.inserts, 1);
    }

    #[test]
    fn audit_query_numbers_placeholders_in_bind_order() {
        let filter = AuditFilter {
            subject: Some("s".into()),
            kinds: vec![AuditKind::RunStarted, AuditKind::ToolCall],
            since: Some(5),
            limit: Some(10),
            ..AuditFilter::default()
        };
        let (sql, params) = audit_query(&filter, "detail::text", |n| format!("${n}"));
        assert!(
            sql.contains("subject = $1 AND kind IN ($2, $3) AND at >= $4"),
            "{sql}"
        );
        assert!(sql.ends_with("ORDER BY id LIMIT $5"), "{sql}");
        assert_eq!(
            params,
            vec![
                Param::Text("s"),
                Param::Text("run_started"),
                Param::Text("tool_call"),
                Param::Int(5),
                Param::Int(10)
            ]
        );
        // Positive control: no filter, no placeholders.
        let none = AuditFilter::default();
        let (sql, params) = audit_query(&none, "detail", |_| "?".into());
        assert!(params.is_empty() && !sql.contains('?'), "{sql}");
    }
}
