//! [`AuditLog`]: the group-commit writer in front of a [`Store`].
//!
//! Callers push [`WriteOp`]s onto a bounded channel and go on (microseconds); ONE writer task
//! drains whatever is waiting and applies it in one transaction ([`Store::write_batch`]), so
//! under load many runs share one commit instead of paying a transaction (and an fsync) each.
//! Records that must be durable before the server answers (a run's start) use
//! [`AuditLog::record_durable`], which waits for the commit that carries them.
//!
//! When writes fail the log reports itself unhealthy ([`AuditLog::healthy`]) and durable
//! callers get an error: the handler answers 503 `audit_unavailable` when a run's start cannot
//! be committed (`audit.fail_closed`, the default), so nothing happens unrecorded, and each
//! refused start is also the probe that notices the recovery.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use agui_agent::{AuditEvent, AuditSink};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use super::{
    AuditKind, AuditRecord, PrincipalKey, RunEnd, RunOutcome, RunStart, StartRequest, Store,
    StoreError, ThreadAccess, WriteOp, now_ms,
};

/// A caller waiting for its records (by position in the batch) to be committed.
type DurableWaiter = (std::ops::Range<usize>, Done);

/// Who learns whether a durable submission committed.
enum Done {
    /// A caller awaiting [`AuditLog::record_durable`].
    Wait(oneshot::Sender<Result<(), StoreError>>),
    /// The callback of [`AuditLog::submit_then`], run on the writer's task.
    Then(Box<Then>),
}

/// A callback of [`AuditLog::submit_then`]: the outcome, the submission's ops when they were
/// not written (in the order submitted; none when they were), and what it queues next.
type Then = dyn FnOnce(Result<(), StoreError>, Vec<WriteOp>, &mut FollowUps) + Send;

impl Done {
    /// Tells the caller; `unwritten` are its ops when `result` is an error.
    fn send(self, result: Result<(), StoreError>, unwritten: Vec<WriteOp>, follow: &mut FollowUps) {
        match self {
            Self::Wait(waiter) => {
                let _ = waiter.send(result);
            }
            Self::Then(then) => then(result, unwritten, follow),
        }
    }
}

/// What a [`AuditLog::submit_then`] callback queues in turn: written right after the
/// transaction whose outcome it got, before anything queued since, and before a
/// [`AuditLog::flush`] waiting on that transaction returns. (A run's end that waited for its
/// previous history chunk goes right after it.)
pub struct FollowUps(Vec<Msg>);

impl FollowUps {
    /// As [`AuditLog::submit_then`], as the next write.
    pub fn submit_then(
        &mut self,
        ops: Vec<WriteOp>,
        then: impl FnOnce(Result<(), StoreError>, Vec<WriteOp>, &mut FollowUps) + Send + 'static,
    ) {
        self.0.push(Msg::Durable(ops, Done::Then(Box::new(then))));
    }
}

/// Where committed audit records are mirrored as JSON lines (besides the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mirror {
    /// Standard output.
    Stdout,
    /// A file, appended to (created if missing).
    File(PathBuf),
}

/// Settings of an [`AuditLog`].
#[derive(Debug, Clone)]
pub struct AuditLogOptions {
    /// Operations that may wait for the writer; beyond it [`AuditLog::record`] drops and the log
    /// turns unhealthy until the queue drains.
    pub queue_capacity: usize,
    /// Most operations in one transaction.
    pub max_batch: usize,
    /// Optional JSON-lines mirror of every committed audit record.
    pub mirror: Option<Mirror>,
}

impl Default for AuditLogOptions {
    fn default() -> Self {
        Self {
            queue_capacity: 16_384,
            max_batch: 1_024,
            mirror: None,
        }
    }
}

/// Counters of an [`AuditLog`] (also useful as metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Transactions committed.
    pub commits: u64,
    /// Operations written.
    pub written: u64,
    /// Operations dropped (queue full, or rejected by the database one by one).
    pub dropped: u64,
    /// Failed transactions.
    pub failures: u64,
}

/// A run start waiting for its claim and commit.
type StartWaiter = (
    StartRequest,
    oneshot::Sender<Result<ThreadAccess, StoreError>>,
);

enum Msg {
    Op(WriteOp),
    Start(Box<StartWaiter>),
    Durable(Vec<WriteOp>, Done),
    Flush(oneshot::Sender<()>),
}

#[derive(Default)]
struct Counters {
    healthy: AtomicBool,
    overflowed: AtomicBool,
    commits: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    failures: AtomicU64,
}

/// The group-commit audit writer; cheap to clone. It is the server's [`AuditSink`].
#[derive(Clone)]
pub struct AuditLog {
    store: Arc<dyn Store>,
    tx: mpsc::Sender<Msg>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("backend", &self.store.backend())
            .field("stats", &self.stats())
            .finish()
    }
}

impl AuditLog {
    /// Starts the writer task for `store` (call inside a Tokio runtime).
    pub fn start(store: Arc<dyn Store>, options: AuditLogOptions) -> Self {
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        counters.healthy.store(true, Ordering::Relaxed);
        let writer = Writer {
            store: store.clone(),
            counters: counters.clone(),
            max_batch: options.max_batch.max(1),
            capacity: options.queue_capacity.max(1),
            mirror: options.mirror,
            mirror_file: None,
        };
        tokio::spawn(writer.run(rx));
        Self {
            store,
            tx,
            counters,
        }
    }

    /// The store behind the log (for reads: threads, runs, queries).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Queues one audit record; never blocks. See [`AuditLog::submit`].
    pub fn record(&self, record: AuditRecord) {
        self.submit(WriteOp::Audit(record));
    }

    /// Queues one operation; never blocks. If the queue is full the operation is dropped,
    /// counted, and the log is unhealthy until the writer catches up.
    pub fn submit(&self, op: WriteOp) {
        if self.tx.try_send(Msg::Op(op)).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            self.counters.overflowed.store(true, Ordering::Relaxed);
            tracing::error!(target: "agui::audit", "audit queue full or closed; record dropped");
        }
    }

    /// Queues `ops` and waits until the transaction carrying them has committed.
    ///
    /// # Errors
    ///
    /// [`StoreError::AuditUnavailable`] when the queue is full, the writer is gone or the
    /// transaction failed (the ops are then NOT written).
    pub async fn record_durable(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .try_send(Msg::Durable(ops, Done::Wait(done)))
            .map_err(|_| StoreError::AuditUnavailable("audit queue full"))?;
        wait.await
            .map_err(|_| StoreError::AuditUnavailable("audit writer stopped"))?
    }

    /// Queues `ops` as one unit, in one transaction like [`AuditLog::record_durable`], without
    /// waiting: `then` gets the outcome once the transaction carrying them has committed or
    /// failed. As for a durable caller, ops whose transaction failed are neither written nor
    /// retried by the log: `then` gets them back, in order, and decides what to do with them (so
    /// a caller that retries need not keep a copy). A full queue (or a stopped writer) calls
    /// `then` at once, with the error and the ops.
    ///
    /// `then` runs on the writer's task between two transactions: it must be quick and must not
    /// block. What it must write next goes through its [`FollowUps`].
    pub fn submit_then(
        &self,
        ops: Vec<WriteOp>,
        then: impl FnOnce(Result<(), StoreError>, Vec<WriteOp>, &mut FollowUps) + Send + 'static,
    ) {
        self.send_durable(Msg::Durable(ops, Done::Then(Box::new(then))));
    }

    /// Queues a durable message; a refused one gets its error at once (and what its callback
    /// queued in turn is queued after it, or refused the same way).
    fn send_durable(&self, msg: Msg) {
        let Err(refused) = self.tx.try_send(msg) else {
            return;
        };
        if let Msg::Durable(ops, done) = refused.into_inner() {
            let mut follow = FollowUps(Vec::new());
            done.send(
                Err(StoreError::AuditUnavailable("audit queue full")),
                ops,
                &mut follow,
            );
            for msg in follow.0 {
                self.send_durable(msg);
            }
        }
    }

    /// Claims the run's thread for its principal and, if the principal owns it, records the
    /// run's start (the `runs` row and a `run_started` audit record), in the group commit: many
    /// concurrent starts share one transaction. Call it before the 200 response; answer 404 for
    /// [`ThreadAccess::NotOwner`] and 503 `audit_unavailable` for an error.
    ///
    /// # Errors
    ///
    /// [`StoreError::AuditUnavailable`] when the queue is full, the writer is gone or the
    /// transaction failed (nothing of this start is then written).
    pub async fn start_run(
        &self,
        principal: &agui_auth::Principal,
        thread_id: &str,
        run_id: &str,
        agent: &str,
        title: Option<String>,
    ) -> Result<ThreadAccess, StoreError> {
        let (start, audit) = start_records(principal, thread_id, run_id, agent, title);
        let (done, wait) = oneshot::channel();
        self.tx
            .try_send(Msg::Start(Box::new((StartRequest { start, audit }, done))))
            .map_err(|_| StoreError::AuditUnavailable("audit queue full"))?;
        wait.await
            .map_err(|_| StoreError::AuditUnavailable("audit writer stopped"))?
    }

    /// Records a run's start (the `runs` row and a `run_started` audit record) durably, without
    /// an ownership claim (an admin acting on another principal's thread); answer 503
    /// `audit_unavailable` if it fails.
    ///
    /// # Errors
    ///
    /// As [`AuditLog::record_durable`].
    pub async fn run_started(
        &self,
        principal: &agui_auth::Principal,
        thread_id: &str,
        run_id: &str,
        agent: &str,
    ) -> Result<(), StoreError> {
        let (start, record) = start_records(principal, thread_id, run_id, agent, None);
        self.record_durable(vec![WriteOp::RunStarted(start), WriteOp::Audit(record)])
            .await
    }

    /// Waits until everything queued before this call has been written (or failed).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Whether the last transaction committed and no operation was dropped since.
    pub fn healthy(&self) -> bool {
        self.counters.healthy.load(Ordering::Relaxed)
            && !self.counters.overflowed.load(Ordering::Relaxed)
    }

    /// All counters.
    pub fn stats(&self) -> AuditStats {
        AuditStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            written: self.counters.written.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            failures: self.counters.failures.load(Ordering::Relaxed),
        }
    }
}

impl AuditSink for AuditLog {
    fn record(&self, event: AuditEvent) {
        for op in ops_for_event(event, now_ms()) {
            self.submit(op);
        }
    }
}

/// The `runs` row and the `run_started` audit record of a run start.
fn start_records(
    principal: &agui_auth::Principal,
    thread_id: &str,
    run_id: &str,
    agent: &str,
    title: Option<String>,
) -> (RunStart, AuditRecord) {
    let at = now_ms();
    let key = PrincipalKey::of(principal);
    let start = RunStart {
        principal: key.clone(),
        thread_id: thread_id.to_owned(),
        run_id: run_id.to_owned(),
        agent: agent.to_owned(),
        credential_source: principal.credential_source.as_str().to_owned(),
        started_at: at,
        title,
    };
    let record = AuditRecord {
        at,
        ..AuditRecord::now(AuditKind::RunStarted)
    }
    .principal(&key)
    .thread(thread_id)
    .run(run_id)
    .detail(json!({
        "agent": agent,
        "credential_source": principal.credential_source.as_str(),
        "verifier": principal.verifier.as_str(),
        "token_fingerprint": principal.token_fingerprint,
    }));
    (start, record)
}

/// The store operations for one [`AuditEvent`] of the run loop: the audit record plus the
/// matching `runs` change (its end, or one more tool call).
pub fn ops_for_event(event: AuditEvent, at: i64) -> Vec<WriteOp> {
    match event {
        AuditEvent::RunEnded {
            issuer,
            subject,
            thread_id,
            run_id,
            outcome,
            code,
        } => {
            let key = PrincipalKey::new(issuer, subject);
            let parsed = RunOutcome::parse(outcome).unwrap_or(RunOutcome::Error);
            let record = AuditRecord {
                at,
                ..AuditRecord::now(AuditKind::RunEnded)
            }
            .principal(&key)
            .thread(&thread_id)
            .run(&run_id)
            .detail(match code {
                Some(code) => json!({ "outcome": parsed.as_str(), "code": code }),
                None => json!({ "outcome": parsed.as_str() }),
            });
            vec![
                WriteOp::RunEnded(RunEnd {
                    thread_id,
                    run_id,
                    ended_at: at,
                    outcome: parsed,
                    error_code: code.map(str::to_owned),
                    usage: None,
                }),
                WriteOp::Audit(record),
            ]
        }
        AuditEvent::ToolCall {
            issuer,
            subject,
            thread_id,
            run_id,
            tool,
            decision,
            outcome,
        } => {
            let record = AuditRecord {
                at,
                ..AuditRecord::now(AuditKind::ToolCall)
            }
            .principal(&PrincipalKey::new(issuer, subject))
            .thread(&thread_id)
            .run(&run_id)
            .detail(json!({ "tool": tool, "decision": decision, "outcome": outcome }));
            vec![
                WriteOp::ToolCall { thread_id, run_id },
                WriteOp::Audit(record),
            ]
        }
    }
}

/// One drained batch: the operations, which of them belong to durable callers, and flushes.
/// The run starts and their callers are two lists, one index apart: the store reads the starts
/// as one slice, so a commit does not copy them.
#[derive(Default)]
struct Batch {
    ops: Vec<WriteOp>,
    starts: Vec<StartRequest>,
    start_callers: Vec<oneshot::Sender<Result<ThreadAccess, StoreError>>>,
    durable: Vec<DurableWaiter>,
    flushes: Vec<oneshot::Sender<()>>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.starts.is_empty()
    }

    fn len(&self) -> usize {
        self.ops.len() + self.starts.len()
    }
}

impl Batch {
    fn push(&mut self, msg: Msg) {
        match msg {
            Msg::Op(op) => self.ops.push(op),
            Msg::Start(waiter) => {
                let (request, done) = *waiter;
                self.starts.push(request);
                self.start_callers.push(done);
            }
            Msg::Durable(ops, done) => {
                let start = self.ops.len();
                self.ops.extend(ops);
                self.durable.push((start..self.ops.len(), done));
            }
            Msg::Flush(done) => self.flushes.push(done),
        }
    }
}

struct Writer {
    store: Arc<dyn Store>,
    counters: Arc<Counters>,
    max_batch: usize,
    capacity: usize,
    mirror: Option<Mirror>,
    mirror_file: Option<tokio::fs::File>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        // Operations of failed transactions, retried first (durable callers were told).
        let mut retained: Vec<WriteOp> = Vec::new();
        // What callbacks queued, written first; the flushes that wait for it.
        let mut follow = FollowUps(Vec::new());
        let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
        let mut backoff = Duration::from_millis(50);
        loop {
            let mut batch = Batch {
                ops: std::mem::take(&mut retained),
                flushes: std::mem::take(&mut waiting),
                ..Batch::default()
            };
            for msg in follow.0.drain(..) {
                batch.push(msg);
            }
            if batch.is_empty() && batch.flushes.is_empty() {
                match rx.recv().await {
                    Some(msg) => batch.push(msg),
                    None => return,
                }
                // The first message woke us; the requests that are ready to run (on a busy
                // server, the other starts being parsed and admitted right now) get their turn
                // before we drain, so their starts join this transaction instead of each
                // paying its own. On an idle runtime this returns at once.
                tokio::task::yield_now().await;
            }
            // Group commit: take everything already waiting, up to one batch.
            while batch.len() < self.max_batch && batch.flushes.is_empty() {
                match rx.try_recv() {
                    Ok(msg) => batch.push(msg),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                for done in batch.flushes {
                    let _ = done.send(());
                }
                continue;
            }
            let result = if batch.starts.is_empty() {
                self.store
                    .write_batch(&batch.ops)
                    .await
                    .map(|()| Vec::new())
            } else {
                self.store.commit(&batch.starts, &batch.ops).await
            };
            match result {
                Ok(accesses) => {
                    let started: Vec<WriteOp> = std::mem::take(&mut batch.starts)
                        .into_iter()
                        .zip(&accesses)
                        .filter(|(_, a)| matches!(a, ThreadAccess::Owner { .. }))
                        .map(|(r, _)| WriteOp::Audit(r.audit))
                        .collect();
                    self.committed(&batch.ops).await;
                    if !started.is_empty() {
                        self.mirror(&started).await;
                        self.counters
                            .written
                            .fetch_add(started.len() as u64, Ordering::Relaxed);
                    }
                    backoff = Duration::from_millis(50);
                    for (done, access) in batch.start_callers.into_iter().zip(accesses) {
                        let _ = done.send(Ok(access));
                    }
                    for (_, done) in batch.durable {
                        done.send(Ok(()), Vec::new(), &mut follow);
                    }
                }
                Err(error) => {
                    tracing::error!(
                        target: "agui::audit", %error, ops = batch.ops.len(),
                        starts = batch.starts.len(), "audit write failed"
                    );
                    self.counters.failures.fetch_add(1, Ordering::Relaxed);
                    self.counters.healthy.store(false, Ordering::Relaxed);
                    // A database that answers rolled back a batch one of its parts is at fault
                    // for: each start and each durable group is tried again alone, before its
                    // caller is answered, so one bad record refuses only itself.
                    let database_up = self.store.ping().await.is_ok();
                    for (request, done) in batch.starts.into_iter().zip(batch.start_callers) {
                        let alone = if database_up {
                            self.start_alone(request).await
                        } else {
                            Err(StoreError::AuditUnavailable("audit write failed"))
                        };
                        let _ = done.send(alone);
                    }
                    retained = self
                        .failed(batch.ops, &mut batch.durable, database_up, &mut follow)
                        .await;
                    if !retained.is_empty() {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            if !follow.0.is_empty() {
                // A flush returns once what callbacks queued is written too.
                waiting = batch.flushes;
                continue;
            }
            for done in batch.flushes {
                let _ = done.send(());
            }
        }
    }

    async fn committed(&mut self, ops: &[WriteOp]) {
        let counters = &self.counters;
        counters.commits.fetch_add(1, Ordering::Relaxed);
        counters
            .written
            .fetch_add(ops.len() as u64, Ordering::Relaxed);
        counters.healthy.store(true, Ordering::Relaxed);
        counters.overflowed.store(false, Ordering::Relaxed);
        self.mirror(ops).await;
    }

    /// One run start whose batch failed, in a transaction of its own.
    async fn start_alone(&mut self, request: StartRequest) -> Result<ThreadAccess, StoreError> {
        let audit = WriteOp::Audit(request.audit.clone());
        let access = match self.store.commit(std::slice::from_ref(&request), &[]).await {
            Ok(mut accesses) => accesses.pop(),
            Err(error) => {
                tracing::error!(
                    target: "agui::audit", %error, thread_id = %request.start.thread_id,
                    run_id = %request.start.run_id, "run start rejected on its own; refused"
                );
                None
            }
        }
        .ok_or(StoreError::AuditUnavailable("audit write failed"))?;
        self.committed(&[]).await;
        if matches!(access, ThreadAccess::Owner { .. }) {
            self.mirror(std::slice::from_ref(&audit)).await;
            self.counters.written.fetch_add(1, Ordering::Relaxed);
        }
        Ok(access)
    }

    /// A transaction failed. With the database up the batch itself was at fault: each durable
    /// group is written alone and its caller told how that went, then every other op alone,
    /// dropping (and counting) the ones the database rejects. With the database down, durable
    /// callers are refused (their ops are not retried behind their back) and the rest is kept
    /// for a retry, up to the queue's capacity.
    async fn failed(
        &mut self,
        ops: Vec<WriteOp>,
        durable: &mut Vec<DurableWaiter>,
        database_up: bool,
        follow: &mut FollowUps,
    ) -> Vec<WriteOp> {
        // Each durable group is taken out (its caller gets it back if it is not written); what
        // is left are the ops of no durable caller.
        let mut ops: Vec<Option<WriteOp>> = ops.into_iter().map(Some).collect();
        for (range, done) in durable.drain(..) {
            let group: Vec<WriteOp> = ops[range].iter_mut().filter_map(Option::take).collect();
            let result = if database_up {
                match self.store.write_batch(&group).await {
                    Ok(()) => {
                        self.committed(&group).await;
                        Ok(())
                    }
                    Err(error) => {
                        tracing::error!(target: "agui::audit", %error, "durable audit write rejected");
                        Err(StoreError::AuditUnavailable("audit write failed"))
                    }
                }
            } else {
                Err(StoreError::AuditUnavailable("audit write failed"))
            };
            match result {
                Ok(()) => done.send(Ok(()), Vec::new(), follow),
                Err(error) => done.send(Err(error), group, follow),
            }
        }
        let mut kept: Vec<WriteOp> = ops.into_iter().flatten().collect();
        if database_up {
            for op in kept.drain(..) {
                match self.store.write_batch(std::slice::from_ref(&op)).await {
                    Ok(()) => self.committed(std::slice::from_ref(&op)).await,
                    Err(error) => {
                        tracing::error!(target: "agui::audit", %error, "audit op rejected; dropped");
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        } else if kept.len() > self.capacity {
            let excess = kept.len() - self.capacity;
            kept.drain(..excess);
            self.counters
                .dropped
                .fetch_add(excess as u64, Ordering::Relaxed);
        }
        kept
    }

    /// Appends the committed audit records to the mirror as JSON lines. Mirror errors are
    /// logged; the store is the record of truth.
    async fn mirror(&mut self, ops: &[WriteOp]) {
        let Some(mirror) = &self.mirror else { return };
        let mut lines = String::new();
        for op in ops {
            if let WriteOp::Audit(record) = op
                && let Ok(line) = serde_json::to_string(record)
            {
                lines.push_str(&line);
                lines.push('\n');
            }
        }
        if lines.is_empty() {
            return;
        }
        let result = match mirror {
            Mirror::Stdout => {
                let mut out = tokio::io::stdout();
                match out.write_all(lines.as_bytes()).await {
                    Ok(()) => out.flush().await,
                    Err(error) => Err(error),
                }
            }
            Mirror::File(path) => {
                if self.mirror_file.is_none() {
                    self.mirror_file = tokio::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .await
                        .map_err(|error| {
                            tracing::error!(target: "agui::audit", %error, "cannot open audit mirror")
                        })
                        .ok();
                }
                match &mut self.mirror_file {
                    Some(file) => match file.write_all(lines.as_bytes()).await {
                        Ok(()) => file.flush().await,
                        Err(error) => Err(error),
                    },
                    None => Ok(()),
                }
            }
        };
        if let Err(error) = result {
            tracing::error!(target: "agui::audit", %error, "audit mirror write failed");
        }
    }
}
