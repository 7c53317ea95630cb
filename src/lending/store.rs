//! Financing requests in the database: rows, events, the reservation of their collateral, the
//! single-winner take, and the steps that reopen, fund or withdraw a request. Every function runs
//! inside the caller's write transaction.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::{json, Value};

use super::rules::RequestStatus;
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::rights::ledger::{self, Movement, Side};
use crate::rights::store::LotRow;
use crate::rights::Bucket;
use crate::schema::{financing_request_events as ev, financing_requests as fr, pledges as pl};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = fr)]
pub struct RequestRow {
    pub id: i64,
    pub applicant_id: i64,
    pub amount: i64,
    pub term_months: i32,
    pub purpose: String,
    pub green_tag: String,
    pub lot_id: i64,
    pub quantity: i64,
    pub collateral_value: Option<i64>,
    pub valuation_method: String,
    pub valued_on: chrono::NaiveDate,
    pub status: String,
    pub bank_id: Option<i64>,
    pub pledge_id: Option<i64>,
    pub taken_at: Option<NaiveDateTime>,
    pub response_due: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl RequestRow {
    pub fn status(&self) -> RequestStatus {
        RequestStatus::parse(&self.status).unwrap_or(RequestStatus::Withdrawn)
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ev)]
pub struct EventRow {
    pub id: i64,
    pub request_id: i64,
    pub event: String,
    pub bank_id: Option<i64>,
    pub detail: String,
    pub actor: String,
    pub at: NaiveDateTime,
}

pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<RequestRow>> {
    fr::table
        .find(id)
        .select(RequestRow::as_select())
        .first(conn)
        .optional()
}

pub fn events(conn: &mut DbConn, id: i64) -> QueryResult<Vec<EventRow>> {
    ev::table
        .filter(ev::request_id.eq(id))
        .order(ev::id)
        .select(EventRow::as_select())
        .load(conn)
}

/// Records one step of a request: its event (what the applicant reads and the feed gives), the
/// audit event, and a notification to the applicant and, when one is involved, the bank.
pub fn record(
    conn: &mut DbConn,
    r: &RequestRow,
    event: &str,
    bank: Option<i64>,
    detail: Value,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    diesel::insert_into(ev::table)
        .values((
            ev::request_id.eq(r.id),
            ev::event.eq(event),
            ev::bank_id.eq(bank),
            ev::detail.eq(detail.to_string()),
            ev::actor.eq(actor),
            ev::at.eq(at),
        ))
        .execute(conn)?;
    crate::audit::record(
        conn,
        crate::audit::Event {
            chain: format!("lot:{}", r.lot_id),
            actor,
            action: &format!("financing_request.{event}"),
            object_type: "financing_request",
            object_id: r.id.to_string(),
            payload: json!({"request_id": r.id, "bank_id": bank, "detail": detail}),
            at,
        },
    )?;
    let data =
        json!({"financing_request_id": r.id, "event": event, "bank_id": bank, "detail": detail});
    let key = format!("financing_request:{}", r.id);
    let name = format!("financing_request.{event}");
    crate::audit::outbox::enqueue(conn, r.applicant_id, &key, &name, data.clone(), at)?;
    if let Some(b) = bank {
        crate::audit::outbox::enqueue(conn, b, &key, &name, data, at)?;
    }
    Ok(())
}

/// Moves the request's quantity between the applicant's `available` and `reserved` buckets
/// (the lot must be locked by the caller).
pub fn move_reservation(
    conn: &mut DbConn,
    r: &RequestRow,
    lot: &LotRow,
    reserve: bool,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    let (from, to, cause) = if reserve {
        (Bucket::Available, Bucket::Reserved, "financing_reserve")
    } else {
        (Bucket::Reserved, Bucket::Available, "financing_release")
    };
    ledger::move_quantity(
        conn,
        Movement {
            lot,
            from: Side::holder(r.applicant_id, from),
            to: Side::holder(r.applicant_id, to),
            quantity: r.quantity,
            cause,
            reference: format!("financing_request:{}", r.id),
            actor,
            at,
            acquisition: None,
            named_serials: None,
        },
    )?;
    Ok(())
}

/// The single-winner take: one conditional UPDATE from `open` to `taken` by `bank`. Of banks
/// racing, in any number of processes, exactly one changes the row; the others see 0 rows.
pub fn claim(
    conn: &mut DbConn,
    id: i64,
    bank: i64,
    now: NaiveDateTime,
    due: NaiveDateTime,
) -> ApiResult<bool> {
    let n = diesel::update(
        fr::table
            .filter(fr::id.eq(id))
            .filter(fr::status.eq(RequestStatus::Open.as_str())),
    )
    .set((
        fr::status.eq(RequestStatus::Taken.as_str()),
        fr::bank_id.eq(bank),
        fr::taken_at.eq(now),
        fr::response_due.eq(due),
        fr::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn request_taken(r: &RequestRow) -> ApiError {
    ApiError::conflict(
        "request_taken",
        format!(
            "this financing request is {}: another bank took it first or it is no longer open",
            r.status
        ),
    )
}

/// Opens the pledge application to the taking bank: the applicant pledges the request's quantity
/// to it, on the request's terms (recorded in the application's first entry). Returns its id.
pub fn open_pledge(
    conn: &mut DbConn,
    r: &RequestRow,
    bank: i64,
    actor: &str,
    now: NaiveDateTime,
) -> ApiResult<i64> {
    diesel::insert_into(pl::table)
        .values((
            pl::lot_id.eq(r.lot_id),
            pl::pledgor_id.eq(r.applicant_id),
            pl::lender_id.eq(bank),
            pl::quantity.eq(r.quantity),
            pl::applied_quantity.eq(r.quantity),
            pl::status.eq("applied"),
            pl::created_at.eq(now),
            pl::updated_at.eq(now),
        ))
        .execute(conn)?;
    let p = crate::collateral::PledgeRow::as_select();
    let p: crate::collateral::PledgeRow = pl::table
        .filter(pl::pledgor_id.eq(r.applicant_id))
        .filter(pl::lot_id.eq(r.lot_id))
        .filter(pl::lender_id.eq(bank))
        .order(pl::id.desc())
        .select(p)
        .first(conn)?;
    crate::collateral::add_entry(
        conn,
        &p,
        "applied",
        json!({"quantity": r.quantity, "lender_id": bank, "financing_request_id": r.id,
            "requested_amount": crate::kernel::amount::Dec::money(r.amount), "term_months": r.term_months}),
        actor,
        now,
    )?;
    diesel::update(fr::table.find(r.id))
        .set(fr::pledge_id.eq(p.id))
        .execute(conn)?;
    Ok(p.id)
}

/// Ends the application a taken request opened, if it is still an application (the bank may
/// have declined it through the pledge itself).
pub fn close_pledge(
    conn: &mut DbConn,
    r: &RequestRow,
    why: &str,
    actor: &str,
    now: NaiveDateTime,
) -> ApiResult<()> {
    let Some(id) = r.pledge_id else {
        return Ok(());
    };
    let n = diesel::update(
        pl::table
            .filter(pl::id.eq(id))
            .filter(pl::status.eq("applied")),
    )
    .set((pl::status.eq("withdrawn"), pl::updated_at.eq(now)))
    .execute(conn)?;
    if n == 1 {
        if let Some(p) = crate::collateral::find(conn, id)? {
            crate::collateral::add_entry(
                conn,
                &p,
                "withdrawn",
                json!({"reason": why, "financing_request_id": r.id}),
                actor,
                now,
            )?;
        }
    }
    Ok(())
}

/// Reopens a taken request (declined, or its window lapsed): conditional on it still being taken
/// by `bank`, so a concurrent accept or a second sweep changes nothing twice.
pub fn reopen(
    conn: &mut DbConn,
    r: &RequestRow,
    event: &str,
    detail: Value,
    actor: &str,
    now: NaiveDateTime,
) -> ApiResult<bool> {
    let Some(bank) = r.bank_id else {
        return Ok(false);
    };
    let n = diesel::update(
        fr::table
            .filter(fr::id.eq(r.id))
            .filter(fr::status.eq(RequestStatus::Taken.as_str()))
            .filter(fr::bank_id.eq(bank)),
    )
    .set((
        fr::status.eq(RequestStatus::Open.as_str()),
        fr::bank_id.eq(None::<i64>),
        fr::pledge_id.eq(None::<i64>),
        fr::taken_at.eq(None::<NaiveDateTime>),
        fr::response_due.eq(None::<NaiveDateTime>),
        fr::updated_at.eq(now),
    ))
    .execute(conn)?;
    if n == 0 {
        return Ok(false);
    }
    close_pledge(conn, r, event, actor, now)?;
    record(conn, r, event, Some(bank), detail, actor, now)?;
    Ok(true)
}
