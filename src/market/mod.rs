//! The market (DESIGN §4): benchmark prices and the R4 checks, listings (挂牌), multi-unit auctions
//! (竞价), trades that settle through the ledger against confirmed payment, price data and
//! valuation. Pledge disposal (R13) runs through listings and auctions of the pledged quantity.

pub mod auctions;
pub mod benchmarks;
mod chart;
pub mod listings;
pub mod prices;
pub mod rules;
pub mod settings;
pub mod sweep;
pub mod trades;

use chrono::NaiveDate;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::parties::store::PartyRow;
use crate::rights::store::{LotRow, RightTypeRow};
use crate::schema::{holdings as h, lots};
use rules::Restriction;

/// Checks a would-be buyer: registered, may hold rights, not the seller, admitted by the
/// restriction (限定购买主体), and not bringing a pollutant's load into a non-attainment region (R4).
pub fn check_buyer(
    conn: &mut DbConn,
    buyer_id: i64,
    seller_id: i64,
    lot: &LotRow,
    restriction: &Restriction,
) -> ApiResult<PartyRow> {
    let buyer =
        crate::parties::store::find(conn, buyer_id)?.ok_or_else(|| ApiError::not_found("party"))?;
    if buyer.kind == "bank" || buyer.kind == "regulator" {
        return Err(ApiError::unprocessable(
            "buyer_not_eligible",
            "banks and regulators do not hold rights",
        ));
    }
    if buyer.id == seller_id {
        return Err(ApiError::unprocessable(
            "buyer_not_eligible",
            "a seller cannot buy its own offer",
        ));
    }
    let holds = holds_right(conn, buyer.id, lot)?;
    if let Some(why) = restriction.refuses(&buyer.region_code, holds) {
        return Err(ApiError::unprocessable("buyer_not_eligible", why));
    }
    benchmarks::check_attainment(conn, lot, &buyer.region_code)?;
    Ok(buyer)
}

/// True when the party holds any quantity of the lot's right type and sub-kind (a discharger).
fn holds_right(conn: &mut DbConn, party: i64, lot: &LotRow) -> ApiResult<bool> {
    let mut q = h::table
        .inner_join(lots::table)
        .filter(h::party_id.eq(party))
        .filter(lots::right_type.eq(&lot.right_type))
        .filter(
            h::available
                .gt(0)
                .or(h::listed.gt(0))
                .or(h::pledged.gt(0))
                .or(h::in_transfer.gt(0)),
        )
        .into_boxed();
    if let Some(s) = &lot.sub_kind {
        q = q.filter(lots::sub_kind.eq(s));
    }
    let n: i64 = q.count().get_result(conn)?;
    Ok(n > 0)
}

/// The years an offer of `lot` sells (R3): required and within the remaining term for rights
/// priced per year; absent otherwise.
pub fn offer_years(
    rt: &RightTypeRow,
    lot: &LotRow,
    years: Option<i32>,
    today: NaiveDate,
) -> ApiResult<Option<i32>> {
    match (rt.priced_per_year, years) {
        (true, Some(y)) => {
            let left = rules::remaining_years(lot.valid_from, lot.valid_to, today);
            if (1..=left).contains(&y) {
                Ok(Some(y))
            } else {
                Err(ApiError::invalid_field(
                    "years",
                    format!("between 1 and the {left} years left of the term"),
                ))
            }
        }
        (true, None) => Err(ApiError::invalid_field(
            "years",
            "an emission-right offer states the years sold (R3)",
        )),
        (false, Some(_)) => Err(ApiError::invalid_field(
            "years",
            "only emission rights are priced per year",
        )),
        (false, None) => Ok(None),
    }
}

/// Parses a restriction given in a request; an absent one admits every eligible party.
pub fn restriction_text(r: &Option<Restriction>) -> ApiResult<String> {
    let r = r.clone().unwrap_or_default();
    for code in &r.regions {
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid_field(
                "restriction.regions",
                "6-digit administrative division codes (GB/T 2260)",
            ));
        }
    }
    serde_json::to_string(&r).map_err(|e| ApiError::internal(e.to_string()))
}

pub fn restriction_of(text: &str) -> Restriction {
    serde_json::from_str(text).unwrap_or_default()
}
