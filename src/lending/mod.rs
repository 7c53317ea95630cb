//! Financing requests (融资需求) and banks taking them online (抢单), for the provincial 金服云
//! platform's Nanping green-finance zone. An enterprise or individual posts the amount, term,
//! purpose and green tag of the loan it seeks and offers a quantity of one of its holdings as
//! collateral; the quantity is valued (R3) and reserved. Banks see open requests with the
//! collateral's value and encumbrance status, not who the applicant is. One bank takes a request
//! (a conditional UPDATE: of banks racing, one wins, the others get 409 `request_taken`); taking
//! opens the pledge application to that bank on the request's terms, and the bank accepts it
//! through the pledge's own registration (`POST /v1/pledges/{id}/accept`) or declines within the
//! response window, after which the request reopens.

pub mod routes;
pub mod rules;
pub mod store;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::collateral::PledgeRow;
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::Dec;
use crate::rights::store::LotRow;
use crate::schema::{financing_requests as fr, pledges as pl};
use rules::RequestStatus;

pub use routes::configure;

/// Called by the pledge registration, in its transaction, before it moves the pledged quantity:
/// when the pledge was opened by a financing request, the taking bank must still be within its
/// response window and lend no more than was asked; the reserved quantity is then released to
/// the applicant's `available` bucket (from where the registration pledges it) and the request
/// is funded. Any refusal rolls the whole registration back.
pub fn release_for_pledge(
    conn: &mut DbConn,
    p: &PledgeRow,
    lot: &LotRow,
    secured: i64,
    actor: &str,
    now: NaiveDateTime,
) -> ApiResult<()> {
    let row: Option<store::RequestRow> = fr::table
        .filter(fr::pledge_id.eq(p.id))
        .select(store::RequestRow::as_select())
        .first(conn)
        .optional()?;
    let Some(r) = row else {
        return Ok(());
    };
    if r.status() != RequestStatus::Taken || r.bank_id != Some(p.lender_id) {
        return Err(store::request_taken(&r));
    }
    if !rules::within_window(r.response_due, now) {
        return Err(ApiError::conflict(
            "response_window_closed",
            "the response window of this financing request has ended: the request reopens",
        ));
    }
    if !rules::secured_within_request(secured, r.amount) {
        return Err(ApiError::unprocessable(
            "exceeds_request",
            format!(
                "the secured amount exceeds the {} yuan the financing request asked for",
                Dec::money(r.amount).0
            ),
        ));
    }
    store::move_reservation(conn, &r, lot, false, actor, now)?;
    let n = diesel::update(
        fr::table
            .filter(fr::id.eq(r.id))
            .filter(fr::status.eq(RequestStatus::Taken.as_str())),
    )
    .set((
        fr::status.eq(RequestStatus::Funded.as_str()),
        fr::updated_at.eq(now),
    ))
    .execute(conn)?;
    if n != 1 {
        return Err(store::request_taken(&r));
    }
    store::record(
        conn,
        &r,
        "funded",
        r.bank_id,
        json!({"pledge_id": p.id, "secured_amount": Dec::money(secured)}),
        actor,
        now,
    )?;
    Ok(())
}

/// What a sweep pass changed.
#[derive(Debug, Default, Serialize, ToSchema, PartialEq, Eq)]
pub struct FinancingSweep {
    /// Requests reopened because the bank's response window ended or its application was
    /// declined through the pledge itself.
    pub reopened: Vec<i64>,
}

/// Reopens taken requests whose response window has ended, or whose pledge application the bank
/// declined through the pledge itself. Every process may run it: each reopening is a conditional
/// UPDATE, so it happens once.
pub fn run_sweep(
    conn: &mut DbConn,
    _today: NaiveDate,
    now: NaiveDateTime,
) -> ApiResult<FinancingSweep> {
    let taken: Vec<store::RequestRow> = fr::table
        .filter(fr::status.eq(RequestStatus::Taken.as_str()))
        .order(fr::id)
        .select(store::RequestRow::as_select())
        .load(conn)?;
    let mut out = FinancingSweep::default();
    for r in taken {
        let lapsed = !rules::within_window(r.response_due, now);
        let pledge_status: Option<String> = match r.pledge_id {
            Some(id) => pl::table
                .find(id)
                .select(pl::status)
                .first(conn)
                .optional()?,
            None => None,
        };
        let declined = pledge_status.as_deref() != Some("applied");
        if !lapsed && !declined {
            continue;
        }
        let (event, detail) = if lapsed {
            (
                "window_lapsed",
                json!({"response_due": r.response_due.map(|d| d.and_utc())}),
            )
        } else {
            (
                "declined",
                json!({"via": "pledge", "pledge_status": pledge_status}),
            )
        };
        let reopened = db::write_tx(conn, |conn| {
            store::reopen(conn, &r, event, detail, "system:financing-sweep", now)
        })?;
        if reopened {
            out.reopened.push(r.id);
        }
    }
    Ok(out)
}
