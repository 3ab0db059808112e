//! [`PgStore`]: the store for several replicas sharing one PostgreSQL database.
//!
//! Ownership is decided by the `threads` primary key (`INSERT ... ON CONFLICT DO NOTHING`), so
//! replicas racing on a new thread id agree on one owner; migrations take PostgreSQL's advisory
//! lock, so replicas starting together migrate once.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool, Postgres, QueryBuilder, Row};

use super::{
    AuditFilter, AuditKind, AuditRecord, ForgetCounts, PrincipalKey, RunOutcome, RunRecord,
    StartRequest, Store, StoreError, ThreadAccess, ThreadSummary, WriteOp, embedded,
    new_instance_id,
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
        embedded::postgres().await?.run(&pool).await?;
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

fn run_from_row(row: &sqlx::postgres::PgRow) -> Result<RunRecord, StoreError> {
    let outcome: Option<String> = row.try_get("outcome")?;
    let usage: Option<String> = row.try_get("usage")?;
    Ok(RunRecord {
        thread_id: row.try_get("thread_id")?,
        run_id: row.try_get("run_id")?,
        issuer: row.try_get("issuer")?,
        subject: row.try_get("subject")?,
        agent: row.try_get("agent")?,
        credential_source: row.try_get("credential_source")?,
        instance: row.try_get("instance")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        outcome: match outcome {
            Some(name) => {
                Some(RunOutcome::parse(&name).ok_or_else(|| StoreError::Corrupt(name.clone()))?)
            }
            None => None,
        },
        error_code: row.try_get("error_code")?,
        usage: match usage {
            Some(text) => {
                Some(serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(e.to_string()))?)
            }
            None => None,
        },
        tool_calls: row.try_get("tool_calls")?,
    })
}

fn audit_from_row(row: &sqlx::postgres::PgRow) -> Result<AuditRecord, StoreError> {
    let kind: String = row.try_get("kind")?;
    let detail: String = row.try_get("detail")?;
    Ok(AuditRecord {
        id: Some(row.try_get("id")?),
        at: row.try_get("at")?,
        kind: AuditKind::parse(&kind).ok_or(StoreError::Corrupt(kind))?,
        issuer: row.try_get("issuer")?,
        subject: row.try_get("subject")?,
        thread_id: row.try_get("thread_id")?,
        run_id: row.try_get("run_id")?,
        detail: serde_json::from_str(&detail).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    })
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

impl PgStore {
    /// Applies `ops` in order inside `tx`.
    async fn apply(
        &self,
        tx: &mut sqlx::Transaction<'_, Postgres>,
        ops: &[WriteOp],
    ) -> Result<(), StoreError> {
        for op in ops {
            match op {
                WriteOp::Audit(record) => insert_audit(tx, record).await?,
                WriteOp::RunStarted(run) => {
                    insert_run(tx, run, &self.instance).await?;
                    sqlx::query("UPDATE threads SET last_run_at = $1 WHERE thread_id = $2")
                        .bind(run.started_at)
                        .bind(&run.thread_id)
                        .execute(&mut **tx)
                        .await?;
                }
                WriteOp::RunEnded(end) => {
                    sqlx::query(
                        "UPDATE runs SET ended_at = $1, outcome = $2, error_code = $3, usage = $4::jsonb \
                         WHERE thread_id = $5 AND run_id = $6 AND ended_at IS NULL",
                    )
                    .bind(end.ended_at)
                    .bind(end.outcome.as_str())
                    .bind(&end.error_code)
                    .bind(end.usage.as_ref().map(|u| u.to_string()))
                    .bind(&end.thread_id)
                    .bind(&end.run_id)
                    .execute(&mut **tx)
                    .await?;
                }
                WriteOp::ToolCall { run_id } => {
                    sqlx::query("UPDATE runs SET tool_calls = tool_calls + 1 WHERE run_id = $1")
                        .bind(run_id)
                        .execute(&mut **tx)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

/// Claims `thread_id` for `owner` on `conn` (a transaction or a pooled connection): the first
/// insert wins and is `created` (with `last_run_at` when a run starts it); otherwise the owner is
/// read back. The primary key makes a racing second insert a no-op.
async fn claim_in(
    conn: &mut sqlx::PgConnection,
    owner: &PrincipalKey,
    thread_id: &str,
    now: i64,
    last_run_at: Option<i64>,
) -> Result<ThreadAccess, StoreError> {
    // A concurrent `forget` may delete the row between the insert's conflict and the read:
    // then nobody owns it and the next insert claims it.
    for _ in 0..3 {
        let inserted = sqlx::query(
            "INSERT INTO threads (thread_id, issuer, subject, created_at, last_run_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (thread_id) DO NOTHING",
        )
        .bind(thread_id)
        .bind(&owner.issuer)
        .bind(&owner.subject)
        .bind(now)
        .bind(last_run_at)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(ThreadAccess::Owner { created: true });
        }
        let row = sqlx::query("SELECT issuer, subject FROM threads WHERE thread_id = $1")
            .bind(thread_id)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = row {
            let found = PrincipalKey::new(
                row.try_get::<String, _>("issuer")?,
                row.try_get::<String, _>("subject")?,
            );
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

/// The `runs` row of a started run.
async fn insert_run(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    run: &super::RunStart,
    instance: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO runs (thread_id, run_id, issuer, subject, agent, \
         credential_source, instance, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (thread_id, run_id) DO NOTHING",
    )
    .bind(&run.thread_id)
    .bind(&run.run_id)
    .bind(&run.principal.issuer)
    .bind(&run.principal.subject)
    .bind(&run.agent)
    .bind(&run.credential_source)
    .bind(instance)
    .bind(run.started_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
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
        let mut conn = self.pool.acquire().await?;
        claim_in(&mut conn, owner, thread_id, now, None).await
    }

    async fn list_threads(&self, owner: &PrincipalKey) -> Result<Vec<ThreadSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT thread_id, created_at, last_run_at FROM threads \
             WHERE issuer = $1 AND subject = $2 \
             ORDER BY COALESCE(last_run_at, created_at) DESC, thread_id",
        )
        .bind(&owner.issuer)
        .bind(&owner.subject)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ThreadSummary {
                    thread_id: row.try_get("thread_id")?,
                    created_at: row.try_get("created_at")?,
                    last_run_at: row.try_get("last_run_at")?,
                })
            })
            .collect()
    }

    async fn write_batch(&self, ops: &[WriteOp]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        self.apply(&mut tx, ops).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One transaction for the whole batch, as the SQLite store does: the claims (in thread-id
    /// order, so two replicas' batches never wait on each other's threads in opposite orders),
    /// the owned runs' starts and records, then `ops`. A thread created by its run is one
    /// statement; an existing one is read back for its owner.
    async fn commit(
        &self,
        starts: &[StartRequest],
        ops: &[WriteOp],
    ) -> Result<Vec<ThreadAccess>, StoreError> {
        let mut order: Vec<usize> = (0..starts.len()).collect();
        order.sort_by(|&a, &b| starts[a].start.thread_id.cmp(&starts[b].start.thread_id));
        let mut tx = self.pool.begin().await?;
        let mut accesses = vec![None; starts.len()];
        let mut owned = Vec::new();
        for index in order {
            let request = &starts[index];
            let start = &request.start;
            let access = claim_in(
                &mut tx,
                &start.principal,
                &start.thread_id,
                start.started_at,
                Some(start.started_at),
            )
            .await?;
            match access {
                // Created by this run, with it as the last: only the run row is left to write.
                ThreadAccess::Owner { created: true } => {
                    insert_run(&mut tx, start, &self.instance).await?;
                }
                ThreadAccess::Owner { created: false } => {
                    owned.push(WriteOp::RunStarted(start.clone()));
                }
                ThreadAccess::NotOwner { .. } => {}
            }
            if matches!(access, ThreadAccess::Owner { .. }) {
                owned.push(WriteOp::Audit(request.audit.clone()));
            }
            accesses[index] = Some(access);
        }
        self.apply(&mut tx, &owned).await?;
        self.apply(&mut tx, ops).await?;
        tx.commit().await?;
        Ok(accesses.into_iter().flatten().collect())
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
        row.as_ref().map(run_from_row).transpose()
    }

    async fn heartbeat(&self, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO instances (instance_id, started_at, heartbeat_at) VALUES ($1, $2, $3) \
             ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(&self.instance)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn mark_abandoned_runs(&self, stale_before: i64, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "UPDATE runs SET ended_at = $1, outcome = 'abandoned' \
             WHERE ended_at IS NULL AND instance <> $2 AND instance NOT IN \
               (SELECT instance_id FROM instances WHERE heartbeat_at >= $3) \
             RETURNING thread_id, run_id, issuer, subject, instance",
        )
        .bind(now)
        .bind(&self.instance)
        .bind(stale_before)
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            let record = super::maintenance::abandoned_record(
                now,
                PrincipalKey::new(
                    row.try_get::<String, _>("issuer")?,
                    row.try_get::<String, _>("subject")?,
                ),
                row.try_get::<String, _>("thread_id")?,
                row.try_get::<String, _>("run_id")?,
                row.try_get::<String, _>("instance")?,
            );
            insert_audit(&mut tx, &record).await?;
        }
        sqlx::query("DELETE FROM instances WHERE heartbeat_at < $1 AND instance_id <> $2")
            .bind(stale_before)
            .bind(&self.instance)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    async fn query_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let mut query: QueryBuilder<'_, Postgres> = QueryBuilder::new(
            "SELECT id, at, kind, issuer, subject, thread_id, run_id, detail::text AS detail FROM audit \
             WHERE 1 = 1",
        );
        if let Some(subject) = &filter.subject {
            query.push(" AND subject = ").push_bind(subject);
        }
        if let Some(issuer) = &filter.issuer {
            query.push(" AND issuer = ").push_bind(issuer);
        }
        if let Some(thread_id) = &filter.thread_id {
            query.push(" AND thread_id = ").push_bind(thread_id);
        }
        if !filter.kinds.is_empty() {
            query.push(" AND kind IN (");
            let mut list = query.separated(", ");
            for kind in &filter.kinds {
                list.push_bind(kind.as_str());
            }
            query.push(")");
        }
        if let Some(since) = filter.since {
            query.push(" AND at >= ").push_bind(since);
        }
        if let Some(until) = filter.until {
            query.push(" AND at < ").push_bind(until);
        }
        query.push(" ORDER BY id");
        if let Some(limit) = filter.limit {
            query.push(" LIMIT ").push_bind(limit);
        }
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter().map(audit_from_row).collect()
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
        let mut tx = self.pool.begin().await?;
        let mut counts = ForgetCounts::default();
        for (table, count) in [
            ("threads", &mut counts.threads),
            ("runs", &mut counts.runs),
            ("audit", &mut counts.audit_records),
        ] {
            // `table` is one of three literals above, never input.
            let sql = format!(
                "DELETE FROM {table} WHERE subject = $1 AND ($2::text IS NULL OR issuer = $3)"
            );
            *count = sqlx::query(&sql)
                .bind(subject)
                .bind(issuer)
                .bind(issuer)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(counts)
    }
}
