//! Look-ups by an individual's full ID number: every one is audited (who, when, and the keyed hash
//! of the number, never the number), and a bank's are counted against a daily quota kept in the
//! database, so that the exact-match search a bank needs to verify a borrower (R15) cannot be run
//! often enough to complete a masked number by trial.

use actix_web::http::StatusCode;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::json;

use crate::audit;
use crate::auth::{Principal, Role};
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::schema::id_lookup_counts as lc;

/// The stable code of the 429 a bank gets once its quota for the day is used up.
pub use crate::error::QUOTA_EXCEEDED;

/// What counts against a quota: the bank (all its users and API clients together, so that more
/// accounts do not buy more guesses), or the principal itself when it names no party.
fn bank_key(who: &Principal) -> String {
    match who.party_id {
        Some(p) => format!("party:{p}"),
        None => format!("principal:{}", who.id),
    }
}

/// Charges one look-up by the ID number whose keyed hash is `hash`, made through `route`, and
/// audits it. Banks are refused with a 429 once `quota` look-ups were made today (UTC); other
/// roles are audited but not limited (operators and regulators act under their own audit, an
/// enterprise or individual can only find itself).
///
/// The count is a conditional increment of one row per bank and day: atomic on both backends, so
/// concurrent requests in several processes never go past the quota.
pub fn charge(
    conn: &mut DbConn,
    who: &Principal,
    hash: &str,
    route: &str,
    quota: i64,
    now: NaiveDateTime,
) -> ApiResult<()> {
    crate::db::write_tx(conn, |conn| {
        charge_in_tx(conn, who, hash, route, quota, now)
    })
}

fn charge_in_tx(
    conn: &mut DbConn,
    who: &Principal,
    hash: &str,
    route: &str,
    quota: i64,
    now: NaiveDateTime,
) -> ApiResult<()> {
    if who.role == Role::Bank {
        let (key, day) = (bank_key(who), now.date());
        crate::insert_or_ignore!(
            conn,
            lc::table,
            (lc::bank_key.eq(&key), lc::day.eq(day), lc::used.eq(0))
        )?;
        let limit = i32::try_from(quota).unwrap_or(i32::MAX);
        let n = diesel::update(
            lc::table
                .filter(lc::bank_key.eq(&key))
                .filter(lc::day.eq(day))
                .filter(lc::used.lt(limit)),
        )
        .set(lc::used.eq(lc::used + 1))
        .execute(conn)?;
        if n == 0 {
            tracing::warn!(actor = %who.actor(), route, "ID-number look-up quota exceeded");
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                QUOTA_EXCEEDED,
                format!(
                    "this bank has made its {quota} look-ups by ID number for today; the quota resets at 00:00 UTC"
                ),
            ));
        }
    }
    audit::record(
        conn,
        audit::Event {
            chain: format!("id_lookup:{}", bank_key(who)),
            actor: &who.actor(),
            action: "party.id_number_lookup",
            object_type: "id_number",
            object_id: hash.to_string(),
            payload: json!({"id_number_hash": hash, "route": route}),
            at: now,
        },
    )?;
    Ok(())
}

/// Drops the counts of days before `day` (the retention sweep).
pub fn forget_before(conn: &mut DbConn, day: chrono::NaiveDate) -> QueryResult<usize> {
    diesel::delete(lc::table.filter(lc::day.lt(day))).execute(conn)
}
