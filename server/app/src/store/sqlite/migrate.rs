//! SQLite schema migrations, embedded in the binary and tracked by `PRAGMA user_version`.
//!
//! Databases created before this runner (by sqlx's migrator, which kept a `_sqlx_migrations`
//! table and left `user_version` at 0) are recognised by that table and continue from its
//! highest applied version.

use rusqlite::{Connection, TransactionBehavior};

use super::worker::backend;
use crate::store::StoreError;

/// `(version, sql)`, in order.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../migrations/sqlite/0001_store.sql")),
    (
        2,
        include_str!("../../../migrations/sqlite/0002_history.sql"),
    ),
    (
        3,
        include_str!("../../../migrations/sqlite/0003_fewer_indexes.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/sqlite/0004_drop_runs_subject.sql"),
    ),
    (
        5,
        include_str!("../../../migrations/sqlite/0005_drop_audit_thread.sql"),
    ),
];

/// Brings the schema up to date. Two processes opening a new file at once migrate once: the
/// check and the migration share one immediate (write-locked) transaction.
///
/// # Errors
/// [`StoreError::Migrate`] when a migration fails or the database is newer than this binary.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let latest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let mut version: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(backend)?;
    if version == 0 {
        version = sqlx_version(&tx)?;
    }
    if version > latest {
        return Err(StoreError::Migrate(format!(
            "the database's schema version {version} is newer than this server's {latest}"
        )));
    }
    let from = version;
    for (number, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > from) {
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Migrate(format!("migration {number}: {e}")))?;
        version = *number;
    }
    tx.pragma_update(None, "user_version", version)
        .map_err(backend)?;
    tx.commit().map_err(backend)
}

/// The highest version sqlx's migrator applied to this database, or 0.
fn sqlx_version(conn: &Connection) -> Result<i64, StoreError> {
    let has_table: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' \
             AND name = '_sqlx_migrations')",
            [],
            |row| row.get(0),
        )
        .map_err(backend)?;
    if !has_table {
        return Ok(0);
    }
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success",
        [],
        |row| row.get(0),
    )
    .map_err(backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn a_new_database_gets_every_migration_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn), MIGRATIONS.last().unwrap().0);
        // Re-running is a no-op (the tables exist; a second CREATE TABLE would fail).
        migrate(&mut conn).unwrap();
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'threads'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(tables, 1);
    }

    #[test]
    fn a_database_migrated_by_sqlx_continues_from_its_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0].1).unwrap();
        conn.execute_batch(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, success BOOLEAN NOT NULL);
             INSERT INTO _sqlx_migrations VALUES (1, TRUE);",
        )
        .unwrap();
        // Without the recognition this would re-run 0001 and fail on the existing tables.
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn), MIGRATIONS.last().unwrap().0);
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(migrate(&mut conn), Err(StoreError::Migrate(_))));
    }
}
