//! Where password hashes are computed: a few threads of their own (one per core), not the blocking
//! pool that database work runs on. Each Argon2 hash takes 19 MiB and tens of milliseconds of a
//! core; hashing on the shared blocking pool let a flood of logins run hundreds at once, starve
//! database work and leave gigabytes of memory behind. Here at most one hash per thread runs; a
//! caller waits briefly for a turn and otherwise gets a 503 `login_busy` with `Retry-After`.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix_web::http::StatusCode;
use tokio::sync::{oneshot, Semaphore};

use crate::error::ApiError;

/// How long a caller waits for a hashing turn before it is told to come back.
pub const MAX_WAIT: Duration = Duration::from_secs(2);
/// What `Retry-After` says to a caller that found every hashing thread busy.
pub const BUSY_RETRY_AFTER_SECS: u64 = 2;

type Job = Box<dyn FnOnce() + Send>;

struct Gate {
    turns: Semaphore,
    jobs: Mutex<mpsc::Sender<Job>>,
    threads: usize,
}

/// Hashing threads: one per core, at most 8 (each hash uses 19 MiB, so memory stays bounded by
/// the thread count whatever the load).
fn thread_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8)
}

fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| {
        let threads = thread_count();
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Gate {
            turns: Semaphore::new(threads),
            jobs: Mutex::new(tx),
            threads,
        }
    })
}

/// The number of hashes that may run at once in this process.
pub fn capacity() -> usize {
    gate().threads
}

/// The 503 for a caller that found no free hashing thread within [`MAX_WAIT`].
pub fn busy() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "login_busy",
        "too many logins at once; retry shortly",
    )
}

/// A turn on a hashing thread: while a caller holds it, it may run hashes; at most as many turns
/// exist as threads.
pub struct Turn(#[allow(dead_code)] tokio::sync::SemaphorePermit<'static>);

/// Waits at most [`MAX_WAIT`] for a turn.
pub async fn turn() -> Result<Turn, ApiError> {
    match tokio::time::timeout(MAX_WAIT, gate().turns.acquire()).await {
        Ok(Ok(permit)) => Ok(Turn(permit)),
        _ => Err(busy()),
    }
}

impl Turn {
    /// Runs `f` (a hash or a verification) on a hashing thread.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        let sent = gate()
            .jobs
            .lock()
            .map_err(|_| ApiError::internal("password hashing stopped"))?
            .send(job);
        if sent.is_err() {
            return Err(ApiError::internal("password hashing stopped"));
        }
        rx.await
            .map_err(|_| ApiError::internal("password hashing stopped"))
    }
}

/// Runs `f` on a hashing thread, waiting at most [`MAX_WAIT`] for a turn.
pub async fn run<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    turn().await?.run(f).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// However many callers ask at once, no more hashes run together than there are threads.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn at_most_capacity_hashes_run_at_once() {
        static RUNNING: AtomicUsize = AtomicUsize::new(0);
        static PEAK: AtomicUsize = AtomicUsize::new(0);
        let mut tasks = Vec::new();
        for _ in 0..(capacity() * 4) {
            tasks.push(tokio::spawn(run(|| {
                let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
                PEAK.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                RUNNING.fetch_sub(1, Ordering::SeqCst);
            })));
        }
        for t in tasks {
            let _ = t.await;
        }
        assert!(PEAK.load(Ordering::SeqCst) <= capacity());
        assert!(PEAK.load(Ordering::SeqCst) >= 1);
    }
}
