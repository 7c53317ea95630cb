//! Listings (挂牌): a holder offers a quantity at a unit price with a minimum lot and an end time;
//! the quantity is frozen (`listed`) at once. Purchases take part or all of it, each opening a
//! trade; withdrawal or expiry returns the rest. A listing never sells more than it froze: every
//! purchase decrements `remaining` with a conditional UPDATE under the lot's lock.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::rules::Restriction;
use super::trades::{self, Deal, TradeView};
use super::{check_buyer, freeze_for_sale, restriction_of, restriction_text, return_unsold};
use crate::auth::{Command, Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::{price_to_stored, Dec};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::pagination::{Page, PageParams};
use crate::kernel::state::AppState;
use crate::rights::issuance::parse_quantity;
use crate::rights::store::{self as rights, LotRow};
use crate::rights::Bucket;
use crate::schema::listings as li;

/// Statuses in which a listing still sells.
pub const SELLING: [&str; 2] = ["open", "partly_filled"];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create)
        .service(list)
        .service(get_one)
        .service(purchase)
        .service(withdraw);
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = li)]
pub struct ListingRow {
    pub id: i64,
    pub lot_id: i64,
    pub seller_id: i64,
    pub pledge_id: Option<i64>,
    pub quantity: i64,
    pub remaining: i64,
    pub unit_price: i64,
    pub years: Option<i32>,
    pub min_lot: i64,
    pub ends_at: NaiveDateTime,
    pub restriction: String,
    pub status: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lot_id": 1, "quantity": "10", "unit_price": "6500", "years": 4, "min_lot": "1",
    "ends_at": "2026-12-31T08:00:00Z", "restriction": {"regions": ["350700"]}}))]
pub struct CreateListing {
    pub lot_id: i64,
    pub quantity: Dec,
    /// Per unit (EM: yuan per ton-year, R3); EM not below the benchmark in force (R4).
    pub unit_price: Dec,
    /// EM: whole years of the remaining term sold with each unit (R3): 1 to the whole years left
    /// from the day of the sale to the lot's `valid_to` (a partly elapsed year does not count).
    /// Checked again at each purchase: once fewer years are left, purchases are refused with
    /// 422 `years_beyond_term`.
    pub years: Option<i32>,
    /// The smallest quantity one purchase may take (the last remainder excepted).
    pub min_lot: Dec,
    pub ends_at: DateTime<Utc>,
    pub restriction: Option<Restriction>,
    /// Operators only: dispose of this enforced pledge's quantity (R13); the pledgor is the seller.
    /// The operator proposes (202); another person approves and the listing opens then.
    pub pledge_id: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListingView {
    pub id: i64,
    pub lot_id: i64,
    pub right_type: String,
    pub sub_kind: Option<String>,
    pub region_code: String,
    pub seller_id: i64,
    /// True when the listing disposes of an enforced pledge (R13).
    pub disposal: bool,
    pub quantity: Dec,
    /// Still for sale.
    pub remaining: Dec,
    pub unit_price: Dec,
    pub years: Option<i32>,
    pub min_lot: Dec,
    pub ends_at: DateTime<Utc>,
    pub restriction: Restriction,
    /// open, partly_filled, filled, withdrawn or expired.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn view(r: ListingRow, lot: &LotRow) -> ListingView {
    ListingView {
        id: r.id,
        lot_id: r.lot_id,
        right_type: lot.right_type.clone(),
        sub_kind: lot.sub_kind.clone(),
        region_code: lot.region_code.clone(),
        seller_id: r.seller_id,
        disposal: r.pledge_id.is_some(),
        quantity: Dec::qty(r.quantity),
        remaining: Dec::qty(r.remaining),
        unit_price: Dec::price(r.unit_price),
        years: r.years,
        min_lot: Dec::qty(r.min_lot),
        ends_at: r.ends_at.and_utc(),
        restriction: restriction_of(&r.restriction),
        status: r.status,
        created_at: r.created_at.and_utc(),
        updated_at: r.updated_at.and_utc(),
    }
}

fn load_view(conn: &mut DbConn, id: i64) -> ApiResult<ListingView> {
    let r = find(conn, id)?.ok_or_else(|| ApiError::not_found("listing"))?;
    let lot = rights::lot(conn, r.lot_id)?.ok_or_else(|| ApiError::not_found("lot"))?;
    Ok(view(r, &lot))
}

pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<ListingRow>> {
    li::table
        .find(id)
        .select(ListingRow::as_select())
        .first(conn)
        .optional()
}

fn audit(
    conn: &mut DbConn,
    r: &ListingRow,
    action: &str,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    let payload = json!({"seller": r.seller_id, "quantity": r.quantity, "remaining": r.remaining,
        "unit_price": r.unit_price, "years": r.years, "status": r.status, "pledge": r.pledge_id});
    super::audit(
        conn,
        r.lot_id,
        ("listing", r.id),
        action,
        payload,
        actor,
        at,
    )
}

#[utoipa::path(post, path = "/v1/listings", tag = "market", operation_id = "createListing",
    summary = "List a quantity for sale (挂牌); it is frozen at once. An operator's disposal listing is a proposal",
    description = "An enterprise lists its own quantity and the listing opens at once (201). An operator disposing of an enforced pledge (`pledge_id`) sets the price for someone else's quantity: that is proposed (202) and opens only when another person approves it (`POST /v1/proposals/{id}/approve`); every check runs again then.",
    params(("Idempotency-Key" = String, Header, description = "Required: this moves quantity")),
    request_body = CreateListing,
    responses((status = 201, description = "Listed", body = ListingView),
        (status = 202, description = "A disposal listing proposed", body = crate::proposals::ProposalView),
        (status = 409, description = "insufficient_quantity, lot_expired, pledge_not_enforcing", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/listings")]
async fn create(cmd: Command<CreateListing>) -> ApiResult<HttpResponse> {
    let Command { body, cx } = cmd;
    let who = &cx.who;
    who.require(&[Role::Enterprise, Role::Operator])?;
    let r = body;
    let (actor, now, today) = (cx.actor(), cx.now, cx.today);
    check_request(&r, now)?;
    let w = who.clone();
    // Two persons for a disposal: the operator sets price and terms for the pledgor's quantity.
    let proposed = w.role == Role::Operator;
    cx.run(
        KeyPolicy::Required,
        if proposed {
            StatusCode::ACCEPTED
        } else {
            StatusCode::CREATED
        },
        move |conn| {
            if proposed {
                open(conn, &r, w.role, w.party_id, &actor, now, today, false)?;
                let row = crate::proposals::propose(
                    conn,
                    crate::proposals::ProposalKind::DisposalListing,
                    &r,
                    None,
                    &w,
                    now,
                )?;
                return Outcome::of(&crate::proposals::ProposalView::from(row));
            }
            let (row, lot) = open(conn, &r, w.role, w.party_id, &actor, now, today, true)?
                .ok_or_else(|| ApiError::internal("listing not opened"))?;
            Outcome::of(&view(row, &lot))
        },
    )
    .await
}

/// The checks of a listing request that need no database.
fn check_request(r: &CreateListing, now: NaiveDateTime) -> ApiResult<(String, i64, NaiveDateTime)> {
    let restriction = restriction_text(&r.restriction)?;
    let price = price_to_stored(r.unit_price.0)
        .map_err(|e| ApiError::invalid_field("unit_price", e.to_string()))?;
    let ends_at = db::now_micros(r.ends_at);
    if ends_at <= now {
        return Err(ApiError::invalid_field("ends_at", "in the future"));
    }
    Ok((restriction, price, ends_at))
}

/// An approved disposal listing opens: every check runs again, now.
pub fn execute_disposal_listing(
    conn: &mut DbConn,
    r: &CreateListing,
    actor: &str,
    now: NaiveDateTime,
    today: chrono::NaiveDate,
) -> ApiResult<serde_json::Value> {
    let (row, lot) = open(conn, r, Role::Operator, None, actor, now, today, true)?
        .ok_or_else(|| ApiError::internal("listing not opened"))?;
    serde_json::to_value(view(row, &lot)).map_err(|e| ApiError::internal(e.to_string()))
}

/// Checks a listing and, when `carry_out`, opens it: the quantity is frozen for sale.
#[allow(clippy::too_many_arguments)]
fn open(
    conn: &mut DbConn,
    r: &CreateListing,
    role: Role,
    party_id: Option<i64>,
    actor: &str,
    now: NaiveDateTime,
    today: chrono::NaiveDate,
    carry_out: bool,
) -> ApiResult<Option<(ListingRow, LotRow)>> {
    let (restriction, price, ends_at) = check_request(r, now)?;
    let lot = rights::lock_lot(conn, r.lot_id)?;
    let pledge = match (role, r.pledge_id) {
        (Role::Operator, Some(p)) => Some(crate::collateral::disposal::enforcing(conn, p, lot.id)?),
        (Role::Operator, None) => {
            return Err(ApiError::invalid_field(
                "pledge_id",
                "operators list only to dispose of an enforced pledge",
            ))
        }
        (_, Some(_)) => {
            return Err(ApiError::forbidden(
                "only operators dispose of pledged quantity",
            ))
        }
        (_, None) => None,
    };
    let seller = match &pledge {
        Some(p) => p.pledgor_id,
        None => party_id.ok_or_else(|| ApiError::forbidden("this user belongs to no party"))?,
    };
    if rights::holding(conn, seller, lot.id)?.is_none() {
        return Err(ApiError::not_found("holding"));
    }
    let rt = rights::right_type(conn, &lot.right_type)?
        .ok_or_else(|| ApiError::internal("right type vanished"))?;
    let quantity = parse_quantity("quantity", r.quantity, &rt)?;
    let min_lot = parse_quantity("min_lot", r.min_lot, &rt)?;
    if min_lot > quantity {
        return Err(ApiError::invalid_field(
            "min_lot",
            "not more than the quantity listed",
        ));
    }
    // No buyer yet: the buyer's side is checked at each purchase.
    let years = super::check_offer(conn, &lot, &rt, r.years, price, today)?;
    if !carry_out {
        return Ok(None);
    }
    diesel::insert_into(li::table)
        .values((
            li::lot_id.eq(lot.id),
            li::seller_id.eq(seller),
            li::pledge_id.eq(r.pledge_id),
            li::quantity.eq(quantity),
            li::remaining.eq(quantity),
            li::unit_price.eq(price),
            li::years.eq(years),
            li::min_lot.eq(min_lot),
            li::ends_at.eq(ends_at),
            li::restriction.eq(&restriction),
            li::status.eq("open"),
            li::created_by.eq(actor),
            li::created_at.eq(now),
            li::updated_at.eq(now),
        ))
        .execute(conn)?;
    let row: ListingRow = li::table
        .filter(li::lot_id.eq(lot.id))
        .order(li::id.desc())
        .select(ListingRow::as_select())
        .first(conn)?;
    freeze_for_sale(
        conn,
        &lot,
        seller,
        pledge.as_ref(),
        quantity,
        &format!("listing:{}", row.id),
        actor,
        now,
    )?;
    audit(conn, &row, "listing.opened", actor, now)?;
    Ok(Some((row, lot)))
}

/// Ends a listing that still sells and returns what is left to the seller (or under the pledge).
pub fn close(
    conn: &mut DbConn,
    r: &ListingRow,
    lot: &LotRow,
    status: &str,
    actor: &str,
    now: NaiveDateTime,
) -> ApiResult<()> {
    let n = diesel::update(
        li::table
            .filter(li::id.eq(r.id))
            .filter(li::status.eq_any(SELLING)),
    )
    .set((
        li::status.eq(status),
        li::remaining.eq(0),
        li::updated_at.eq(now),
    ))
    .execute(conn)?;
    if n == 0 {
        return Err(ApiError::conflict(
            "listing_closed",
            "this listing no longer sells",
        ));
    }
    if r.remaining > 0 {
        return_unsold(
            conn,
            lot,
            r.seller_id,
            r.pledge_id,
            r.remaining,
            Bucket::Listed,
            ("listing_end", format!("listing:{}", r.id)),
            actor,
            now,
        )?;
    }
    let row = find(conn, r.id)?.ok_or_else(|| ApiError::not_found("listing"))?;
    audit(conn, &row, &format!("listing.{status}"), actor, now)
}

/// The holder's own listings of a holding that still sell (not a pledgee's disposal listings:
/// that quantity is pledged, and the freeze rests on it in the pledged bucket), newest first.
pub fn selling_own(conn: &mut DbConn, seller: i64, lot: i64) -> QueryResult<Vec<ListingRow>> {
    li::table
        .filter(li::seller_id.eq(seller))
        .filter(li::lot_id.eq(lot))
        .filter(li::pledge_id.is_null())
        .filter(li::status.eq_any(SELLING))
        .order(li::id.desc())
        .select(ListingRow::as_select())
        .load(conn)
}

/// A pledgee's disposal listings of a pledgor's holding that still sell, newest first.
pub fn selling_disposal(conn: &mut DbConn, pledgor: i64, lot: i64) -> QueryResult<Vec<ListingRow>> {
    li::table
        .filter(li::seller_id.eq(pledgor))
        .filter(li::lot_id.eq(lot))
        .filter(li::pledge_id.is_not_null())
        .filter(li::status.eq_any(SELLING))
        .order(li::id.desc())
        .select(ListingRow::as_select())
        .load(conn)
}

/// A judicial freeze (`freeze_no`) takes `take` of a listing's unsold quantity (the caller moves
/// it: an own listing's to `frozen`, a disposal listing's back under its pledge): its remaining
/// shrinks, and a listing left with nothing is withdrawn. Nothing already bought is touched: a
/// purchase has taken its quantity out of `remaining`. Returns true when it was withdrawn.
pub fn shrink_for_freeze(
    conn: &mut DbConn,
    r: &ListingRow,
    take: i64,
    freeze_no: &str,
    actor: &str,
    now: NaiveDateTime,
) -> ApiResult<bool> {
    let left = r.remaining - take;
    let status = if left == 0 {
        "withdrawn"
    } else {
        r.status.as_str()
    };
    diesel::update(li::table.find(r.id))
        .set((
            li::remaining.eq(left),
            li::status.eq(status),
            li::updated_at.eq(now),
        ))
        .execute(conn)?;
    let row = find(conn, r.id)?.ok_or_else(|| ApiError::not_found("listing"))?;
    let payload = json!({"seller": row.seller_id, "quantity": row.quantity, "remaining": row.remaining,
        "taken": take, "status": row.status, "pledge": row.pledge_id, "reason": "judicial_freeze",
        "freeze": freeze_no});
    super::audit(
        conn,
        row.lot_id,
        ("listing", row.id),
        "listing.frozen_by_court",
        payload,
        actor,
        now,
    )?;
    Ok(left == 0)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"quantity": "2"}))]
pub struct Purchase {
    pub quantity: Dec,
}

#[utoipa::path(post, path = "/v1/listings/{id}/purchases", tag = "market", operation_id = "purchaseListing",
    summary = "Buy part or all of a listing; opens a trade awaiting payment",
    params(("id" = i64, Path, description = "Listing id"), ("Idempotency-Key" = String, Header, description = "Required: this moves quantity")),
    request_body = Purchase,
    responses((status = 201, description = "A trade awaiting payment", body = TradeView),
        (status = 409, description = "listing_closed, insufficient_quantity, lot_expired", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "buyer_not_eligible, years_beyond_term (fewer whole years are left than the listing sells), price_below_benchmark, region_non_attainment", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/listings/{id}/purchases")]
async fn purchase(cmd: Command<Purchase>, id: web::Path<i64>) -> ApiResult<HttpResponse> {
    let Command { body, cx } = cmd;
    let who = &cx.who;
    who.require(&[Role::Enterprise])?;
    let buyer = who
        .party_id
        .ok_or_else(|| ApiError::forbidden("this user belongs to no party"))?;
    let asked = body.quantity;
    let (id, actor, now, today) = (id.into_inner(), cx.actor(), cx.now, cx.today);
    let w = who.clone();
    cx.run(KeyPolicy::Required, StatusCode::CREATED, move |conn| {
        let first = find(conn, id)?.ok_or_else(|| ApiError::not_found("listing"))?;
        let lot = rights::lock_lot(conn, first.lot_id)?;
        // Re-read under the lot's lock: this is the state every concurrent buyer sees in turn.
        let l = find(conn, id)?.ok_or_else(|| ApiError::not_found("listing"))?;
        if !SELLING.contains(&l.status.as_str()) || l.ends_at <= now {
            return Err(ApiError::conflict(
                "listing_closed",
                format!("this listing is {}", l.status),
            ));
        }
        let rt = rights::right_type(conn, &lot.right_type)?
            .ok_or_else(|| ApiError::internal("right type vanished"))?;
        let quantity = parse_quantity("quantity", asked, &rt)?;
        if quantity > l.remaining {
            return Err(ApiError::conflict(
                "insufficient_quantity",
                format!("only {} is left", Dec::qty(l.remaining).0),
            ));
        }
        if quantity < l.min_lot && quantity != l.remaining {
            return Err(ApiError::invalid_field(
                "quantity",
                format!("at least the minimum lot {}", Dec::qty(l.min_lot).0),
            ));
        }
        lot.require_live(today)?;
        let settings = super::settings::load(conn)?;
        check_buyer(
            conn,
            &settings,
            buyer,
            l.seller_id,
            &lot,
            &restriction_of(&l.restriction),
            today,
        )?;
        let left = l.remaining - quantity;
        let status = if left == 0 { "filled" } else { "partly_filled" };
        let n = diesel::update(
            li::table
                .filter(li::id.eq(id))
                .filter(li::remaining.ge(quantity))
                .filter(li::status.eq_any(SELLING)),
        )
        .set((
            li::remaining.eq(li::remaining - quantity),
            li::status.eq(status),
            li::updated_at.eq(now),
        ))
        .execute(conn)?;
        if n == 0 {
            return Err(ApiError::conflict(
                "insufficient_quantity",
                "the listing sold out meanwhile",
            ));
        }
        let t = trades::open(
            conn,
            &settings,
            Deal {
                lot: &lot,
                seller_id: l.seller_id,
                buyer_id: buyer,
                quantity,
                unit_price: l.unit_price,
                years: l.years,
                listing_id: Some(l.id),
                auction_id: None,
                pledge_id: l.pledge_id,
            },
            &actor,
            today,
            now,
        )?;
        Outcome::of(&trades::view(t, &w))
    })
    .await
}

#[utoipa::path(post, path = "/v1/listings/{id}/withdraw", tag = "market", operation_id = "withdrawListing",
    summary = "The seller (or an operator) withdraws a listing; what is unsold returns",
    params(("id" = i64, Path, description = "Listing id"), ("Idempotency-Key" = String, Header, description = "Required: this moves quantity")),
    responses((status = 200, description = "Withdrawn", body = ListingView),
        (status = 409, description = "listing_closed", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/listings/{id}/withdraw")]
async fn withdraw(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Enterprise, Role::Operator])?;
    let (id, actor, now) = (
        id.into_inner(),
        who.actor(),
        db::now_micros(state.clock.now()),
    );
    let w = who.clone();
    idempotency::run(
        &state,
        &who,
        idem,
        "",
        KeyPolicy::Required,
        StatusCode::OK,
        move |conn| {
            let first = find(conn, id)?.ok_or_else(|| ApiError::not_found("listing"))?;
            let lot = rights::lock_lot(conn, first.lot_id)?;
            let l = find(conn, id)?.ok_or_else(|| ApiError::not_found("listing"))?;
            let own = w.role == Role::Operator
                || (l.pledge_id.is_none() && w.party_id == Some(l.seller_id));
            if !own {
                return Err(ApiError::forbidden(
                    "only the seller or an operator withdraws a listing",
                ));
            }
            close(conn, &l, &lot, "withdrawn", &actor, now)?;
            Outcome::of(&load_view(conn, id)?)
        },
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListingQuery {
    /// open, partly_filled, filled, withdrawn or expired.
    pub status: Option<String>,
    pub lot_id: Option<i64>,
    pub seller_id: Option<i64>,
}

#[utoipa::path(get, path = "/v1/listings", tag = "market", operation_id = "listListings",
    summary = "Listings (public to every authenticated user)",
    params(ListingQuery, PageParams), responses((status = 200, description = "A page", body = Page<ListingView>)))]
#[get("/v1/listings")]
async fn list(
    state: web::Data<AppState>,
    _who: Principal,
    q: web::Query<ListingQuery>,
    page: PageParams,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let (after, limit) = page.resolve()?;
    let views = state
        .db(move |conn| {
            let mut query = li::table
                .filter(li::id.gt(after))
                .order(li::id)
                .limit(limit + 1)
                .select(ListingRow::as_select())
                .into_boxed();
            if let Some(s) = q.status {
                query = query.filter(li::status.eq(s));
            }
            if let Some(l) = q.lot_id {
                query = query.filter(li::lot_id.eq(l));
            }
            if let Some(p) = q.seller_id {
                query = query.filter(li::seller_id.eq(p));
            }
            let rows = query.load(conn)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let lot = rights::lot(conn, r.lot_id)?.ok_or_else(|| ApiError::not_found("lot"))?;
                out.push(view(r, &lot));
            }
            Ok(out)
        })
        .await?;
    Ok(Page::respond(views, limit, |v| v.id))
}

#[utoipa::path(get, path = "/v1/listings/{id}", tag = "market", operation_id = "getListing", summary = "A listing",
    params(("id" = i64, Path, description = "Listing id")), responses((status = 200, description = "The listing", body = ListingView)))]
#[get("/v1/listings/{id}")]
async fn get_one(
    state: web::Data<AppState>,
    _who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let v = state.db(move |conn| load_view(conn, id)).await?;
    Ok(HttpResponse::Ok().json(v))
}
