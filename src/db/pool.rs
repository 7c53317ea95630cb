//! An r2d2 pool over [`DbConn`] whose manager applies the SQLite pragmas to every connection.

use std::time::Duration;

use diesel::r2d2::R2D2Connection;

use super::{establish, Backend, DbConn};

pub type DbPool = r2d2::Pool<Manager>;

pub struct Manager {
    url: String,
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConn, Self::Error> {
        establish(&self.url).map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken()
    }
}

/// Builds the pool. A checkout waits at most `timeout`, so a database outage turns into a quick
/// 503 rather than a hung request; connections are tested on checkout so the pool heals itself
/// when the database comes back.
pub fn build_pool(url: &str, max_size: u32, timeout: Duration) -> Result<DbPool, r2d2::Error> {
    let size = match Backend::of_url(url) {
        Backend::Postgres => max_size,
        // One writer at a time anyway; a few readers in WAL mode.
        Backend::Sqlite => max_size.min(8),
    };
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(timeout)
        .test_on_check_out(true)
        .build(Manager {
            url: url.to_string(),
        })
}
