//! What every connection reports about its statements, through diesel's instrumentation:
//!
//! - a count of the statements issued, per thread, which [`crate::kernel::state::AppState::db`] adds up per
//!   request (the statement-budget test reads it; the service reports it to a test only);
//! - whether a statement failed because the connection to PostgreSQL is gone. Such a connection
//!   is discarded when it goes back to the pool, and every other idle connection is tested before
//!   its next use, instead of every checkout paying a ping.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

thread_local! {
    static STATEMENTS: Cell<u64> = const { Cell::new(0) };
}

tokio::task_local! {
    static REQUEST_STATEMENTS: Arc<AtomicU64>;
}

/// Statements issued on this thread so far (by any connection).
pub fn statements_on_this_thread() -> u64 {
    STATEMENTS.with(Cell::get)
}

/// The counter of the request being served by this task, if any.
pub fn request_counter() -> Option<Arc<AtomicU64>> {
    REQUEST_STATEMENTS.try_with(Arc::clone).ok()
}

/// Runs `fut` (a request) with its own statement counter; returns the counter with the output.
pub async fn counting<F: std::future::Future>(fut: F) -> (F::Output, u64) {
    let counter = Arc::new(AtomicU64::new(0));
    let out = REQUEST_STATEMENTS.scope(counter.clone(), fut).await;
    (out, counter.load(Ordering::Relaxed))
}

/// Adds the statements `f` issues on this thread to the current request's counter.
pub fn attribute<T>(counter: Option<&AtomicU64>, f: impl FnOnce() -> T) -> T {
    let before = statements_on_this_thread();
    let out = f();
    if let Some(c) = counter {
        c.fetch_add(
            statements_on_this_thread().saturating_sub(before),
            Ordering::Relaxed,
        );
    }
    out
}

/// True when a query failed because the connection is gone (server stopped, connection cut,
/// backend terminated), as opposed to an error in the statement itself.
pub fn is_connection_error(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        // libpq reports a lost server as a generic error whose message names the connection.
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let m = info.message().to_ascii_lowercase();
            m.contains("connection") || m.contains("terminating") || m.contains("server closed")
        }
        _ => false,
    }
}

/// The instrumentation installed on every pooled connection.
pub struct Watch {
    /// Set once a statement failed with a connection error: the pool drops the connection.
    pub broken: Arc<AtomicBool>,
    /// Shared by the pool's connections: moved on by every connection error, so each other
    /// connection is tested before it is used again.
    pub suspicion: Arc<AtomicU64>,
    /// PostgreSQL (a connection over a socket); an embedded SQLite connection cannot be lost.
    pub remote: bool,
}

impl Instrumentation for Watch {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { .. } => {
                STATEMENTS.with(|c| c.set(c.get() + 1));
            }
            InstrumentationEvent::FinishQuery { error: Some(e), .. }
                if self.remote && is_connection_error(e) =>
            {
                self.broken.store(true, Ordering::SeqCst);
                self.suspicion.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
    }
}
