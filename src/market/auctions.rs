//! Auctions (竞价), run by operators for a seller's quantity, a government reserve or an enforced
//! pledge. Multi-unit as Fujian's emission-right auctions: bids name a price on the grid and a
//! quantity; at the close the offered quantity goes to the best prices first, then the earliest,
//! each winner paying its bid (or the uniform clearing price). A bid in the last minutes extends the
//! close. Closing is exactly once: a conditional UPDATE of the auction's status, under its lot's
//! lock, decides which process (or request) closes it.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::rules::{self, Restriction};
use super::trades::{self, Deal};
use super::{
    benchmarks, check_buyer, freeze_for_sale, restriction_of, restriction_text, return_unsold,
};
use crate::auth::{Command, Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::{money_to_fen, price_to_stored, Dec};
use crate::kernel::idempotency::{KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::pagination::{Page, PageParams};
use crate::kernel::state::AppState;
use crate::rights::issuance::parse_quantity;
use crate::rights::store as rights;
use crate::rights::Bucket;
use crate::schema::{auction_bidders as ab, auctions as au, bids as bd};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create)
        .service(list)
        .service(get_one)
        .service(register_bidder)
        .service(place_bid)
        .service(list_bids)
        .service(close_now)
        .service(cancel);
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = au)]
pub struct AuctionRow {
    pub id: i64,
    pub lot_id: i64,
    pub seller_id: i64,
    pub pledge_id: Option<i64>,
    pub quantity: i64,
    pub reserve_price: i64,
    pub increment: i64,
    pub min_bid: i64,
    pub max_bid: i64,
    pub years: Option<i32>,
    pub opens_at: NaiveDateTime,
    pub closes_at: NaiveDateTime,
    pub extension_minutes: i32,
    pub sealed: bool,
    pub uniform_price: bool,
    pub restriction: String,
    pub deposit: i64,
    pub status: String,
    pub clearing_price: Option<i64>,
    pub allocated: i64,
    pub bid_count: i32,
    pub closed_at: Option<NaiveDateTime>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = bd)]
pub struct BidRow {
    pub id: i64,
    pub auction_id: i64,
    pub party_id: i64,
    pub unit_price: i64,
    pub quantity: i64,
    pub status: String,
    pub allocated: i64,
    pub placed_at: NaiveDateTime,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lot_id": 1, "seller_party_id": 2, "quantity": "485.2", "reserve_price": "1419",
    "increment": "10", "min_bid": "1", "max_bid": "200", "years": 4, "opens_at": "2026-12-01T01:00:00Z",
    "closes_at": "2026-12-01T03:00:00Z", "extension_minutes": 5, "sealed": false, "deposit": "50000"}))]
pub struct CreateAuction {
    pub lot_id: i64,
    /// Whose quantity is sold: an enterprise, or the holder of a government reserve.
    pub seller_party_id: Option<i64>,
    /// Or: dispose of this enforced pledge's quantity (R13); the pledgor is the seller.
    pub pledge_id: Option<i64>,
    pub quantity: Dec,
    /// Per unit (EM: yuan per ton-year); EM not below the benchmark in force (R4).
    pub reserve_price: Dec,
    /// Bids are the reserve plus a whole number of increments.
    pub increment: Dec,
    pub min_bid: Dec,
    pub max_bid: Dec,
    /// EM: whole years of the term sold (R3): 1 to the whole years left from the day of the sale
    /// to the lot's `valid_to` (a partly elapsed year does not count). Checked again at the close:
    /// an auction whose lot has fewer years left by then fails.
    pub years: Option<i32>,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    /// A bid this close to the close extends it by as much (0: never). Default 5.
    pub extension_minutes: Option<i32>,
    /// 一次性报价: one sealed bid per bidder, hidden until the close. Otherwise bids are visible and
    /// a bidder may raise its own.
    pub sealed: bool,
    /// Every winner pays the lowest winning price instead of its own bid.
    #[serde(default)]
    pub uniform_price: bool,
    pub restriction: Option<Restriction>,
    /// The deposit (保证金) each bidder must have paid, in yuan.
    pub deposit: Dec,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuctionView {
    pub id: i64,
    pub lot_id: i64,
    pub right_type: String,
    pub sub_kind: Option<String>,
    pub region_code: String,
    pub seller_id: i64,
    pub disposal: bool,
    pub quantity: Dec,
    pub reserve_price: Dec,
    pub increment: Dec,
    pub min_bid: Dec,
    pub max_bid: Dec,
    pub years: Option<i32>,
    pub opens_at: DateTime<Utc>,
    /// Moves later when a bid comes in the last minutes.
    pub closes_at: DateTime<Utc>,
    pub extension_minutes: i32,
    pub sealed: bool,
    pub uniform_price: bool,
    pub restriction: Restriction,
    pub deposit: Dec,
    /// scheduled, open, due (past its close, closing), awarded, failed, or cancelled (by two
    /// operators before any award, or because a judicial freeze took all of a disposal auction's
    /// quantity back under the pledge: its bids are void and the bidders' deposits released).
    pub phase: String,
    /// Highest live bid, for open (not sealed) auctions.
    pub best_bid: Option<Dec>,
    pub clearing_price: Option<Dec>,
    pub allocated: Dec,
    pub bid_count: i32,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

fn phase(a: &AuctionRow, now: NaiveDateTime) -> &'static str {
    match a.status.as_str() {
        "awarded" => "awarded",
        "failed" => "failed",
        "cancelled" => "cancelled",
        _ if now < a.opens_at => "scheduled",
        _ if now < a.closes_at => "open",
        _ => "due",
    }
}

fn view(conn: &mut DbConn, a: AuctionRow, now: NaiveDateTime) -> ApiResult<AuctionView> {
    let lot = rights::lot(conn, a.lot_id)?.ok_or_else(|| ApiError::not_found("lot"))?;
    let best_bid = if a.sealed || a.status != "scheduled" {
        None
    } else {
        bd::table
            .filter(bd::auction_id.eq(a.id))
            .filter(bd::status.eq("active"))
            .select(diesel::dsl::max(bd::unit_price))
            .first::<Option<i64>>(conn)?
            .map(Dec::price)
    };
    Ok(AuctionView {
        id: a.id,
        lot_id: a.lot_id,
        right_type: lot.right_type,
        sub_kind: lot.sub_kind,
        region_code: lot.region_code,
        seller_id: a.seller_id,
        disposal: a.pledge_id.is_some(),
        quantity: Dec::qty(a.quantity),
        reserve_price: Dec::price(a.reserve_price),
        increment: Dec::price(a.increment),
        min_bid: Dec::qty(a.min_bid),
        max_bid: Dec::qty(a.max_bid),
        years: a.years,
        opens_at: a.opens_at.and_utc(),
        closes_at: a.closes_at.and_utc(),
        extension_minutes: a.extension_minutes,
        sealed: a.sealed,
        uniform_price: a.uniform_price,
        restriction: restriction_of(&a.restriction),
        deposit: Dec::money(a.deposit),
        phase: phase(&a, now).into(),
        best_bid,
        clearing_price: a.clearing_price.map(Dec::price),
        allocated: Dec::qty(a.allocated),
        bid_count: a.bid_count,
        closed_at: a.closed_at.map(|t| t.and_utc()),
        created_at: a.created_at.and_utc(),
    })
}

pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<AuctionRow>> {
    au::table
        .find(id)
        .select(AuctionRow::as_select())
        .first(conn)
        .optional()
}

/// A pledgee's disposal auctions of a pledgor's holding that still hold their quantity (not yet
/// closed), newest first.
pub fn scheduled_disposal(
    conn: &mut DbConn,
    pledgor: i64,
    lot: i64,
) -> QueryResult<Vec<AuctionRow>> {
    au::table
        .filter(au::seller_id.eq(pledgor))
        .filter(au::lot_id.eq(lot))
        .filter(au::pledge_id.is_not_null())
        .filter(au::status.eq("scheduled"))
        .order(au::id.desc())
        .select(AuctionRow::as_select())
        .load(conn)
}

/// A judicial freeze (`freeze_no`) takes `take` of a scheduled auction's quantity (the caller
/// moves it back under the pledge): the quantity offered shrinks, and an auction left with nothing
/// is cancelled. Its bids are void then (`cancelled`, nothing allocated; a later bid finds it
/// closed) and every admitted bidder's deposit is released: the audit trail records each deposit
/// to be returned with its payment reference, and why. Returns true when it was cancelled.
pub fn shrink_for_freeze(
    conn: &mut DbConn,
    a: &AuctionRow,
    take: i64,
    freeze_no: &str,
    actor: &str,
    now: NaiveDateTime,
) -> ApiResult<bool> {
    let left = a.quantity - take;
    if left > 0 {
        diesel::update(au::table.find(a.id))
            .set((au::quantity.eq(left), au::updated_at.eq(now)))
            .execute(conn)?;
        audit(
            conn,
            a,
            "auction.frozen_by_court",
            json!({"quantity": left, "taken": take, "pledge": a.pledge_id,
                "reason": "judicial_freeze", "freeze": freeze_no}),
            actor,
            now,
        )?;
        return Ok(false);
    }
    // The quantity column stays what was offered (it is never zero); the status says it ended.
    diesel::update(
        au::table
            .filter(au::id.eq(a.id))
            .filter(au::status.eq("scheduled")),
    )
    .set((
        au::status.eq("cancelled"),
        au::closed_at.eq(now),
        au::updated_at.eq(now),
    ))
    .execute(conn)?;
    let voided = diesel::update(
        bd::table
            .filter(bd::auction_id.eq(a.id))
            .filter(bd::status.eq("active")),
    )
    .set((bd::status.eq("cancelled"), bd::allocated.eq(0)))
    .execute(conn)?;
    let deposits: Vec<(i64, i64, String)> = ab::table
        .filter(ab::auction_id.eq(a.id))
        .order(ab::party_id)
        .select((ab::party_id, ab::deposit, ab::deposit_ref))
        .load(conn)?;
    let released: Vec<serde_json::Value> = deposits
        .into_iter()
        .map(|(party, deposit, deposit_ref)| {
            json!({"party": party, "deposit": deposit, "deposit_ref": deposit_ref})
        })
        .collect();
    audit(
        conn,
        a,
        "auction.cancelled",
        json!({"taken": take, "pledge": a.pledge_id, "reason": "judicial_freeze",
            "freeze": freeze_no, "bids_cancelled": voided, "deposits_released": released}),
        actor,
        now,
    )?;
    Ok(true)
}

fn audit(
    conn: &mut DbConn,
    a: &AuctionRow,
    action: &str,
    details: serde_json::Value,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    super::audit(
        conn,
        a.lot_id,
        ("auction", a.id),
        action,
        details,
        actor,
        at,
    )
}

#[utoipa::path(post, path = "/v1/auctions", tag = "market", operation_id = "createAuction",
    summary = "An operator proposes an auction of someone else's quantity; another person approves it",
    description = "An operator auctions a holder's quantity on its behalf: for a seller (`seller_party_id`, kind `auction`) or disposing of an enforced pledge (`pledge_id`, kind `disposal_auction`). Either is proposed (202) and scheduled, the offered quantity frozen, only when another person approves it (`POST /v1/proposals/{id}/approve`); every check runs again then. The close may not fall after the lot's validity (R6).",
    params(("Idempotency-Key" = String, Header, description = "Required: this moves quantity")),
    request_body = CreateAuction, responses(
        (status = 202, description = "The auction proposed", body = crate::proposals::ProposalView),
        (status = 422, description = "closes_after_validity, price_below_benchmark, …", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/auctions")]
async fn create(cmd: Command<CreateAuction>) -> ApiResult<HttpResponse> {
    let Command { body, cx } = cmd;
    let who = &cx.who;
    who.require(&[Role::Operator])?;
    let r = body;
    let (actor, now, today) = (cx.actor(), cx.now, cx.today);
    check_request(&r, now)?;
    let w = who.clone();
    // Two persons: only an operator creates an auction, always of someone else's quantity (a
    // seller's, or a pledgor's in a disposal), and sets its reserve and terms on their behalf.
    let kind = if r.pledge_id.is_some() {
        crate::proposals::ProposalKind::DisposalAuction
    } else {
        crate::proposals::ProposalKind::Auction
    };
    cx.run(KeyPolicy::Required, StatusCode::ACCEPTED, move |conn| {
        schedule(conn, &r, &actor, now, today, false)?;
        let row = crate::proposals::propose(conn, kind, &r, None, &w, now)?;
        Outcome::of(&crate::proposals::ProposalView::from(row))
    })
    .await
}

/// What an auction request gives, checked without the database.
struct Checked {
    restriction: String,
    reserve: i64,
    increment: i64,
    deposit: i64,
    extension: i32,
    opens: NaiveDateTime,
    closes: NaiveDateTime,
}

fn check_request(r: &CreateAuction, now: NaiveDateTime) -> ApiResult<Checked> {
    let restriction = restriction_text(&r.restriction)?;
    let price = |field: &str, d: Dec| {
        price_to_stored(d.0).map_err(|e| ApiError::invalid_field(field, e.to_string()))
    };
    let (reserve, increment) = (
        price("reserve_price", r.reserve_price)?,
        price("increment", r.increment)?,
    );
    let deposit = money_to_fen(r.deposit.0, true)
        .map_err(|e| ApiError::invalid_field("deposit", e.to_string()))?;
    let extension = r.extension_minutes.unwrap_or(5);
    if !(0..=120).contains(&extension) {
        return Err(ApiError::invalid_field(
            "extension_minutes",
            "between 0 and 120",
        ));
    }
    let (opens, closes) = (db::now_micros(r.opens_at), db::now_micros(r.closes_at));
    if closes <= opens || closes <= now {
        return Err(ApiError::invalid_field(
            "closes_at",
            "after opens_at and in the future",
        ));
    }
    Ok(Checked {
        restriction,
        reserve,
        increment,
        deposit,
        extension,
        opens,
        closes,
    })
}

/// An approved disposal auction is scheduled: every check runs again, now.
pub fn execute_disposal_auction(
    conn: &mut DbConn,
    r: &CreateAuction,
    actor: &str,
    now: NaiveDateTime,
    today: chrono::NaiveDate,
) -> ApiResult<serde_json::Value> {
    let a = schedule(conn, r, actor, now, today, true)?
        .ok_or_else(|| ApiError::internal("auction not scheduled"))?;
    serde_json::to_value(view(conn, a, now)?).map_err(|e| ApiError::internal(e.to_string()))
}

/// Checks an auction and, when `carry_out`, schedules it: the offered quantity is frozen.
fn schedule(
    conn: &mut DbConn,
    r: &CreateAuction,
    actor: &str,
    now: NaiveDateTime,
    today: chrono::NaiveDate,
    carry_out: bool,
) -> ApiResult<Option<AuctionRow>> {
    let Checked {
        restriction,
        reserve,
        increment,
        deposit,
        extension,
        opens,
        closes,
    } = check_request(r, now)?;
    let lot = rights::lock_lot(conn, r.lot_id)?;
    let pledge = match (r.pledge_id, r.seller_party_id) {
        (Some(p), None) => Some(crate::collateral::disposal::enforcing(conn, p, lot.id)?),
        (None, Some(_)) => None,
        _ => {
            return Err(ApiError::invalid_field(
                "seller_party_id",
                "name either the seller or the pledge to dispose of",
            ))
        }
    };
    let seller = match (&pledge, r.seller_party_id) {
        (Some(p), _) => p.pledgor_id,
        (None, Some(s)) => s,
        (None, None) => return Err(ApiError::internal("checked above")),
    };
    if rights::holding(conn, seller, lot.id)?.is_none() {
        return Err(ApiError::invalid_field(
            "seller_party_id",
            "holds nothing of this lot",
        ));
    }
    let rt = rights::right_type(conn, &lot.right_type)?
        .ok_or_else(|| ApiError::internal("right type vanished"))?;
    let quantity = parse_quantity("quantity", r.quantity, &rt)?;
    let min_bid = parse_quantity("min_bid", r.min_bid, &rt)?;
    let max_bid = parse_quantity("max_bid", r.max_bid, &rt)?;
    if min_bid > max_bid || min_bid > quantity {
        return Err(ApiError::invalid_field(
            "min_bid",
            "not more than max_bid nor the quantity offered",
        ));
    }
    // The reserve against the floor; bidders are checked at admission and again, with their
    // prices, at the award.
    let years = super::check_offer(conn, &lot, &rt, r.years, reserve, today)?;
    // R6: the quantity stays frozen until the close; a close after the lot's validity would
    // freeze a holding for an auction that can only fail.
    if closes.date() > lot.valid_to {
        return Err(ApiError::unprocessable(
            "closes_after_validity",
            format!(
                "the auction must close by the lot's validity, {}",
                lot.valid_to
            ),
        ));
    }
    if !carry_out {
        return Ok(None);
    }
    diesel::insert_into(au::table)
        .values((
            au::lot_id.eq(lot.id),
            au::seller_id.eq(seller),
            au::pledge_id.eq(r.pledge_id),
            au::quantity.eq(quantity),
            au::reserve_price.eq(reserve),
            au::increment.eq(increment),
            au::min_bid.eq(min_bid),
            au::max_bid.eq(max_bid),
            au::years.eq(years),
            au::opens_at.eq(opens),
            au::closes_at.eq(closes),
            au::extension_minutes.eq(extension),
            au::sealed.eq(r.sealed),
            au::uniform_price.eq(r.uniform_price),
            au::restriction.eq(&restriction),
            au::deposit.eq(deposit),
            au::status.eq("scheduled"),
            au::created_by.eq(actor),
            au::created_at.eq(now),
            au::updated_at.eq(now),
        ))
        .execute(conn)?;
    let a: AuctionRow = au::table
        .filter(au::lot_id.eq(lot.id))
        .order(au::id.desc())
        .select(AuctionRow::as_select())
        .first(conn)?;
    freeze_for_sale(
        conn,
        &lot,
        seller,
        pledge.as_ref(),
        quantity,
        &format!("auction:{}", a.id),
        actor,
        now,
    )?;
    audit(
        conn,
        &a,
        "auction.scheduled",
        json!({"seller": seller, "quantity": quantity,
            "reserve_price": reserve, "closes_at": closes, "pledge": r.pledge_id}),
        actor,
        now,
    )?;
    Ok(Some(a))
}

/// An eligible bidder and the deposit it paid.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"party_id": 5, "deposit": "50000", "deposit_ref": "CIB-20261130-0042"}))]
pub struct RegisterBidder {
    pub party_id: i64,
    pub deposit: Dec,
    pub deposit_ref: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BidderView {
    pub auction_id: i64,
    pub party_id: i64,
    pub deposit: Dec,
    pub deposit_ref: String,
    pub registered_by: String,
    pub at: DateTime<Utc>,
}

#[utoipa::path(post, path = "/v1/auctions/{id}/bidders", tag = "market", operation_id = "registerBidder",
    summary = "An operator admits a bidder that meets the auction's restriction and paid the deposit",
    params(("id" = i64, Path, description = "Auction id")),
    request_body = RegisterBidder,
    responses((status = 201, description = "Admitted", body = BidderView),
        (status = 422, description = "buyer_not_eligible, deposit_insufficient, region_non_attainment", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/auctions/{id}/bidders")]
async fn register_bidder(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
    body: ApiJson<RegisterBidder>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let r = body.value;
    let deposit = money_to_fen(r.deposit.0, true)
        .map_err(|e| ApiError::invalid_field("deposit", e.to_string()))?;
    if r.deposit_ref.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "deposit_ref",
            "the payment's reference",
        ));
    }
    let (id, actor, now) = (
        id.into_inner(),
        who.actor(),
        db::now_micros(state.clock.now()),
    );
    let v = state
        .db(move |conn| {
            db::write_tx(conn, |conn| -> ApiResult<BidderView> {
                let a = find(conn, id)?.ok_or_else(|| ApiError::not_found("auction"))?;
                if a.status != "scheduled" || now >= a.closes_at {
                    return Err(ApiError::conflict(
                        "auction_closed",
                        "this auction has closed",
                    ));
                }
                let lot = rights::lot(conn, a.lot_id)?.ok_or_else(|| ApiError::not_found("lot"))?;
                let settings = super::settings::load(conn)?;
                check_buyer(
                    conn,
                    &settings,
                    r.party_id,
                    a.seller_id,
                    &lot,
                    &restriction_of(&a.restriction),
                    now.date(),
                )?;
                if deposit < a.deposit {
                    return Err(ApiError::unprocessable(
                        "deposit_insufficient",
                        format!("the deposit is {}", Dec::money(a.deposit).0),
                    ));
                }
                let n = crate::insert_or_ignore!(
                    conn,
                    ab::table,
                    (
                        ab::auction_id.eq(id),
                        ab::party_id.eq(r.party_id),
                        ab::deposit.eq(deposit),
                        ab::deposit_ref.eq(r.deposit_ref.trim()),
                        ab::registered_by.eq(&actor),
                        ab::at.eq(now),
                    )
                )?;
                if n == 0 {
                    return Err(ApiError::conflict(
                        "bidder_registered",
                        "already admitted to this auction",
                    ));
                }
                audit(
                    conn,
                    &a,
                    "auction.bidder_admitted",
                    json!({"party": r.party_id, "deposit": deposit,
                    "deposit_ref": r.deposit_ref}),
                    &actor,
                    now,
                )?;
                Ok(BidderView {
                    auction_id: id,
                    party_id: r.party_id,
                    deposit: Dec::money(deposit),
                    deposit_ref: r.deposit_ref.trim().to_string(),
                    registered_by: actor,
                    at: now.and_utc(),
                })
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(v))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"unit_price": "1439", "quantity": "100"}))]
pub struct PlaceBid {
    pub unit_price: Dec,
    pub quantity: Dec,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BidView {
    pub id: i64,
    pub auction_id: i64,
    /// Shown to the bidder itself, operators and regulators.
    pub party_id: Option<i64>,
    pub unit_price: Dec,
    pub quantity: Dec,
    /// active, superseded (raised), won, lost, or cancelled (the auction was cancelled).
    pub status: String,
    pub allocated: Dec,
    pub placed_at: DateTime<Utc>,
}

fn bid_view(b: BidRow, who: &Principal) -> BidView {
    BidView {
        id: b.id,
        auction_id: b.auction_id,
        party_id: who.sees_party(b.party_id).then_some(b.party_id),
        unit_price: Dec::price(b.unit_price),
        quantity: Dec::qty(b.quantity),
        status: b.status,
        allocated: Dec::qty(b.allocated),
        placed_at: b.placed_at.and_utc(),
    }
}

#[utoipa::path(post, path = "/v1/auctions/{id}/bids", tag = "market", operation_id = "placeBid",
    summary = "An admitted bidder bids a price on the grid and a quantity (open auctions: may raise its bid)",
    params(("id" = i64, Path, description = "Auction id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = PlaceBid,
    responses((status = 201, description = "Bid placed", body = BidView),
        (status = 409, description = "auction_not_open, auction_closed, bid_already_placed, bid_not_raised", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "bidder_not_admitted, bid_off_grid", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/auctions/{id}/bids")]
async fn place_bid(cmd: Command<PlaceBid>, id: web::Path<i64>) -> ApiResult<HttpResponse> {
    let Command { body, cx } = cmd;
    let who = &cx.who;
    who.require(&[Role::Enterprise])?;
    let party = who
        .party_id
        .ok_or_else(|| ApiError::forbidden("this user belongs to no party"))?;
    let r = body;
    let price = price_to_stored(r.unit_price.0)
        .map_err(|e| ApiError::invalid_field("unit_price", e.to_string()))?;
    let (id, now) = (id.into_inner(), cx.now);
    let (w, actor) = (who.clone(), who.actor());
    cx.run(KeyPolicy::Optional, StatusCode::CREATED, move |conn| {
        let a = find(conn, id)?.ok_or_else(|| ApiError::not_found("auction"))?;
        let admitted: i64 = ab::table
            .filter(ab::auction_id.eq(id))
            .filter(ab::party_id.eq(party))
            .count()
            .get_result(conn)?;
        if admitted == 0 {
            return Err(ApiError::unprocessable(
                "bidder_not_admitted",
                "only bidders the exchange admitted (eligible, deposit paid) may bid",
            ));
        }
        crate::parties::store::require_active(conn, party)?;
        if a.pledge_id.is_none() {
            crate::parties::store::require_active(conn, a.seller_id)?;
        }
        let lot = rights::lot(conn, a.lot_id)?.ok_or_else(|| ApiError::not_found("lot"))?;
        let rt = rights::right_type(conn, &lot.right_type)?
            .ok_or_else(|| ApiError::internal("right type vanished"))?;
        let quantity = parse_quantity("quantity", r.quantity, &rt)?;
        if quantity < a.min_bid || quantity > a.max_bid.min(a.quantity) {
            return Err(ApiError::invalid_field(
                "quantity",
                format!(
                    "between {} and {}",
                    Dec::qty(a.min_bid).0,
                    Dec::qty(a.max_bid.min(a.quantity)).0
                ),
            ));
        }
        if !rules::on_grid(a.reserve_price, a.increment, price) {
            return Err(ApiError::unprocessable(
                "bid_off_grid",
                format!(
                    "the reserve {} plus a whole number of increments of {}",
                    Dec::price(a.reserve_price).0,
                    Dec::price(a.increment).0
                ),
            ));
        }
        // The auction row is the serialisation point between bids and the close: a bid
        // counts only if this conditional UPDATE finds the auction still open.
        let new_close = rules::extended_close(a.closes_at, now, a.extension_minutes);
        let n = diesel::update(
            au::table
                .filter(au::id.eq(id))
                .filter(au::status.eq("scheduled"))
                .filter(au::opens_at.le(now))
                .filter(au::closes_at.gt(now)),
        )
        .set((
            au::bid_count.eq(au::bid_count + 1),
            au::closes_at.eq(new_close.unwrap_or(a.closes_at).max(a.closes_at)),
            au::updated_at.eq(now),
        ))
        .execute(conn)?;
        if n == 0 {
            let a = find(conn, id)?.ok_or_else(|| ApiError::not_found("auction"))?;
            return Err(if now < a.opens_at {
                ApiError::conflict(
                    "auction_not_open",
                    format!("bidding opens at {}", a.opens_at.and_utc()),
                )
            } else {
                ApiError::conflict("auction_closed", "bidding has closed")
            });
        }
        let previous: Option<BidRow> = bd::table
            .filter(bd::auction_id.eq(id))
            .filter(bd::party_id.eq(party))
            .filter(bd::status.eq("active"))
            .select(BidRow::as_select())
            .first(conn)
            .optional()?;
        if let Some(prev) = previous {
            if a.sealed {
                return Err(ApiError::conflict(
                    "bid_already_placed",
                    "a sealed auction takes one bid per bidder",
                ));
            }
            if price < prev.unit_price + a.increment {
                return Err(ApiError::conflict(
                    "bid_not_raised",
                    format!(
                        "a new bid raises the previous {} by at least the increment",
                        Dec::price(prev.unit_price).0
                    ),
                ));
            }
            diesel::update(bd::table.find(prev.id))
                .set(bd::status.eq("superseded"))
                .execute(conn)?;
        }
        diesel::insert_into(bd::table)
            .values((
                bd::auction_id.eq(id),
                bd::party_id.eq(party),
                bd::unit_price.eq(price),
                bd::quantity.eq(quantity),
                bd::status.eq("active"),
                bd::placed_at.eq(now),
            ))
            .execute(conn)?;
        let b: BidRow = bd::table
            .filter(bd::auction_id.eq(id))
            .filter(bd::party_id.eq(party))
            .filter(bd::status.eq("active"))
            .select(BidRow::as_select())
            .first(conn)?;
        audit(
            conn,
            &a,
            "auction.bid",
            json!({"bid": b.id, "party": party, "unit_price": price,
                "quantity": quantity, "extended_to": new_close}),
            &actor,
            now,
        )?;
        Outcome::of(&bid_view(b, &w))
    })
    .await
}

/// Closes an auction that is due, exactly once; false when it was not due or already closed.
/// Awards go to the best prices first, then the earliest bids; unallocated quantity returns.
pub fn close_if_due(
    conn: &mut DbConn,
    id: i64,
    today: NaiveDate,
    now: NaiveDateTime,
) -> ApiResult<bool> {
    let Some(first) = find(conn, id)? else {
        return Ok(false);
    };
    let lot = rights::lock_lot(conn, first.lot_id)?;
    let n = diesel::update(
        au::table
            .filter(au::id.eq(id))
            .filter(au::status.eq("scheduled"))
            .filter(au::closes_at.le(now)),
    )
    .set((
        au::status.eq("closing"),
        au::closed_at.eq(now),
        au::updated_at.eq(now),
    ))
    .execute(conn)?;
    if n == 0 {
        return Ok(false);
    }
    let a = find(conn, id)?.ok_or_else(|| ApiError::not_found("auction"))?;
    let settings = super::settings::load(conn)?;
    let bids: Vec<BidRow> = bd::table
        .filter(bd::auction_id.eq(id))
        .filter(bd::status.eq("active"))
        .select(BidRow::as_select())
        .load(conn)?;
    // R4 on the day of the award: a bid whose price is below the benchmark in force by now, or
    // whose bidder's region was flagged non-attainment since its admission, wins nothing.
    let mut input: Vec<rules::Bid> = Vec::with_capacity(bids.len());
    for b in &bids {
        let bidder = crate::parties::store::find(conn, b.party_id)?
            .ok_or_else(|| ApiError::not_found("party"))?;
        // A bidder that has since merged, split or otherwise ended wins nothing.
        if !crate::parties::rules::takes_part(&bidder.status) {
            continue;
        }
        match benchmarks::check_r4(
            conn,
            &settings,
            &lot,
            Some(&bidder.region_code),
            Some(b.unit_price),
            today,
        ) {
            Ok(_) => input.push(rules::Bid {
                id: b.id,
                price: b.unit_price,
                quantity: b.quantity,
                placed_at: b.placed_at,
            }),
            Err(e) if e.status == actix_web::http::StatusCode::UNPROCESSABLE_ENTITY => {}
            Err(e) => return Err(e),
        }
    }
    // R3 and R6 on the day of the award: a lot that has expired, or no longer has the whole years
    // the auction sells, awards nothing and the auction fails.
    let rt = rights::right_type(conn, &lot.right_type)?
        .ok_or_else(|| ApiError::internal("right type vanished"))?;
    // An ordinary auction of a seller that has since merged, split or ended sells nothing either
    // (its pledgee's disposal auction still does).
    let seller_acts = a.pledge_id.is_some()
        || crate::parties::store::find(conn, a.seller_id)?
            .is_some_and(|s| crate::parties::rules::takes_part(&s.status));
    let sellable =
        seller_acts && !lot.expired(today) && lot.years_traded(&rt, a.years, today).is_ok();
    let input = if sellable { input } else { Vec::new() };
    let awards = rules::allocate(&input, a.quantity, a.uniform_price);
    let mut allocated = 0;
    for b in &bids {
        let award = awards.iter().find(|w| w.bid_id == b.id);
        diesel::update(bd::table.find(b.id))
            .set((
                bd::status.eq(if award.is_some() { "won" } else { "lost" }),
                bd::allocated.eq(award.map(|w| w.quantity).unwrap_or(0)),
            ))
            .execute(conn)?;
        if let Some(w) = award {
            allocated += w.quantity;
            trades::open(
                conn,
                &settings,
                Deal {
                    lot: &lot,
                    seller_id: a.seller_id,
                    buyer_id: b.party_id,
                    quantity: w.quantity,
                    unit_price: w.price,
                    years: a.years,
                    listing_id: None,
                    auction_id: Some(a.id),
                    pledge_id: a.pledge_id,
                },
                "registry",
                today,
                now,
            )?;
        }
    }
    let unsold = a.quantity - allocated;
    if unsold > 0 {
        return_unsold(
            conn,
            &lot,
            a.seller_id,
            a.pledge_id,
            unsold,
            Bucket::Listed,
            ("auction_unsold", format!("auction:{}", a.id)),
            "registry",
            now,
        )?;
    }
    let clearing = awards.iter().map(|w| w.price).min();
    let status = if awards.is_empty() {
        "failed"
    } else {
        "awarded"
    };
    diesel::update(au::table.find(id))
        .set((
            au::status.eq(status),
            au::allocated.eq(allocated),
            au::clearing_price.eq(clearing),
        ))
        .execute(conn)?;
    audit(
        conn,
        &a,
        &format!("auction.{status}"),
        json!({"allocated": allocated, "unsold": unsold,
        "clearing_price": clearing, "winners": awards.len()}),
        "registry",
        now,
    )?;
    Ok(true)
}

#[utoipa::path(post, path = "/v1/auctions/{id}/close", tag = "market", operation_id = "closeAuction",
    summary = "An operator closes a due auction now (the background task does the same on the clock)",
    params(("id" = i64, Path, description = "Auction id")),
    responses((status = 200, description = "Closed (or already closed): the result", body = AuctionView),
        (status = 409, description = "auction_not_due", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/auctions/{id}/close")]
async fn close_now(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let (id, now, today) = (
        id.into_inner(),
        db::now_micros(state.clock.now()),
        state.clock.today(),
    );
    let v = state
        .db(move |conn| {
            let a = find(conn, id)?.ok_or_else(|| ApiError::not_found("auction"))?;
            if a.status == "scheduled" && now < a.closes_at {
                return Err(ApiError::conflict(
                    "auction_not_due",
                    format!("bidding runs until {}", a.closes_at.and_utc()),
                ));
            }
            db::write_tx(conn, |conn| close_if_due(conn, id, today, now))?;
            let a = find(conn, id)?.ok_or_else(|| ApiError::not_found("auction"))?;
            view(conn, a, now)
        })
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

/// An operator's request to call off an auction that has awarded nothing yet.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "卖方撤回委托，南平分中心〔2026〕31号"}))]
pub struct CancelAuction {
    pub reason: String,
}

/// What a proposed cancellation stores: the auction and why.
#[derive(Debug, Deserialize, Serialize)]
pub struct AuctionCancellation {
    pub auction_id: i64,
    pub reason: String,
}

#[utoipa::path(post, path = "/v1/auctions/{id}/cancel", tag = "market", operation_id = "cancelAuction",
    summary = "An operator proposes calling off an auction that has awarded nothing yet; another person approves",
    description = "Only an auction still taking bids or due (no award, no trade) can be cancelled. The operator proposes (202, kind `auction_cancellation`); when another person approves, the offered quantity returns to the seller (or to the pledge of a disposal), every bid is lost and the admitted bidders' deposits are released.",
    params(("id" = i64, Path, description = "Auction id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = CancelAuction,
    responses((status = 202, description = "The cancellation proposed", body = crate::proposals::ProposalView),
        (status = 409, description = "auction_closed", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/auctions/{id}/cancel")]
async fn cancel(cmd: Command<CancelAuction>, id: web::Path<i64>) -> ApiResult<HttpResponse> {
    let Command { body, cx } = cmd;
    let who = &cx.who;
    who.require(&[Role::Operator])?;
    let reason = body.reason.trim().to_string();
    if reason.is_empty() {
        return Err(ApiError::invalid_field(
            "reason",
            "a cancellation states its reason",
        ));
    }
    let (now, w) = (cx.now, who.clone());
    let c = AuctionCancellation {
        auction_id: id.into_inner(),
        reason,
    };
    cx.run(KeyPolicy::Optional, StatusCode::ACCEPTED, move |conn| {
        let a = find(conn, c.auction_id)?.ok_or_else(|| ApiError::not_found("auction"))?;
        require_unawarded(&a)?;
        let row = crate::proposals::propose(
            conn,
            crate::proposals::ProposalKind::AuctionCancellation,
            &c,
            None,
            &w,
            now,
        )?;
        Outcome::of(&crate::proposals::ProposalView::from(row))
    })
    .await
}

fn require_unawarded(a: &AuctionRow) -> ApiResult<()> {
    if a.status != "scheduled" {
        return Err(ApiError::conflict(
            "auction_closed",
            format!(
                "this auction is {}: only one that awarded nothing can be cancelled",
                a.status
            ),
        ));
    }
    Ok(())
}

/// An approved cancellation: under the lot's lock the auction leaves `scheduled` exactly once
/// (the same conditional UPDATE as the close, so a close and a cancellation cannot both happen);
/// its quantity returns, its bids lose and the deposits are released.
pub fn execute_cancellation(
    conn: &mut DbConn,
    c: &AuctionCancellation,
    actor: &str,
    now: NaiveDateTime,
) -> ApiResult<serde_json::Value> {
    let a = find(conn, c.auction_id)?.ok_or_else(|| ApiError::not_found("auction"))?;
    let lot = rights::lock_lot(conn, a.lot_id)?;
    let n = diesel::update(
        au::table
            .filter(au::id.eq(a.id))
            .filter(au::status.eq("scheduled")),
    )
    .set((
        au::status.eq("cancelled"),
        au::closed_at.eq(now),
        au::updated_at.eq(now),
    ))
    .execute(conn)?;
    if n == 0 {
        let a = find(conn, a.id)?.ok_or_else(|| ApiError::not_found("auction"))?;
        require_unawarded(&a)?;
        return Err(ApiError::conflict(
            "auction_closed",
            "this auction has closed",
        ));
    }
    diesel::update(
        bd::table
            .filter(bd::auction_id.eq(a.id))
            .filter(bd::status.eq("active")),
    )
    .set(bd::status.eq("lost"))
    .execute(conn)?;
    return_unsold(
        conn,
        &lot,
        a.seller_id,
        a.pledge_id,
        a.quantity,
        Bucket::Listed,
        ("auction_cancelled", format!("auction:{}", a.id)),
        actor,
        now,
    )?;
    let released: Vec<(i64, i64, String)> = ab::table
        .filter(ab::auction_id.eq(a.id))
        .order(ab::party_id)
        .select((ab::party_id, ab::deposit, ab::deposit_ref))
        .load(conn)?;
    let released: Vec<_> = released
        .into_iter()
        .map(|(party, deposit, reference)| {
            json!({"party": party, "deposit": deposit, "deposit_ref": reference})
        })
        .collect();
    audit(
        conn,
        &a,
        "auction.cancelled",
        json!({"reason": c.reason, "returned": a.quantity, "deposits_released": released}),
        actor,
        now,
    )?;
    let a = find(conn, a.id)?.ok_or_else(|| ApiError::not_found("auction"))?;
    serde_json::to_value(view(conn, a, now)?).map_err(|e| ApiError::internal(e.to_string()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuctionQuery {
    /// scheduled (includes open and due), awarded, failed or cancelled.
    pub status: Option<String>,
    pub lot_id: Option<i64>,
}

#[utoipa::path(get, path = "/v1/auctions", tag = "market", operation_id = "listAuctions",
    summary = "Auctions (public to every authenticated user)",
    params(AuctionQuery, PageParams), responses((status = 200, description = "A page", body = Page<AuctionView>)))]
#[get("/v1/auctions")]
async fn list(
    state: web::Data<AppState>,
    _who: Principal,
    q: web::Query<AuctionQuery>,
    page: PageParams,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let (after, limit) = page.resolve()?;
    let now = db::now_micros(state.clock.now());
    let views = state
        .db(move |conn| {
            let mut query = au::table
                .filter(au::id.gt(after))
                .order(au::id)
                .limit(limit + 1)
                .select(AuctionRow::as_select())
                .into_boxed();
            if let Some(s) = q.status {
                query = query.filter(au::status.eq(s));
            }
            if let Some(l) = q.lot_id {
                query = query.filter(au::lot_id.eq(l));
            }
            let rows = query.load(conn)?;
            rows.into_iter()
                .map(|a| view(conn, a, now))
                .collect::<ApiResult<Vec<_>>>()
        })
        .await?;
    Ok(Page::respond(views, limit, |v| v.id))
}

#[utoipa::path(get, path = "/v1/auctions/{id}", tag = "market", operation_id = "getAuction", summary = "An auction",
    params(("id" = i64, Path, description = "Auction id")), responses((status = 200, description = "The auction", body = AuctionView)))]
#[get("/v1/auctions/{id}")]
async fn get_one(
    state: web::Data<AppState>,
    _who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let (id, now) = (id.into_inner(), db::now_micros(state.clock.now()));
    let v = state
        .db(move |conn| {
            let a = find(conn, id)?.ok_or_else(|| ApiError::not_found("auction"))?;
            view(conn, a, now)
        })
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

#[utoipa::path(get, path = "/v1/auctions/{id}/bids", tag = "market", operation_id = "listBids",
    summary = "Bids: all of an open auction's; of a sealed one only the caller's own until the close",
    params(("id" = i64, Path, description = "Auction id")), responses((status = 200, description = "Bids, best first", body = Vec<BidView>)))]
#[get("/v1/auctions/{id}/bids")]
async fn list_bids(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let w = who.clone();
    let rows = state
        .db(move |conn| {
            let a = find(conn, id)?.ok_or_else(|| ApiError::not_found("auction"))?;
            let mut q = bd::table
                .filter(bd::auction_id.eq(id))
                .order((bd::unit_price.desc(), bd::placed_at, bd::id))
                .select(BidRow::as_select())
                .into_boxed();
            if a.sealed && a.status == "scheduled" {
                q = q.filter(bd::party_id.eq(w.party_id.unwrap_or(-1)));
            }
            Ok(q.load(conn)?)
        })
        .await?;
    let views: Vec<BidView> = rows.into_iter().map(|b| bid_view(b, &who)).collect();
    Ok(HttpResponse::Ok().json(views))
}
