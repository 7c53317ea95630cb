//! Trades (成交) and their settlement: delivery versus payment. A purchase or an auction award
//! opens a trade and moves the quantity from the seller's `listed` to `in_transfer`; it moves to
//! the buyer only when the payment is confirmed — by the seller's acknowledgement of receipt, or by
//! an operator's confirmation that an operator of another person approves — in one transaction
//! with a settled transfer.
//! Unpaid trades expire and the quantity returns to the seller (or under the pledge).

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::{rules, settings};
use crate::auth::{Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::{trade_amount_fen, Dec};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::pagination::{Page, PageParams};
use crate::kernel::state::AppState;
use crate::proposals::{self, ProposalKind, ProposalView};
use crate::rights::ledger::{self, Movement, Side};
use crate::rights::store::{self as rights, LotRow};
use crate::rights::{Acquisition, Bucket};
use crate::schema::{auctions as au, listings as li, trades as tr};
use crate::transfers::store::{self as transfers, NewTransfer};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(get_one).service(confirm_payment);
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tr)]
pub struct TradeRow {
    pub id: i64,
    pub lot_id: i64,
    pub seller_id: i64,
    pub buyer_id: i64,
    pub listing_id: Option<i64>,
    pub auction_id: Option<i64>,
    pub pledge_id: Option<i64>,
    pub quantity: i64,
    pub unit_price: i64,
    pub years: Option<i32>,
    pub amount: i64,
    pub buyer_fee: i64,
    pub seller_fee: i64,
    pub status: String,
    pub trade_date: NaiveDate,
    pub pay_by: NaiveDateTime,
    pub payment_ref: Option<String>,
    pub transfer_id: Option<i64>,
    pub confirmed_by: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A trade. Its price, quantity and date are public market data; who traded, the fees and the
/// payment only the two parties, operators and regulators see.
#[derive(Debug, Serialize, ToSchema)]
pub struct TradeView {
    pub id: i64,
    pub lot_id: i64,
    pub listing_id: Option<i64>,
    pub auction_id: Option<i64>,
    pub quantity: Dec,
    /// Per unit (EM: per ton-year, R3).
    pub unit_price: Dec,
    /// EM: whole years of the term traded (R3; a partly elapsed year does not count).
    pub years: Option<i32>,
    /// quantity × unit price (× years for EM), rounded once half-up to the fen.
    pub amount: Dec,
    /// `awaiting_payment`, `settled` or `expired`.
    pub status: String,
    pub trade_date: NaiveDate,
    pub pay_by: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parties: Option<TradeParties>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TradeParties {
    pub seller_id: i64,
    pub buyer_id: i64,
    /// Set when the sale disposes of an enforced pledge (R13).
    pub pledge_id: Option<i64>,
    /// Exchange fee of each side, rounded half-up to the fen.
    pub buyer_fee: Dec,
    pub seller_fee: Dec,
    /// What the buyer pays: amount + buyer fee.
    pub buyer_pays: Dec,
    /// What the seller receives: amount − seller fee.
    pub seller_receives: Dec,
    pub payment_ref: Option<String>,
    /// The settled transfer through the ledger.
    pub transfer_id: Option<i64>,
    pub confirmed_by: Option<String>,
}

pub fn view(r: TradeRow, who: &Principal) -> TradeView {
    let parties =
        (who.sees_party(r.seller_id) || who.sees_party(r.buyer_id)).then(|| TradeParties {
            seller_id: r.seller_id,
            buyer_id: r.buyer_id,
            pledge_id: r.pledge_id,
            buyer_fee: Dec::money(r.buyer_fee),
            seller_fee: Dec::money(r.seller_fee),
            buyer_pays: Dec::money(r.amount + r.buyer_fee),
            seller_receives: Dec::money(r.amount - r.seller_fee),
            payment_ref: r.payment_ref.clone(),
            transfer_id: r.transfer_id,
            confirmed_by: r.confirmed_by.clone(),
        });
    TradeView {
        id: r.id,
        lot_id: r.lot_id,
        listing_id: r.listing_id,
        auction_id: r.auction_id,
        quantity: Dec::qty(r.quantity),
        unit_price: Dec::price(r.unit_price),
        years: r.years,
        amount: Dec::money(r.amount),
        status: r.status,
        trade_date: r.trade_date,
        pay_by: r.pay_by.and_utc(),
        parties,
        created_at: r.created_at.and_utc(),
    }
}

/// What a purchase or an award concluded, before its trade exists.
pub struct Deal<'a> {
    pub lot: &'a LotRow,
    pub seller_id: i64,
    pub buyer_id: i64,
    pub quantity: i64,
    pub unit_price: i64,
    pub years: Option<i32>,
    pub listing_id: Option<i64>,
    pub auction_id: Option<i64>,
    pub pledge_id: Option<i64>,
}

/// Opens a trade inside the caller's transaction (the lot locked): amount and fees to the fen,
/// the quantity from the seller's `listed` to `in_transfer`, an audit event.
pub fn open(
    conn: &mut DbConn,
    s: &settings::MarketSettings,
    d: Deal,
    actor: &str,
    today: NaiveDate,
    now: NaiveDateTime,
) -> ApiResult<TradeRow> {
    let rt = rights::right_type(conn, &d.lot.right_type)?
        .ok_or_else(|| ApiError::internal("right type vanished"))?;
    // R3 on the day of the sale, not only when the offer was made: an offer of more years than
    // are left by now sells nothing.
    let years = d.lot.years_traded(&rt, d.years, today)?;
    // R4 on the day of the sale, with the buyer and the price, whatever the path (a purchase, an
    // award, a disposal).
    // An ended party's ordinary offer sells nothing more (its pledgee's disposal still does).
    if d.pledge_id.is_none() {
        crate::parties::store::require_active(conn, d.seller_id)?;
    }
    let buyer = crate::parties::store::find(conn, d.buyer_id)?
        .ok_or_else(|| ApiError::not_found("party"))?;
    super::benchmarks::check_r4(
        conn,
        s,
        d.lot,
        Some(&buyer.region_code),
        Some(d.unit_price),
        today,
    )?;
    let amount = trade_amount_fen(d.quantity, d.unit_price, years.unwrap_or(1) as u32)
        .map_err(|e| ApiError::invalid_field("quantity", e.to_string()))?;
    let (buyer_fee, seller_fee) = (
        rules::fee_fen(amount, s.buyer_fee_rate.0),
        rules::fee_fen(amount, s.seller_fee_rate.0),
    );
    diesel::insert_into(tr::table)
        .values((
            tr::lot_id.eq(d.lot.id),
            tr::seller_id.eq(d.seller_id),
            tr::buyer_id.eq(d.buyer_id),
            tr::listing_id.eq(d.listing_id),
            tr::auction_id.eq(d.auction_id),
            tr::pledge_id.eq(d.pledge_id),
            tr::quantity.eq(d.quantity),
            tr::unit_price.eq(d.unit_price),
            tr::years.eq(d.years),
            tr::amount.eq(amount),
            tr::buyer_fee.eq(buyer_fee),
            tr::seller_fee.eq(seller_fee),
            tr::status.eq("awaiting_payment"),
            tr::trade_date.eq(today),
            tr::pay_by.eq(now + TimeDelta::hours(s.payment_window_hours)),
            tr::created_at.eq(now),
            tr::updated_at.eq(now),
        ))
        .execute(conn)?;
    // The lot is locked by the caller, so the newest trade on it is this one.
    let t: TradeRow = tr::table
        .filter(tr::lot_id.eq(d.lot.id))
        .order(tr::id.desc())
        .select(TradeRow::as_select())
        .first(conn)?;
    ledger::move_quantity(
        conn,
        Movement {
            lot: d.lot,
            from: Side::holder(d.seller_id, Bucket::Listed),
            to: Side::holder(d.seller_id, Bucket::InTransfer),
            quantity: d.quantity,
            cause: "trade",
            reference: format!("trade:{}", t.id),
            actor,
            at: now,
            acquisition: None,
            named_serials: None,
        },
    )?;
    audit(conn, &t, "trade.opened", actor, now)?;
    Ok(t)
}

fn audit(
    conn: &mut DbConn,
    t: &TradeRow,
    action: &str,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    let payload = json!({"seller": t.seller_id, "buyer": t.buyer_id, "quantity": t.quantity,
        "unit_price": t.unit_price, "years": t.years, "amount": t.amount, "status": t.status,
        "listing": t.listing_id, "auction": t.auction_id, "pledge": t.pledge_id});
    super::audit(conn, t.lot_id, ("trade", t.id), action, payload, actor, at)
}

pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<TradeRow>> {
    tr::table
        .find(id)
        .select(TradeRow::as_select())
        .first(conn)
        .optional()
}

/// Moves a trade out of `awaiting_payment`; false when it already left (someone else won).
fn leave_awaiting(
    conn: &mut DbConn,
    id: i64,
    status: &str,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(
        tr::table
            .filter(tr::id.eq(id))
            .filter(tr::status.eq("awaiting_payment")),
    )
    .set((tr::status.eq(status), tr::updated_at.eq(at)))
    .execute(conn)?;
    Ok(n == 1)
}

/// True while a pledge still has quantity on offer: an open listing, a scheduled auction or an
/// unpaid trade.
pub fn pledge_on_offer(conn: &mut DbConn, pledge_id: i64) -> QueryResult<bool> {
    let listings: i64 = li::table
        .filter(li::pledge_id.eq(pledge_id))
        .filter(li::status.eq_any(super::listings::SELLING))
        .count()
        .get_result(conn)?;
    let auctions: i64 = au::table
        .filter(au::pledge_id.eq(pledge_id))
        .filter(au::status.eq("scheduled"))
        .count()
        .get_result(conn)?;
    let trades: i64 = tr::table
        .filter(tr::pledge_id.eq(pledge_id))
        .filter(tr::status.eq("awaiting_payment"))
        .count()
        .get_result(conn)?;
    Ok(listings + auctions + trades > 0)
}

/// How much of a pledge's quantity is on offer for its disposal, in the same places as
/// [`pledge_on_offer`]: what open listings have left, scheduled auctions, unpaid trades. The
/// pledge no longer counts it as pledged, yet it is still under the pledge until it is sold.
pub fn pledge_quantity_on_offer(conn: &mut DbConn, pledge_id: i64) -> QueryResult<i64> {
    let listed: Vec<i64> = li::table
        .filter(li::pledge_id.eq(pledge_id))
        .filter(li::status.eq_any(super::listings::SELLING))
        .select(li::remaining)
        .load(conn)?;
    let auctioned: Vec<i64> = au::table
        .filter(au::pledge_id.eq(pledge_id))
        .filter(au::status.eq("scheduled"))
        .select(au::quantity)
        .load(conn)?;
    let unpaid: Vec<i64> = tr::table
        .filter(tr::pledge_id.eq(pledge_id))
        .filter(tr::status.eq("awaiting_payment"))
        .select(tr::quantity)
        .load(conn)?;
    Ok(listed.iter().chain(&auctioned).chain(&unpaid).sum())
}

/// Settles a paid trade: seller's `in_transfer` → buyer's `available` as a market acquisition,
/// a settled transfer of kind `trade`, and for a disposal the proceeds to the waterfall.
fn settle(
    conn: &mut DbConn,
    id: i64,
    payment_ref: &str,
    actor: &str,
    now: NaiveDateTime,
) -> ApiResult<TradeRow> {
    let t = find(conn, id)?.ok_or_else(|| ApiError::not_found("trade"))?;
    let lot = rights::lock_lot(conn, t.lot_id)?;
    // R3 at settlement: the years traded must still remain when payment is confirmed (a year of
    // the term may have passed since the match). Refused as it stands, the trade stays awaiting
    // payment until its deadline; an expired lot is left to the ledger's R6 refusal.
    if t.years.is_some() && !lot.expired(now.date()) {
        let rt = rights::right_type(conn, &lot.right_type)?
            .ok_or_else(|| ApiError::internal("unknown right type"))?;
        lot.years_traded(&rt, t.years, now.date())?;
    }
    if !lot.expired(now.date()) {
        // R4 at settlement as well, the same check as when the trade opened: a benchmark approved
        // or the buyer's region flagged non-attainment since then refuses delivery (422), and the
        // trade stays awaiting payment until its deadline.
        let s = settings::load(conn)?;
        let buyer = crate::parties::store::find(conn, t.buyer_id)?
            .ok_or_else(|| ApiError::internal("buyer vanished"))?;
        super::benchmarks::check_r4(
            conn,
            &s,
            &lot,
            Some(&buyer.region_code),
            Some(t.unit_price),
            now.date(),
        )?;
    }
    // Courts come first: quantity a judicial freeze holds in this trade is not delivered
    // (409 `quantity_frozen`, nothing changes) until the freeze is lifted.
    crate::collateral::require_not_held(conn, &format!("trade:{id}"))?;
    if !leave_awaiting(conn, id, "settled", now)? {
        let status = find(conn, id)?.map(|t| t.status).unwrap_or_default();
        return Err(ApiError::conflict(
            "trade_not_awaiting_payment",
            format!("this trade is {status}"),
        ));
    }
    let transfer = transfers::insert(
        conn,
        &NewTransfer {
            lot_id: t.lot_id,
            from_party_id: t.seller_id,
            to_party_id: t.buyer_id,
            quantity: t.quantity,
            kind: "trade".into(),
            status: "settled".into(),
            requires_approval: false,
            unit_price: Some(t.unit_price),
            years: t.years,
            amount: Some(t.amount),
            document_ref: Some(format!("trade:{}", t.id)),
            note: Some(format!("payment {payment_ref}")),
            serials: None,
            requested_by: actor.to_string(),
            created_at: now,
            updated_at: now,
        },
    )?;
    // R11: a market acquisition only at or above the benchmark in force on the trade date.
    let acquisition = Acquisition::of_purchase(super::benchmarks::price_standing(
        conn,
        &lot,
        Some(t.unit_price),
        t.trade_date,
    )?);
    let moved = ledger::move_quantity(
        conn,
        Movement {
            lot: &lot,
            from: Side::holder(t.seller_id, Bucket::InTransfer),
            to: Side::holder(t.buyer_id, Bucket::Available),
            quantity: t.quantity,
            cause: "trade_settle",
            reference: format!("trade:{}", t.id),
            actor,
            at: now,
            acquisition: Some(acquisition),
            named_serials: None,
        },
    )?;
    diesel::update(crate::schema::transfers::table.find(transfer.id))
        .set(crate::schema::transfers::serials.eq(crate::rights::serials::to_text(&moved)))
        .execute(conn)?;
    diesel::update(tr::table.find(id))
        .set((
            tr::payment_ref.eq(payment_ref),
            tr::transfer_id.eq(transfer.id),
            tr::confirmed_by.eq(actor),
        ))
        .execute(conn)?;
    let t = find(conn, id)?.ok_or_else(|| ApiError::not_found("trade"))?;
    audit(conn, &t, "trade.settled", actor, now)?;
    if let Some(pledge) = t.pledge_id {
        let outstanding = pledge_on_offer(conn, pledge)?;
        crate::collateral::disposal::record_sale(
            conn,
            pledge,
            t.amount - t.seller_fee,
            t.id,
            outstanding,
            actor,
            now,
        )?;
    }
    Ok(t)
}

/// Expires one unpaid trade past its deadline, under its lot's lock; false if it was not due.
/// A trade whose lot has expired (R6) can never settle and is due at once.
pub fn expire(conn: &mut DbConn, candidate: &TradeRow, now: NaiveDateTime) -> ApiResult<bool> {
    let lot = rights::lock_lot(conn, candidate.lot_id)?;
    let Some(t) = find(conn, candidate.id)?
        .filter(|t| t.status == "awaiting_payment" && (t.pay_by <= now || lot.expired(now.date())))
    else {
        return Ok(false);
    };
    leave_awaiting(conn, t.id, "expired", now)?;
    super::return_unsold(
        conn,
        &lot,
        t.seller_id,
        t.pledge_id,
        t.quantity,
        Bucket::InTransfer,
        ("trade_expired", format!("trade:{}", t.id)),
        "registry",
        now,
    )?;
    // What a judicial freeze held of it comes back to the seller still frozen.
    let returned_to = if t.pledge_id.is_some() {
        Bucket::Pledged
    } else {
        Bucket::Available
    };
    crate::collateral::step_ended(
        conn,
        &lot,
        &format!("trade:{}", t.id),
        t.seller_id,
        returned_to,
        "registry",
        now,
    )?;
    let t = find(conn, t.id)?.ok_or_else(|| ApiError::not_found("trade"))?;
    audit(conn, &t, "trade.expired", "registry", now)?;
    Ok(true)
}

/// The payment the exchange received for a trade.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"payment_ref": "CIB-20261127-000153"}))]
pub struct ConfirmPayment {
    /// The bank's reference of the buyer's payment into the settlement account.
    pub payment_ref: String,
}

#[utoipa::path(post, path = "/v1/trades/{id}/payment", tag = "market", operation_id = "confirmTradePayment",
    summary = "Settle a trade on its payment: the seller acknowledges receipt (200), or an operator proposes its confirmation of the payment (202) for an operator of another person to approve",
    description = "Settlement moves the quantity to the buyer (delivery versus payment), so one person at the exchange never settles a trade alone: \
        an operator's confirmation of the buyer's payment is a proposal (202, kind `trade_payment`), and the trade settles when an operator \
        of another person approves it (`POST /v1/proposals/{id}/approve`). The seller (a user of the selling party; for the disposal of a \
        pledge, a user of the pledgee bank, whose claim the proceeds pay) is the one who loses if a payment is falsely confirmed: its own \
        acknowledgement of receipt settles the trade at once (200). A pending proposal does not stop the trade expiring unpaid at its \
        deadline; an approval after that is a 409 `trade_not_awaiting_payment` and changes nothing.",
    params(("id" = i64, Path, description = "Trade id"), ("Idempotency-Key" = String, Header, description = "Required: this moves quantity")),
    request_body = ConfirmPayment,
    responses((status = 200, description = "Settled (the seller's acknowledgement)", body = TradeView),
        (status = 202, description = "Proposed (an operator's confirmation; kind `trade_payment`)", body = ProposalView),
        (status = 403, description = "Neither an operator nor the seller (for a disposal, the pledgee) of this trade", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "trade_not_awaiting_payment; quantity_frozen (a judicial freeze holds quantity of this trade: nothing changes until it is lifted; unpaid at its deadline it expires and the quantity returns to the seller still frozen); lot_expired (the lot expired before payment was confirmed: the trade expires and the quantity returns to the seller)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "years_beyond_term: the whole years traded no longer remain of the lot's term on the day of payment; price_below_benchmark, region_non_attainment: R4 is checked again on the day of payment (a benchmark approved or the buyer's region flagged since the trade opened binds it); the trade stays awaiting payment until its deadline", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/trades/{id}/payment")]
async fn confirm_payment(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<ConfirmPayment>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator, Role::Enterprise, Role::Bank])?;
    let reference = body.value.payment_ref.trim().to_string();
    if reference.is_empty() || reference.len() > 128 {
        return Err(ApiError::invalid_field(
            "payment_ref",
            "1 to 128 characters",
        ));
    }
    if who.role == Role::Operator {
        return propose_payment(
            state,
            who,
            idem,
            id.into_inner(),
            reference,
            &body.body_hash,
        )
        .await;
    }
    let (id, actor, now) = (
        id.into_inner(),
        who.actor(),
        db::now_micros(state.clock.now()),
    );
    let w = who.clone();
    let result = idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Required,
        StatusCode::OK,
        move |conn| {
            require_acknowledging_seller(conn, id, &w)?;
            let t = settle(conn, id, &reference, &actor, now)?;
            Outcome::of(&view(t, &w))
        },
    )
    .await;
    expire_if_lot_expired(&state, id, now, result).await
}

/// R6: the lot expired before the payment was confirmed (the ledger refused to deliver). The
/// trade can never settle: it expires now, in a transaction of its own, and the quantity returns
/// to the seller (or under the pledge being disposed of).
async fn expire_if_lot_expired(
    state: &web::Data<AppState>,
    id: i64,
    now: NaiveDateTime,
    result: ApiResult<HttpResponse>,
) -> ApiResult<HttpResponse> {
    match result {
        Err(e) if e.code == "lot_expired" => {
            state
                .db(move |conn| {
                    db::write_tx(conn, |conn| {
                        match find(conn, id)? {
                            Some(t) => expire(conn, &t, now)?,
                            None => false,
                        };
                        Ok(())
                    })
                })
                .await?;
            Err(ApiError::conflict(
                "lot_expired",
                format!(
                    "{}: the trade can no longer settle; it expired and the quantity returned to the seller",
                    e.detail
                ),
            ))
        }
        other => other,
    }
}

/// An operator's confirmation of a buyer's payment, awaiting another person's approval.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TradePayment {
    pub trade_id: i64,
    pub payment_ref: String,
}

/// The party whose receipt of the payment settles a trade by its own word: the seller, or for
/// the disposal of a pledge the pledgee, whose claim the proceeds pay (R13).
fn acknowledging_party(conn: &mut DbConn, t: &TradeRow) -> ApiResult<i64> {
    let Some(pledge) = t.pledge_id else {
        return Ok(t.seller_id);
    };
    Ok(crate::schema::pledges::table
        .find(pledge)
        .select(crate::schema::pledges::lender_id)
        .first(conn)?)
}

/// Only the seller (for a disposal, the pledgee) acknowledges receipt; anyone else is refused.
fn require_acknowledging_seller(conn: &mut DbConn, id: i64, who: &Principal) -> ApiResult<()> {
    let t = find(conn, id)?.ok_or_else(|| ApiError::not_found("trade"))?;
    let party = acknowledging_party(conn, &t)?;
    if who.party_id != Some(party) {
        return Err(ApiError::forbidden(
            "only the seller of this trade (for the disposal of a pledge, the pledgee) acknowledges receipt of its payment",
        ));
    }
    Ok(())
}

/// An operator's confirmation becomes a `trade_payment` proposal, checked now (the trade exists
/// and awaits payment) and settled only by another person's approval.
async fn propose_payment(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: i64,
    payment_ref: String,
    body_hash: &str,
) -> ApiResult<HttpResponse> {
    let now = db::now_micros(state.clock.now());
    let w = who.clone();
    let result = idempotency::run(
        &state,
        &who,
        idem,
        body_hash,
        KeyPolicy::Required,
        StatusCode::ACCEPTED,
        move |conn| {
            let t = find(conn, id)?.ok_or_else(|| ApiError::not_found("trade"))?;
            if t.status != "awaiting_payment" {
                return Err(ApiError::conflict(
                    "trade_not_awaiting_payment",
                    format!("this trade is {}", t.status),
                ));
            }
            let lot = rights::lot(conn, t.lot_id)?.ok_or_else(|| ApiError::not_found("lot"))?;
            if lot.expired(now.date()) {
                return Err(ApiError::conflict(
                    "lot_expired",
                    "the lot has expired (R6)",
                ));
            }
            let plan = TradePayment {
                trade_id: id,
                payment_ref,
            };
            let row = proposals::propose(conn, ProposalKind::TradePayment, &plan, None, &w, now)?;
            Outcome::of(&ProposalView::from(row))
        },
    )
    .await;
    expire_if_lot_expired(&state, id, now, result).await
}

/// Runs an approved `trade_payment` proposal: the trade settles as if confirmed now. A trade
/// that expired meanwhile is a 409 and the approval changes nothing.
pub fn execute_payment(
    conn: &mut DbConn,
    p: &TradePayment,
    who: &Principal,
    at: NaiveDateTime,
) -> ApiResult<serde_json::Value> {
    let t = settle(conn, p.trade_id, &p.payment_ref, &who.actor(), at)?;
    serde_json::to_value(view(t, who)).map_err(|e| ApiError::internal(e.to_string()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TradeQuery {
    pub lot_id: Option<i64>,
    pub listing_id: Option<i64>,
    pub auction_id: Option<i64>,
    /// awaiting_payment, settled or expired.
    pub status: Option<String>,
    /// Only trades of this party (operators, regulators; others always see their own here).
    pub party_id: Option<i64>,
}

#[utoipa::path(get, path = "/v1/trades", tag = "market", operation_id = "listTrades",
    summary = "Trades: the caller's own, or all for operators and regulators",
    params(TradeQuery, PageParams), responses((status = 200, description = "A page", body = Page<TradeView>)))]
#[get("/v1/trades")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<TradeQuery>,
    page: PageParams,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let (after, limit) = page.resolve()?;
    let w = who.clone();
    let rows = state
        .db(move |conn| {
            let mut query = tr::table
                .filter(tr::id.gt(after))
                .order(tr::id)
                .limit(limit + 1)
                .select(TradeRow::as_select())
                .into_boxed();
            let party = if w.role.sees_all() {
                q.party_id
            } else {
                Some(w.party_id.unwrap_or(-1))
            };
            if let Some(p) = party {
                query = query.filter(tr::seller_id.eq(p).or(tr::buyer_id.eq(p)));
            }
            if let Some(l) = q.lot_id {
                query = query.filter(tr::lot_id.eq(l));
            }
            if let Some(l) = q.listing_id {
                query = query.filter(tr::listing_id.eq(l));
            }
            if let Some(a) = q.auction_id {
                query = query.filter(tr::auction_id.eq(a));
            }
            if let Some(s) = q.status {
                query = query.filter(tr::status.eq(s));
            }
            Ok(query.load(conn)?)
        })
        .await?;
    Ok(Page::respond(
        rows.into_iter().map(|r| view(r, &who)).collect(),
        limit,
        |v| v.id,
    ))
}

#[utoipa::path(get, path = "/v1/trades/{id}", tag = "market", operation_id = "getTrade",
    summary = "A trade (its parties and fees only to them, operators and regulators)",
    params(("id" = i64, Path, description = "Trade id")), responses((status = 200, description = "The trade", body = TradeView)))]
#[get("/v1/trades/{id}")]
async fn get_one(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let t = state
        .db(move |conn| find(conn, id)?.ok_or_else(|| ApiError::not_found("trade")))
        .await?;
    Ok(HttpResponse::Ok().json(view(t, &who)))
}
