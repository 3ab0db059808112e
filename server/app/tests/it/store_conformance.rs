//! The store conformance suite: ONE set of test functions run against every backend.
//!
//! SQLite always (a temporary file, so the pool really has several connections). PostgreSQL
//! when `AGUI_TEST_DATABASE_URL` is set (each test in a fresh schema, dropped at the end);
//! unset, the PostgreSQL tests print `SKIP` and pass, unless `AGUI_REQUIRE_PG=1`, where a
//! missing or unreachable database fails them.

use std::collections::HashSet;
use std::sync::Arc;

use agui_agent::{AuditEvent, AuditSink};
use agui_server::store::{
    self, AuditFilter, AuditKind, AuditLog, AuditLogOptions, AuditRecord, HistoryChunk, PgStore,
    PrincipalKey, RunEnd, RunOutcome, RunStart, SqliteStore, StartRequest, Store, ThreadAccess,
    WriteOp, maintenance,
};
use serde_json::json;

/// Which backend a test runs on.
#[derive(Clone, Copy, Debug)]
enum Backend {
    /// A SQLite file (`serve`'s default).
    SqliteFile,
    /// SQLite in memory (`dev` and most HTTP tests).
    SqliteMemory,
    Postgres,
}

/// One isolated database for one test.
struct Fixture {
    store: Arc<dyn Store>,
    target: Target,
}

enum Target {
    Sqlite {
        sqlite: SqliteStore,
        /// The file's scratch directory (`None` in memory).
        dir: Option<std::path::PathBuf>,
    },
    Postgres {
        url: String,
        schema: String,
        pool: sqlx::PgPool,
    },
}

fn pg_url() -> Option<String> {
    let url = std::env::var("AGUI_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        assert!(
            std::env::var("AGUI_REQUIRE_PG").as_deref() != Ok("1"),
            "AGUI_REQUIRE_PG=1 but AGUI_TEST_DATABASE_URL is not set"
        );
        eprintln!("SKIP: PostgreSQL store tests (set AGUI_TEST_DATABASE_URL)");
    }
    url
}

impl Fixture {
    async fn open(backend: Backend) -> Option<Self> {
        match backend {
            Backend::SqliteFile | Backend::SqliteMemory => {
                let dir = matches!(backend, Backend::SqliteFile).then(|| {
                    std::env::temp_dir()
                        .join(format!("agui-store-{}", uuid::Uuid::new_v4().simple()))
                });
                let url = match &dir {
                    Some(dir) => format!("sqlite://{}?mode=rwc", dir.join("agui.db").display()),
                    None => store::MEMORY_SQLITE_URL.to_owned(),
                };
                let sqlite = SqliteStore::connect(&url).await.expect("open sqlite");
                Some(Self {
                    store: Arc::new(sqlite.clone()),
                    target: Target::Sqlite { sqlite, dir },
                })
            }
            Backend::Postgres => {
                let url = pg_url()?;
                let schema = format!("test_{}", uuid::Uuid::new_v4().simple());
                // With AGUI_TEST_DATABASE_URL set, an unreachable database is a failure.
                let store = PgStore::connect_in_schema(&url, &schema)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at AGUI_TEST_DATABASE_URL: {e}"));
                let pool = store.pool().clone();
                Some(Self {
                    store: Arc::new(store),
                    target: Target::Postgres { url, schema, pool },
                })
            }
        }
    }

    /// A second store on the same database: another process / replica. (Only for backends a
    /// second process can open: see `shared_database!`.)
    async fn second(&self) -> Arc<dyn Store> {
        match &self.target {
            Target::Sqlite { sqlite, .. } => {
                let path = sqlite.path().expect("a second process needs a SQLite file");
                Arc::new(
                    SqliteStore::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .unwrap(),
                )
            }
            Target::Postgres { url, schema, .. } => {
                Arc::new(PgStore::connect_in_schema(url, schema).await.unwrap())
            }
        }
    }

    /// Runs raw SQL on the test database (fault injection, inspection).
    async fn exec(&self, sql: &str) {
        match &self.target {
            Target::Sqlite { sqlite, .. } => sqlite.execute_raw(sql).await.unwrap(),
            Target::Postgres { pool, .. } => drop(
                sqlx::query(sql)
                    .persistent(false)
                    .execute(pool)
                    .await
                    .unwrap(),
            ),
        }
    }

    /// Makes every insert into `audit` fail (a trigger raising an error) while the database
    /// stays reachable, or lifts that again.
    async fn break_audit_writes(&self, broken: bool) {
        self.audit_trigger("audit_fail", "TRUE", broken).await;
    }

    /// Makes every audit insert for thread `poison` fail (one bad record), or stops it.
    async fn poison_audit_thread(&self, on: bool) {
        self.audit_trigger("audit_poison", "NEW.thread_id = 'poison'", on)
            .await;
    }

    /// Creates (or drops) trigger `name`, failing every audit insert for which `when` holds.
    async fn audit_trigger(&self, name: &str, when: &str, on: bool) {
        let sql = match (&self.target, on) {
            (Target::Sqlite { .. }, true) => vec![format!(
                "CREATE TRIGGER {name} BEFORE INSERT ON audit WHEN {when} \
                 BEGIN SELECT RAISE(ABORT, 'injected'); END"
            )],
            (Target::Sqlite { .. }, false) => vec![format!("DROP TRIGGER {name}")],
            (Target::Postgres { .. }, true) => vec![
                format!(
                    "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN IF {when} THEN RAISE EXCEPTION 'injected'; END IF; \
                     RETURN NEW; END $$"
                ),
                format!(
                    "CREATE TRIGGER {name} BEFORE INSERT ON audit \
                     FOR EACH ROW EXECUTE FUNCTION {name}()"
                ),
            ],
            (Target::Postgres { .. }, false) => vec![
                format!("DROP TRIGGER {name} ON audit"),
                format!("DROP FUNCTION {name}()"),
            ],
        };
        for statement in &sql {
            self.exec(statement).await;
        }
    }

    /// Counts rows of `table`.
    async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match &self.target {
            Target::Sqlite { sqlite, .. } => sqlite.query_int(&sql).await.unwrap(),
            Target::Postgres { pool, .. } => {
                sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap()
            }
        }
    }

    /// The schema version the migrations left (SQLite's `user_version`; PostgreSQL: sqlx's
    /// table of applied migrations).
    async fn schema_version(&self) -> i64 {
        match &self.target {
            Target::Sqlite { sqlite, .. } => sqlite.query_int("PRAGMA user_version").await.unwrap(),
            Target::Postgres { pool, .. } => {
                sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                    .fetch_one(pool)
                    .await
                    .unwrap()
            }
        }
    }

    /// Whether the schema has an index of this name.
    async fn has_index(&self, name: &str) -> bool {
        let count: i64 = match &self.target {
            Target::Sqlite { sqlite, .. } => sqlite
                .query_int(&format!(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = '{name}'"
                ))
                .await
                .unwrap(),
            Target::Postgres { pool, schema, .. } => sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = $2",
            )
            .bind(schema)
            .bind(name)
            .fetch_one(pool)
            .await
            .unwrap(),
        };
        count > 0
    }

    async fn close(self) {
        drop(self.store);
        match self.target {
            Target::Sqlite { sqlite, dir } => {
                drop(sqlite);
                if let Some(dir) = dir {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            Target::Postgres { url, schema, pool } => {
                pool.close().await;
                let admin = sqlx::PgPool::connect(&url).await.unwrap();
                sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
            }
        }
    }
}

/// Generates `sqlite_file::<test>`, `sqlite_memory::<test>` and `postgres::<test>` for each
/// test function: every write path is under this suite.
macro_rules! conformance {
    ($flavor:literal; $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = $flavor)]
                async fn sqlite_file() {
                    super::on(super::Backend::SqliteFile, super::$name).await;
                }

                #[tokio::test(flavor = $flavor)]
                async fn sqlite_memory() {
                    super::on(super::Backend::SqliteMemory, super::$name).await;
                }

                #[tokio::test(flavor = $flavor)]
                async fn postgres() {
                    super::on(super::Backend::Postgres, super::$name).await;
                }
            }
        )*
    };
}

/// Like `conformance!`, for tests of two processes on one database (which an in-memory
/// database cannot be).
macro_rules! shared_database {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread")]
                async fn sqlite_file() {
                    super::on(super::Backend::SqliteFile, super::$name).await;
                }

                #[tokio::test(flavor = "multi_thread")]
                async fn postgres() {
                    super::on(super::Backend::Postgres, super::$name).await;
                }
            }
        )*
    };
}

/// Runs `test` on a fresh database of `backend` (PostgreSQL: skipped without one).
async fn on<F: AsyncFnOnce(&Fixture)>(backend: Backend, test: F) {
    let Some(fixture) = Fixture::open(backend).await else {
        return;
    };
    test(&fixture).await;
    fixture.close().await;
}

shared_database!(
    ownership_race_has_exactly_one_owner,
    crash_marking_abandons_only_dead_instances_runs,
    migrations_from_empty_and_rerun_are_a_no_op,
);

conformance!("multi_thread";
    threads_and_runs,
    concurrent_claims_on_one_store_have_exactly_one_owner,
    tool_calls_count_on_their_own_thread_only,
    last_run_at_only_moves_forward,
    audit_append_and_filters,
    retention_deletes_only_old_records,
    forget_removes_one_subject_and_is_audited,
    a_failing_durable_write_is_refused_and_the_log_recovers,
    history_chunks_replay_in_run_order_and_chunk_order,
    history_is_capped_per_thread_oldest_runs_first,
    history_retention_removes_whole_runs_only,
    forget_removes_the_history_of_the_subjects_threads,
    open_runs_carry_their_instances_heartbeat,
    a_thread_replay_is_one_read_scoped_to_its_owner,
    group_commit_of_starts_claims_threads_and_records_only_owned_runs,
    a_batch_of_starts_commits_whole_or_not_at_all,
);

/// `commit` is one transaction: when any write of the batch fails, no thread of it is claimed
/// and no run is recorded (a refused caller never owns a thread it was told nothing about); the
/// same batch commits once the fault is gone (the control).
async fn a_batch_of_starts_commits_whole_or_not_at_all(fx: &Fixture) {
    let starts = [
        StartRequest {
            start: start(&alice(), "atomic-1", "r1", 10),
            audit: record(AuditKind::RunStarted, 10, &alice(), "atomic-1"),
        },
        StartRequest {
            start: start(&bob(), "atomic-2", "r2", 11),
            audit: record(AuditKind::RunStarted, 11, &bob(), "atomic-2"),
        },
    ];
    fx.break_audit_writes(true).await;
    assert!(fx.store.commit(&starts, &[]).await.is_err());
    fx.break_audit_writes(false).await;
    assert_eq!(
        fx.count("threads").await,
        0,
        "no claim survives a failed batch"
    );
    assert_eq!(fx.count("runs").await, 0);
    assert_eq!(fx.count("audit").await, 0);

    let accesses = fx.store.commit(&starts, &[]).await.unwrap();
    assert_eq!(accesses, vec![ThreadAccess::Owner { created: true }; 2]);
    assert_eq!(fx.count("threads").await, 2);
    assert_eq!(fx.count("runs").await, 2);
    assert_eq!(fx.count("audit").await, 2);
}
conformance!("current_thread";
    one_bad_record_in_a_group_commit_refuses_only_itself,
    group_commit_writes_many_records_per_transaction,
    a_full_queue_refuses_run_starts_and_recovers,
    a_start_made_ready_after_the_writer_woke_joins_its_transaction,
);

/// One record the database rejects, batched with two run starts and a durable write: the
/// transaction fails, and the starts and the durable group are committed each on its own, the
/// bad record alone dropped. The control: the same batch without it is one transaction.
async fn one_bad_record_in_a_group_commit_refuses_only_itself(fx: &Fixture) {
    let log = AuditLog::start(fx.store.clone(), AuditLogOptions::default());
    log.flush().await;
    fx.poison_audit_thread(true).await;

    let (before, after) = one_batch(&log, "poison", ["fine-1", "fine-2", "fine-3"]).await;
    assert!(
        after.failures > before.failures,
        "they were batched with it"
    );
    assert_eq!(after.dropped - before.dropped, 1, "the bad record alone");
    assert_eq!(fx.count("runs").await, 2);
    assert_eq!(
        fx.count("audit").await,
        3,
        "both run starts and the durable record"
    );

    // The control: the same batch without the bad record.
    let (before, after) = one_batch(&log, "fine-4", ["fine-5", "fine-6", "fine-7"]).await;
    assert_eq!(after.commits - before.commits, 1, "one transaction");
    assert_eq!(after.failures, before.failures);
    assert_eq!(fx.count("audit").await, 7);
    fx.poison_audit_thread(false).await;
}

/// Queues, so that the writer finds them all waiting when it wakes (on a current-thread
/// runtime): a record on thread `lone`, run starts on `threads[0]` and `threads[1]`, a durable
/// record on `threads[2]`. Asserts that both starts own their new threads and the durable write
/// committed; returns the log's stats before and after.
async fn one_batch(
    log: &AuditLog,
    lone: &str,
    threads: [&str; 3],
) -> (store::audit_log::AuditStats, store::audit_log::AuditStats) {
    let principal = principal_for(&alice());
    let before = log.stats();
    log.record(record(AuditKind::ToolCall, 1, &alice(), lone));
    let durable = vec![WriteOp::Audit(record(
        AuditKind::ToolCall,
        7,
        &alice(),
        threads[2],
    ))];
    let (first, second, written) = tokio::join!(
        log.start_run(&principal, threads[0], "r", "default", None),
        log.start_run(&principal, threads[1], "r", "default", None),
        log.record_durable(durable),
    );
    log.flush().await;
    assert_eq!(first.unwrap(), ThreadAccess::Owner { created: true });
    assert_eq!(second.unwrap(), ThreadAccess::Owner { created: true });
    written.unwrap();
    (before, log.stats())
}

/// A verified principal for `key` (what the audit log's run starts take).
fn principal_for(key: &PrincipalKey) -> agui_auth::Principal {
    agui_auth::testing::principal(&key.issuer, &key.subject)
}

/// The group commit lets ready requests run before it drains: a second run start whose task
/// was woken only after the first start woke the writer (so on this current-thread runtime it
/// is queued behind the writer) still joins the first one's transaction. Without that turn the
/// writer drains the first start alone and the second pays a transaction of its own.
async fn a_start_made_ready_after_the_writer_woke_joins_its_transaction(fx: &Fixture) {
    let log = AuditLog::start(fx.store.clone(), AuditLogOptions::default());
    log.flush().await;
    let principal = principal_for(&alice());
    let (go, ready) = tokio::sync::oneshot::channel::<()>();
    let second = tokio::spawn({
        let (log, principal) = (log.clone(), principal.clone());
        async move {
            ready.await.unwrap();
            log.start_run(&principal, "joined-2", "r", "default", None)
                .await
        }
    });
    // The second task runs up to its wait.
    tokio::task::yield_now().await;
    let before = log.stats().commits;
    // The first start is queued (waking the writer) before the second task is woken.
    let (first, ()) = tokio::join!(
        log.start_run(&principal, "joined-1", "r", "default", None),
        async { go.send(()).unwrap() },
    );
    let second = second.await.unwrap();
    assert_eq!(first.unwrap(), ThreadAccess::Owner { created: true });
    assert_eq!(second.unwrap(), ThreadAccess::Owner { created: true });
    assert_eq!(
        log.stats().commits - before,
        1,
        "both starts in one transaction"
    );
    assert_eq!(fx.count("runs").await, 2);
}

/// A full queue: records beyond it are dropped and counted, the log is unhealthy, and a run
/// start is refused at once (`audit_unavailable`, the run is never served unrecorded); once the
/// writer has caught up the same start is accepted (the control) and the log is healthy again.
async fn a_full_queue_refuses_run_starts_and_recovers(fx: &Fixture) {
    let log = AuditLog::start(
        fx.store.clone(),
        AuditLogOptions {
            queue_capacity: 4,
            ..Default::default()
        },
    );
    // On this current-thread runtime the writer cannot run until we await: four records fill
    // the queue and the fifth finds it full.
    for i in 0..5 {
        log.record(record(AuditKind::ToolCall, i, &alice(), "t"));
    }
    assert_eq!(log.stats().dropped, 1);
    assert!(!log.healthy());

    let principal = principal_for(&alice());
    let error = log
        .start_run(&principal, "full-queue", "r1", "default", None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            store::StoreError::AuditUnavailable("audit queue full")
        ),
        "{error}"
    );

    log.flush().await;
    assert_eq!(
        fx.count("audit").await,
        4,
        "the queued records, not the dropped one"
    );
    assert!(
        fx.store
            .get_run("full-queue", "r1")
            .await
            .unwrap()
            .is_none(),
        "the refused start left no run behind"
    );
    let access = log
        .start_run(&principal, "full-queue", "r1", "default", None)
        .await
        .unwrap();
    assert_eq!(access, ThreadAccess::Owner { created: true });
    assert!(log.healthy(), "the next commit makes it healthy again");
    assert!(
        fx.store
            .get_run("full-queue", "r1")
            .await
            .unwrap()
            .is_some()
    );
}

fn alice() -> PrincipalKey {
    PrincipalKey::new("https://idp.test", "alice")
}

fn bob() -> PrincipalKey {
    PrincipalKey::new("https://idp.test", "bob")
}

fn start(owner: &PrincipalKey, thread: &str, run: &str, at: i64) -> RunStart {
    RunStart {
        principal: owner.clone(),
        thread_id: thread.to_owned(),
        run_id: run.to_owned(),
        agent: "default".to_owned(),
        credential_source: "header".to_owned(),
        started_at: at,
        title: None,
    }
}

async fn threads_and_runs(fx: &Fixture) {
    let store = &fx.store;
    assert_eq!(
        store.claim_thread(&alice(), "t1", 1_000).await.unwrap(),
        ThreadAccess::Owner { created: true }
    );
    assert_eq!(
        store.claim_thread(&alice(), "t1", 2_000).await.unwrap(),
        ThreadAccess::Owner { created: false }
    );
    // Another principal, and the same subject at another issuer, do not own it.
    assert_eq!(
        store.claim_thread(&bob(), "t1", 3_000).await.unwrap(),
        ThreadAccess::NotOwner { owner: alice() }
    );
    let other_issuer = PrincipalKey::new("https://other.test", "alice");
    assert!(matches!(
        store
            .claim_thread(&other_issuer, "t1", 3_000)
            .await
            .unwrap(),
        ThreadAccess::NotOwner { .. }
    ));
    store.claim_thread(&alice(), "t2", 1_500).await.unwrap();

    store
        .write_batch(&[
            WriteOp::RunStarted(start(&alice(), "t1", "r1", 5_000)),
            WriteOp::ToolCall {
                thread_id: "t1".to_owned(),
                run_id: "r1".to_owned(),
            },
            WriteOp::ToolCall {
                thread_id: "t1".to_owned(),
                run_id: "r1".to_owned(),
            },
            WriteOp::RunEnded(RunEnd {
                thread_id: "t1".to_owned(),
                run_id: "r1".to_owned(),
                ended_at: 6_000,
                outcome: RunOutcome::Error,
                error_code: Some("model_error".to_owned()),
                usage: Some(json!({"input_tokens": 12, "output_tokens": 34})),
            }),
            // A second end of the same run changes nothing (the first end wins).
            WriteOp::RunEnded(RunEnd {
                thread_id: "t1".to_owned(),
                run_id: "r1".to_owned(),
                ended_at: 7_000,
                outcome: RunOutcome::Success,
                error_code: None,
                usage: None,
            }),
        ])
        .await
        .unwrap();
    let run = store.get_run("t1", "r1").await.unwrap().expect("run r1");
    assert_eq!(
        (run.issuer.as_str(), run.subject.as_str()),
        ("https://idp.test", "alice")
    );
    assert_eq!(run.agent, "default");
    assert_eq!(run.credential_source, "header");
    assert_eq!(run.instance, store.instance_id());
    assert_eq!((run.started_at, run.ended_at), (5_000, Some(6_000)));
    assert_eq!(run.outcome, Some(RunOutcome::Error));
    assert_eq!(run.error_code.as_deref(), Some("model_error"));
    assert_eq!(
        run.usage,
        Some(json!({"input_tokens": 12, "output_tokens": 34}))
    );
    assert_eq!(run.tool_calls, 2);
    assert!(store.get_run("t1", "missing").await.unwrap().is_none());

    // Most recently used first: t1 had a run at 5000, t2 was only created at 1500.
    let threads = store.list_threads(&alice()).await.unwrap();
    let ids: Vec<_> = threads.iter().map(|t| t.thread_id.as_str()).collect();
    assert_eq!(ids, ["t1", "t2"]);
    assert_eq!(threads[0].last_run_at, Some(5_000));
    assert_eq!(threads[0].created_at, 1_000);
    // A thread is its latest run's agent's; one nobody ran on has none.
    assert_eq!(threads[0].agent.as_deref(), Some("default"));
    assert_eq!(threads[1].agent, None);
    assert!(store.list_threads(&bob()).await.unwrap().is_empty());
    assert!(store.list_threads(&other_issuer).await.unwrap().is_empty());

    // A later run of another agent on the thread makes it that agent's.
    store
        .write_batch(&[WriteOp::RunStarted(RunStart {
            agent: "research".to_owned(),
            ..start(&alice(), "t1", "r2", 9_000)
        })])
        .await
        .unwrap();
    let threads = store.list_threads(&alice()).await.unwrap();
    assert_eq!(threads[0].thread_id, "t1");
    assert_eq!(threads[0].agent.as_deref(), Some("research"));
}

async fn ownership_race_has_exactly_one_owner(fx: &Fixture) {
    // Two stores on one database: two processes (or replicas on one PostgreSQL).
    let stores = [fx.store.clone(), fx.second().await];
    for round in 0..3 {
        let thread = format!("race-{round}");
        let mut tasks = Vec::new();
        for i in 0..20 {
            let store = stores[i % 2].clone();
            let thread = thread.clone();
            tasks.push(tokio::spawn(async move {
                let me = PrincipalKey::new("https://idp.test", format!("user-{i}"));
                let access = store.claim_thread(&me, &thread, 1).await.unwrap();
                (me, access)
            }));
        }
        let mut owners = Vec::new();
        let mut reported = HashSet::new();
        for task in tasks {
            let (me, access) = task.await.unwrap();
            match access {
                ThreadAccess::Owner { created } => {
                    assert!(created, "only the creator can own a brand-new thread");
                    owners.push(me);
                }
                ThreadAccess::NotOwner { owner } => {
                    reported.insert(owner);
                }
            }
        }
        assert_eq!(owners.len(), 1, "exactly one owner, got {owners:?}");
        // Every loser was told the same owner: the winner.
        assert_eq!(reported, HashSet::from([owners[0].clone()]));
    }
}

async fn crash_marking_abandons_only_dead_instances_runs(fx: &Fixture) {
    let dead = fx.store.clone();
    let alive = fx.second().await;
    let now = store::now_ms();
    dead.heartbeat(now).await.unwrap();
    dead.claim_thread(&alice(), "t", 0).await.unwrap();
    dead.write_batch(&[
        WriteOp::RunStarted(start(&alice(), "t", "open", 10)),
        WriteOp::RunStarted(start(&alice(), "t", "done", 10)),
        WriteOp::RunEnded(RunEnd {
            thread_id: "t".into(),
            run_id: "done".into(),
            ended_at: 20,
            outcome: RunOutcome::Success,
            error_code: None,
            usage: None,
        }),
    ])
    .await
    .unwrap();
    alive
        .write_batch(&[WriteOp::RunStarted(start(&alice(), "t", "mine", 10))])
        .await
        .unwrap();

    // The first instance's heartbeat is fresh: it is alive and its run is left alone.
    assert_eq!(
        alive.mark_abandoned_runs(now - 60_000, now).await.unwrap(),
        0
    );
    assert_eq!(
        alive.get_run("t", "open").await.unwrap().unwrap().outcome,
        None
    );

    // Once its heartbeat is stale its open run (only) is abandoned; our own run is not.
    assert_eq!(
        alive.mark_abandoned_runs(now + 1, now + 5).await.unwrap(),
        1
    );
    let open = alive.get_run("t", "open").await.unwrap().unwrap();
    assert_eq!(
        (open.outcome, open.ended_at),
        (Some(RunOutcome::Abandoned), Some(now + 5))
    );
    assert_eq!(
        alive.get_run("t", "done").await.unwrap().unwrap().outcome,
        Some(RunOutcome::Success)
    );
    assert_eq!(
        alive.get_run("t", "mine").await.unwrap().unwrap().outcome,
        None
    );
    // Idempotent.
    assert_eq!(
        alive.mark_abandoned_runs(now + 1, now + 6).await.unwrap(),
        0
    );

    // The abandonment is in the audit log as the run's end.
    let ends = alive
        .query_audit(&AuditFilter {
            kinds: vec![AuditKind::RunEnded],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].run_id.as_deref(), Some("open"));
    assert_eq!(ends[0].subject.as_deref(), Some("alice"));
    assert_eq!(ends[0].detail["outcome"], "abandoned");

    // Start-up maintenance on a restarted process abandons the open runs of instances without
    // a fresh heartbeat (on SQLite, one process per file, of every other instance).
    let restarted = fx.second().await;
    let report = maintenance::startup(restarted.as_ref(), &Default::default())
        .await
        .unwrap();
    // (`alive` never wrote a heartbeat, so on PostgreSQL too it counts as dead.)
    assert_eq!(report.abandoned_runs, 1);
    let mine = restarted
        .get_run("t", "mine")
        .await
        .unwrap()
        .unwrap()
        .outcome;
    assert_eq!(mine, Some(RunOutcome::Abandoned));
}

fn record(kind: AuditKind, at: i64, who: &PrincipalKey, thread: &str) -> AuditRecord {
    AuditRecord {
        at,
        ..AuditRecord::now(kind)
    }
    .principal(who)
    .thread(thread)
    .run(format!("run-{at}"))
    .detail(json!({ "n": at, "nested": { "ok": true } }))
}

async fn audit_append_and_filters(fx: &Fixture) {
    let store = &fx.store;
    let ops: Vec<WriteOp> = vec![
        record(AuditKind::RunStarted, 100, &alice(), "ta"),
        record(AuditKind::ToolCall, 200, &alice(), "ta"),
        record(AuditKind::RunEnded, 300, &alice(), "ta"),
        record(AuditKind::RunStarted, 400, &bob(), "tb"),
        record(AuditKind::AccessDenied, 500, &bob(), "ta"),
    ]
    .into_iter()
    .map(WriteOp::Audit)
    .collect();
    store.write_batch(&ops).await.unwrap();

    let all = store.query_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.at).collect::<Vec<_>>(),
        [100, 200, 300, 400, 500]
    );
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "ids increase");
    let first = &all[0];
    assert_eq!(first.kind, AuditKind::RunStarted);
    assert_eq!(first.issuer.as_deref(), Some("https://idp.test"));
    assert_eq!(first.run_id.as_deref(), Some("run-100"));
    assert_eq!(first.detail, json!({ "n": 100, "nested": { "ok": true } }));

    let ats = |records: Vec<AuditRecord>| records.iter().map(|r| r.at).collect::<Vec<_>>();
    let by_subject = AuditFilter {
        subject: Some("bob".into()),
        ..Default::default()
    };
    assert_eq!(
        ats(store.query_audit(&by_subject).await.unwrap()),
        [400, 500]
    );
    let by_thread = AuditFilter {
        thread_id: Some("ta".into()),
        ..Default::default()
    };
    assert_eq!(
        ats(store.query_audit(&by_thread).await.unwrap()),
        [100, 200, 300, 500]
    );
    let by_kinds = AuditFilter {
        kinds: vec![AuditKind::RunStarted, AuditKind::AccessDenied],
        ..Default::default()
    };
    assert_eq!(
        ats(store.query_audit(&by_kinds).await.unwrap()),
        [100, 400, 500]
    );
    let by_time = AuditFilter {
        since: Some(200),
        until: Some(400),
        ..Default::default()
    };
    assert_eq!(ats(store.query_audit(&by_time).await.unwrap()), [200, 300]);
    let combined = AuditFilter {
        subject: Some("alice".into()),
        issuer: Some("https://idp.test".into()),
        since: Some(150),
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(ats(store.query_audit(&combined).await.unwrap()), [200]);
    let other_issuer = AuditFilter {
        issuer: Some("https://nope.test".into()),
        ..Default::default()
    };
    assert!(store.query_audit(&other_issuer).await.unwrap().is_empty());

    // The CLI prints the same records as JSON lines that parse back.
    let mut out = Vec::new();
    let printed = store::cli::audit(store.as_ref(), &by_subject, &mut out)
        .await
        .unwrap();
    assert_eq!(printed, 2);
    let lines: Vec<AuditRecord> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines, store.query_audit(&by_subject).await.unwrap());
}

async fn retention_deletes_only_old_records(fx: &Fixture) {
    let store = &fx.store;
    let day = 86_400_000;
    let now = 100 * day;
    let ops: Vec<WriteOp> = [now - 40 * day, now - 31 * day, now - 29 * day, now - 1]
        .into_iter()
        .map(|at| WriteOp::Audit(record(AuditKind::RunStarted, at, &alice(), "t")))
        .collect();
    store.write_batch(&ops).await.unwrap();
    assert_eq!(
        maintenance::apply_retention(store.as_ref(), 30, now)
            .await
            .unwrap(),
        2
    );
    let left: Vec<i64> = store
        .query_audit(&AuditFilter::default())
        .await
        .unwrap()
        .iter()
        .map(|r| r.at)
        .collect();
    assert_eq!(left, [now - 29 * day, now - 1]);
    assert_eq!(
        maintenance::apply_retention(store.as_ref(), 30, now)
            .await
            .unwrap(),
        0
    );
}

async fn forget_removes_one_subject_and_is_audited(fx: &Fixture) {
    let store = &fx.store;
    let alice_elsewhere = PrincipalKey::new("https://other.test", "alice");
    for (who, thread) in [
        (alice(), "a1"),
        (alice(), "a2"),
        (bob(), "b1"),
        (alice_elsewhere.clone(), "x1"),
    ] {
        store.claim_thread(&who, thread, 1).await.unwrap();
        store
            .write_batch(&[
                WriteOp::RunStarted(start(&who, thread, "r", 2)),
                WriteOp::Audit(record(AuditKind::RunStarted, 2, &who, thread)),
            ])
            .await
            .unwrap();
    }
    let counts = store::cli::forget(store.as_ref(), Some("https://idp.test"), "alice")
        .await
        .unwrap();
    assert_eq!(
        (counts.threads, counts.runs, counts.audit_records),
        (2, 2, 2)
    );
    assert!(store.list_threads(&alice()).await.unwrap().is_empty());
    assert!(store.get_run("a1", "r").await.unwrap().is_none());
    // Bob and the other issuer's alice are untouched.
    assert_eq!(store.list_threads(&bob()).await.unwrap().len(), 1);
    assert_eq!(store.list_threads(&alice_elsewhere).await.unwrap().len(), 1);
    assert!(store.get_run("x1", "r").await.unwrap().is_some());

    let forgets = store
        .query_audit(&AuditFilter {
            kinds: vec![AuditKind::Forget],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(forgets.len(), 1);
    assert_eq!(
        forgets[0].subject, None,
        "the forget record does not keep the subject"
    );
    assert_eq!(forgets[0].issuer.as_deref(), Some("https://idp.test"));
    assert_eq!(forgets[0].detail["threads"], 2);
    assert_eq!(
        forgets[0].detail["subject_sha256"].as_str().unwrap().len(),
        64
    );
    let by_alice = AuditFilter {
        subject: Some("alice".into()),
        ..Default::default()
    };
    assert_eq!(
        store.query_audit(&by_alice).await.unwrap().len(),
        1,
        "other issuer's alice"
    );

    // Without --issuer, every issuer's records of the subject go; the forgotten thread id can
    // then be claimed afresh by someone else.
    let counts = store::cli::forget(store.as_ref(), None, "alice")
        .await
        .unwrap();
    assert_eq!(counts.threads, 1);
    assert!(store.query_audit(&by_alice).await.unwrap().is_empty());
    assert_eq!(
        store.claim_thread(&bob(), "a1", 3).await.unwrap(),
        ThreadAccess::Owner { created: true }
    );
    assert!(store::cli::forget(store.as_ref(), None, "").await.is_err());
}

async fn migrations_from_empty_and_rerun_are_a_no_op(fx: &Fixture) {
    // The fixture migrated an empty database; every table exists and is empty.
    for table in ["threads", "runs", "audit", "instances"] {
        assert_eq!(fx.count(table).await, 0, "{table}");
    }
    let version = fx.schema_version().await;
    assert_eq!(version, 5, "every migration applied once");
    // 0004 and 0005 dropped indexes no frequent query uses; the ones open-run lookups and a
    // subject's records seek are still there.
    assert!(!fx.has_index("runs_subject").await);
    assert!(!fx.has_index("audit_thread").await);
    assert!(fx.has_index("runs_open").await);
    assert!(fx.has_index("audit_subject").await);
    fx.store.claim_thread(&alice(), "kept", 1).await.unwrap();
    // Connecting again runs the migrator again: nothing is applied twice, nothing is lost.
    let again = fx.second().await;
    assert_eq!(fx.schema_version().await, version);
    assert_eq!(again.list_threads(&alice()).await.unwrap().len(), 1);
}

async fn a_failing_durable_write_is_refused_and_the_log_recovers(fx: &Fixture) {
    let log = AuditLog::start(fx.store.clone(), AuditLogOptions::default());
    let op = || WriteOp::Audit(record(AuditKind::RunStarted, 1, &alice(), "t"));
    log.record_durable(vec![op()]).await.unwrap();
    // Durable means committed on return: visible without a flush.
    assert_eq!(fx.count("audit").await, 1);
    assert!(log.healthy());

    // Break writes, keep the database reachable.
    fx.break_audit_writes(true).await;
    let error = log.record_durable(vec![op()]).await.unwrap_err();
    assert!(
        matches!(error, store::StoreError::AuditUnavailable(_)),
        "{error}"
    );
    assert!(!log.healthy());
    assert!(log.stats().failures >= 1);

    fx.break_audit_writes(false).await;
    log.record_durable(vec![op()]).await.unwrap();
    assert!(log.healthy(), "the next commit makes it healthy again");
    // The refused durable record was not written behind its caller's back.
    assert_eq!(fx.count("audit").await, 2);
}

async fn group_commit_writes_many_records_per_transaction(fx: &Fixture) {
    let log = AuditLog::start(
        fx.store.clone(),
        AuditLogOptions {
            max_batch: 500,
            ..Default::default()
        },
    );
    // On this current-thread runtime the writer cannot run until we await, so all 2,000
    // records are waiting when it wakes: it must write them in ceil(2000 / 500) = 4 commits.
    for i in 0..2_000 {
        log.record(record(AuditKind::ToolCall, i, &alice(), "t"));
    }
    log.flush().await;
    let stats = log.stats();
    assert_eq!(stats.written, 2_000);
    assert_eq!(stats.commits, 4, "{stats:?}");
    assert_eq!(fx.count("audit").await, 2_000);

    // The run loop's events go through the same path (AuditSink), runs table included.
    fx.store.claim_thread(&alice(), "t", 1).await.unwrap();
    let mut started = start(&alice(), "t", "r", 2);
    started.credential_source = "body".into();
    log.submit(WriteOp::RunStarted(started));
    let sink: &dyn AuditSink = &log;
    sink.record(AuditEvent::ToolCall {
        issuer: "https://idp.test".into(),
        subject: "alice".into(),
        thread_id: "t".into(),
        run_id: "r".into(),
        tool: "search".into(),
        decision: "allowed",
        outcome: "ok",
    });
    sink.record(AuditEvent::RunEnded {
        issuer: "https://idp.test".into(),
        subject: "alice".into(),
        thread_id: "t".into(),
        run_id: "r".into(),
        outcome: "cancelled",
        code: None,
    });
    log.flush().await;
    assert_eq!(log.stats().commits, 5, "three writes, one commit");
    let run = fx.store.get_run("t", "r").await.unwrap().unwrap();
    assert_eq!(run.credential_source, "body");
    assert_eq!(run.tool_calls, 1);
    assert_eq!(run.outcome, Some(RunOutcome::Cancelled));
    assert_eq!(fx.count("audit").await, 2_002);
    // A tool call's record names its principal and thread, so `audit --thread` lists it and
    // `forget --issuer` removes it.
    let calls = fx
        .store
        .query_audit(&AuditFilter {
            issuer: Some("https://idp.test".into()),
            thread_id: Some("t".into()),
            kinds: vec![AuditKind::ToolCall],
            since: Some(1_000_000),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].run_id.as_deref(), Some("r"));
    assert_eq!(calls[0].detail["tool"], "search");
}

/// Run ids are chosen by clients: another user reusing a run id in their own thread must not
/// change your run's tool-call count (the count is keyed by thread and run).
async fn tool_calls_count_on_their_own_thread_only(fx: &Fixture) {
    let store = &fx.store;
    store.claim_thread(&alice(), "alices", 1).await.unwrap();
    store.claim_thread(&bob(), "bobs", 1).await.unwrap();
    let call = |thread: &str| WriteOp::ToolCall {
        thread_id: thread.to_owned(),
        run_id: "run-1".to_owned(),
    };
    store
        .write_batch(&[
            WriteOp::RunStarted(start(&alice(), "alices", "run-1", 10)),
            WriteOp::RunStarted(start(&bob(), "bobs", "run-1", 11)),
            call("bobs"),
            call("bobs"),
            call("bobs"),
            call("alices"),
        ])
        .await
        .unwrap();
    // Through the group commit too (the path runs take).
    store.commit(&[], &[call("bobs")]).await.unwrap();
    let count = async |thread| {
        store
            .get_run(thread, "run-1")
            .await
            .unwrap()
            .unwrap()
            .tool_calls
    };
    assert_eq!(count("alices").await, 1, "only alice's own call");
    assert_eq!(count("bobs").await, 4);
}

/// A thread's `last_run_at` only moves forward, on every backend and every write path, so
/// `/threads` lists threads in the same order whatever the store (a start that commits late
/// with an earlier time must not move a thread back).
async fn last_run_at_only_moves_forward(fx: &Fixture) {
    let store = &fx.store;
    store.claim_thread(&alice(), "a", 1).await.unwrap();
    store.claim_thread(&alice(), "b", 2).await.unwrap();
    let last = async |thread: &str| {
        store
            .list_threads(&alice())
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.thread_id == thread)
            .unwrap()
            .last_run_at
    };
    store
        .write_batch(&[WriteOp::RunStarted(start(&alice(), "a", "late", 5_000))])
        .await
        .unwrap();
    assert_eq!(last("a").await, Some(5_000));
    // An earlier start, written afterwards (batch path, then the group commit's path).
    store
        .write_batch(&[WriteOp::RunStarted(start(&alice(), "a", "early", 3_000))])
        .await
        .unwrap();
    assert_eq!(last("a").await, Some(5_000), "write_batch moved it back");
    let early = StartRequest {
        start: start(&alice(), "a", "earlier", 2_000),
        audit: record(AuditKind::RunStarted, 2_000, &alice(), "a"),
    };
    store
        .commit(std::slice::from_ref(&early), &[])
        .await
        .unwrap();
    assert_eq!(last("a").await, Some(5_000), "commit moved it back");
    // The control: a later start does move it, and the order follows.
    store
        .write_batch(&[WriteOp::RunStarted(start(&alice(), "b", "later", 7_000))])
        .await
        .unwrap();
    assert_eq!(last("b").await, Some(7_000));
    let order: Vec<String> = store
        .list_threads(&alice())
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.thread_id)
        .collect();
    assert_eq!(order, ["b", "a"]);
}

/// Principals racing for new thread ids through one store (one process's connections, or the
/// in-memory database's one connection): exactly one owner per thread.
async fn concurrent_claims_on_one_store_have_exactly_one_owner(fx: &Fixture) {
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = fx.store.clone();
        tasks.push(tokio::spawn(async move {
            let me = PrincipalKey::new("https://idp.test", format!("user-{i}"));
            (
                me.clone(),
                store.claim_thread(&me, "contested", 1).await.unwrap(),
            )
        }));
    }
    let mut owners = Vec::new();
    for task in tasks {
        if let (me, ThreadAccess::Owner { .. }) = task.await.unwrap() {
            owners.push(me);
        }
    }
    assert_eq!(owners.len(), 1, "{owners:?}");
}

/// `commit`: claims and run starts of many callers in one call. Per start, the same answer
/// `claim_thread` gives one by one; only owned starts leave a run row and a `run_started`
/// record; the other ops of the batch are applied too.
async fn group_commit_of_starts_claims_threads_and_records_only_owned_runs(fx: &Fixture) {
    let store = &fx.store;
    store.claim_thread(&bob(), "bobs", 1).await.unwrap();
    let request = |who: &PrincipalKey, thread: &str, run: &str, at: i64| StartRequest {
        start: start(who, thread, run, at),
        audit: record(AuditKind::RunStarted, at, who, thread),
    };
    let starts = [
        request(&alice(), "new-1", "r1", 10),
        // Racing on a new id inside one batch: the first caller becomes the owner.
        request(&bob(), "new-2", "r2", 11),
        request(&alice(), "new-2", "r3", 12),
        // Bob's existing thread.
        request(&alice(), "bobs", "r4", 13),
        request(&bob(), "bobs", "r5", 14),
        // Alice again on the thread she created in this very batch.
        request(&alice(), "new-1", "r6", 15),
    ];
    let other = [WriteOp::Audit(record(
        AuditKind::ToolCall,
        16,
        &alice(),
        "new-1",
    ))];
    let accesses = store.commit(&starts, &other).await.unwrap();
    assert_eq!(
        accesses,
        vec![
            ThreadAccess::Owner { created: true },
            ThreadAccess::Owner { created: true },
            ThreadAccess::NotOwner { owner: bob() },
            ThreadAccess::NotOwner { owner: bob() },
            ThreadAccess::Owner { created: false },
            ThreadAccess::Owner { created: false },
        ]
    );
    for (thread, run, recorded) in [
        ("new-1", "r1", true),
        ("new-2", "r2", true),
        ("new-2", "r3", false),
        ("bobs", "r4", false),
        ("bobs", "r5", true),
        ("new-1", "r6", true),
    ] {
        let run_row = store.get_run(thread, run).await.unwrap();
        assert_eq!(run_row.is_some(), recorded, "{thread}/{run}");
    }
    let started = store
        .query_audit(&AuditFilter {
            kinds: vec![AuditKind::RunStarted],
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(started.len(), 4, "one run_started per owned start");
    assert_eq!(fx.count("audit").await, 5, "and the batch's other op");
    // The same answers one by one afterwards.
    assert_eq!(
        store.claim_thread(&alice(), "new-2", 20).await.unwrap(),
        ThreadAccess::NotOwner { owner: bob() }
    );
    let mine = store.list_threads(&alice()).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].thread_id, "new-1");
    assert_eq!(mine[0].last_run_at, Some(15));
}

fn chunk(thread: &str, run: &str, n: i64, started_at: i64, at: i64, text: &str) -> WriteOp {
    WriteOp::History(HistoryChunk {
        thread_id: thread.to_owned(),
        run_id: run.to_owned(),
        chunk: n,
        started_at,
        at,
        events: json!([{"type": "CUSTOM", "name": "t", "value": text}]).to_string(),
    })
}

fn texts(chunks: &[HistoryChunk]) -> Vec<String> {
    chunks
        .iter()
        .map(|c| {
            serde_json::from_str::<serde_json::Value>(&c.events).unwrap()[0]["value"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// History is appended in batches (several runs' chunks in one commit, chunks of one run in
/// several), and read back runs by start, chunks by number, whatever order they were written
/// in; a repeated chunk is ignored; a run's own chunks can be read from a number on.
async fn history_chunks_replay_in_run_order_and_chunk_order(fx: &Fixture) {
    let store = &fx.store;
    store.claim_thread(&alice(), "h", 1).await.unwrap();
    store
        .write_batch(&[
            chunk("h", "late", 0, 200, 201, "late-0"),
            chunk("h", "early", 1, 100, 150, "early-1"),
            chunk("other", "x", 0, 50, 50, "elsewhere"),
        ])
        .await
        .unwrap();
    store
        .commit(
            &[],
            &[
                chunk("h", "early", 0, 100, 101, "early-0"),
                chunk("h", "late", 1, 200, 202, "late-1"),
                // The same chunk twice (a retried flush) is one chunk.
                chunk("h", "late", 1, 200, 203, "late-1-again"),
            ],
        )
        .await
        .unwrap();
    let all = store.history("h").await.unwrap();
    assert_eq!(texts(&all), ["early-0", "early-1", "late-0", "late-1"]);
    assert!(all.iter().all(|c| c.thread_id == "h"));
    let tail = store.run_history("h", "late", 1).await.unwrap();
    assert_eq!(texts(&tail), ["late-1"]);
    assert!(store.history("nobody").await.unwrap().is_empty());
}

/// Beyond the per-thread cap the oldest runs leave the history, whole; other threads keep
/// theirs.
async fn history_is_capped_per_thread_oldest_runs_first(fx: &Fixture) {
    let store = &fx.store;
    let mut ops = Vec::new();
    for (i, run) in ["r1", "r2", "r3", "r4"].iter().enumerate() {
        let started = 100 * (i as i64 + 1);
        ops.push(chunk(
            "capped",
            run,
            0,
            started,
            started,
            &format!("{run}-0"),
        ));
        ops.push(chunk(
            "capped",
            run,
            1,
            started,
            started + 1,
            &format!("{run}-1"),
        ));
    }
    ops.push(chunk("kept", "k1", 0, 10, 10, "k1-0"));
    store.write_batch(&ops).await.unwrap();
    store
        .write_batch(&[WriteOp::TrimHistory {
            thread_id: "capped".into(),
            keep_runs: 2,
        }])
        .await
        .unwrap();
    assert_eq!(
        texts(&store.history("capped").await.unwrap()),
        ["r3-0", "r3-1", "r4-0", "r4-1"]
    );
    assert_eq!(store.history("kept").await.unwrap().len(), 1);
    // The control: under the cap nothing goes.
    store
        .write_batch(&[WriteOp::TrimHistory {
            thread_id: "capped".into(),
            keep_runs: 2,
        }])
        .await
        .unwrap();
    assert_eq!(store.history("capped").await.unwrap().len(), 4);
}

/// Retention deletes the history of runs whose last chunk is older than the cut, whole: a run
/// with one old and one recent chunk is kept entirely (no replay starts mid-run).
async fn history_retention_removes_whole_runs_only(fx: &Fixture) {
    let store = &fx.store;
    store
        .write_batch(&[
            chunk("t", "old", 0, 10, 10, "old-0"),
            chunk("t", "old", 1, 10, 20, "old-1"),
            chunk("t", "spanning", 0, 30, 30, "span-0"),
            chunk("t", "spanning", 1, 30, 5_000, "span-1"),
        ])
        .await
        .unwrap();
    assert_eq!(store.delete_history_before(1_000).await.unwrap(), 2);
    assert_eq!(
        texts(&store.history("t").await.unwrap()),
        ["span-0", "span-1"]
    );
    // Through the retention job too (the audit log's cut applies to history).
    let now = 5_000 + 2 * 24 * 60 * 60 * 1000;
    maintenance::apply_retention(store.as_ref(), 1, now)
        .await
        .unwrap();
    assert!(store.history("t").await.unwrap().is_empty());
}

/// `forget` removes the history of the subject's threads (with the threads), not others'.
async fn forget_removes_the_history_of_the_subjects_threads(fx: &Fixture) {
    let store = &fx.store;
    store.claim_thread(&alice(), "alices", 1).await.unwrap();
    store.claim_thread(&bob(), "bobs", 1).await.unwrap();
    store
        .write_batch(&[
            chunk("alices", "r", 0, 2, 2, "hers"),
            chunk("alices", "r", 1, 2, 3, "hers too"),
            chunk("bobs", "r", 0, 2, 2, "his"),
        ])
        .await
        .unwrap();
    let counts = store::cli::forget(store.as_ref(), Some("https://idp.test"), "alice")
        .await
        .unwrap();
    assert_eq!(counts.history_chunks, 2);
    assert!(store.history("alices").await.unwrap().is_empty());
    assert_eq!(texts(&store.history("bobs").await.unwrap()), ["his"]);
}

/// A thread's runs without a recorded end, each with its instance's last heartbeat: what a
/// follower on another replica needs to tell a live run from a dead one.
/// `thread_replay` reads in one statement what the separate reads give: the owner, the history
/// in replay order and the open runs with their heartbeats; to anyone but the owner (without
/// the admin flag) only the owner, so a refused caller costs no history read.
async fn a_thread_replay_is_one_read_scoped_to_its_owner(fx: &Fixture) {
    let store = &fx.store;
    store.claim_thread(&alice(), "tr", 1).await.unwrap();
    store.heartbeat(4_321).await.unwrap();
    store
        .write_batch(&[
            WriteOp::RunStarted(start(&alice(), "tr", "second", 200)),
            WriteOp::RunStarted(start(&alice(), "tr", "first", 100)),
            WriteOp::RunEnded(RunEnd {
                thread_id: "tr".into(),
                run_id: "first".into(),
                ended_at: 150,
                outcome: RunOutcome::Success,
                error_code: None,
                usage: None,
            }),
            chunk("tr", "second", 0, 200, 201, "second-0"),
            chunk("tr", "first", 1, 100, 120, "first-1"),
            chunk("tr", "first", 0, 100, 110, "first-0"),
            chunk("other", "x", 0, 50, 50, "elsewhere"),
        ])
        .await
        .unwrap();
    let replay = store.thread_replay("tr", &alice(), false).await.unwrap();
    assert_eq!(replay.owner, Some(alice()));
    let order: Vec<(String, i64)> = replay
        .chunks
        .iter()
        .map(|c| (c.run_id.clone(), c.chunk))
        .collect();
    assert_eq!(
        order,
        [
            ("first".into(), 0),
            ("first".into(), 1),
            ("second".into(), 0)
        ]
    );
    assert!(replay.chunks[0].events.contains("first-0"));
    assert_eq!(replay.chunks[2].started_at, 200);
    assert_eq!(replay.open, store.open_runs("tr").await.unwrap());
    assert_eq!(replay.open.len(), 1);
    assert_eq!(replay.open[0].run_id, "second");
    assert_eq!(replay.open[0].heartbeat_at, Some(4_321));
    // Another principal: the owner only …
    let refused = store.thread_replay("tr", &bob(), false).await.unwrap();
    assert_eq!(refused.owner, Some(alice()));
    assert!(refused.chunks.is_empty() && refused.open.is_empty());
    // … unless it reads as an admin.
    let admin = store.thread_replay("tr", &bob(), true).await.unwrap();
    assert_eq!(admin.chunks.len(), 3);
    assert_eq!(admin.open.len(), 1);
    // No such thread: nothing, and no owner.
    let none = store
        .thread_replay("nobody's", &alice(), true)
        .await
        .unwrap();
    assert_eq!(none, agui_server::store::ThreadReplay::default());
}

async fn open_runs_carry_their_instances_heartbeat(fx: &Fixture) {
    let store = &fx.store;
    store.claim_thread(&alice(), "o", 1).await.unwrap();
    store.heartbeat(1_234).await.unwrap();
    store
        .write_batch(&[
            WriteOp::RunStarted(start(&alice(), "o", "open", 10)),
            WriteOp::RunStarted(start(&alice(), "o", "done", 5)),
            WriteOp::RunEnded(RunEnd {
                thread_id: "o".into(),
                run_id: "done".into(),
                ended_at: 20,
                outcome: RunOutcome::Success,
                error_code: None,
                usage: None,
            }),
        ])
        .await
        .unwrap();
    let open = store.open_runs("o").await.unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].run_id, "open");
    assert_eq!(open[0].instance, store.instance_id());
    assert_eq!(open[0].heartbeat_at, Some(1_234));
    assert_eq!(
        store.thread_owner("o").await.unwrap(),
        Some(alice()),
        "the owner, without a claim"
    );
    assert_eq!(store.thread_owner("nobody's").await.unwrap(), None);
}
