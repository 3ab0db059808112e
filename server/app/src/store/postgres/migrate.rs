//! The PostgreSQL migrations, embedded in the binary at compile time (`include_str!`), so start-up needs no
//! files and the build needs no database. sqlx's `migrate!` macro would do the same but needs the
//! `macros` feature; a [`MigrationSource`] over static text is the documented alternative.

use std::borrow::Cow;

use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// `(version, description, sql)` of one migration file.
type Embedded = (i64, &'static str, &'static str);

const POSTGRES: &[Embedded] = &[
    (
        1,
        "store",
        include_str!("../../../migrations/postgres/0001_store.sql"),
    ),
    (
        2,
        "history",
        include_str!("../../../migrations/postgres/0002_history.sql"),
    ),
    (
        3,
        "fewer_indexes",
        include_str!("../../../migrations/postgres/0003_fewer_indexes.sql"),
    ),
    (
        4,
        "drop_runs_subject",
        include_str!("../../../migrations/postgres/0004_drop_runs_subject.sql"),
    ),
    (
        5,
        "drop_audit_thread",
        include_str!("../../../migrations/postgres/0005_drop_audit_thread.sql"),
    ),
];

/// A migration source over embedded text.
#[derive(Debug)]
struct Source(&'static [Embedded]);

impl MigrationSource<'static> for Source {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        let migrations = self
            .0
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    Cow::Borrowed(*sql),
                    false,
                )
            })
            .collect();
        Box::pin(async move { Ok(migrations) })
    }
}

/// The PostgreSQL migrator. It takes an advisory lock, so replicas starting together migrate
/// once.
pub(super) async fn migrator() -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Source(POSTGRES)).await
}
