//! The clock: pledges whose registration period ended lapse, lenders are warned 90 days ahead.

use actix_web::{post, web, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::set_status;
use crate::auth::{Principal, Role};
use crate::collateral::{add_entry, find, rules, PledgeRow};
use crate::db::{self, DbConn};
use crate::error::ApiResult;
use crate::kernel::state::AppState;
use crate::rights::store as rights;
use crate::schema::pledges as pl;

#[derive(Debug, Serialize, ToSchema)]
pub struct SweepResult {
    /// Pledges whose registration period ended unrenewed; their quantity is unfrozen.
    pub lapsed: Vec<i64>,
    /// Pledges whose lender was warned, 90 days ahead, of a coming lapse.
    pub warned: Vec<i64>,
    /// Pledges whose loan-to-value rose above the alert level (at market prices); lender told.
    pub ltv_alerts: Vec<i64>,
    /// Objections (异议登记) whose period passed without withdrawal or resolution.
    pub objections_lapsed: Vec<i64>,
}

/// Lapses pledges whose period ended and records the 90-day warnings. Idempotent; run by the
/// background task in `serve` and on demand by operators.
pub fn run_sweep(
    conn: &mut DbConn,
    today: NaiveDate,
    now: NaiveDateTime,
) -> ApiResult<SweepResult> {
    let due: Vec<PledgeRow> = pl::table
        .filter(pl::status.eq("registered"))
        .filter(pl::period_end.le(today + chrono::Days::new(rules::RENEWAL_WINDOW_DAYS as u64)))
        .select(PledgeRow::as_select())
        .load(conn)?;
    let mut out = SweepResult {
        lapsed: Vec::new(),
        warned: Vec::new(),
        ltv_alerts: Vec::new(),
        objections_lapsed: Vec::new(),
    };
    for candidate in due {
        db::write_tx(conn, |conn| -> ApiResult<()> {
            let lot = rights::lock_lot(conn, candidate.lot_id)?;
            let Some(p) = find(conn, candidate.id)?.filter(|p| p.status == "registered") else {
                return Ok(());
            };
            let Some(end) = p.period_end else {
                return Ok(());
            };
            if end < today {
                // What a judicial freeze rests on stays frozen: the court's hold outlives the pledge.
                crate::collateral::freezes::unpledge_to_holder(
                    conn,
                    &p,
                    &lot,
                    p.quantity,
                    "pledge_lapse",
                    "registry",
                    now,
                )?;
                set_status(conn, p.id, "lapsed", now)?;
                add_entry(
                    conn,
                    &p,
                    "lapsed",
                    json!({"period_end": end}),
                    "registry",
                    now,
                )?;
                out.lapsed.push(p.id);
            } else if p.lapse_warned_at.is_none() {
                diesel::update(pl::table.find(p.id))
                    .set(pl::lapse_warned_at.eq(now))
                    .execute(conn)?;
                add_entry(
                    conn,
                    &p,
                    "lapse_warning",
                    json!({"period_end": end}),
                    "registry",
                    now,
                )?;
                out.warned.push(p.id);
            }
            Ok(())
        })?;
    }
    out.ltv_alerts = crate::collateral::monitoring::monitor(conn, now)?;
    out.objections_lapsed = crate::collateral::objections::lapse_due(conn, now)?;
    Ok(out)
}

#[utoipa::path(post, path = "/v1/collateral/sweep", tag = "pledges", operation_id = "sweepPledges",
    summary = "Lapse pledges whose registration ended and warn lenders 90 days ahead (runs periodically too)",
    responses((status = 200, description = "What changed", body = SweepResult)))]
#[post("/v1/collateral/sweep")]
pub(super) async fn sweep(state: web::Data<AppState>, who: Principal) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let (today, now) = (state.clock.today(), db::now_micros(state.clock.now()));
    let r = state.db(move |conn| run_sweep(conn, today, now)).await?;
    Ok(HttpResponse::Ok().json(r))
}
