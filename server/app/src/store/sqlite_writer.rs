//! The SQLite store's write path: one OS thread owning one connection with cached prepared
//! statements. A batch ([`Store::write_batch`](super::Store::write_batch), or the group commit
//! of run starts, [`Store::commit`](super::Store::commit)) is one job: one hand-off to the
//! thread and back, then plain synchronous SQLite calls of a few microseconds each. (Through
//! sqlx every statement is a round trip to its worker thread, two context switches, which made
//! the store the largest cost of a short run.) Reads stay on the sqlx pool.
//!
//! WAL lets the pool's readers run beside this writer; SQLite's own lock serialises writers,
//! and `busy_timeout` makes other processes (the `audit`/`forget` commands) wait their turn.

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, Transaction, params};
use tokio::sync::oneshot;

use super::{PrincipalKey, StartRequest, StoreError, ThreadAccess, WriteOp};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Handle to the writer thread; the thread ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct SqliteWriter {
    jobs: mpsc::Sender<Job>,
    /// The store's instance id, recorded on the runs this process starts.
    instance: String,
}

impl SqliteWriter {
    /// Opens the database file (already created and migrated) on a new thread.
    pub(crate) fn open(path: &Path, instance: String) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(backend)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(backend)?;
        conn.pragma_update(None, "foreign_keys", false)
            .map_err(backend)?;
        conn.set_prepared_statement_cache_capacity(32);
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("agui-sqlite-writer".into())
            .spawn(move || {
                let mut conn = conn;
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
            })
            .map_err(|e| StoreError::Backend(format!("cannot start the SQLite writer: {e}")))?;
        Ok(Self { jobs, instance })
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (done, wait) = oneshot::channel();
        self.jobs
            .send(Box::new(move |conn| {
                let _ = done.send(job(conn));
            }))
            .map_err(|_| StoreError::Backend("the SQLite writer stopped".into()))?;
        wait.await
            .map_err(|_| StoreError::Backend("the SQLite writer stopped".into()))?
    }

    /// [`Store::write_batch`](super::Store::write_batch) in one transaction.
    pub(crate) async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let instance = self.instance.clone();
        self.run(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            apply(&tx, &ops, &instance)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    /// [`Store::commit`](super::Store::commit) in one transaction.
    pub(crate) async fn commit(
        &self,
        starts: Vec<StartRequest>,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<ThreadAccess>, StoreError> {
        let instance = self.instance.clone();
        self.run(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            let mut accesses = Vec::with_capacity(starts.len());
            let mut owned = Vec::new();
            for request in starts {
                let start = &request.start;
                // A new thread is created with this run as its last: the usual case (every
                // CopilotKit conversation starts one) costs one statement, not three.
                let inserted = tx
                    .prepare_cached(
                        "INSERT INTO threads (thread_id, issuer, subject, created_at, last_run_at) \
                         VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (thread_id) DO NOTHING",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            start.thread_id,
                            start.principal.issuer,
                            start.principal.subject,
                            start.started_at
                        ])
                    })
                    .map_err(backend)?;
                if inserted == 1 {
                    insert_run(&tx, start, &instance, false)?;
                    owned.push(WriteOp::Audit(request.audit));
                    accesses.push(ThreadAccess::Owner { created: true });
                    continue;
                }
                let owner = tx
                    .prepare_cached("SELECT issuer, subject FROM threads WHERE thread_id = ?1")
                    .and_then(|mut s| {
                        s.query_row(params![start.thread_id], |row| {
                            Ok(PrincipalKey::new(
                                row.get::<_, String>(0)?,
                                row.get::<_, String>(1)?,
                            ))
                        })
                    })
                    .map_err(backend)?;
                if owner == start.principal {
                    owned.push(WriteOp::RunStarted(request.start));
                    owned.push(WriteOp::Audit(request.audit));
                    accesses.push(ThreadAccess::Owner { created: false });
                } else {
                    accesses.push(ThreadAccess::NotOwner { owner });
                }
            }
            apply(&tx, &owned, &instance)?;
            apply(&tx, &ops, &instance)?;
            tx.commit().map_err(backend)?;
            Ok(accesses)
        })
        .await
    }
}

/// Records a run's start; `touch_thread` also moves the thread's `last_run_at` (not needed when
/// the thread was created by this very run).
fn insert_run(
    tx: &Transaction<'_>,
    run: &super::RunStart,
    instance: &str,
    touch_thread: bool,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO runs (thread_id, run_id, issuer, subject, agent, \
         credential_source, instance, started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (thread_id, run_id) DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute(params![
            run.thread_id,
            run.run_id,
            run.principal.issuer,
            run.principal.subject,
            run.agent,
            run.credential_source,
            instance,
            run.started_at
        ])
    })
    .map_err(backend)?;
    if touch_thread {
        tx.prepare_cached(
            "UPDATE threads SET last_run_at = ?1 WHERE thread_id = ?2 \
             AND (last_run_at IS NULL OR last_run_at < ?1)",
        )
        .and_then(|mut s| s.execute(params![run.started_at, run.thread_id]))
        .map_err(backend)?;
    }
    Ok(())
}

/// Applies `ops` in order inside `tx`, one cached statement each.
fn apply(tx: &Transaction<'_>, ops: &[WriteOp], instance: &str) -> Result<(), StoreError> {
    let mut tool_calls: HashMap<&str, i64> = HashMap::new();
    for op in ops {
        match op {
            WriteOp::Audit(record) => {
                tx.prepare_cached(
                    "INSERT INTO audit (at, kind, issuer, subject, thread_id, run_id, detail) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        record.at,
                        record.kind.as_str(),
                        record.issuer,
                        record.subject,
                        record.thread_id,
                        record.run_id,
                        record.detail.to_string()
                    ])
                })
                .map_err(backend)?;
            }
            WriteOp::RunStarted(run) => insert_run(tx, run, instance, true)?,
            WriteOp::RunEnded(end) => {
                tx.prepare_cached(
                    "UPDATE runs SET ended_at = ?1, outcome = ?2, error_code = ?3, usage = ?4 \
                     WHERE thread_id = ?5 AND run_id = ?6 AND ended_at IS NULL",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        end.ended_at,
                        end.outcome.as_str(),
                        end.error_code,
                        end.usage.as_ref().map(ToString::to_string),
                        end.thread_id,
                        end.run_id
                    ])
                })
                .map_err(backend)?;
            }
            WriteOp::ToolCall { run_id } => *tool_calls.entry(run_id).or_default() += 1,
        }
    }
    for (run_id, n) in tool_calls {
        tx.prepare_cached("UPDATE runs SET tool_calls = tool_calls + ?1 WHERE run_id = ?2")
            .and_then(|mut s| s.execute(params![n, run_id]))
            .map_err(backend)?;
    }
    Ok(())
}

fn backend(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(error.to_string())
}
