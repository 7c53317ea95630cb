//! Storage: one diesel code base over embedded SQLite (the default) and PostgreSQL (production).
//!
//! The backend is picked from the URL scheme. Writes go through [`write_tx`], which on SQLite takes
//! the write lock up front (`BEGIN IMMEDIATE`) so two writers never deadlock on a lock upgrade, and
//! on PostgreSQL relies on row locks taken by the statements themselves.

mod pool;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use pool::{build_pool, DbPool};

pub const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Key of the PostgreSQL advisory lock held while migrating and bootstrapping, so several
/// processes starting at once do not race.
const BOOTSTRAP_LOCK_KEY: i64 = 0x5245_4749_5354_5259; // "REGISTRY"

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// Which store a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn of_url(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// Opens one connection; SQLite gets its per-connection pragmas.
pub fn establish(url: &str) -> Result<DbConn, diesel::ConnectionError> {
    match Backend::of_url(url) {
        Backend::Postgres => Ok(DbConn::Pg(PgConnection::establish(url)?)),
        Backend::Sqlite => {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            let mut conn = SqliteConnection::establish(path)?;
            // Durable commits, enforced references, and a wait instead of an immediate
            // "database is locked" when another connection holds the write lock.
            // batch_execute: `sql_query` would run only the first statement.
            conn.batch_execute(
                "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
            )
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(DbConn::Sqlite(conn))
        }
    }
}

/// Runs `f` in a write transaction. SQLite: `BEGIN IMMEDIATE`; PostgreSQL: `BEGIN` (READ COMMITTED;
/// movements lock the rows they change with conditional UPDATEs in a fixed order).
pub fn write_tx<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<DieselError>,
{
    match conn {
        DbConn::Pg(_) => conn.transaction(f),
        DbConn::Sqlite(inner) => {
            let nested = AnsiTransactionManager::transaction_manager_status_mut(inner)
                .transaction_depth()?
                .is_some();
            if nested {
                // Already inside a write transaction, which holds the lock: a savepoint.
                return conn.transaction(f);
            }
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
            let result = f(conn);
            let DbConn::Sqlite(inner) = conn else {
                unreachable!("the connection cannot change backend")
            };
            match result {
                Ok(value) => {
                    AnsiTransactionManager::commit_transaction(inner)?;
                    Ok(value)
                }
                Err(e) => {
                    AnsiTransactionManager::rollback_transaction(inner)?;
                    Err(e)
                }
            }
        }
    }
}

/// Applies pending migrations; on PostgreSQL under the bootstrap advisory lock.
pub fn migrate(conn: &mut DbConn) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    with_bootstrap_lock(conn, |conn| match conn {
        DbConn::Pg(c) => Ok(c.run_pending_migrations(PG_MIGRATIONS)?.len()),
        DbConn::Sqlite(c) => Ok(c.run_pending_migrations(SQLITE_MIGRATIONS)?.len()),
    })
}

/// True when every embedded migration has been applied (readiness).
pub fn migrations_current(
    conn: &mut DbConn,
) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    Ok(match conn {
        DbConn::Pg(c) => !c.has_pending_migration(PG_MIGRATIONS)?,
        DbConn::Sqlite(c) => !c.has_pending_migration(SQLITE_MIGRATIONS)?,
    })
}

/// Runs `f` while holding the cluster-wide bootstrap lock: on PostgreSQL an advisory lock, on
/// SQLite the file's write lock (an immediate transaction; migrations nest as savepoints).
pub fn with_bootstrap_lock<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<DieselError>,
{
    if let DbConn::Pg(c) = conn {
        diesel::sql_query(format!("SELECT pg_advisory_lock({BOOTSTRAP_LOCK_KEY})")).execute(c)?;
        let result = f(conn);
        if let DbConn::Pg(c) = conn {
            diesel::sql_query(format!("SELECT pg_advisory_unlock({BOOTSTRAP_LOCK_KEY})"))
                .execute(c)?;
        }
        result
    } else {
        write_tx(conn, f)
    }
}

/// True for a unique-constraint violation (a duplicate on either backend).
pub fn is_unique_violation(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// The current time, truncated to microseconds as both backends store it.
pub fn now_micros(now: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDateTime {
    use chrono::{DurationRound, TimeDelta};
    let naive = now.naive_utc();
    naive
        .duration_trunc(TimeDelta::microseconds(1))
        .unwrap_or(naive)
}

/// `INSERT … ON CONFLICT DO NOTHING`, which the multi-backend connection cannot express: written
/// once per backend. Returns the number of rows inserted (0 when the row already existed).
#[macro_export]
macro_rules! insert_or_ignore {
    ($conn:expr, $table:expr, $values:expr) => {
        match $conn {
            $crate::db::DbConn::Pg(c) => diesel::insert_into($table)
                .values($values)
                .on_conflict_do_nothing()
                .execute(c),
            $crate::db::DbConn::Sqlite(c) => diesel::insert_or_ignore_into($table)
                .values($values)
                .execute(c),
        }
    };
}

#[cfg(test)]
mod tests {
    use diesel::migration::MigrationSource;

    fn versions<DB: diesel::backend::Backend>(source: &impl MigrationSource<DB>) -> Vec<String> {
        source
            .migrations()
            .map(|ms| ms.iter().map(|m| m.name().version().to_string()).collect())
            .unwrap_or_default()
    }

    /// diesel keys a migration by the timestamp before the first `_` of its folder: two folders
    /// with one timestamp (made on parallel branches) would silently run only one of them.
    #[test]
    fn every_migration_has_its_own_version_and_both_backends_have_the_same() {
        let pg = versions::<diesel::pg::Pg>(&super::PG_MIGRATIONS);
        let lite = versions::<diesel::sqlite::Sqlite>(&super::SQLITE_MIGRATIONS);
        assert!(pg.len() > 10, "migrations found: {pg:?}");
        for list in [&pg, &lite] {
            let mut unique = list.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(
                unique.len(),
                list.len(),
                "a version is used twice: {list:?}"
            );
        }
        let (mut a, mut b) = (pg.clone(), lite.clone());
        a.sort();
        b.sort();
        assert_eq!(a, b, "PostgreSQL and SQLite migrations differ");
    }
}
