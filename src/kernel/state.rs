//! What every handler shares: the pool, the keys, the clock and the limits. It sits below every
//! domain module (it knows none of them), so a module that needs the state does not depend on
//! `app`, which wires the modules together.

use std::sync::Arc;

use actix_web::web;

use super::clock::Clock;
use crate::config::HashCost;
use crate::db::{self, DbConn, DbPool};
use crate::error::ApiResult;
use crate::keys::jwt::Keys;
use crate::keys::Secrets;

/// What every handler shares. Cheap to clone.
pub struct AppState {
    pub pool: DbPool,
    pub keys: Arc<Keys>,
    pub secrets: Arc<Secrets>,
    pub clock: Clock,
    pub token_ttl: i64,
    pub hash_cost: HashCost,
    pub test_clock: bool,
    pub exposure: crate::config::ExposureLimits,
}

impl AppState {
    /// Runs blocking database work on the blocking pool with a pooled connection.
    pub async fn db<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> ApiResult<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        // Statements, pool checkout included, count towards the request (see `db::counting`).
        let counter = db::request_counter();
        web::block(move || {
            db::attribute(counter.as_deref(), || {
                let mut conn = pool.get()?;
                let out = f(&mut conn);
                // Principals changed by a transaction not opened through `db::write_tx`.
                db::after_write();
                out
            })
        })
        .await?
    }
}
