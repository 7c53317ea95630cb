//! Storage: one diesel code base over embedded SQLite (the default) and PostgreSQL (production).
//!
//! The backend is picked from the URL scheme. Writes go through [`write_tx`], which on SQLite
//! first waits its turn in the process's write queue and then takes the write lock up front
//! (`BEGIN IMMEDIATE`), so two writers never deadlock on a lock upgrade and a write is never
//! refused as "busy"; on PostgreSQL it relies on row locks taken by the statements themselves.

mod pool;
mod watch;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use pool::{build_pool, DbPool};
pub use watch::{attribute, counting, is_connection_error, request_counter};

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

/// Runs `f` in a write transaction. SQLite: one writer at a time in this process, in the order
/// they came ([`WriteQueue`]), then `BEGIN IMMEDIATE`; PostgreSQL: `BEGIN` (READ COMMITTED;
/// movements lock the rows they change with conditional UPDATEs in a fixed order).
pub fn write_tx<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<DieselError>,
{
    let out = write_tx_inner(conn, f);
    if !in_outer_transaction(conn) {
        // Principals changed by the transaction are forgotten once it has ended.
        after_write();
    }
    out
}

/// What runs when a write transaction has ended (the principal cache forgets what it changed).
/// A hook, set once at start-up by the wiring, because the database layer knows no domain module.
static AFTER_WRITE: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Sets the hook run after every write transaction; the first call wins.
pub fn set_after_write(hook: fn()) {
    let _ = AFTER_WRITE.set(hook);
}

/// Runs the after-write hook, if one is set.
pub fn after_write() {
    if let Some(hook) = AFTER_WRITE.get() {
        hook();
    }
}

fn in_outer_transaction(conn: &mut DbConn) -> bool {
    fn depth<C>(c: &mut C) -> bool
    where
        C: Connection<TransactionManager = AnsiTransactionManager>,
    {
        AnsiTransactionManager::transaction_manager_status_mut(c)
            .transaction_depth()
            .map(|d| d.is_some())
            .unwrap_or(false)
    }
    match conn {
        DbConn::Pg(c) => depth(c),
        DbConn::Sqlite(c) => depth(c),
    }
}

fn write_tx_inner<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
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
            let _turn = WRITE_QUEUE.wait_turn();
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

/// The SQLite writers of this process, served one at a time in the order they arrived. SQLite
/// admits one writer per file; left to its busy handler, waiting writers poll the lock with
/// growing sleeps, a newcomer can overtake one that has waited for seconds, and under load a
/// writer gives up after `busy_timeout` ("database is locked", a 503). Waiting here instead
/// costs nothing while waiting, serves in order, and has no time limit: the file lock is then
/// free whenever a writer of this process asks for it (other processes on the same file, such as
/// a CLI import, still meet the busy timeout). Readers use their own connections (WAL) and do
/// not queue. A thread already holding its turn may begin another write transaction (on another
/// connection) without waiting for itself.
struct WriteQueue {
    state: std::sync::Mutex<QueueState>,
    turn: std::sync::Condvar,
}

struct QueueState {
    next_ticket: u64,
    serving: u64,
    holder: Option<std::thread::ThreadId>,
    depth: u32,
}

static WRITE_QUEUE: WriteQueue = WriteQueue {
    state: std::sync::Mutex::new(QueueState {
        next_ticket: 0,
        serving: 0,
        holder: None,
        depth: 0,
    }),
    turn: std::sync::Condvar::new(),
};

/// This thread's turn to write; the next writer's turn comes when it is dropped.
struct Turn;

impl WriteQueue {
    fn wait_turn(&'static self) -> Turn {
        let me = std::thread::current().id();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.holder == Some(me) {
            s.depth += 1;
            return Turn;
        }
        let ticket = s.next_ticket;
        s.next_ticket += 1;
        while s.serving != ticket {
            s = self.turn.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.holder = Some(me);
        s.depth = 1;
        Turn
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut s = WRITE_QUEUE.state.lock().unwrap_or_else(|e| e.into_inner());
        s.depth -= 1;
        if s.depth == 0 {
            s.holder = None;
            s.serving += 1;
            WRITE_QUEUE.turn.notify_all();
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
