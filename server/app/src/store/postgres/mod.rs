//! [`PgStore`]: the store for several replicas sharing one PostgreSQL database.
//!
//! Ownership is decided by the `threads` primary key (`INSERT ... ON CONFLICT DO NOTHING`), so
//! replicas racing on a new thread id agree on one owner; migrations take PostgreSQL's advisory
//! lock, so replicas starting together migrate once. What the writes mean is
//! [`super::rules`]; this file holds the statements.

mod migrate;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgPool, Postgres, Row as _};

use super::rules::{self, Param, WriteTx};
use super::{
    AuditFilter, AuditRecord, ForgetCounts, HistoryChunk, Notice, OpenRun, PrincipalKey, RunEnd,
    RunRecord, RunStart, StartRequest, Store, StoreError, ThreadAccess, ThreadReplay,
    ThreadSummary, WriteOp, new_instance_id, rows,
};

/// How many notices may wait for a slow subscriber before it misses some (it then re-reads).
const NOTICE_BUFFER: usize = 4096;

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    instance: String,
    /// The `LISTEN/NOTIFY` channel of this schema: replicas of one deployment share it, other
    /// deployments in the same database do not.
    channel: String,
    notices: tokio::sync::broadcast::Sender<Notice>,
    /// Stops the notice listener when the last handle is dropped.
    _listening: std::sync::Arc<tokio_util::sync::DropGuard>,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`) and migrates the database.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidUrl`], [`StoreError::Database`] or [`StoreError::Migrate`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
        Self::connect_with(options).await
    }

    /// Like [`PgStore::connect`], with every table in `schema` (created if missing): several
    /// deployments, or isolated tests, can share one database this way.
    ///
    /// # Errors
    ///
    /// As [`PgStore::connect`]; `schema` must be a plain identifier (`[A-Za-z0-9_]+`).
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        if schema.is_empty()
            || !schema
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(StoreError::InvalidUrl(format!(
                "invalid schema name `{schema}`"
            )));
        }
        let options =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
        let mut conn = sqlx::PgConnection::connect_with(&options).await?;
        // `schema` was checked to be a plain identifier above.
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Self::connect_with(options.options([("search_path", schema)])).await
    }

    async fn connect_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        migrate::migrator()
            .await
            .map_err(|e| StoreError::Migrate(e.to_string()))?
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate(e.to_string()))?;
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&pool)
            .await?;
        let channel = notice_channel(&schema);
        let (notices, _) = tokio::sync::broadcast::channel(NOTICE_BUFFER);
        let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
        listener.listen(&channel).await?;
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(forward_notices(listener, notices.clone(), stop.clone()));
        Ok(Self {
            pool,
            instance: new_instance_id(),
            channel,
            notices,
            _listening: std::sync::Arc::new(stop.drop_guard()),
        })
    }

    /// The connection pool (tests read the raw rows through it).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// The notice channel of a schema: a plain identifier (`[a-z0-9_]`, at most 63 bytes).
fn notice_channel(schema: &str) -> String {
    let clean: String = schema
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let mut channel = format!("agui_{clean}");
    channel.truncate(63);
    channel
}

/// A notice as a `NOTIFY` payload (JSON; ids never hold what would break it).
fn payload(notice: &Notice) -> String {
    match notice {
        Notice::History { thread_id, run_id } => {
            serde_json::json!({ "history": [thread_id, run_id] }).to_string()
        }
        Notice::Stop { thread_id, run_id } => {
            serde_json::json!({ "stop": [thread_id, run_id] }).to_string()
        }
    }
}

fn parse_payload(text: &str) -> Option<Notice> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    if let Some([thread, run]) = value
        .get("history")
        .and_then(|v| v.as_array())
        .map(Vec::as_slice)
    {
        return Some(Notice::History {
            thread_id: thread.as_str()?.to_owned(),
            run_id: run.as_str()?.to_owned(),
        });
    }
    let [thread, run] = value.get("stop")?.as_array()?.as_slice() else {
        return None;
    };
    Some(Notice::Stop {
        thread_id: thread.as_str()?.to_owned(),
        run_id: run.as_str().map(str::to_owned),
    })
}

/// Hands every notice on the channel to the subscribers until `stop` fires (the last handle of
/// the store is gone). On a lost connection the listener reconnects; notices sent meanwhile
/// are lost, which subscribers cover by re-reading the store now and then.
async fn forward_notices(
    mut listener: sqlx::postgres::PgListener,
    notices: tokio::sync::broadcast::Sender<Notice>,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        let received = tokio::select! {
            () = stop.cancelled() => return,
            received = listener.recv() => received,
        };
        match received {
            Ok(notification) => {
                if let Some(notice) = parse_payload(notification.payload()) {
                    // Nobody subscribed right now is fine.
                    let _ = notices.send(notice);
                }
            }
            Err(error) => {
                tracing::warn!(target: "agui::store", %error, "PostgreSQL notices interrupted; reconnecting");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// The store's statements inside one transaction (or on one connection).
struct PgTx<'a> {
    conn: &'a mut sqlx::PgConnection,
    instance: &'a str,
    channel: &'a str,
}

impl WriteTx for PgTx<'_> {
    async fn insert_thread(
        &mut self,
        thread_id: &str,
        owner: &PrincipalKey,
        created_at: i64,
        run: Option<&RunStart>,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO threads (thread_id, issuer, subject, created_at, last_run_at, title) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (thread_id) DO NOTHING",
        )
        .bind(thread_id)
        .bind(&owner.issuer)
        .bind(&owner.subject)
        .bind(created_at)
        .bind(run.map(|r| r.started_at))
        .bind(run.and_then(|r| r.title.as_deref()))
        .execute(&mut *self.conn)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    async fn thread_owner(&mut self, thread_id: &str) -> Result<Option<PrincipalKey>, StoreError> {
        let row = sqlx::query("SELECT issuer, subject FROM threads WHERE thread_id = $1")
            .bind(thread_id)
            .fetch_optional(&mut *self.conn)
            .await?;
        row.map(|row| {
            Ok(PrincipalKey::new(
                row.try_get::<String, _>(0)?,
                row.try_get::<String, _>(1)?,
            ))
        })
        .transpose()
    }

    async fn insert_run(&mut self, run: &RunStart) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO runs (thread_id, run_id, issuer, subject, agent, credential_source, \
             instance, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (thread_id, run_id) DO NOTHING",
        )
        .bind(&run.thread_id)
        .bind(&run.run_id)
        .bind(&run.principal.issuer)
        .bind(&run.principal.subject)
        .bind(&run.agent)
        .bind(&run.credential_source)
        .bind(self.instance)
        .bind(run.started_at)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn advance_last_run(&mut self, thread_id: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE threads SET last_run_at = $1 WHERE thread_id = $2 \
             AND (last_run_at IS NULL OR last_run_at < $1)",
        )
        .bind(at)
        .bind(thread_id)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn end_run(&mut self, end: &RunEnd) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE runs SET ended_at = $1, outcome = $2, error_code = $3, usage = $4::jsonb \
             WHERE thread_id = $5 AND run_id = $6 AND ended_at IS NULL",
        )
        .bind(end.ended_at)
        .bind(end.outcome.as_str())
        .bind(&end.error_code)
        .bind(end.usage.as_ref().map(ToString::to_string))
        .bind(&end.thread_id)
        .bind(&end.run_id)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn add_tool_calls(
        &mut self,
        thread_id: &str,
        run_id: &str,
        count: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE runs SET tool_calls = tool_calls + $1 WHERE thread_id = $2 AND run_id = $3",
        )
        .bind(i32::try_from(count).unwrap_or(i32::MAX))
        .bind(thread_id)
        .bind(run_id)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn insert_audit(&mut self, record: &AuditRecord) -> Result<(), StoreError> {
        insert_audit(self.conn, record).await
    }

    async fn insert_history(&mut self, chunk: &HistoryChunk) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO history (thread_id, run_id, chunk, started_at, at, events) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (thread_id, run_id, chunk) DO NOTHING",
        )
        .bind(&chunk.thread_id)
        .bind(&chunk.run_id)
        .bind(i32::try_from(chunk.chunk).unwrap_or(i32::MAX))
        .bind(chunk.started_at)
        .bind(chunk.at)
        .bind(&chunk.events)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn trim_history(&mut self, thread_id: &str, keep_runs: u32) -> Result<u64, StoreError> {
        let removed = sqlx::query(
            "DELETE FROM history WHERE thread_id = $1 AND run_id IN ( \
               SELECT run_id FROM history WHERE thread_id = $1 GROUP BY run_id \
               ORDER BY MAX(started_at) DESC, run_id DESC OFFSET $2)",
        )
        .bind(thread_id)
        .bind(i64::from(keep_runs))
        .execute(&mut *self.conn)
        .await?
        .rows_affected();
        Ok(removed)
    }

    async fn notify(&mut self, notice: &Notice) -> Result<(), StoreError> {
        // Inside the transaction: PostgreSQL delivers it when (and only if) it commits.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(self.channel)
            .bind(payload(notice))
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }
}

async fn insert_audit(
    conn: &mut sqlx::PgConnection,
    record: &AuditRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit (at, kind, issuer, subject, thread_id, run_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
    )
    .bind(record.at)
    .bind(record.kind.as_str())
    .bind(&record.issuer)
    .bind(&record.subject)
    .bind(&record.thread_id)
    .bind(&record.run_id)
    .bind(record.detail.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

/// A PostgreSQL row read by column name.
impl rows::Row for PgRow {
    fn text(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(column)?)
    }
}

impl PgStore {
    /// Runs `job` in one transaction, committed when it returns `Ok`.
    async fn write<T>(
        &self,
        job: impl AsyncFnOnce(&mut PgTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut tx = self.pool.begin().await?;
        let result = job(&mut PgTx {
            conn: &mut tx,
            instance: &self.instance,
            channel: &self.channel,
        })
        .await?;
        tx.commit().await?;
        Ok(result)
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn instance_id(&self) -> &str {
        &self.instance
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn claim_thread(
        &self,
        owner: &PrincipalKey,
        thread_id: &str,
        now: i64,
    ) -> Result<ThreadAccess, StoreError> {
        self.write(async |tx| rules::claim(tx, owner, thread_id, now, None).await)
            .await
    }

    async fn list_threads(&self, owner: &PrincipalKey) -> Result<Vec<ThreadSummary>, StoreError> {
        let found = sqlx::query(
            "SELECT thread_id, created_at, last_run_at, title, \
             (SELECT agent FROM runs WHERE runs.thread_id = threads.thread_id \
              ORDER BY started_at DESC, run_id DESC LIMIT 1) AS agent \
             FROM threads WHERE issuer = $1 AND subject = $2 \
             ORDER BY COALESCE(last_run_at, created_at) DESC, thread_id",
        )
        .bind(&owner.issuer)
        .bind(&owner.subject)
        .fetch_all(&self.pool)
        .await?;
        found.iter().map(rows::thread).collect()
    }

    async fn write_batch(&self, ops: &[WriteOp]) -> Result<(), StoreError> {
        self.write(async |tx| rules::apply(tx, ops).await).await
    }

    async fn commit(
        &self,
        starts: &[StartRequest],
        ops: &[WriteOp],
    ) -> Result<Vec<ThreadAccess>, StoreError> {
        self.write(async |tx| rules::commit(tx, starts, ops).await)
            .await
    }

    async fn get_run(
        &self,
        thread_id: &str,
        run_id: &str,
    ) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT thread_id, run_id, issuer, subject, agent, credential_source, instance, \
             started_at, ended_at, outcome, error_code, usage::text AS usage, \
             tool_calls::bigint AS tool_calls FROM runs WHERE thread_id = $1 AND run_id = $2",
        )
        .bind(thread_id)
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rows::run).transpose()
    }

    async fn heartbeat(&self, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO instances (instance_id, started_at, heartbeat_at) VALUES ($1, $2, $2) \
             ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(&self.instance)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn mark_abandoned_runs(&self, stale_before: i64, now: i64) -> Result<u64, StoreError> {
        self.write(async |tx| {
            let found = sqlx::query(
                "UPDATE runs SET ended_at = $1, outcome = 'abandoned' \
                 WHERE ended_at IS NULL AND instance <> $2 AND instance NOT IN \
                   (SELECT instance_id FROM instances WHERE heartbeat_at >= $3) \
                 RETURNING thread_id, run_id, issuer, subject, instance",
            )
            .bind(now)
            .bind(tx.instance)
            .bind(stale_before)
            .fetch_all(&mut *tx.conn)
            .await?;
            for row in &found {
                let text = |i: usize| row.try_get::<String, _>(i);
                let record = super::maintenance::abandoned_record(
                    now,
                    PrincipalKey::new(text(2)?, text(3)?),
                    text(0)?,
                    text(1)?,
                    text(4)?,
                );
                insert_audit(tx.conn, &record).await?;
            }
            sqlx::query("DELETE FROM instances WHERE heartbeat_at < $1 AND instance_id <> $2")
                .bind(stale_before)
                .bind(tx.instance)
                .execute(&mut *tx.conn)
                .await?;
            Ok(found.len() as u64)
        })
        .await
    }

    async fn query_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let (sql, params) = rules::audit_query(filter, "detail::text", |n| format!("${n}"));
        let mut query = sqlx::query(&sql);
        for param in params {
            query = match param {
                Param::Text(text) => query.bind(text),
                Param::Int(n) => query.bind(n),
            };
        }
        let found = query.fetch_all(&self.pool).await?;
        found.iter().map(rows::audit).collect()
    }

    async fn delete_audit_before(&self, before: i64) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM audit WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    async fn delete_history_before(&self, before: i64) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "DELETE FROM history WHERE (thread_id, run_id) IN ( \
               SELECT thread_id, run_id FROM history GROUP BY thread_id, run_id \
               HAVING MAX(at) < $1)",
        )
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    async fn thread_owner(&self, thread_id: &str) -> Result<Option<PrincipalKey>, StoreError> {
        let row = sqlx::query("SELECT issuer, subject FROM threads WHERE thread_id = $1")
            .bind(thread_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(PrincipalKey::new(
                row.try_get::<String, _>(0)?,
                row.try_get::<String, _>(1)?,
            ))
        })
        .transpose()
    }

    async fn history(&self, thread_id: &str) -> Result<Vec<HistoryChunk>, StoreError> {
        let found = sqlx::query(
            "SELECT thread_id, run_id, chunk::bigint AS chunk, started_at, at, events FROM history \
             WHERE thread_id = $1 ORDER BY started_at, run_id, chunk",
        )
        .bind(thread_id)
        .fetch_all(&self.pool)
        .await?;
        found.iter().map(rows::history).collect()
    }

    async fn run_history(
        &self,
        thread_id: &str,
        run_id: &str,
        from_chunk: i64,
    ) -> Result<Vec<HistoryChunk>, StoreError> {
        let found = sqlx::query(
            "SELECT thread_id, run_id, chunk::bigint AS chunk, started_at, at, events FROM history \
             WHERE thread_id = $1 AND run_id = $2 AND chunk >= $3 ORDER BY chunk",
        )
        .bind(thread_id)
        .bind(run_id)
        .bind(i32::try_from(from_chunk).unwrap_or(i32::MAX))
        .fetch_all(&self.pool)
        .await?;
        found.iter().map(rows::history).collect()
    }

    async fn thread_replay(
        &self,
        thread_id: &str,
        reader: &PrincipalKey,
        any_owner: bool,
    ) -> Result<ThreadReplay, StoreError> {
        let sql = rules::thread_replay_sql(|n| format!("${n}"));
        let found = sqlx::query(&sql)
            .bind(thread_id)
            .bind(&reader.issuer)
            .bind(&reader.subject)
            .bind(i64::from(any_owner))
            .fetch_all(&self.pool)
            .await?;
        let mut replay = ThreadReplay::default();
        for row in &found {
            rows::add_replay_row(&mut replay, row)?;
        }
        Ok(replay)
    }

    async fn open_runs(&self, thread_id: &str) -> Result<Vec<OpenRun>, StoreError> {
        let found = sqlx::query(
            "SELECT r.run_id, r.instance, r.started_at, i.heartbeat_at FROM runs r \
             LEFT JOIN instances i ON i.instance_id = r.instance \
             WHERE r.thread_id = $1 AND r.ended_at IS NULL ORDER BY r.started_at, r.run_id",
        )
        .bind(thread_id)
        .fetch_all(&self.pool)
        .await?;
        found.iter().map(rows::open_run).collect()
    }

    async fn publish(&self, notice: &Notice) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.channel)
            .bind(payload(notice))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn notices(&self) -> Option<tokio::sync::broadcast::Receiver<Notice>> {
        Some(self.notices.subscribe())
    }

    async fn forget_subject(
        &self,
        issuer: Option<&str>,
        subject: &str,
    ) -> Result<ForgetCounts, StoreError> {
        self.write(async |tx| {
            let history_chunks = sqlx::query(
                "DELETE FROM history WHERE thread_id IN (SELECT thread_id FROM threads \
                 WHERE subject = $1 AND ($2::text IS NULL OR issuer = $2))",
            )
            .bind(subject)
            .bind(issuer)
            .execute(&mut *tx.conn)
            .await?
            .rows_affected();
            let mut counts = [0u64; rules::SUBJECT_TABLES.len()];
            for (table, count) in rules::SUBJECT_TABLES.iter().zip(&mut counts) {
                // `table` is a literal of rules::SUBJECT_TABLES, never input.
                let sql = format!(
                    "DELETE FROM {table} WHERE subject = $1 AND ($2::text IS NULL OR issuer = $2)"
                );
                *count = sqlx::query::<Postgres>(&sql)
                    .bind(subject)
                    .bind(issuer)
                    .execute(&mut *tx.conn)
                    .await?
                    .rows_affected();
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
