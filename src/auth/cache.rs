//! The principals' state (enabled, token version, role, party) kept in each server process's
//! memory, so that authenticating a request reads nothing from the database.
//!
//! Revocation stays immediate because every change of a principal reaches every process before
//! the process trusts its memory again:
//!
//! - PostgreSQL: a trigger announces each changed principal on channel `registry_principals`
//!   when its transaction commits (NOTIFY). Each process listens on a connection of its own.
//!   NOTIFY is delivered asynchronously, so before a request trusts the memory the listener makes
//!   one round trip (`SELECT 1`) that began after the request arrived: PostgreSQL sends a
//!   session every notification committed before its statement ends, so every change committed
//!   before the request has then been heard and applied. Concurrent requests share one round
//!   trip (it is not a statement of theirs and reads no table). While the listener connection is
//!   down the memory is not trusted and every request reads its principal from the database, as
//!   before; when it is back, everything remembered is forgotten (changes made meanwhile were not
//!   heard).
//! - SQLite: the process that changes a principal forgets it once its transaction has committed
//!   ([`changed`], applied by `db::write_tx`), and writes a new value into a small file beside the
//!   database that every process on that file reads before each request (one `pread`); a value it
//!   has not seen makes it forget everything.
//!
//! A remembered principal is only ever stored by a reader that began while the memory was
//! trusted and during which nothing was forgotten (the epoch did not move), so a read that raced
//! with a change can never put the old state back.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, OnceLock};

use std::time::Duration;
use tokio::sync::watch;

use diesel::prelude::*;

use super::store::PrincipalRow;
use crate::db::{Backend, DbConn};

/// The NOTIFY channel of the trigger `principals_changed` (PostgreSQL).
const CHANNEL: &str = "registry_principals";
/// How long a request waits for the listener's round trip before reading its principal itself.
const SYNC_WAIT: Duration = Duration::from_secs(1);
/// The listener connection's `application_name`.
pub const LISTENER_NAME: &str = "registry-principal-listener";
/// At most this many principals are remembered; beyond it memory starts afresh.
const CAPACITY: usize = 100_000;
/// How often the listener connection is proven alive with a statement when nothing else uses it.
const LISTENER_PING: Duration = Duration::from_secs(5);
/// Wait between attempts to reconnect the listener.
const RECONNECT_WAIT: Duration = Duration::from_millis(500);

/// What a request needs to know about its principal.
#[derive(Debug, Clone)]
pub struct Cached {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub party_id: Option<i64>,
    pub person_id: Option<String>,
    pub disabled: bool,
    pub token_version: i64,
}

impl From<&PrincipalRow> for Cached {
    fn from(p: &PrincipalRow) -> Cached {
        Cached {
            id: p.id,
            username: p.username.clone(),
            role: p.role.clone(),
            party_id: p.party_id,
            person_id: p.person_id.clone(),
            disabled: p.disabled,
            token_version: p.token_version,
        }
    }
}

/// The answer of [`lookup`].
pub enum Lookup {
    /// Remembered, and the memory is trusted.
    Hit(Cached),
    /// Read it from the database; with a ticket, [`remember`] may keep what was read.
    Miss(Option<u64>),
}

struct Memory {
    /// Moved on by every forgetting.
    epoch: u64,
    principals: HashMap<i64, Cached>,
}

/// How this process hears of changes made elsewhere.
enum Source {
    Postgres(Arc<Listener>),
    Sqlite(Signal),
}

struct PrincipalCache {
    memory: Mutex<Memory>,
    source: Source,
}

static CACHE: OnceLock<PrincipalCache> = OnceLock::new();

impl PrincipalCache {
    fn forget(&self, id: Option<i64>) {
        let mut m = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        m.epoch += 1;
        match id {
            Some(id) => {
                m.principals.remove(&id);
            }
            None => m.principals.clear(),
        }
    }
}

/// The remembered state of principal `id`, if the memory may be trusted now.
pub async fn lookup(id: i64) -> Lookup {
    let Some(cache) = CACHE.get() else {
        return Lookup::Miss(None);
    };
    let current = match &cache.source {
        Source::Postgres(listener) => listener.sync().await,
        Source::Sqlite(signal) => signal.catch_up(cache),
    };
    if !current {
        return Lookup::Miss(None);
    }
    let m = cache.memory.lock().unwrap_or_else(|e| e.into_inner());
    match m.principals.get(&id) {
        Some(c) => Lookup::Hit(c.clone()),
        None => Lookup::Miss(Some(m.epoch)),
    }
}

/// Keeps `row`, read from the database after [`lookup`] gave `ticket`, unless something was
/// forgotten since (the read may then predate the change).
pub fn remember(ticket: u64, row: &PrincipalRow) {
    let Some(cache) = CACHE.get() else { return };
    let mut m = cache.memory.lock().unwrap_or_else(|e| e.into_inner());
    if m.epoch != ticket {
        return;
    }
    if m.principals.len() >= CAPACITY {
        m.principals.clear();
    }
    m.principals.insert(row.id, Cached::from(row));
}

thread_local! {
    /// Principals changed by the transaction running on this thread (SQLite), forgotten when it
    /// has committed or rolled back.
    static PENDING: RefCell<Vec<i64>> = const { RefCell::new(Vec::new()) };
}

/// Announces that principal `id` changed. Called by every function of the store that changes a
/// principal, right after its statement; applied when the enclosing write transaction has ended
/// ([`after_write`]), or at once outside a transaction. On PostgreSQL the trigger's notification
/// tells every process; this process also forgets at once, without waiting for it.
pub fn changed(conn: &mut DbConn, id: i64) {
    let in_transaction = match conn {
        DbConn::Pg(c) => in_transaction(c),
        DbConn::Sqlite(c) => in_transaction(c),
    };
    PENDING.with(|p| p.borrow_mut().push(id));
    if !in_transaction {
        after_write();
    }
}

fn in_transaction<C>(c: &mut C) -> bool
where
    C: diesel::Connection<TransactionManager = diesel::connection::AnsiTransactionManager>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    AnsiTransactionManager::transaction_manager_status_mut(c)
        .transaction_depth()
        .map(|d| d.is_some())
        .unwrap_or(true)
}

/// Applies the changes announced by the write transaction that just ended on this thread (the
/// other processes hear of them from the trigger, or the signal file).
pub fn after_write() {
    let ids = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    if ids.is_empty() {
        return;
    }
    let Some(cache) = CACHE.get() else { return };
    if let Source::Sqlite(signal) = &cache.source {
        signal.announce();
    }
    for id in ids {
        cache.forget(Some(id));
    }
}

/// Starts remembering principals for a server on `url`; [`Started::close`] it before the process
/// exits. A second start in one process keeps the first (one database per process).
pub fn start(url: &str) -> Started {
    let mut listener = None;
    let source = match Backend::of_url(url) {
        Backend::Postgres => {
            let l = Listener::new(url);
            listener = Some(l.clone());
            Source::Postgres(l)
        }
        Backend::Sqlite => {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            Source::Sqlite(Signal::open(PathBuf::from(format!("{path}-principals"))))
        }
    };
    let fresh = CACHE
        .set(PrincipalCache {
            memory: Mutex::new(Memory {
                epoch: 0,
                principals: HashMap::new(),
            }),
            source,
        })
        .is_ok();
    let thread = match (fresh, listener) {
        (true, Some(l)) => {
            let (done_tx, done_rx) = mpsc::channel();
            let spawned = std::thread::Builder::new()
                .name("principal-listener".into())
                .spawn(move || {
                    if let Some(cache) = CACHE.get() {
                        l.run(cache);
                    }
                    let _ = done_tx.send(());
                });
            match spawned {
                Ok(_) => Some(done_rx),
                Err(e) => {
                    tracing::warn!(%e, "principal listener not started: every request reads its principal");
                    None
                }
            }
        }
        _ => None,
    };
    Started { thread }
}

/// The running cache's listener thread, if any.
pub struct Started {
    thread: Option<mpsc::Receiver<()>>,
}

impl Started {
    /// Stops the listener and waits (at most `wait`) until its thread has left libpq, so that the
    /// process may exit (see `db::pool` on why a thread inside libpq at exit is fatal).
    pub fn close(self, wait: Duration) {
        let Some(done) = self.thread else { return };
        if let Some(PrincipalCache {
            source: Source::Postgres(l),
            ..
        }) = CACHE.get()
        {
            l.closed.store(true, Ordering::SeqCst);
            let _g = l.wake.0.lock().unwrap_or_else(|e| e.into_inner());
            l.wake.1.notify_all();
        }
        if done.recv_timeout(wait).is_err() {
            tracing::warn!("principal listener still connecting at exit");
        }
    }
}

/// The PostgreSQL connection that LISTENs (owned by its thread), and the round trips that
/// requests wait for.
struct Listener {
    url: String,
    closed: AtomicBool,
    /// True while the connection is up and listening.
    up: AtomicBool,
    /// The last round trip asked for by a request.
    asked: AtomicU64,
    /// Wakes the thread when a request asks.
    wake: (Mutex<()>, Condvar),
    /// The last request whose round trip is done (all asked before it began).
    done: watch::Sender<u64>,
}

impl Listener {
    fn new(url: &str) -> Arc<Listener> {
        Arc::new(Listener {
            url: url.to_string(),
            closed: AtomicBool::new(false),
            up: AtomicBool::new(false),
            asked: AtomicU64::new(0),
            wake: (Mutex::new(()), Condvar::new()),
            done: watch::channel(0).0,
        })
    }

    /// Waits for a round trip of the listener that began after this call, so that every change
    /// committed before it has been applied; false when the listener is down (or too slow).
    async fn sync(&self) -> bool {
        if !self.up.load(Ordering::SeqCst) {
            return false;
        }
        let mut done = self.done.subscribe();
        let ticket = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        {
            let _g = self.wake.0.lock().unwrap_or_else(|e| e.into_inner());
            self.wake.1.notify_one();
        }
        let waited = tokio::time::timeout(SYNC_WAIT, done.wait_for(|d| *d >= ticket)).await;
        matches!(waited, Ok(Ok(_))) && self.up.load(Ordering::SeqCst)
    }

    fn run(&self, cache: &PrincipalCache) {
        let mut conn: Option<PgConnection> = None;
        while !self.closed.load(Ordering::SeqCst) {
            let Some(c) = conn.as_mut() else {
                match self.connect() {
                    Ok(c) => {
                        // Changes made while nobody listened were not heard.
                        cache.forget(None);
                        conn = Some(c);
                        self.up.store(true, Ordering::SeqCst);
                        tracing::info!("principal listener connected");
                    }
                    Err(e) => {
                        tracing::debug!(%e, "principal listener cannot connect");
                        std::thread::sleep(RECONNECT_WAIT);
                    }
                }
                continue;
            };
            {
                let g = self.wake.0.lock().unwrap_or_else(|e| e.into_inner());
                let done = *self.done.borrow();
                if self.asked.load(Ordering::SeqCst) <= done {
                    // Nobody waits: an idle round trip now and then proves the connection alive.
                    let _ = self.wake.1.wait_timeout(g, LISTENER_PING);
                }
            }
            let target = self.asked.load(Ordering::SeqCst);
            let ok = diesel::sql_query("SELECT 1").execute(c).is_ok() && drain(c, cache);
            if !ok {
                conn = None;
                self.up.store(false, Ordering::SeqCst);
                cache.forget(None);
                tracing::warn!("principal listener lost its connection: principals are read per request until it is back");
            }
            // Wakes the waiters either way; they see `up` false after a failure.
            let before = *self.done.borrow();
            self.done.send_replace(target.max(before));
        }
        self.up.store(false, Ordering::SeqCst);
        // Closed on this thread, which the process waits for before it exits.
        drop(conn);
    }

    fn connect(&self) -> Result<PgConnection, Box<dyn std::error::Error>> {
        // Named, so that an operator (or a test) can tell it in pg_stat_activity.
        let sep = if self.url.contains('?') { '&' } else { '?' };
        let url = format!("{}{sep}application_name={LISTENER_NAME}", self.url);
        let mut c = PgConnection::establish(&url)?;
        diesel::sql_query(format!("LISTEN {CHANNEL}")).execute(&mut c)?;
        Ok(c)
    }
}

/// Applies the notifications received on the listener connection; false when it is down.
fn drain(c: &mut PgConnection, cache: &PrincipalCache) -> bool {
    for n in c.notifications_iter() {
        match n {
            Ok(n) if n.channel == CHANNEL => cache.forget(n.payload.parse().ok()),
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    true
}

/// The file through which processes on one SQLite database tell each other that principals
/// changed: 16 bytes, rewritten with a new random value at each change.
struct Signal {
    path: PathBuf,
    file: Option<File>,
    seen: Mutex<[u8; 16]>,
}

impl Signal {
    fn open(path: PathBuf) -> Signal {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            // Private like the database beside it.
            .mode(0o600)
            .open(&path)
            .map_err(|e| tracing::warn!(%e, path = %path.display(), "principal signal file: every request reads its principal"))
            .ok();
        let mut seen = [0u8; 16];
        if let Some(f) = &file {
            let _ = f.read_at(&mut seen, 0);
        }
        Signal {
            path,
            file,
            seen: Mutex::new(seen),
        }
    }

    fn read(&self) -> Option<[u8; 16]> {
        let f = self.file.as_ref()?;
        let mut now = [0u8; 16];
        let n = f.read_at(&mut now, 0).ok()?;
        // Never written (a fresh file reads as zeros) or written in full.
        (n == 0 || n == 16).then_some(now)
    }

    fn catch_up(&self, cache: &PrincipalCache) -> bool {
        let Some(now) = self.read() else {
            return false;
        };
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if *seen != now {
            cache.forget(None);
            *seen = now;
        }
        true
    }

    fn announce(&self) {
        let value: [u8; 16] = rand::random();
        let written = self
            .file
            .as_ref()
            .map(|f| f.write_at(&value, 0).map(|n| n == 16));
        if !matches!(written, Some(Ok(true))) {
            tracing::error!(path = %self.path.display(), "cannot signal a change of principals to other processes");
        }
    }
}
