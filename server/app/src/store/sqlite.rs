//! [`SqliteStore`]: the default store, a file in WAL mode (or a private in-memory database).
//!
//! WAL with `synchronous = NORMAL` keeps every committed transaction across a process crash
//! (`kill -9`); only an OS crash or power loss can drop the last commits (SQLite's WAL
//! documentation, "Performance Considerations"). One server process per file: PostgreSQL is the
//! store for several replicas.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use super::{
    AuditFilter, AuditKind, AuditRecord, ForgetCounts, PrincipalKey, RunOutcome, RunRecord,
    StartRequest, Store, StoreError, ThreadAccess, ThreadSummary, WriteOp, embedded,
    new_instance_id,
};

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    instance: String,
    /// The write path of a file database (`None` in memory: one private connection).
    writer: Option<super::sqlite_writer::SqliteWriter>,
}

impl SqliteStore {
    /// Opens (creating if `mode=rwc` or missing) the database at `url` and migrates it.
    /// `sqlite::memory:` opens a private in-memory database on one connection.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidUrl`], [`StoreError::Database`] or [`StoreError::Migrate`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidUrl(e.to_string()))?
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(false);
        let pool_options = if memory {
            // Every connection to `:memory:` is its own database: keep exactly one, forever.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
            if let Some(parent) = options.get_filename().parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::InvalidUrl(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            SqlitePoolOptions::new().max_connections(4)
        };
        let pool = pool_options
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await?;
        embedded::sqlite().await?.run(&pool).await?;
        let instance = new_instance_id();
        let writer = if memory {
            None
        } else {
            let path = options.get_filename().to_owned();
            Some(super::sqlite_writer::SqliteWriter::open(
                &path,
                instance.clone(),
            )?)
        };
        Ok(Self {
            pool,
            instance,
            writer,
        })
    }

    /// The connection pool (tests read the raw rows through it).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn run_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<RunRecord, StoreError> {
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

fn audit_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<AuditRecord, StoreError> {
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
    conn: &mut sqlx::SqliteConnection,
    record: &AuditRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit (at, kind, issuer, subject, thread_id, run_id, detail) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
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

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
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
        // One statement decides the owner: the primary key makes the second insert a no-op.
        let inserted = sqlx::query(
            "INSERT INTO threads (thread_id, issuer, subject, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (thread_id) DO NOTHING",
        )
        .bind(thread_id)
        .bind(&owner.issuer)
        .bind(&owner.subject)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let row = sqlx::query("SELECT issuer, subject FROM threads WHERE thread_id = ?")
            .bind(thread_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            // Deleted (forget) between the two statements: nobody owns it now; claim again.
            return Box::pin(self.claim_thread(owner, thread_id, now)).await;
        };
        let found = PrincipalKey::new(
            row.try_get::<String, _>("issuer")?,
            row.try_get::<String, _>("subject")?,
        );
        Ok(if &found == owner {
            ThreadAccess::Owner {
                created: inserted == 1,
            }
        } else {
            ThreadAccess::NotOwner { owner: found }
        })
    }

    async fn list_threads(&self, owner: &PrincipalKey) -> Result<Vec<ThreadSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT thread_id, created_at, last_run_at FROM threads \
             WHERE issuer = ? AND subject = ? \
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
        if let Some(writer) = &self.writer {
            return writer.write_batch(ops.to_vec()).await;
        }
        // The in-memory database (dev, tests): one statement at a time through sqlx.
        let mut tx = self.pool.begin().await?;
        for op in ops {
            match op {
                WriteOp::Audit(record) => insert_audit(&mut tx, record).await?,
                WriteOp::RunStarted(run) => {
                    sqlx::query(
                        "INSERT INTO runs (thread_id, run_id, issuer, subject, agent, \
                         credential_source, instance, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                         ON CONFLICT (thread_id, run_id) DO NOTHING",
                    )
                    .bind(&run.thread_id)
                    .bind(&run.run_id)
                    .bind(&run.principal.issuer)
                    .bind(&run.principal.subject)
                    .bind(&run.agent)
                    .bind(&run.credential_source)
                    .bind(&self.instance)
                    .bind(run.started_at)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("UPDATE threads SET last_run_at = ? WHERE thread_id = ?")
                        .bind(run.started_at)
                        .bind(&run.thread_id)
                        .execute(&mut *tx)
                        .await?;
                }
                WriteOp::RunEnded(end) => {
                    sqlx::query(
                        "UPDATE runs SET ended_at = ?, outcome = ?, error_code = ?, usage = ? \
                         WHERE thread_id = ? AND run_id = ? AND ended_at IS NULL",
                    )
                    .bind(end.ended_at)
                    .bind(end.outcome.as_str())
                    .bind(&end.error_code)
                    .bind(end.usage.as_ref().map(|u| u.to_string()))
                    .bind(&end.thread_id)
                    .bind(&end.run_id)
                    .execute(&mut *tx)
                    .await?;
                }
                WriteOp::ToolCall { run_id } => {
                    sqlx::query("UPDATE runs SET tool_calls = tool_calls + 1 WHERE run_id = ?")
                        .bind(run_id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn commit(
        &self,
        starts: &[StartRequest],
        ops: &[WriteOp],
    ) -> Result<Vec<ThreadAccess>, StoreError> {
        match &self.writer {
            Some(writer) => writer.commit(starts.to_vec(), ops.to_vec()).await,
            None => super::commit_one_by_one(self, starts, ops).await,
        }
    }

    async fn get_run(
        &self,
        thread_id: &str,
        run_id: &str,
    ) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM runs WHERE thread_id = ? AND run_id = ?")
            .bind(thread_id)
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn heartbeat(&self, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO instances (instance_id, started_at, heartbeat_at) VALUES (?, ?, ?) \
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
            "UPDATE runs SET ended_at = ?, outcome = 'abandoned' \
             WHERE ended_at IS NULL AND instance <> ? AND instance NOT IN \
               (SELECT instance_id FROM instances WHERE heartbeat_at >= ?) \
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
        sqlx::query("DELETE FROM instances WHERE heartbeat_at < ? AND instance_id <> ?")
            .bind(stale_before)
            .bind(&self.instance)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    async fn query_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let mut query: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
            "SELECT id, at, kind, issuer, subject, thread_id, run_id, detail FROM audit WHERE 1 = 1",
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
        let result = sqlx::query("DELETE FROM audit WHERE at < ?")
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
            let sql =
                format!("DELETE FROM {table} WHERE subject = ? AND (? IS NULL OR issuer = ?)");
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
