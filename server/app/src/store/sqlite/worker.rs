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

use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::store::StoreError;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// How long a statement waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Reading connections kept open for reuse.
const MAX_IDLE_READERS: usize = 4;

/// Handle to the worker thread; the thread ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(super) struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    /// Moves `conn` onto a new thread that runs jobs until every handle is gone.
    pub(super) fn start(conn: Connection) -> Result<Self, StoreError> {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("agui-sqlite".into())
            .spawn(move || {
                let mut conn = conn;
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
            })
            .map_err(|e| StoreError::Backend(format!("cannot start the SQLite worker: {e}")))?;
        Ok(Self { jobs })
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
