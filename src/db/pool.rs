//! An r2d2 pool over [`DbConn`] whose manager applies the SQLite pragmas to every connection, and
//! that can be closed before the process exits.
//!
//! Why closing matters: r2d2 opens connections on its own worker threads (to reach `min_idle`, to
//! replace a broken connection, when a checkout finds none idle) and nothing ever joins them. If
//! the main thread returns while such a thread is inside libpq (`PQconnectdb` → SCRAM → OpenSSL),
//! the process's exit-time OpenSSL cleanup runs under it and the process dies with SIGSEGV. So
//! [`DbPool::close`] shuts a gate that every connect passes through, waits for connects already
//! inside it and for connections checked out by other threads, and closes the idle connections
//! on the calling thread. The reaper (idle timeout, maximum lifetime) is off because it would
//! close connections on a worker thread.
//!
//! Checkouts do not ping. A connection is tested (one `SELECT 1`) only when it has been idle for
//! [`IDLE_BEFORE_TEST`] or when some connection of the pool has failed with a connection error
//! since it was last used ([`super::watch`]); a connection whose statement failed that way is
//! discarded when handed back. So after an outage the first request to notice it gets a 503 and
//! every later checkout gets a tested or a new connection: the pool heals without a restart.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use diesel::r2d2::R2D2Connection;
use diesel::Connection;

use super::watch::Watch;
use super::{establish, Backend, DbConn};

/// How long a connection may sit idle before its next checkout tests it.
const IDLE_BEFORE_TEST: Duration = Duration::from_secs(15);

/// A pooled connection with what the pool knows about it.
pub struct Conn {
    conn: DbConn,
    /// Set by the connection's [`Watch`] when a statement failed with a connection error.
    broken: Arc<AtomicBool>,
    /// When it was last handed back.
    last_used: Instant,
    /// The pool's suspicion count when the connection was last known good.
    trusted_at: u64,
}

/// A connection checked out of a [`DbPool`]; `&mut conn` is a `&mut DbConn`. Counted, so that
/// closing the pool can wait for it to come back.
pub struct PooledConn {
    conn: r2d2::PooledConnection<Manager>,
    _out: Checkout,
}

impl Deref for PooledConn {
    type Target = DbConn;
    fn deref(&self) -> &DbConn {
        &self.conn.conn
    }
}

impl DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut DbConn {
        &mut self.conn.conn
    }
}

impl Drop for PooledConn {
    fn drop(&mut self) {
        self.conn.last_used = Instant::now();
    }
}

/// The connection pool every part of the service shares. Cheap to clone; [`DbPool::close`] it
/// before the process exits.
#[derive(Clone)]
pub struct DbPool {
    pool: r2d2::Pool<Manager>,
    gate: Arc<Gate>,
}

impl DbPool {
    /// A connection, waiting at most the pool's timeout. Tested first only if it has been idle
    /// for a while or a connection error has been seen since it was last used.
    pub fn get(&self) -> Result<PooledConn, r2d2::Error> {
        // Counted before the checkout, so `close` never misses a connection on its way out.
        let out = Checkout::new(self.gate.clone());
        let deadline = Instant::now() + self.pool.connection_timeout();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut conn = self.pool.get_timeout(left)?;
            let suspicion = self.gate.suspicion.load(Ordering::SeqCst);
            if conn.trusted_at == suspicion && conn.last_used.elapsed() < IDLE_BEFORE_TEST {
                return Ok(PooledConn { conn, _out: out });
            }
            match conn.conn.ping() {
                Ok(_) => {
                    conn.trusted_at = suspicion;
                    return Ok(PooledConn { conn, _out: out });
                }
                // Dropped from the pool when handed back (`has_broken`); try another.
                Err(_) => conn.broken.store(true, Ordering::SeqCst),
            }
        }
    }

    /// Stops opening connections, waits (at most `wait` in all) for connects under way and for
    /// connections checked out elsewhere to come back, and closes every connection on this thread.
    /// Afterwards no thread of the pool enters libpq again, so the process may exit.
    pub fn close(&self, wait: Duration) {
        self.gate.close(wait);
        // `has_broken` now answers true, so each connection handed back is closed by the thread
        // handing it back instead of kept idle. `try_get` never waits and opens nothing.
        while let Some(conn) = self.pool.try_get() {
            drop(conn);
        }
        // A connect that finished just before the gate closed may still be on its way into the
        // idle list. If a pool thread held the last reference when it arrived, that thread would
        // close the connection (libpq) while the process exits; one reference kept for the life
        // of the process rules that out. The few bytes are the price of a clean exit.
        std::mem::forget(self.pool.clone());
    }
}

/// One checked-out connection in the gate's count.
struct Checkout(Arc<Gate>);

impl Checkout {
    fn new(gate: Arc<Gate>) -> Checkout {
        gate.checked_out.fetch_add(1, Ordering::SeqCst);
        Checkout(gate)
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        self.0.leave(&self.0.checked_out);
    }
}

/// Counts connects in progress and connections checked out, and refuses new connects once closed.
#[derive(Default)]
struct Gate {
    closed: AtomicBool,
    connecting: AtomicUsize,
    checked_out: AtomicUsize,
    /// Moved on by every connection error (see [`Watch`]).
    suspicion: Arc<AtomicU64>,
    done: Mutex<()>,
    changed: Condvar,
}

impl Gate {
    /// Runs `connect` unless the gate is closed. The count goes up before the closed flag is
    /// read and `close` sets the flag before reading the count (both SeqCst), so either the
    /// connect sees the gate closed or `close` sees the connect and waits for it.
    fn pass<T>(&self, connect: impl FnOnce() -> T) -> Option<T> {
        self.connecting.fetch_add(1, Ordering::SeqCst);
        let out = if self.closed.load(Ordering::SeqCst) {
            None
        } else {
            Some(connect())
        };
        self.leave(&self.connecting);
        out
    }

    /// Takes one off `count` and wakes `close`.
    fn leave(&self, count: &AtomicUsize) {
        let _guard = self.done.lock().unwrap_or_else(|e| e.into_inner());
        count.fetch_sub(1, Ordering::SeqCst);
        self.changed.notify_all();
    }

    fn close(&self, wait: Duration) {
        self.closed.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + wait;
        let mut guard = self.done.lock().unwrap_or_else(|e| e.into_inner());
        while self.connecting.load(Ordering::SeqCst) + self.checked_out.load(Ordering::SeqCst) > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(
                    connecting = self.connecting.load(Ordering::SeqCst),
                    checked_out = self.checked_out.load(Ordering::SeqCst),
                    "database pool closed while connections were still in use"
                );
                return;
            }
            guard = match self.changed.wait_timeout(guard, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

pub struct Manager {
    url: String,
    gate: Arc<Gate>,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Conn, Self::Error> {
        let mut conn = match self.gate.pass(|| establish(&self.url)) {
            Some(conn) => conn.map_err(diesel::r2d2::Error::ConnectionError)?,
            None => {
                return Err(diesel::r2d2::Error::ConnectionError(
                    diesel::ConnectionError::BadConnection("the database pool is closed".into()),
                ))
            }
        };
        let broken = Arc::new(AtomicBool::new(false));
        let watch = Watch {
            broken: broken.clone(),
            suspicion: self.gate.suspicion.clone(),
            remote: matches!(conn, DbConn::Pg(_)),
        };
        match &mut conn {
            DbConn::Pg(c) => c.set_instrumentation(watch),
            DbConn::Sqlite(c) => c.set_instrumentation(watch),
        }
        Ok(Conn {
            conn,
            broken,
            last_used: Instant::now(),
            trusted_at: self.gate.suspicion.load(Ordering::SeqCst),
        })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), Self::Error> {
        conn.conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        // Once closed, a connection handed back is dropped by the thread handing it back.
        self.gate.is_closed() || conn.broken.load(Ordering::SeqCst) || conn.conn.is_broken()
    }
}

/// Logs failed connects, except the refusals of a closed pool (r2d2 retries them until it is
/// dropped; they touch no database).
#[derive(Debug)]
struct ConnectErrors {
    gate: Arc<Gate>,
}

impl r2d2::HandleError<diesel::r2d2::Error> for ConnectErrors {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        if !self.gate.is_closed() {
            tracing::warn!(%error, "database connection failed");
        }
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Builds the pool. A checkout waits at most `timeout`, so a database outage turns into a quick
/// 503 rather than a hung request; connections are tested when idle or suspect (see the module
/// doc) so the pool heals itself when the database comes back.
///
/// The pool is returned even when the database cannot be reached (the first checkout reports
/// that), so the caller always holds a pool it can close: connects r2d2 retries in the background
/// must not outlive an early exit.
pub fn build_pool(url: &str, max_size: u32, timeout: Duration) -> DbPool {
    let size = match Backend::of_url(url) {
        Backend::Postgres => max_size,
        // One writer at a time anyway; a few readers in WAL mode.
        Backend::Sqlite => max_size.min(8),
    };
    let gate = Arc::new(Gate::default());
    let pool = r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(timeout)
        // `DbPool::get` tests a connection when it has reason to, not on every checkout.
        .test_on_check_out(false)
        // No reaper: it would close connections on a pool thread (see the module doc).
        .idle_timeout(None)
        .max_lifetime(None)
        .error_handler(Box::new(ConnectErrors { gate: gate.clone() }))
        .build_unchecked(Manager {
            url: url.to_string(),
            gate: gate.clone(),
        });
    DbPool { pool, gate }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pool_opens_nothing_and_keeps_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = dir.path().join("t.db").to_string_lossy().into_owned();
        // One connection at most, so no connect is under way when the pool closes.
        let pool = build_pool(&url, 1, Duration::from_millis(300));
        drop(pool.get().expect("a connection"));
        pool.close(Duration::from_secs(5));
        assert_eq!(pool.pool.state().connections, 0, "idle connections closed");
        assert!(pool.get().is_err(), "no connection after close");
        assert_eq!(pool.gate.connecting.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn close_waits_for_a_connection_in_use() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = dir.path().join("t.db").to_string_lossy().into_owned();
        let pool = build_pool(&url, 1, Duration::from_millis(300));
        let held = pool.get().expect("a connection");
        let user = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(held);
        });
        let started = Instant::now();
        pool.close(Duration::from_secs(10));
        assert!(started.elapsed() >= Duration::from_millis(250), "waited");
        assert_eq!(pool.pool.state().connections, 0, "closed when handed back");
        user.join().expect("user thread");
    }

    #[test]
    fn close_gives_up_after_its_wait() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = dir.path().join("t.db").to_string_lossy().into_owned();
        let pool = build_pool(&url, 1, Duration::from_millis(300));
        let held = pool.get().expect("a connection");
        pool.close(Duration::from_millis(100));
        assert_eq!(pool.pool.state().connections, 1, "still checked out");
        drop(held);
        assert_eq!(pool.pool.state().connections, 0);
    }

    #[test]
    fn a_checkout_tests_a_connection_only_when_it_has_reason_to() {
        use crate::db::watch::statements_on_this_thread;
        let dir = tempfile::tempdir().expect("temp dir");
        let url = dir.path().join("t.db").to_string_lossy().into_owned();
        let pool = build_pool(&url, 1, Duration::from_millis(300));
        drop(pool.get().expect("a connection"));
        let before = statements_on_this_thread();
        drop(pool.get().expect("a connection"));
        assert_eq!(statements_on_this_thread(), before, "no ping on checkout");
        // A connection error anywhere in the pool: the next checkout tests its connection once.
        pool.gate.suspicion.fetch_add(1, Ordering::SeqCst);
        drop(pool.get().expect("a connection"));
        assert_eq!(statements_on_this_thread(), before + 1, "tested once");
        drop(pool.get().expect("a connection"));
        assert_eq!(
            statements_on_this_thread(),
            before + 1,
            "then trusted again"
        );
        pool.close(Duration::from_secs(5));
    }

    #[test]
    fn a_connection_that_failed_with_a_connection_error_is_discarded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = dir.path().join("t.db").to_string_lossy().into_owned();
        let pool = build_pool(&url, 1, Duration::from_millis(300));
        let conn = pool.get().expect("a connection");
        conn.conn.broken.store(true, Ordering::SeqCst);
        drop(conn);
        let again = pool.get().expect("a connection");
        assert!(!again.conn.broken.load(Ordering::SeqCst), "a new one");
        drop(again);
        pool.close(Duration::from_secs(5));
    }

    #[test]
    fn an_unreachable_database_still_gives_a_pool_to_close() {
        // A port nobody listens on (bound, then released), on loopback.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let url = format!("postgres://nobody:x@127.0.0.1:{port}/none");
        let pool = build_pool(&url, 1, Duration::from_millis(300));
        assert!(pool.get().is_err());
        pool.close(Duration::from_secs(5));
        assert_eq!(pool.gate.connecting.load(Ordering::SeqCst), 0);
    }
}
