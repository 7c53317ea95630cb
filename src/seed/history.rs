//! The demo price history (seeds/trades.csv): each row is traded through the real market
//! endpoints with the seed's own clock set to its date — the broker lists, a demo enterprise buys,
//! the operator confirms payment — so the price series, the chart and market valuations have
//! real settled trades behind them and every invariant holds.

use actix_web::http::StatusCode;
use chrono::{NaiveDate, TimeDelta, Utc};
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::json;

use super::{Api, SeedError};
use crate::db::DbConn;
use crate::schema::{holdings as h, lots, trades as tr};

/// Who sells the history's quantities (it holds the lots that carry it) and who buys, in turn.
const SELLER: &str = "demo-broker";
const BUYERS: [&str; 4] = [
    "demo-enterprise",
    "demo-lvyuan",
    "demo-minbei",
    "demo-qingyun",
];

#[derive(Debug, Deserialize)]
struct Row {
    date: NaiveDate,
    right_type: String,
    pollutant: Option<String>,
    quantity: String,
    unit_price: String,
    years: Option<i32>,
}

/// Loads the history unless trades exist already; returns how many trades settled.
pub async fn load<S, B>(
    app: &S,
    api: &Api,
    conn: &mut DbConn,
    csv: &str,
) -> Result<usize, SeedError>
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let existing: i64 = tr::table.count().get_result(conn)?;
    if existing > 0 {
        return Ok(0);
    }
    let seller = api.party_of(conn, SELLER)?;
    let mut settled = 0;
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    for (i, row) in reader.deserialize::<Row>().enumerate() {
        let row = row.map_err(|e| format!("trades.csv line {}: {e}", i + 2))?;
        let lot = history_lot(conn, seller, &row)?
            .ok_or_else(|| format!("trades.csv line {}: no lot of {SELLER} to sell from", i + 2))?;
        let at = row.date.and_hms_opt(2, 0, 0).unwrap_or_default().and_utc();
        api.state.clock.set(at);
        let mut listing = json!({"lot_id": lot, "quantity": row.quantity, "unit_price": row.unit_price,
            "min_lot": row.quantity, "ends_at": at + TimeDelta::days(30)});
        if let Some(y) = row.years {
            listing["years"] = json!(y);
        }
        let l = api
            .call(
                app,
                conn,
                SELLER,
                "/v1/listings".into(),
                listing,
                StatusCode::CREATED,
            )
            .await?;
        let buyer = BUYERS[i % BUYERS.len()];
        let path = format!("/v1/listings/{}/purchases", l["id"]);
        let bought = json!({"quantity": row.quantity});
        let t = api
            .call(app, conn, buyer, path, bought, StatusCode::CREATED)
            .await?;
        let path = format!("/v1/trades/{}/payment", t["id"]);
        let pay = json!({"payment_ref": format!("DEMO-{}-{}", row.date, i + 1)});
        // The seller acknowledges receipt: an operator alone no longer settles a trade.
        api.call(app, conn, SELLER, path, pay, StatusCode::OK)
            .await?;
        settled += 1;
    }
    api.state.clock.set(Utc::now());
    Ok(settled)
}

/// The seller's lot of the row's right type and pollutant that is valid on its date.
fn history_lot(conn: &mut DbConn, seller: i64, row: &Row) -> QueryResult<Option<i64>> {
    let mut q = lots::table
        .inner_join(h::table)
        .filter(h::party_id.eq(seller))
        .filter(lots::right_type.eq(&row.right_type))
        .filter(lots::valid_from.le(row.date))
        .filter(lots::valid_to.ge(row.date))
        .order(lots::valid_to)
        .select(lots::id)
        .into_boxed();
    if let Some(p) = row.pollutant.as_deref().filter(|p| !p.is_empty()) {
        q = q.filter(lots::sub_kind.eq(p));
    }
    q.first(conn).optional()
}
