//! Loan-to-value monitoring: a pledge's collateral is valued from market prices (R3: VWAP of its
//! market, else the benchmark), else the lender's appraisal; when the loan-to-value rises above
//! the alert level the lender gets `pledge.ltv_above_threshold`, once per crossing. Checked when a
//! loan is registered or amended and by the periodic sweep, so falling prices are noticed.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde_json::json;

use super::{find, rules, PledgeRow};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::Dec;
use crate::market::{value_of, Valued};
use crate::rights::store as rights;
use crate::schema::pledges as pl;

/// The pledge's current value: (method, the market valuation if any, the appraisal otherwise).
pub fn current_value(
    conn: &mut DbConn,
    p: &PledgeRow,
    today: NaiveDate,
) -> ApiResult<(String, Option<Valued>, Option<i64>)> {
    let lot = rights::lot(conn, p.lot_id)?.ok_or_else(|| ApiError::not_found("lot"))?;
    let quantity = if p.quantity > 0 {
        p.quantity
    } else {
        p.applied_quantity
    };
    match value_of(conn, &lot, quantity, today)? {
        Some(v) => Ok((v.method.clone(), Some(v), None)),
        None => Ok(("appraisal".into(), None, p.appraisal_value)),
    }
}

/// Compares the loan-to-value of `secured` with the alert level and tells the lender when it
/// crosses above; returns true when an alert was queued.
pub fn check_ltv(
    conn: &mut DbConn,
    p: &PledgeRow,
    secured: i64,
    at: NaiveDateTime,
) -> ApiResult<bool> {
    let current = find(conn, p.id)?.unwrap_or_else(|| p.clone());
    let (method, market, appraisal) = current_value(conn, &current, at.date())?;
    let Some(value) = market
        .map(|m| m.value)
        .or(appraisal)
        .or(current.appraisal_value)
    else {
        return Ok(false);
    };
    // Collateral worth nothing (an emission right with no whole year of its term left, R3) is
    // above any level for a loan that is still owed.
    let ltv = rules::ltv_bp(secured, value);
    let above = secured > 0 && ltv.is_none_or(|l| l > rules::LTV_ALERT_BP);
    // Claim the crossing with a conditional UPDATE, so that with several processes sweeping at
    // once the lender is told once; falling back below the level re-arms the alert.
    let flipped = diesel::update(
        pl::table
            .filter(pl::id.eq(p.id))
            .filter(pl::ltv_alerted.eq(!above)),
    )
    .set(pl::ltv_alerted.eq(above))
    .execute(conn)?;
    if !above || flipped == 0 {
        return Ok(false);
    }
    let data = json!({"pledge_id": p.id, "registration_no": p.registration_no, "ltv_percent": ltv.map(Dec::money),
        "alert_percent": Dec::money(rules::LTV_ALERT_BP), "valuation_method": method});
    super::webhooks::enqueue(
        conn,
        p.lender_id,
        &format!("pledge:{}", p.id),
        "pledge.ltv_above_threshold",
        data,
        at,
    )?;
    Ok(true)
}

/// Re-values every registered pledge with a secured amount; returns those whose lender was alerted.
pub fn monitor(conn: &mut DbConn, now: NaiveDateTime) -> ApiResult<Vec<i64>> {
    let ids: Vec<i64> = pl::table
        .filter(pl::status.eq("registered"))
        .filter(pl::secured_amount.is_not_null())
        .select(pl::id)
        .load(conn)?;
    let mut alerted = Vec::new();
    for id in ids {
        let hit = db::write_tx(conn, |conn| -> ApiResult<bool> {
            let Some(p) = find(conn, id)?.filter(|p| p.status == "registered") else {
                return Ok(false);
            };
            match p.secured_amount {
                Some(s) => check_ltv(conn, &p, s, now),
                None => Ok(false),
            }
        })?;
        if hit {
            alerted.push(id);
        }
    }
    Ok(alerted)
}
