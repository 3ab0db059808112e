//! [`SqliteStore`]: the default store, a file in WAL mode (or a private in-memory database for
//! `dev` and tests). One server process per file: PostgreSQL is the store for several replicas.
//!
//! The file and the in-memory database share every statement and the one write path (the
//! worker thread); they differ only in where reads run (see [`worker`]).

mod migrate;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, ToSql, Transaction, params};

use self::worker::{Readers, Worker, backend};
use super::rules::{self, Param, WriteTx};
use super::{
    AuditFilter, AuditRecord, ForgetCounts, HistoryChunk, Notice, OpenRun, PrincipalKey, RunEnd,
    RunRecord, RunStart, StartRequest, Store, StoreError, ThreadAccess, ThreadReplay,
    ThreadSummary, WriteOp, new_instance_id, rows,
};

/// The SQLite store; cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    worker: Worker,
    /// Reading connections of a file; `None` in memory (reads run on the worker).
    readers: Option<Arc<Readers>>,
    instance: Arc<str>,
    path: Option<PathBuf>,
}

/// Where a `sqlite:` URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    Memory,
    File(PathBuf),
}

/// Parses `sqlite::memory:`, `sqlite://path[?mode=rwc|rw|memory]` and `sqlite:path`.
fn parse_url(url: &str) -> Result<Location, StoreError> {
    let rest = url
        .strip_prefix("sqlite:")
        .ok_or_else(|| StoreError::InvalidUrl("expected sqlite:".into()))?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut memory = path == ":memory:";
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair {
            "mode=memory" => memory = true,
            "mode=rwc" | "mode=rw" => {}
            other => {
                return Err(StoreError::InvalidUrl(format!(
                    "unsupported SQLite URL parameter `{other}` (use mode=rwc or mode=memory)"
                )));
            }
        }
    }
    if memory {
        Ok(Location::Memory)
    } else if path.is_empty() {
        Err(StoreError::InvalidUrl(
            "the SQLite URL names no file".into(),
        ))
    } else {
        Ok(Location::File(PathBuf::from(path)))
    }
}

impl SqliteStore {
    /// Opens (creating it and its directory if missing) the database at `url` and migrates it.
    /// `sqlite::memory:` opens a private in-memory database.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidUrl`], [`StoreError::Backend`] or [`StoreError::Migrate`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let location = parse_url(url)?;
        tokio::task::spawn_blocking(move || Self::open(location))
            .await
            .map_err(|e| StoreError::Backend(format!("opening SQLite failed: {e}")))?
    }

    fn open(location: Location) -> Result<Self, StoreError> {
        let (mut conn, path) = match location {
            Location::Memory => (worker::open_memory()?, None),
            Location::File(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        StoreError::InvalidUrl(format!("cannot create {}: {e}", parent.display()))
                    })?;
                }
                let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
                (worker::open_file(&path, flags)?, Some(path))
            }
        };
        migrate::migrate(&mut conn)?;
        Ok(Self {
            worker: Worker::start(conn, path.is_some())?,
            readers: path.clone().map(Readers::new),
            instance: new_instance_id().into(),
            path,
        })
    }

    /// The database file (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Runs `job` on the writing connection inside one transaction, committed when it returns
    /// `Ok`. `job` gets the store's statements as a [`WriteTx`].
    async fn write<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut SqliteTx<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let instance = self.instance.clone();
        self.worker
            .run(move |conn| {
                let tx = conn.transaction().map_err(backend)?;
                let result = job(&mut SqliteTx {
                    tx: &tx,
                    instance: &instance,
                })?;
                tx.commit().map_err(backend)?;
                Ok(result)
            })
            .await
    }

    /// Runs `job` on a reading connection (the worker's, in memory).
    async fn read<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        match &self.readers {
            Some(readers) => readers.run(job).await,
            None => self.worker.run(move |conn| job(conn)).await,
        }
    }

    /// How many WAL checkpoints the worker has run (tests: the WAL is checkpointed off the
    /// commits).
    #[doc(hidden)]
    pub fn checkpoints(&self) -> u64 {
        self.worker.checkpoints()
    }

    /// Runs raw SQL on the writing connection (tests: fault injection and inspection).
    #[doc(hidden)]
    pub async fn execute_raw(&self, sql: &str) -> Result<(), StoreError> {
        let sql = sql.to_owned();
        self.worker
            .run(move |conn| conn.execute_batch(&sql).map_err(backend))
            .await
    }

    /// The first column of the first row of `sql`, as an integer (tests: inspection).
    #[doc(hidden)]
    pub async fn query_int(&self, sql: &str) -> Result<i64, StoreError> {
        let sql = sql.to_owned();
        self.worker
            .run(move |conn| conn.query_row(&sql, [], |row| row.get(0)).map_err(backend))
            .await
    }

    /// Every row of `table` as a JSON object (tests: scanning what is stored).
    #[doc(hidden)]
    pub async fn dump_table(&self, table: &str) -> Result<Vec<serde_json::Value>, StoreError> {
        let sql = format!("SELECT * FROM {table}");
        self.worker
            .run(move |conn| {
                let mut statement = conn.prepare(&sql).map_err(backend)?;
                let names: Vec<String> = statement
                    .column_names()
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                let rows = statement
                    .query_map([], |row| {
                        let mut object = serde_json::Map::new();
                        for (i, name) in names.iter().enumerate() {
                            let value = match row.get_ref(i)? {
                                rusqlite::types::ValueRef::Null => serde_json::Value::Null,
                                rusqlite::types::ValueRef::Integer(n) => n.into(),
                                rusqlite::types::ValueRef::Real(f) => f.into(),
                                rusqlite::types::ValueRef::Text(t)
                                | rusqlite::types::ValueRef::Blob(t) => {
                                    String::from_utf8_lossy(t).into_owned().into()
                                }
                            };
                            object.insert(name.clone(), value);
                        }
                        Ok(serde_json::Value::Object(object))
                    })
                    .map_err(backend)?;
                rows.collect::<Result<_, _>>().map_err(backend)
            })
            .await
    }
}

/// The store's statements inside one write transaction.
struct SqliteTx<'a> {
    tx: &'a Transaction<'a>,
    instance: &'a str,
}

impl SqliteTx<'_> {
    fn execute(&self, sql: &str, params: &[&dyn ToSql]) -> Result<usize, StoreError> {
        self.tx
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute(params))
            .map_err(backend)
    }
}

impl WriteTx for SqliteTx<'_> {
    async fn insert_thread(
        &mut self,
        thread_id: &str,
        owner: &PrincipalKey,
        created_at: i64,
        run: Option<&RunStart>,
    ) -> Result<bool, StoreError> {
        let inserted = self.execute(
            "INSERT INTO threads (thread_id, issuer, subject, created_at, last_run_at, title) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (thread_id) DO NOTHING",
            params![
                thread_id,
                owner.issuer,
                owner.subject,
                created_at,
                run.map(|r| r.started_at),
                run.and_then(|r| r.title.as_deref())
            ],
        )?;
        Ok(inserted == 1)
    }

    async fn thread_owner(&mut self, thread_id: &str) -> Result<Option<PrincipalKey>, StoreError> {
        thread_owner(self.tx, thread_id)
    }

    async fn insert_run(&mut self, run: &RunStart) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO runs (thread_id, run_id, issuer, subject, agent, credential_source, \
             instance, started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (thread_id, run_id) DO NOTHING",
            params![
                run.thread_id,
                run.run_id,
                run.principal.issuer,
                run.principal.subject,
                run.agent,
                run.credential_source,
                self.instance,
                run.started_at
            ],
        )?;
        Ok(())
    }

    async fn advance_last_run(&mut self, thread_id: &str, at: i64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE threads SET last_run_at = ?1 WHERE thread_id = ?2 \
             AND (last_run_at IS NULL OR last_run_at < ?1)",
            params![at, thread_id],
        )?;
        Ok(())
    }

    async fn end_run(&mut self, end: &RunEnd) -> Result<(), StoreError> {
        self.execute(
            "UPDATE runs SET ended_at = ?1, outcome = ?2, error_code = ?3, usage = ?4 \
             WHERE thread_id = ?5 AND run_id = ?6 AND ended_at IS NULL",
            params![
                end.ended_at,
                end.outcome.as_str(),
                end.error_code,
                end.usage.as_ref().map(ToString::to_string),
                end.thread_id,
                end.run_id
            ],
        )?;
        Ok(())
    }

    async fn add_tool_calls(
        &mut self,
        thread_id: &str,
        run_id: &str,
        count: i64,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE runs SET tool_calls = tool_calls + ?1 WHERE thread_id = ?2 AND run_id = ?3",
            params![count, thread_id, run_id],
        )?;
        Ok(())
    }

    async fn insert_audit(&mut self, record: &AuditRecord) -> Result<(), StoreError> {
        insert_audit(self.tx, record)
    }

    async fn insert_history(&mut self, chunk: &HistoryChunk) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO history (thread_id, run_id, chunk, started_at, at, events) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (thread_id, run_id, chunk) DO NOTHING",
            params![
                chunk.thread_id,
                chunk.run_id,
                chunk.chunk,
                chunk.started_at,
                chunk.at,
                chunk.events
            ],
        )?;
        Ok(())
    }

    async fn trim_history(&mut self, thread_id: &str, keep_runs: u32) -> Result<u64, StoreError> {
        let removed = self.execute(
            "DELETE FROM history WHERE thread_id = ?1 AND run_id IN ( \
               SELECT run_id FROM history WHERE thread_id = ?1 GROUP BY run_id \
               ORDER BY MAX(started_at) DESC, run_id DESC LIMIT -1 OFFSET ?2)",
            params![thread_id, keep_runs],
        )?;
        Ok(removed as u64)
    }

    async fn notify(&mut self, _: &Notice) -> Result<(), StoreError> {
        // One process per SQLite file: nobody else to tell.
        Ok(())
    }

    fn has_replicas(&self) -> bool {
        false
    }
}

/// The thread's owner, if the thread exists (inside a write, or on a reader).
fn thread_owner(conn: &Connection, thread_id: &str) -> Result<Option<PrincipalKey>, StoreError> {
    conn.prepare_cached("SELECT issuer, subject FROM threads WHERE thread_id = ?1")
        .and_then(|mut statement| {
            statement
                .query_row(params![thread_id], |row| {
                    Ok(PrincipalKey::new(
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                    ))
                })
                .optional()
        })
        .map_err(backend)
}

fn insert_audit(conn: &Connection, record: &AuditRecord) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit (at, kind, issuer, subject, thread_id, run_id, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut statement| {
        statement.execute(params![
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
    Ok(())
}

/// A SQLite row read by column name.
impl rows::Row for rusqlite::Row<'_> {
    fn text(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.get(column).map_err(backend)
    }

    fn int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        self.get(column).map_err(backend)
    }
}

/// Runs one futures-based rule on the worker thread: SQLite's statements never wait, so the
/// future completes in one poll.
fn now<T>(rule: impl Future<Output = T>) -> T {
    futures::executor::block_on(rule)
}

/// Every row of `sql` mapped by `map`.
fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: &[&dyn ToSql],
    map: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = statement.query(params).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push(map(row)?);
    }
    Ok(out)
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn instance_id(&self) -> &str {
        &self.instance
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(backend))
            .await
    }

    async fn claim_thread(
        &self,
        owner: &PrincipalKey,
        thread_id: &str,
        now_ms: i64,
    ) -> Result<ThreadAccess, StoreError> {
        let (owner, thread_id) = (owner.clone(), thread_id.to_owned());
        self.write(move |tx| now(rules::claim(tx, &owner, &thread_id, now_ms, None)))
            .await
    }

    async fn list_threads(&self, owner: &PrincipalKey) -> Result<Vec<ThreadSummary>, StoreError> {
        let owner = owner.clone();
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT thread_id, created_at, last_run_at, title, \
                 (SELECT agent FROM runs WHERE runs.thread_id = threads.thread_id \
                  ORDER BY started_at DESC, run_id DESC LIMIT 1) AS agent \
                 FROM threads WHERE issuer = ?1 AND subject = ?2 \
                 ORDER BY COALESCE(last_run_at, created_at) DESC, thread_id",
                params![owner.issuer, owner.subject],
                |row| rows::thread(row),
            )
        })
        .await
    }

    async fn write_batch(&self, ops: &[WriteOp]) -> Result<(), StoreError> {
        let ops = ops.to_vec();
        self.write(move |tx| now(rules::apply(tx, &ops))).await
    }

    async fn commit(
        &self,
        starts: &[StartRequest],
        ops: &[WriteOp],
    ) -> Result<Vec<ThreadAccess>, StoreError> {
        let (starts, ops) = (starts.to_vec(), ops.to_vec());
        self.write(move |tx| now(rules::commit(tx, &starts, &ops)))
            .await
    }

    async fn get_run(
        &self,
        thread_id: &str,
        run_id: &str,
    ) -> Result<Option<RunRecord>, StoreError> {
        let (thread_id, run_id) = (thread_id.to_owned(), run_id.to_owned());
        self.read(move |conn| {
            let mut found = query_all(
                conn,
                "SELECT * FROM runs WHERE thread_id = ?1 AND run_id = ?2",
                params![thread_id, run_id],
                |row| rows::run(row),
            )?;
            Ok(found.pop())
        })
        .await
    }

    async fn heartbeat(&self, now_ms: i64) -> Result<(), StoreError> {
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO instances (instance_id, started_at, heartbeat_at) \
                 VALUES (?1, ?2, ?2) \
                 ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
                params![tx.instance, now_ms],
            )
            .map(drop)
        })
        .await
    }

    async fn mark_abandoned_runs(&self, stale_before: i64, now_ms: i64) -> Result<u64, StoreError> {
        self.write(move |tx| {
            let abandoned = query_all(
                tx.tx,
                "UPDATE runs SET ended_at = ?1, outcome = 'abandoned' \
                 WHERE ended_at IS NULL AND instance <> ?2 AND instance NOT IN \
                   (SELECT instance_id FROM instances WHERE heartbeat_at >= ?3) \
                 RETURNING thread_id, run_id, issuer, subject, instance",
                params![now_ms, tx.instance, stale_before],
                |row| {
                    let text = |i| row.get::<_, String>(i).map_err(backend);
                    Ok(super::maintenance::abandoned_record(
                        now_ms,
                        PrincipalKey::new(text(2)?, text(3)?),
                        text(0)?,
                        text(1)?,
                        text(4)?,
                    ))
                },
            )?;
            for record in &abandoned {
                insert_audit(tx.tx, record)?;
            }
            tx.execute(
                "DELETE FROM instances WHERE heartbeat_at < ?1 AND instance_id <> ?2",
                params![stale_before, tx.instance],
            )?;
            Ok(abandoned.len() as u64)
        })
        .await
    }

    async fn query_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| {
            let (sql, params) = rules::audit_query(&filter, "detail", |_| "?".into());
            let params: Vec<&dyn ToSql> = params
                .iter()
                .map(|param| match param {
                    Param::Text(text) => text as &dyn ToSql,
                    Param::Int(n) => n as &dyn ToSql,
                })
                .collect();
            let mut statement = conn.prepare(&sql).map_err(backend)?;
            let mut found = statement.query(params.as_slice()).map_err(backend)?;
            let mut out = Vec::new();
            while let Some(row) = found.next().map_err(backend)? {
                out.push(rows::audit(row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn delete_audit_before(&self, before: i64) -> Result<u64, StoreError> {
        self.write(move |tx| {
            tx.execute("DELETE FROM audit WHERE at < ?1", params![before])
                .map(|n| n as u64)
        })
        .await
    }

    async fn delete_history_before(&self, before: i64) -> Result<u64, StoreError> {
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM history WHERE (thread_id, run_id) IN ( \
                   SELECT thread_id, run_id FROM history GROUP BY thread_id, run_id \
                   HAVING MAX(at) < ?1)",
                params![before],
            )
            .map(|n| n as u64)
        })
        .await
    }

    async fn thread_owner(&self, thread_id: &str) -> Result<Option<PrincipalKey>, StoreError> {
        let thread_id = thread_id.to_owned();
        self.read(move |conn| thread_owner(conn, &thread_id)).await
    }

    async fn history(&self, thread_id: &str) -> Result<Vec<HistoryChunk>, StoreError> {
        let thread_id = thread_id.to_owned();
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT thread_id, run_id, chunk, started_at, at, events FROM history \
                 WHERE thread_id = ?1 ORDER BY started_at, run_id, chunk",
                params![thread_id],
                |row| rows::history(row),
            )
        })
        .await
    }

    async fn run_history(
        &self,
        thread_id: &str,
        run_id: &str,
        from_chunk: i64,
    ) -> Result<Vec<HistoryChunk>, StoreError> {
        let (thread_id, run_id) = (thread_id.to_owned(), run_id.to_owned());
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT thread_id, run_id, chunk, started_at, at, events FROM history \
                 WHERE thread_id = ?1 AND run_id = ?2 AND chunk >= ?3 ORDER BY chunk",
                params![thread_id, run_id, from_chunk],
                |row| rows::history(row),
            )
        })
        .await
    }

    async fn thread_replay(
        &self,
        thread_id: &str,
        reader: &PrincipalKey,
        any_owner: bool,
    ) -> Result<ThreadReplay, StoreError> {
        let (thread_id, reader) = (thread_id.to_owned(), reader.clone());
        self.read(move |conn| {
            let sql = rules::thread_replay_sql(|n| format!("?{n}"));
            let mut statement = conn.prepare_cached(&sql).map_err(backend)?;
            let mut found = statement
                .query(params![
                    thread_id,
                    reader.issuer,
                    reader.subject,
                    i64::from(any_owner)
                ])
                .map_err(backend)?;
            let mut replay = ThreadReplay::default();
            while let Some(row) = found.next().map_err(backend)? {
                rows::add_replay_row(&mut replay, row)?;
            }
            Ok(replay)
        })
        .await
    }

    async fn open_runs(&self, thread_id: &str) -> Result<Vec<OpenRun>, StoreError> {
        let thread_id = thread_id.to_owned();
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT r.run_id, r.instance, r.started_at, i.heartbeat_at FROM runs r \
                 LEFT JOIN instances i ON i.instance_id = r.instance \
                 WHERE r.thread_id = ?1 AND r.ended_at IS NULL ORDER BY r.started_at, r.run_id",
                params![thread_id],
                |row| rows::open_run(row),
            )
        })
        .await
    }

    async fn forget_subject(
        &self,
        issuer: Option<&str>,
        subject: &str,
    ) -> Result<ForgetCounts, StoreError> {
        let (issuer, subject) = (issuer.map(str::to_owned), subject.to_owned());
        self.write(move |tx| {
            let history_chunks = tx.execute(
                "DELETE FROM history WHERE thread_id IN (SELECT thread_id FROM threads \
                 WHERE subject = ?1 AND (?2 IS NULL OR issuer = ?2))",
                params![subject, issuer],
            )? as u64;
            let mut counts = [0u64; rules::SUBJECT_TABLES.len()];
            for (table, count) in rules::SUBJECT_TABLES.iter().zip(&mut counts) {
                // `table` is a literal of rules::SUBJECT_TABLES, never input.
                let sql = format!(
                    "DELETE FROM {table} WHERE subject = ?1 AND (?2 IS NULL OR issuer = ?2)"
                );
                *count = tx.execute(&sql, params![subject, issuer])? as u64;
            }
            let [threads, runs, audit_records] = counts;
            Ok(ForgetCounts {
                threads,
                runs,
                audit_records,
                history_chunks,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_file_or_memory() {
        assert_eq!(parse_url("sqlite::memory:").unwrap(), Location::Memory);
        assert_eq!(
            parse_url("sqlite://./data/agui.db?mode=rwc").unwrap(),
            Location::File("./data/agui.db".into())
        );
        assert_eq!(
            parse_url("sqlite:/tmp/x.db").unwrap(),
            Location::File("/tmp/x.db".into())
        );
        assert_eq!(
            parse_url("sqlite://x?mode=memory").unwrap(),
            Location::Memory
        );
        for bad in ["sqlite://", "sqlite://x.db?cache=shared", "postgres://x"] {
            assert!(
                matches!(parse_url(bad), Err(StoreError::InvalidUrl(_))),
                "{bad}"
            );
        }
    }
}
