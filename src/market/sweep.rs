//! The market's clock: closes due auctions, expires listings past their end and trades past their
//! payment deadline. Run by a background task in every `serve` process and on demand by operators;
//! each item is handled in its own transaction under its lot's lock and re-checked there, so
//! several processes sweeping at once do each thing exactly once.

use actix_web::{post, web, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::listings::{self, ListingRow, SELLING};
use super::trades::{self, TradeRow};
use crate::auth::{Principal, Role};
use crate::db::{self, DbConn};
use crate::error::ApiResult;
use crate::kernel::state::AppState;
use crate::rights::store as rights;
use crate::schema::{auctions as au, listings as li, trades as tr};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(sweep_now);
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct MarketSweep {
    /// Auctions this sweep closed (awarded or failed).
    pub closed_auctions: Vec<i64>,
    /// Listings whose end passed; their unsold quantity returned.
    pub expired_listings: Vec<i64>,
    /// Trades unpaid by their deadline; their quantity returned.
    pub expired_trades: Vec<i64>,
}

pub fn run(conn: &mut DbConn, today: NaiveDate, now: NaiveDateTime) -> ApiResult<MarketSweep> {
    let mut out = MarketSweep::default();
    let auctions: Vec<i64> = au::table
        .filter(au::status.eq("scheduled"))
        .filter(au::closes_at.le(now))
        .select(au::id)
        .load(conn)?;
    for id in auctions {
        if db::write_tx(conn, |conn| {
            super::auctions::close_if_due(conn, id, today, now)
        })? {
            out.closed_auctions.push(id);
        }
    }
    let listings: Vec<ListingRow> = li::table
        .filter(li::status.eq_any(SELLING))
        .filter(li::ends_at.le(now))
        .select(ListingRow::as_select())
        .load(conn)?;
    for candidate in listings {
        let expired = db::write_tx(conn, |conn| -> ApiResult<bool> {
            let lot = rights::lock_lot(conn, candidate.lot_id)?;
            let Some(l) = listings::find(conn, candidate.id)?
                .filter(|l| SELLING.contains(&l.status.as_str()) && l.ends_at <= now)
            else {
                return Ok(false);
            };
            listings::close(conn, &l, &lot, "expired", "registry", now)?;
            Ok(true)
        })?;
        if expired {
            out.expired_listings.push(candidate.id);
        }
    }
    let unpaid: Vec<TradeRow> = tr::table
        .filter(tr::status.eq("awaiting_payment"))
        .filter(tr::pay_by.le(now))
        .select(TradeRow::as_select())
        .load(conn)?;
    for t in unpaid {
        if db::write_tx(conn, |conn| trades::expire(conn, &t, now))? {
            out.expired_trades.push(t.id);
        }
    }
    Ok(out)
}

#[utoipa::path(post, path = "/v1/market/sweep", tag = "market", operation_id = "sweepMarket",
    summary = "Close due auctions, expire ended listings and unpaid trades now (runs on the clock too)",
    responses((status = 200, description = "What changed", body = MarketSweep)))]
#[post("/v1/market/sweep")]
async fn sweep_now(state: web::Data<AppState>, who: Principal) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let (today, now) = (state.clock.today(), db::now_micros(state.clock.now()));
    let r = state.db(move |conn| run(conn, today, now)).await?;
    Ok(HttpResponse::Ok().json(r))
}
