//! The SQLite store's connections: one worker thread that owns the writing connection, and (for
//! a file) a few reading connections used from Tokio's blocking pool.
//!
//! Every write is one job for the worker: one hand-off to its thread and back, then plain
//! synchronous SQLite calls of a few microseconds each with cached prepared statements. (Through
//! an async driver every statement was a round trip to a worker thread, two context switches,
//! which made the store the largest cost of a short run.) SQLite's own lock serialises writers
//! across processes; `busy_timeout` makes the `audit`/`forget` commands wait their turn.
//!
//! A file in WAL mode lets readers run beside the writer, so reads take a pooled connection on
//! the blocking pool. An in-memory database is one connection, so its reads are jobs for the
//! worker too: the same code, one place where it runs.
//!
//! The worker owns the WAL's checkpoints. With SQLite's automatic checkpoint
//! (`wal_autocheckpoint`, 1,000 pages) the commit that crosses the mark copies the whole WAL
//! into the database (reads, writes and an `fsync`) before it returns, and every run whose
//! records share that commit waits for it. So the writing connection has it off, and the worker
//! runs a `PASSIVE` checkpoint (it never waits for readers) when it has had no job for
//! [`CHECKPOINT_IDLE`], or after a job once [`CHECKPOINT_EVERY`] has passed since the last one
//! under a steady load; `journal_size_limit` truncates a WAL that a burst made large.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::store::StoreError;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// How long a statement waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Reading connections kept open for reuse.
const MAX_IDLE_READERS: usize = 4;

/// A worker with writes since its last checkpoint checkpoints after this long without a job.
pub(super) const CHECKPOINT_IDLE: Duration = Duration::from_millis(100);

/// Under a steady load (never idle), the worker checkpoints after a job once this long has
/// passed since its last checkpoint.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Largest WAL kept on disk after a checkpoint reset it (`journal_size_limit`), in bytes.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Handle to the worker thread; the thread ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(super) struct Worker {
    jobs: mpsc::Sender<Job>,
    checkpoints: Arc<AtomicU64>,
}

impl Worker {
    /// Moves `conn` onto a new thread that runs jobs until every handle is gone; with `wal`
    /// (a file) it also runs the WAL's checkpoints (see the module docs).
    pub(super) fn start(conn: Connection, wal: bool) -> Result<Self, StoreError> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let checkpoints = Arc::new(AtomicU64::new(0));
        let count = checkpoints.clone();
        std::thread::Builder::new()
            .name("agui-sqlite".into())
            .spawn(move || {
                let mut conn = conn;
                if wal {
                    run_with_checkpoints(&mut conn, &rx, &count);
                } else {
                    while let Ok(job) = rx.recv() {
                        job(&mut conn);
                    }
                }
            })
            .map_err(|e| StoreError::Backend(format!("cannot start the SQLite worker: {e}")))?;
        Ok(Self { jobs, checkpoints })
    }

    /// How many checkpoints the worker has run.
    pub(super) fn checkpoints(&self) -> u64 {
        self.checkpoints.load(Ordering::Relaxed)
    }

    /// Runs `job` on the worker's connection and waits for its result.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (done, wait) = oneshot::channel();
        self.jobs
            .send(Box::new(move |conn| {
                let _ = done.send(job(conn));
            }))
            .map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }
}

/// The worker's loop for a file: jobs, and a checkpoint when idle after writes (or at least
/// every [`CHECKPOINT_EVERY`] under load). Every job on the worker of a file is a write (reads
/// run on the readers), so any job makes the WAL dirty.
fn run_with_checkpoints(conn: &mut Connection, rx: &mpsc::Receiver<Job>, count: &AtomicU64) {
    // When the first write after the last checkpoint ran.
    let mut dirty_since: Option<Instant> = None;
    loop {
        let job = match dirty_since {
            Some(_) => match rx.recv_timeout(CHECKPOINT_IDLE) {
                Ok(job) => Some(job),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            },
            None => match rx.recv() {
                Ok(job) => Some(job),
                Err(_) => return,
            },
        };
        if let Some(job) = job {
            job(conn);
            let since = *dirty_since.get_or_insert_with(Instant::now);
            if since.elapsed() < CHECKPOINT_EVERY {
                continue;
            }
        }
        checkpoint(conn);
        count.fetch_add(1, Ordering::Relaxed);
        dirty_since = None;
    }
}

/// A `PASSIVE` checkpoint: copies what it can of the WAL into the database without waiting for
/// readers; the next write starts the WAL over once all of it is copied.
fn checkpoint(conn: &Connection) {
    let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    });
    match result {
        Ok((frames, copied)) => {
            tracing::trace!(target: "agui::store", frames, copied, "WAL checkpoint");
        }
        Err(error) => tracing::warn!(target: "agui::store", %error, "WAL checkpoint failed"),
    }
}

fn stopped() -> StoreError {
    StoreError::Backend("the SQLite worker stopped".into())
}

/// Reading connections to a database file, opened on demand.
#[derive(Debug)]
pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(super) fn new(path: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            path,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Runs `job` on a reading connection, on Tokio's blocking pool.
    pub(super) async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        job: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = readers.take()?;
            let result = job(&conn);
            readers.give_back(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("a SQLite read failed: {e}")))?
    }

    fn take(&self) -> Result<Connection, StoreError> {
        // No await while the lock is held: a std Mutex is right here.
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        match idle {
            Some(conn) => Ok(conn),
            None => open_file(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY),
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
    }
}

/// Opens the database file with the store's settings (WAL, `synchronous = NORMAL`).
pub(super) fn open_file(
    path: &std::path::Path,
    flags: OpenFlags,
) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(backend)?;
    configure(&conn)?;
    if !flags.contains(OpenFlags::SQLITE_OPEN_READ_ONLY) {
        // WAL keeps every committed transaction across a process crash (`kill -9`); only an OS
        // crash or power loss can drop the last commits with `synchronous = NORMAL` (SQLite's
        // WAL documentation, "Performance Considerations").
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(backend)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "cannot switch {} to WAL (journal mode {mode})",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(backend)?;
        // The worker checkpoints, off the commits (see the module docs). Both pragmas answer
        // with a row (the new value).
        for pragma in [
            "PRAGMA wal_autocheckpoint = 0".to_owned(),
            format!("PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}"),
        ] {
            conn.query_row(&pragma, [], |_| Ok(())).map_err(backend)?;
        }
    }
    Ok(conn)
}

/// Opens a private in-memory database.
pub(super) fn open_memory() -> Result<Connection, StoreError> {
    let conn = Connection::open_in_memory().map_err(backend)?;
    configure(&conn)?;
    Ok(conn)
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
    conn.pragma_update(None, "foreign_keys", false)
        .map_err(backend)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// A SQLite error as a store error.
pub(super) fn backend(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of this many bytes: a few WAL pages per commit.
    const ROW: usize = 16 * 1024;
    /// Commits per burst: a few megabytes of WAL, well over SQLite's 1,000-page automatic mark.
    const COMMITS: usize = 300;

    async fn burst(worker: &Worker) {
        for _ in 0..COMMITS {
            worker
                .run(|conn| {
                    conn.execute("INSERT INTO t (v) VALUES (zeroblob(?1))", [ROW as i64])
                        .map_err(backend)?;
                    Ok(())
                })
                .await
                .unwrap();
        }
    }

    /// Waits until the worker has run a checkpoint since `since` of them (a hang guard, not a
    /// time bound: the cause is the checkpoint).
    async fn checkpointed(worker: &Worker, since: u64) {
        let wait = async {
            while worker.checkpoints() == since {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .expect("the idle worker checkpoints");
    }

    #[tokio::test]
    async fn the_worker_checkpoints_when_idle_so_the_wal_does_not_grow_with_every_commit() {
        let dir = std::env::temp_dir().join(format!("agui-wal-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("wal.db");
        let conn = open_file(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )
        .unwrap();
        // The writing connection leaves checkpoints to the worker: no commit runs one.
        let auto: i64 = conn
            .query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))
            .unwrap();
        assert_eq!(auto, 0);
        conn.execute_batch("CREATE TABLE t (v BLOB)").unwrap();
        let worker = Worker::start(conn, true).unwrap();
        let wal = || std::fs::metadata(dir.join("wal.db-wal")).unwrap().len();

        burst(&worker).await;
        let first = worker.checkpoints();
        checkpointed(&worker, first).await;
        let after_one = wal();
        // The checkpoint copied the WAL into the database; the next commits start it over.
        burst(&worker).await;
        let second = worker.checkpoints();
        checkpointed(&worker, second).await;
        let after_two = wal();

        let one_burst = (ROW * COMMITS) as u64;
        assert!(
            after_one >= one_burst / 2,
            "the burst went through the WAL: {after_one}"
        );
        // Without checkpoints the WAL would hold both bursts (twice as long); with them the
        // second burst reuses the first one's frames.
        assert!(
            after_two < after_one + one_burst / 2,
            "WAL {after_two} bytes after the second burst, {after_one} after the first"
        );
        let rows: i64 = worker
            .run(|conn| {
                conn.query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0))
                    .map_err(backend)
            })
            .await
            .unwrap();
        assert_eq!(rows, (2 * COMMITS) as i64);
        drop(worker);
        let _ = std::fs::remove_dir_all(dir);
    }
}
