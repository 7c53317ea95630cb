//! Retention: what the registry keeps only for a while. Idempotency records serve retries (days);
//! search certificates serve banks that verify them again (years); page sessions and ID-number
//! look-up counts only until they end. The background sweep deletes what is older.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

use crate::config::ExposureLimits;
use crate::db::DbConn;
use crate::schema::{idempotency_keys as ik, search_certificates as sc};

/// What one sweep deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub idempotency_records: usize,
    pub certificates: usize,
    pub page_sessions: usize,
    pub lookup_counts: usize,
}

/// Deletes idempotency records and search certificates older than their retention, and ended
/// page sessions and past days' look-up counts. (A committed idempotency record is always a
/// finished one: the record commits with its effect.)
pub fn sweep(conn: &mut DbConn, now: NaiveDateTime, limits: &ExposureLimits) -> QueryResult<Swept> {
    let idem_before = now - TimeDelta::days(limits.idempotency_retention_days);
    let cert_before = now - TimeDelta::days(limits.certificate_retention_days);
    // One write transaction, so that on SQLite the sweep takes its turn with the other writers.
    crate::db::write_tx(conn, |conn| {
        Ok(Swept {
            idempotency_records: diesel::delete(ik::table.filter(ik::created_at.lt(idem_before)))
                .execute(conn)?,
            certificates: diesel::delete(sc::table.filter(sc::created_at.lt(cert_before)))
                .execute(conn)?,
            page_sessions: crate::collateral::page::forget_sessions(conn, now)?,
            lookup_counts: crate::parties::lookups::forget_before(conn, now.date())?,
        })
    })
}
