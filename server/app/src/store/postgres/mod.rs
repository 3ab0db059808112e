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
    AuditFilter, AuditRecord, ForgetCounts, PrincipalKey, RunEnd, RunRecord, RunStart,
    StartRequest, Store, StoreError, ThreadAccess, ThreadSummary, WriteOp, new_instance_id, rows,
};

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    instance: String,
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
        Ok(Self {
            pool,
            instance: new_instance_id(),
        })
    }

    /// The connection pool (tests read the raw rows through it).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// The store's statements inside one transaction (or on one connection).
struct PgTx<'a> {
    conn: &'a mut sqlx::PgConnection,
    instance: &'a str,
}

impl WriteTx for PgTx<'_> {
    async fn insert_thread(
        &mut self,
        thread_id: &str,
        owner: &PrincipalKey,
        created_at: i64,
        last_run_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO threads (thread_id, issuer, subject, created_at, last_run_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (thread_id) DO NOTHING",
        )
        .bind(thread_id)
        .bind(&owner.issuer)
        .bind(&owner.subject)
        .bind(created_at)
        .bind(last_run_at)
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
            "SELECT thread_id, created_at, last_run_at FROM threads \
             WHERE issuer = $1 AND subject = $2 \
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

    async fn forget_subject(
        &self,
        issuer: Option<&str>,
        subject: &str,
    ) -> Result<ForgetCounts, StoreError> {
        self.write(async |tx| {
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
            })
        })
        .await
    }
}
