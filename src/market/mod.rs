//! The market (docs/design.md §4): benchmark prices and the R4 checks, listings (挂牌), multi-unit
//! auctions (竞价), trades that settle through the ledger against confirmed payment, price data and
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

// The market's domain API: what other modules use of it, whichever file holds it.
pub use auctions::{
    execute_cancellation as execute_auction_cancellation, execute_disposal_auction, AuctionRow,
};
pub use benchmarks::{
    check_r4, execute as execute_benchmark, execute_flag, price_standing, PriceStanding,
    SetBenchmark,
};
pub use listings::{execute_disposal_listing, ListingRow};
pub use prices::{value_of, Valued};
pub use settings::{execute as execute_settings, load as load_settings};
pub use trades::{execute_payment, pledge_on_offer, pledge_quantity_on_offer};

/// R11 as the rights module asks it: is a purchase at this standing a market acquisition?
impl crate::rights::MarketPurchase for PriceStanding {
    fn is_market_purchase(&self) -> bool {
        PriceStanding::is_market_purchase(*self)
    }
}

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::collateral::PledgeRow;
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::parties::store::PartyRow;
use crate::rights::ledger::{self, Movement, Side};
use crate::rights::store::LotRow;
use crate::rights::Bucket;
use crate::schema::{holdings as h, lots};
use rules::Restriction;

/// What every offer (a listing or an auction, a disposal included) checks before it is made:
/// the years it covers (R3), that the lot still lives (R6), and its price against the floor (R4;
/// the buyer's side is checked when there is a buyer). Returns the years.
pub fn check_offer(
    conn: &mut DbConn,
    lot: &LotRow,
    rt: &crate::rights::store::RightTypeRow,
    years: Option<i32>,
    price: i64,
    today: NaiveDate,
) -> ApiResult<Option<i32>> {
    let years = lot.years_traded(rt, years, today)?;
    lot.require_live(today)?;
    let settings = settings::load(conn)?;
    benchmarks::check_r4(conn, &settings, lot, None, Some(price), today)?;
    Ok(years)
}

/// Checks a would-be buyer: registered, not ended, may hold rights, not the seller, admitted by the
/// restriction (限定购买主体), and not bringing a pollutant's load into a non-attainment region (R4).
pub fn check_buyer(
    conn: &mut DbConn,
    settings: &settings::MarketSettings,
    buyer_id: i64,
    seller_id: i64,
    lot: &LotRow,
    restriction: &Restriction,
    today: NaiveDate,
) -> ApiResult<PartyRow> {
    let buyer =
        crate::parties::store::find(conn, buyer_id)?.ok_or_else(|| ApiError::not_found("party"))?;
    if buyer.kind().is_some_and(|k| !k.holds_rights()) {
        return Err(ApiError::unprocessable(
            "buyer_not_eligible",
            "banks and regulators do not hold rights",
        ));
    }
    crate::parties::store::require_active(conn, buyer.id)?;
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
    benchmarks::check_r4(conn, settings, lot, Some(&buyer.region_code), None, today)?;
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

/// Parses a restriction given in a request; an absent one admits every eligible party.
pub fn restriction_text(r: &Option<Restriction>) -> ApiResult<String> {
    let r = r.clone().unwrap_or_default();
    for code in &r.regions {
        // Restrictions name parties' regions, which may lie outside Fujian.
        if !crate::kernel::regions::party_region_exists(code) {
            return Err(ApiError::invalid_field(
                "restriction.regions",
                crate::kernel::regions::refusal(code),
            ));
        }
    }
    serde_json::to_string(&r).map_err(|e| ApiError::internal(e.to_string()))
}

pub fn restriction_of(text: &str) -> Restriction {
    serde_json::from_str(text).unwrap_or_default()
}

/// Records a market event on its lot's audit chain.
pub fn audit(
    conn: &mut DbConn,
    lot_id: i64,
    object: (&str, i64),
    action: &str,
    payload: serde_json::Value,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    crate::audit::record(
        conn,
        crate::audit::Event {
            chain: format!("lot:{lot_id}"),
            actor,
            action,
            object_type: object.0,
            object_id: object.1.to_string(),
            payload,
            at,
        },
    )?;
    Ok(())
}

/// Freezes a quantity for sale (`reference` is the listing or auction): the seller's `available`
/// → `listed`, or for a disposal the enforced pledge's quantity (R13).
#[allow(clippy::too_many_arguments)]
pub fn freeze_for_sale(
    conn: &mut DbConn,
    lot: &LotRow,
    seller: i64,
    pledge: Option<&PledgeRow>,
    quantity: i64,
    reference: &str,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    match pledge {
        Some(p) => crate::collateral::disposal::offer(conn, p, lot, quantity, reference, actor, at),
        None => {
            ledger::move_quantity(
                conn,
                Movement {
                    lot,
                    from: Side::holder(seller, Bucket::Available),
                    to: Side::holder(seller, Bucket::Listed),
                    quantity,
                    cause: reference.split(':').next().unwrap_or("offer"),
                    reference: reference.to_string(),
                    actor,
                    at,
                    acquisition: None,
                    named_serials: None,
                },
            )?;
            Ok(())
        }
    }
}

/// Quantity offered but not sold (an ended listing, an auction's rest, an expired trade) returns
/// from the seller's `from` bucket to `available`, or under the pledge it was disposing of.
#[allow(clippy::too_many_arguments)]
pub fn return_unsold(
    conn: &mut DbConn,
    lot: &LotRow,
    seller: i64,
    pledge_id: Option<i64>,
    quantity: i64,
    from: Bucket,
    (cause, reference): (&str, String),
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    match pledge_id {
        Some(p) => crate::collateral::disposal::take_back(conn, p, lot, quantity, from, actor, at),
        None => {
            ledger::move_quantity(
                conn,
                Movement {
                    lot,
                    from: Side::holder(seller, from),
                    to: Side::holder(seller, Bucket::Available),
                    quantity,
                    cause,
                    reference,
                    actor,
                    at,
                    acquisition: None,
                    named_serials: None,
                },
            )?;
            Ok(())
        }
    }
}
