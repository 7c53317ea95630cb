//! HTTP: `/v1/transfers` — request, confirm, approve, reject, cancel; forced transfers.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::rules::{self, Action, Actor, Status};
use super::store::{self, NewTransfer, TransferRow};
use crate::app::AppState;
use crate::audit;
use crate::auth::{Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::{price_to_stored, trade_amount_fen, Dec};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::pagination::{Page, PageParams};
use crate::market::benchmarks::PriceStanding;
use crate::proposals::{self, ProposalKind, ProposalView};
use crate::rights::issuance::parse_quantity;
use crate::rights::ledger::{self, Movement, Side};
use crate::rights::serials;
use crate::rights::store::{self as rights, LotRow};
use crate::rights::{Acquisition, Bucket};
use crate::schema::transfers as t;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(request)
        .service(registered)
        .service(forced)
        .service(list)
        .service(get_one)
        .service(confirm)
        .service(approve)
        .service(reject)
        .service(cancel);
}

/// Request a transfer of part of one's holding to another party.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lot_id": 1, "to_party_id": 5, "quantity": "20.5", "unit_price": "6300", "years": 4}))]
pub struct RequestTransfer {
    pub lot_id: i64,
    pub to_party_id: i64,
    pub quantity: Dec,
    /// Unit price in CNY when this is a trade (EM: per ton per year, R3).
    pub unit_price: Option<Dec>,
    /// EM trades: whole years of the remaining term traded (R3), 1 to the whole years left from
    /// today to the lot's `valid_to` (a partly elapsed year does not count); more is a 422
    /// `years_beyond_term`.
    pub years: Option<i32>,
    pub note: Option<String>,
    /// Carbon-sink lots: exactly which serial ranges, as [first, last] pairs.
    pub serials: Option<Vec<(i64, i64)>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransferView {
    pub id: i64,
    pub lot_id: i64,
    pub from_party_id: i64,
    pub to_party_id: i64,
    pub quantity: Dec,
    /// `bilateral`, `registered` (agreed off-registry, registered by an operator), `court_order` or `merger`.
    pub kind: String,
    pub status: Status,
    pub requires_approval: bool,
    pub unit_price: Option<Dec>,
    /// EM trades: whole years of the term traded (R3).
    pub years: Option<i32>,
    /// quantity × unit price (× years for EM), rounded once half-up to the fen (R3).
    pub amount: Option<Dec>,
    pub document_ref: Option<String>,
    pub note: Option<String>,
    pub serials: Option<String>,
    pub requested_by: String,
    pub confirmed_by: Option<String>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<TransferRow> for TransferView {
    fn from(r: TransferRow) -> Self {
        TransferView {
            id: r.id,
            lot_id: r.lot_id,
            from_party_id: r.from_party_id,
            to_party_id: r.to_party_id,
            quantity: Dec::qty(r.quantity),
            kind: r.kind,
            status: Status::parse(&r.status).unwrap_or(Status::Requested),
            requires_approval: r.requires_approval,
            unit_price: r.unit_price.map(Dec::price),
            years: r.years,
            amount: r.amount.map(Dec::money),
            document_ref: r.document_ref,
            note: r.note,
            serials: r.serials,
            requested_by: r.requested_by,
            confirmed_by: r.confirmed_by,
            decided_by: r.decided_by,
            decision_reason: r.decision_reason,
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
        }
    }
}

fn transfer_audit(
    conn: &mut DbConn,
    tr: &TransferRow,
    action: &str,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    audit::record(
        conn,
        audit::Event {
            chain: format!("lot:{}", tr.lot_id),
            actor,
            action,
            object_type: "transfer",
            object_id: tr.id.to_string(),
            payload: json!({"from": tr.from_party_id, "to": tr.to_party_id, "quantity": tr.quantity,
                "status": tr.status, "amount": tr.amount, "document_ref": tr.document_ref}),
            at,
        },
    )?;
    Ok(())
}

/// Validates the receiving party: registered, not the sender, able to hold rights, not ended.
fn check_receiver(
    conn: &mut DbConn,
    from: i64,
    to: i64,
) -> ApiResult<crate::parties::store::PartyRow> {
    let party = crate::parties::store::find(conn, to)?
        .ok_or_else(|| ApiError::invalid_field("to_party_id", "no such party"))?;
    if to == from {
        return Err(ApiError::invalid_field(
            "to_party_id",
            "a transfer goes to another party",
        ));
    }
    if party.kind == "bank" || party.kind == "regulator" {
        return Err(ApiError::invalid_field(
            "to_party_id",
            "banks and regulators do not hold rights",
        ));
    }
    crate::parties::store::require_active(conn, to)
}

/// Price and amount of a trade (R3): EM is priced per ton-year and trades a number of years of
/// its remaining term; other rights quantity × price.
fn pricing(
    lot: &LotRow,
    rt: &crate::rights::store::RightTypeRow,
    quantity: i64,
    price: Option<Dec>,
    years: Option<i32>,
    today: chrono::NaiveDate,
) -> ApiResult<(Option<i64>, Option<i32>, Option<i64>)> {
    let Some(price) = price else {
        if years.is_some() {
            return Err(ApiError::invalid_field(
                "years",
                "years go with a unit price",
            ));
        }
        return Ok((None, None, None));
    };
    let price = price_to_stored(price.0)
        .map_err(|e| ApiError::invalid_field("unit_price", e.to_string()))?;
    let years = lot.years_traded(rt, years, today)?;
    let amount = trade_amount_fen(quantity, price, years.unwrap_or(1) as u32)
        .map_err(|e| ApiError::invalid_field("unit_price", e.to_string()))?;
    Ok((Some(price), years, Some(amount)))
}

/// What a bilateral and a registered transfer ask for, as sent.
struct Asked {
    to_party_id: i64,
    quantity: Dec,
    unit_price: Option<Dec>,
    years: Option<i32>,
    serials: bool,
}

/// The terms of a transfer, checked: its right type, the quantity in that type's places, the
/// price and amount (R3).
struct Terms {
    rt: crate::rights::store::RightTypeRow,
    quantity: i64,
    unit_price: Option<i64>,
    years: Option<i32>,
    amount: Option<i64>,
    /// Where the price stands against the benchmark (R11 reads it at settlement).
    standing: PriceStanding,
}

/// The checks every transfer between holders shares, once the lot is locked: quantity, receiver,
/// serials only on serialized types, pricing, and a live lot (R6).
fn terms(
    conn: &mut DbConn,
    lot: &LotRow,
    from: i64,
    a: &Asked,
    today: chrono::NaiveDate,
) -> ApiResult<Terms> {
    let rt = rights::right_type(conn, &lot.right_type)?
        .ok_or_else(|| ApiError::internal("right type vanished"))?;
    let quantity = parse_quantity("quantity", a.quantity, &rt)?;
    let receiver = check_receiver(conn, from, a.to_party_id)?;
    if a.serials && !rt.serialized {
        return Err(ApiError::invalid_field(
            "serials",
            "this right type has no serial numbers",
        ));
    }
    lot.require_live(today)?;
    let (unit_price, years, amount) = pricing(lot, &rt, quantity, a.unit_price, a.years, today)?;
    // R4, the same check as every market path: the price against the benchmark floor, and no
    // pollutant's load into a region flagged non-attainment (a transfer without a price moves the
    // load all the same).
    let settings = crate::market::settings::load(conn)?;
    let standing = crate::market::benchmarks::check_r4(
        conn,
        &settings,
        lot,
        Some(&receiver.region_code),
        unit_price,
        today,
    )?;
    Ok(Terms {
        rt,
        quantity,
        unit_price,
        years,
        amount,
        standing,
    })
}

#[utoipa::path(post, path = "/v1/transfers", tag = "transfers", operation_id = "requestTransfer",
    summary = "Request a transfer (the quantity is frozen at once)",
    params(("Idempotency-Key" = String, Header, description = "Required: this moves quantity")),
    description = "Emission rights (R3, R4): a priced transfer states the whole years of the term it sells (1 to the whole years left from today to the lot's `valid_to`; a partly elapsed year does not count), at or above the benchmark price in force; no emission-right transfer, priced or not, moves a pollutant's load into a region flagged non-attainment. The market settings switch the two R4 checks.",
    request_body = RequestTransfer,
    responses((status = 201, description = "Requested", body = TransferView),
        (status = 409, description = "insufficient_quantity, lot_expired", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed, years_beyond_term, price_below_benchmark, region_non_attainment", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/transfers")]
async fn request(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    body: ApiJson<RequestTransfer>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Enterprise])?;
    let from = who
        .party_id
        .ok_or_else(|| ApiError::forbidden("this user belongs to no party"))?;
    let r = body.value;
    let note = r
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let (actor, now, today) = (
        who.actor(),
        db::now_micros(state.clock.now()),
        state.clock.today(),
    );
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Required,
        StatusCode::CREATED,
        move |conn| {
            let lot = rights::lock_lot(conn, r.lot_id)?;
            if rights::holding(conn, from, lot.id)?.is_none() {
                return Err(ApiError::not_found("holding"));
            }
            let Terms {
                rt,
                quantity,
                unit_price,
                years,
                amount,
                ..
            } = terms(conn, &lot, from, &r.terms(), today)?;
            let mut tr = store::insert(
                conn,
                &NewTransfer {
                    lot_id: lot.id,
                    from_party_id: from,
                    to_party_id: r.to_party_id,
                    quantity,
                    kind: "bilateral".into(),
                    status: Status::Requested.as_str().into(),
                    requires_approval: rt.requires_approval,
                    unit_price,
                    years,
                    amount,
                    document_ref: None,
                    note,
                    serials: None,
                    requested_by: actor.clone(),
                    created_at: now,
                    updated_at: now,
                },
            )?;
            let moved = ledger::move_quantity(
                conn,
                Movement {
                    lot: &lot,
                    from: Side::holder(from, Bucket::Available),
                    to: Side::holder(from, Bucket::InTransfer),
                    quantity,
                    cause: "transfer_request",
                    reference: format!("transfer:{}", tr.id),
                    actor: &actor,
                    at: now,
                    acquisition: None,
                    named_serials: r.serials.as_deref(),
                },
            )?;
            if let Some(text) = serials::to_text(&moved) {
                diesel::update(t::table.find(tr.id))
                    .set(t::serials.eq(&text))
                    .execute(conn)?;
                tr.serials = Some(text);
            }
            transfer_audit(conn, &tr, "transfer.requested", &actor, now)?;
            Outcome::of(&TransferView::from(tr))
        },
    )
    .await
}

/// A transfer the parties agreed off-registry (a contract signed at the exchange's counter),
/// registered by an operator. It moves another party's quantity without that party acting on the
/// registry, so one operator only proposes it; a second operator (another person) approves, and it
/// settles then, in the approval's transaction. A sender that instructs on the registry itself
/// uses a bilateral transfer (`POST /v1/transfers`).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lot_id": 1, "from_party_id": 3, "to_party_id": 5, "quantity": "20.5",
    "unit_price": "6300", "years": 4, "document_ref": "南平转让合同〔2026〕88号"}))]
pub struct RegisteredTransfer {
    pub lot_id: i64,
    pub from_party_id: i64,
    pub to_party_id: i64,
    pub quantity: Dec,
    /// Unit price in CNY when this is a trade (EM: per ton per year, R3).
    pub unit_price: Option<Dec>,
    /// EM trades: whole years of the remaining term traded (R3), 1 to the whole years left from
    /// today to the lot's `valid_to` (a partly elapsed year does not count); more is a 422
    /// `years_beyond_term`.
    pub years: Option<i32>,
    /// The agreement the operator registers.
    pub document_ref: Option<String>,
    pub note: Option<String>,
    /// Carbon-sink lots: exactly which serial ranges, as [first, last] pairs.
    pub serials: Option<Vec<(i64, i64)>>,
}

macro_rules! asked {
    ($t:ty) => {
        impl $t {
            fn terms(&self) -> Asked {
                Asked {
                    to_party_id: self.to_party_id,
                    quantity: self.quantity,
                    unit_price: self.unit_price,
                    years: self.years,
                    serials: self.serials.is_some(),
                }
            }
        }
    };
}
asked!(RequestTransfer);
asked!(RegisteredTransfer);

fn trimmed(s: Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

#[utoipa::path(post, path = "/v1/transfers/registered", tag = "transfers", operation_id = "registerTransfer",
    summary = "An operator proposes a transfer agreed off-registry; a second operator approves and it settles then",
    description = "The same checks as a bilateral transfer (holding, quantity, receiver, pricing, live lot, whole years of the term and R4) run now and again at approval; the approval (`POST /v1/proposals/{id}/approve`, by another person) moves the available quantity straight to the receiver in one transaction.",
    params(("Idempotency-Key" = String, Header, description = "Required: this moves quantity once approved")),
    request_body = RegisteredTransfer,
    responses((status = 202, description = "Proposed", body = ProposalView),
        (status = 409, description = "insufficient_quantity, lot_expired", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed, years_beyond_term, price_below_benchmark, region_non_attainment", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/transfers/registered")]
async fn registered(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    body: ApiJson<RegisteredTransfer>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let mut r = body.value;
    r.note = trimmed(r.note.take());
    r.document_ref = trimmed(r.document_ref.take());
    let (now, today) = (db::now_micros(state.clock.now()), state.clock.today());
    let w = who.clone();
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Required,
        StatusCode::ACCEPTED,
        move |conn| {
            let lot = rights::lock_lot(conn, r.lot_id)?;
            let asked = registered_terms(conn, &lot, &r, today)?;
            if asked.quantity > available(conn, r.from_party_id, lot.id)? {
                return Err(ApiError::conflict(
                    "insufficient_quantity",
                    "the sender does not hold this much available quantity",
                ));
            }
            let row =
                proposals::propose(conn, ProposalKind::RegisteredTransfer, &r, None, &w, now)?;
            Outcome::of(&ProposalView::from(row))
        },
    )
    .await
}

/// The sender's available quantity of a lot (0 when it holds none).
fn available(conn: &mut DbConn, party: i64, lot: i64) -> ApiResult<i64> {
    Ok(rights::holding(conn, party, lot)?.map_or(0, |h| h.available))
}

/// The checks a registered transfer passes when proposed and again when approved.
fn registered_terms(
    conn: &mut DbConn,
    lot: &LotRow,
    r: &RegisteredTransfer,
    today: chrono::NaiveDate,
) -> ApiResult<Terms> {
    if rights::holding(conn, r.from_party_id, lot.id)?.is_none() {
        return Err(ApiError::invalid_field(
            "from_party_id",
            "holds nothing of this lot",
        ));
    }
    // An operator acts on the sender's instruction: a sender that has ended gives none.
    crate::parties::store::require_active(conn, r.from_party_id)?;
    terms(conn, lot, r.from_party_id, &r.terms(), today)
}

/// Settles an approved registered transfer: the available quantity moves straight to the receiver.
pub fn execute_registered(
    conn: &mut DbConn,
    r: &RegisteredTransfer,
    proposed_by: &str,
    actor: &str,
    now: NaiveDateTime,
    today: chrono::NaiveDate,
) -> ApiResult<serde_json::Value> {
    let from = r.from_party_id;
    let lot = rights::lock_lot(conn, r.lot_id)?;
    let Terms {
        rt: _,
        quantity,
        unit_price,
        years,
        amount,
        standing,
    } = registered_terms(conn, &lot, r, today)?;
    let mut tr = store::insert(
        conn,
        &NewTransfer {
            lot_id: lot.id,
            from_party_id: from,
            to_party_id: r.to_party_id,
            quantity,
            kind: "registered".into(),
            status: Status::Settled.as_str().into(),
            requires_approval: true,
            unit_price,
            years,
            amount,
            document_ref: r.document_ref.clone(),
            note: r.note.clone(),
            serials: None,
            requested_by: proposed_by.to_string(),
            created_at: now,
            updated_at: now,
        },
    )?;
    let moved = ledger::move_quantity(
        conn,
        Movement {
            lot: &lot,
            from: Side::holder(from, Bucket::Available),
            to: Side::holder(r.to_party_id, Bucket::Available),
            quantity,
            cause: "transfer_registered",
            reference: format!("transfer:{}", tr.id),
            actor,
            at: now,
            acquisition: Some(Acquisition::of_purchase(standing)),
            named_serials: r.serials.as_deref(),
        },
    )?;
    let text = serials::to_text(&moved);
    diesel::update(t::table.find(tr.id))
        .set((t::decided_by.eq(actor), t::serials.eq(&text)))
        .execute(conn)?;
    tr.decided_by = Some(actor.to_string());
    tr.serials = text;
    transfer_audit(conn, &tr, "transfer.registered", actor, now)?;
    serde_json::to_value(TransferView::from(tr)).map_err(|e| ApiError::internal(e.to_string()))
}

/// A reason, for rejections and cancellations.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub reason: Option<String>,
}

fn actor_of(who: &Principal, tr: &TransferRow) -> Actor {
    match (who.role, who.party_id) {
        (Role::Operator, _) => Actor::Operator,
        (_, Some(p)) if p == tr.from_party_id => Actor::Sender,
        (_, Some(p)) if p == tr.to_party_id => Actor::Receiver,
        _ => Actor::Other,
    }
}

/// Applies an action to a transfer in one transaction: lot lock, status change, movement, audit.
async fn act(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: i64,
    body_hash: String,
    action: Action,
    reason: Option<String>,
) -> ApiResult<HttpResponse> {
    let (actor, now) = (who.actor(), db::now_micros(state.clock.now()));
    let w = who.clone();
    let result = idempotency::run(
        &state,
        &who,
        idem,
        &body_hash,
        KeyPolicy::Required,
        StatusCode::OK,
        move |conn| {
            let lot_id = store::find(conn, id)?
                .ok_or_else(|| ApiError::not_found("transfer"))?
                .lot_id;
            let lot = rights::lock_lot(conn, lot_id)?;
            // Re-read under the lot lock: this is the state every concurrent action queues behind.
            let tr = store::find(conn, id)?.ok_or_else(|| ApiError::not_found("transfer"))?;
            let role = actor_of(&w, &tr);
            if role == Actor::Other && !w.role.sees_all() {
                return Err(ApiError::not_found("transfer"));
            }
            let status = Status::parse(&tr.status)
                .ok_or_else(|| ApiError::internal("unknown transfer status"))?;
            let next =
                rules::next(status, action, role, tr.requires_approval).map_err(|not_theirs| {
                    if not_theirs {
                        ApiError::forbidden("this party may not take this action on the transfer")
                    } else {
                        ApiError::conflict(
                            "transfer_not_pending",
                            format!("the transfer is {}", tr.status),
                        )
                    }
                })?;
            // Courts come first: quantity a judicial freeze holds in this transfer does not move on
            // towards the receiver (409 `quantity_frozen`, nothing changes) until the freeze is lifted.
            if matches!(action, Action::Confirm | Action::Approve) {
                crate::collateral::freezes::require_not_held(conn, &format!("transfer:{id}"))?;
            }
            // R3 at settlement: the years sold must still remain on the day the transfer settles
            // (a year of the term may have passed since the request). Refused as it stands; the
            // parties may cancel or reject it. An expired lot is left to the ledger's R6 refusal.
            if next == Status::Settled && tr.years.is_some() && !lot.expired(now.date()) {
                let rt = rights::right_type(conn, &lot.right_type)?
                    .ok_or_else(|| ApiError::internal("unknown right type"))?;
                lot.years_traded(&rt, tr.years, now.date())?;
            }
            // R4 at settlement as well: a benchmark approved or a region flagged non-attainment
            // since the request binds the transfer when it settles, with the same check as at
            // request time. Refused as it stands (422); the parties may cancel or reject it.
            if next == Status::Settled && !lot.expired(now.date()) {
                let settings = crate::market::settings::load(conn)?;
                let receiver = crate::parties::store::find(conn, tr.to_party_id)?
                    .ok_or_else(|| ApiError::internal("receiver vanished"))?;
                crate::market::benchmarks::check_r4(
                    conn,
                    &settings,
                    &lot,
                    Some(&receiver.region_code),
                    tr.unit_price,
                    now.date(),
                )?;
            }
            let changed = if action == Action::Confirm {
                store::confirm(conn, id, &tr.status, next.as_str(), &actor, now)?
            } else {
                store::decide(
                    conn,
                    id,
                    &tr.status,
                    next.as_str(),
                    &actor,
                    reason.as_deref(),
                    now,
                )?
            };
            if changed != 1 {
                return Err(ApiError::conflict(
                    "transfer_not_pending",
                    "the transfer changed meanwhile",
                ));
            }
            let (to, cause, acquisition) = match next {
                Status::Settled => (
                    Side::holder(tr.to_party_id, Bucket::Available),
                    "transfer_settle",
                    // R11: a market acquisition only at or above the benchmark in force when the
                    // transfer was agreed; a gift or a lower price is not.
                    Some(Acquisition::of_purchase(
                        crate::market::benchmarks::price_standing(
                            conn,
                            &lot,
                            tr.unit_price,
                            tr.created_at.date(),
                        )?,
                    )),
                ),
                Status::Rejected | Status::Cancelled => (
                    Side::holder(tr.from_party_id, Bucket::Available),
                    "transfer_unwind",
                    None,
                ),
                _ => (Side::holder(tr.from_party_id, Bucket::InTransfer), "", None),
            };
            if !cause.is_empty() {
                let named = tr.serials.as_deref().map(serials::parse_text);
                ledger::move_quantity(
                    conn,
                    Movement {
                        lot: &lot,
                        from: Side::holder(tr.from_party_id, Bucket::InTransfer),
                        to,
                        quantity: tr.quantity,
                        cause,
                        reference: format!("transfer:{id}"),
                        actor: &actor,
                        at: now,
                        acquisition,
                        named_serials: named.as_deref(),
                    },
                )?;
            }
            if matches!(next, Status::Rejected | Status::Cancelled) {
                crate::collateral::freezes::step_ended(
                    conn,
                    &lot,
                    &format!("transfer:{id}"),
                    tr.from_party_id,
                    Bucket::Available,
                    &actor,
                    now,
                )?;
            }
            let tr = store::find(conn, id)?.ok_or_else(|| ApiError::not_found("transfer"))?;
            transfer_audit(
                conn,
                &tr,
                &format!("transfer.{}", next.as_str()),
                &actor,
                now,
            )?;
            Outcome::of(&TransferView::from(tr))
        },
    )
    .await;
    match result {
        // R6: the lot expired before the transfer could settle (the ledger refused the movement).
        // It can never settle now: it ends as rejected by the registry and the frozen quantity
        // returns to the sender, in a transaction of its own; the caller still hears why.
        Err(e)
            if e.code == "lot_expired" && matches!(action, Action::Confirm | Action::Approve) =>
        {
            state
                .db(move |conn| db::write_tx(conn, |conn| unwind_expired(conn, id, now)))
                .await?;
            Err(ApiError::conflict(
                "lot_expired",
                format!(
                    "{}: the transfer can no longer settle; it is rejected and the quantity returned to the sender",
                    e.detail
                ),
            ))
        }
        other => other,
    }
}

/// Ends a pending transfer whose lot has expired (R6): rejected by the registry, the frozen
/// quantity back in the sender's `available`. Does nothing if it is no longer pending.
fn unwind_expired(conn: &mut DbConn, id: i64, now: NaiveDateTime) -> ApiResult<()> {
    let lot_id = store::find(conn, id)?
        .ok_or_else(|| ApiError::not_found("transfer"))?
        .lot_id;
    let lot = rights::lock_lot(conn, lot_id)?;
    let tr = store::find(conn, id)?.ok_or_else(|| ApiError::not_found("transfer"))?;
    let pending = matches!(
        Status::parse(&tr.status),
        Some(Status::Requested | Status::Confirmed)
    );
    if !pending || !lot.expired(now.date()) {
        return Ok(());
    }
    let reason = format!(
        "lot expired on {} before the transfer settled",
        lot.valid_to
    );
    if store::decide(
        conn,
        id,
        &tr.status,
        Status::Rejected.as_str(),
        "registry",
        Some(&reason),
        now,
    )? != 1
    {
        return Ok(());
    }
    let named = tr.serials.as_deref().map(serials::parse_text);
    ledger::move_quantity(
        conn,
        Movement {
            lot: &lot,
            from: Side::holder(tr.from_party_id, Bucket::InTransfer),
            to: Side::holder(tr.from_party_id, Bucket::Available),
            quantity: tr.quantity,
            cause: "transfer_unwind",
            reference: format!("transfer:{id}"),
            actor: "registry",
            at: now,
            acquisition: None,
            named_serials: named.as_deref(),
        },
    )?;
    crate::collateral::freezes::step_ended(
        conn,
        &lot,
        &format!("transfer:{id}"),
        tr.from_party_id,
        Bucket::Available,
        "registry",
        now,
    )?;
    let tr = store::find(conn, id)?.ok_or_else(|| ApiError::not_found("transfer"))?;
    transfer_audit(conn, &tr, "transfer.rejected", "registry", now)
}

#[utoipa::path(post, path = "/v1/transfers/{id}/confirm", tag = "transfers", operation_id = "confirmTransfer",
    summary = "The receiver confirms (settles at once unless the right type needs an operator's approval)",
    params(("id" = i64, Path, description = "Transfer id"), ("Idempotency-Key" = String, Header, description = "Required")),
    responses((status = 200, description = "Confirmed or settled", body = TransferView),
        (status = 409, description = "transfer_not_pending; quantity_frozen (a judicial freeze holds quantity of this transfer: nothing changes until it is lifted; the transfer may still be cancelled or rejected); lot_expired (the lot expired before the transfer could settle: it is rejected by the registry and the quantity returns to the sender)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "years_beyond_term: the whole years sold no longer remain of the lot's term on the day it would settle; price_below_benchmark, region_non_attainment: R4 is checked again on the day it would settle (a benchmark approved or a region flagged since the request binds it); the transfer stays as it is (the parties may cancel or reject it)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/transfers/{id}/confirm")]
async fn confirm(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    act(
        state,
        who,
        idem,
        id.into_inner(),
        String::new(),
        Action::Confirm,
        None,
    )
    .await
}

#[utoipa::path(post, path = "/v1/transfers/{id}/approve", tag = "transfers", operation_id = "approveTransfer",
    summary = "An operator approves a confirmed transfer, which settles it",
    params(("id" = i64, Path, description = "Transfer id"), ("Idempotency-Key" = String, Header, description = "Required")),
    responses((status = 200, description = "Settled", body = TransferView),
        (status = 409, description = "transfer_not_pending; quantity_frozen (a judicial freeze holds quantity of this transfer: nothing changes until it is lifted; the transfer may still be cancelled or rejected); lot_expired (the lot expired before the transfer could settle: it is rejected by the registry and the quantity returns to the sender)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "years_beyond_term: the whole years sold no longer remain of the lot's term on the day it would settle; price_below_benchmark, region_non_attainment: R4 is checked again on the day it would settle (a benchmark approved or a region flagged since the request binds it); the transfer stays as it is (the parties may cancel or reject it)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/transfers/{id}/approve")]
async fn approve(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    act(
        state,
        who,
        idem,
        id.into_inner(),
        String::new(),
        Action::Approve,
        None,
    )
    .await
}

#[utoipa::path(post, path = "/v1/transfers/{id}/reject", tag = "transfers", operation_id = "rejectTransfer",
    summary = "The receiver (before confirming) or an operator rejects; the quantity returns",
    params(("id" = i64, Path, description = "Transfer id"), ("Idempotency-Key" = String, Header, description = "Required")),
    request_body = Decision, responses((status = 200, description = "Rejected", body = TransferView)))]
#[post("/v1/transfers/{id}/reject")]
async fn reject(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<Decision>,
) -> ApiResult<HttpResponse> {
    act(
        state,
        who,
        idem,
        id.into_inner(),
        body.body_hash.clone(),
        Action::Reject,
        body.value.reason,
    )
    .await
}

#[utoipa::path(post, path = "/v1/transfers/{id}/cancel", tag = "transfers", operation_id = "cancelTransfer",
    summary = "The sender cancels a pending transfer; the quantity returns (allowed on expired lots)",
    params(("id" = i64, Path, description = "Transfer id"), ("Idempotency-Key" = String, Header, description = "Required")),
    request_body = Decision, responses((status = 200, description = "Cancelled", body = TransferView)))]
#[post("/v1/transfers/{id}/cancel")]
async fn cancel(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<Decision>,
) -> ApiResult<HttpResponse> {
    act(
        state,
        who,
        idem,
        id.into_inner(),
        body.body_hash.clone(),
        Action::Cancel,
        body.value.reason,
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TransferQuery {
    pub lot_id: Option<i64>,
    pub status: Option<Status>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/transfers", tag = "transfers", operation_id = "listTransfers",
    summary = "Transfers the caller is party to (all for operators and regulators)",
    params(TransferQuery), responses((status = 200, description = "A page", body = Page<TransferView>)))]
#[get("/v1/transfers")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<TransferQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let (after, limit) = PageParams {
        cursor: q.cursor,
        limit: q.limit,
    }
    .resolve()?;
    let rows = state
        .db(move |conn| {
            let mut query = t::table
                .filter(t::id.gt(after))
                .order(t::id)
                .limit(limit + 1)
                .select(TransferRow::as_select())
                .into_boxed();
            if !who.role.sees_all() {
                let p = who.party_id.unwrap_or(-1);
                query = query.filter(t::from_party_id.eq(p).or(t::to_party_id.eq(p)));
            }
            if let Some(l) = q.lot_id {
                query = query.filter(t::lot_id.eq(l));
            }
            if let Some(s) = q.status {
                query = query.filter(t::status.eq(s.as_str()));
            }
            Ok(query.load(conn)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(
        rows.into_iter().map(TransferView::from).collect(),
        limit,
        |v| v.id,
    )))
}

#[utoipa::path(get, path = "/v1/transfers/{id}", tag = "transfers", operation_id = "getTransfer", summary = "A transfer",
    params(("id" = i64, Path, description = "Transfer id")), responses((status = 200, description = "The transfer", body = TransferView)))]
#[get("/v1/transfers/{id}")]
async fn get_one(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let tr = state
        .db(move |conn| store::find(conn, id)?.ok_or_else(|| ApiError::not_found("transfer")))
        .await?;
    if !(who.sees_party(tr.from_party_id) || who.sees_party(tr.to_party_id)) {
        return Err(ApiError::not_found("transfer"));
    }
    Ok(HttpResponse::Ok().json(TransferView::from(tr)))
}

/// A transfer that needs no consent of the sender: a court order or a merger (合并分立).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lot_id": 1, "from_party_id": 3, "to_party_id": 5, "quantity": "10", "kind": "court_order",
    "document_ref": "(2026)闽0702执123号"}))]
pub struct ForcedTransfer {
    pub lot_id: i64,
    pub from_party_id: i64,
    pub to_party_id: i64,
    pub quantity: Dec,
    /// `court_order` or `merger`.
    pub kind: String,
    /// The court order or merger document.
    pub document_ref: String,
    /// For a court order: the registration number (`NPDJ-000001`) of the judicial freeze of its
    /// case that it executes. The order then takes the quantity that freeze holds first (it must be
    /// an active freeze of this holding: else 409 `freeze_not_of_holding` / `freeze_not_active`):
    /// what it holds in `frozen`, then the pledged quantity it rests on (see `pledge_handling`),
    /// then available quantity. Without it the order takes available quantity only and never
    /// touches quantity frozen for any case. Not allowed on a merger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze_no: Option<String>,
    /// For a court order executing pledged frozen quantity: `follows` (the default; the pledge
    /// follows the quantity, Civil Code art. 406: the transferee receives it still pledged to the
    /// same pledgee with the same rank and terms, and a pledge taken in part is split, the part
    /// taken getting its own registration number) or `discharged` (the order discharges the pledge
    /// on the quantity taken, which reaches the transferee free). The pledge's entries name the
    /// order either way. A pledge with quantity on offer in its disposal is not taken until the
    /// offer ends (409 `pledge_on_offer`). Not allowed on a merger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pledge_handling: Option<String>,
}

#[utoipa::path(post, path = "/v1/transfers/forced", tag = "transfers", operation_id = "proposeForcedTransfer",
    summary = "Propose a forced transfer (court order, merger); a second operator approves",
    params(("Idempotency-Key" = String, Header, description = "Required: this moves quantity once approved (a retry without it would propose the same transfer twice)")),
    request_body = ForcedTransfer, responses((status = 202, description = "Proposed", body = ProposalView)))]
#[post("/v1/transfers/forced")]
async fn forced(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    body: ApiJson<ForcedTransfer>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let r = body.value;
    if r.kind != "court_order" && r.kind != "merger" {
        return Err(ApiError::invalid_field("kind", "court_order or merger"));
    }
    if r.document_ref.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "document_ref",
            "a forced transfer names its document",
        ));
    }
    if r.kind == "merger" && r.freeze_no.is_some() {
        return Err(ApiError::invalid_field(
            "freeze_no",
            "only a court order executes a judicial freeze",
        ));
    }
    if r.kind == "merger" && r.pledge_handling.is_some() {
        return Err(ApiError::invalid_field(
            "pledge_handling",
            "only a court order disposes of a pledge",
        ));
    }
    crate::collateral::freezes::PledgeHandling::parse(r.pledge_handling.as_deref())?;
    let now = db::now_micros(state.clock.now());
    let w = who.clone();
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Required,
        StatusCode::ACCEPTED,
        move |conn| {
            let lot = rights::lot(conn, r.lot_id)?
                .ok_or_else(|| ApiError::invalid_field("lot_id", "no such lot"))?;
            let rt = rights::right_type(conn, &lot.right_type)?
                .ok_or_else(|| ApiError::internal("right type vanished"))?;
            parse_quantity("quantity", r.quantity, &rt)?;
            rights::holding(conn, r.from_party_id, lot.id)?.ok_or_else(|| {
                ApiError::invalid_field("from_party_id", "holds nothing of this lot")
            })?;
            check_receiver(conn, r.from_party_id, r.to_party_id)?;
            if let Some(no) = &r.freeze_no {
                crate::collateral::freezes::named_for_holding(conn, no, r.from_party_id, lot.id)?;
            }
            let row = proposals::propose(conn, ProposalKind::ForcedTransfer, &r, None, &w, now)?;
            Outcome::of(&ProposalView::from(row))
        },
    )
    .await
}

/// Runs an approved forced transfer: a court order naming its freeze takes the quantity that
/// freeze holds first, then available quantity; otherwise (and for a merger) available quantity. It moves straight to the receiver.
pub fn execute_forced(
    conn: &mut DbConn,
    r: &ForcedTransfer,
    proposal_id: i64,
    proposed_by: &str,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<serde_json::Value> {
    let lot = rights::lock_lot(conn, r.lot_id)?;
    let rt = rights::right_type(conn, &lot.right_type)?
        .ok_or_else(|| ApiError::internal("right type vanished"))?;
    let quantity = parse_quantity("quantity", r.quantity, &rt)?;
    let mut tr = store::insert(
        conn,
        &NewTransfer {
            lot_id: lot.id,
            from_party_id: r.from_party_id,
            to_party_id: r.to_party_id,
            quantity,
            kind: r.kind.clone(),
            status: Status::Settled.as_str().into(),
            requires_approval: true,
            unit_price: None,
            years: None,
            amount: None,
            document_ref: Some(r.document_ref.clone()),
            note: Some(format!("proposal {proposal_id}")),
            serials: None,
            requested_by: proposed_by.to_string(),
            created_at: at,
            updated_at: at,
        },
    )?;
    // A court's order executes against the quantity its own case froze first (courts come
    // first), never against another case's freeze.
    let moved = if r.kind == "court_order" {
        crate::collateral::freezes::court_transfer(
            conn,
            &lot,
            r.from_party_id,
            r.to_party_id,
            quantity,
            crate::collateral::freezes::CourtOrder {
                document_ref: &r.document_ref,
                freeze_no: r.freeze_no.as_deref(),
                handling: crate::collateral::freezes::PledgeHandling::parse(
                    r.pledge_handling.as_deref(),
                )?,
                reference: format!("transfer:{}", tr.id),
            },
            actor,
            at,
        )?
    } else {
        ledger::move_quantity(
            conn,
            Movement {
                lot: &lot,
                from: Side::holder(r.from_party_id, Bucket::Available),
                to: Side::holder(r.to_party_id, Bucket::Available),
                quantity,
                cause: "forced_transfer",
                reference: format!("transfer:{}", tr.id),
                actor,
                at,
                acquisition: Some(Acquisition::Other),
                named_serials: None,
            },
        )?
    };
    diesel::update(t::table.find(tr.id))
        .set((
            t::decided_by.eq(actor),
            t::serials.eq(serials::to_text(&moved)),
        ))
        .execute(conn)?;
    tr = store::find(conn, tr.id)?.ok_or_else(|| ApiError::not_found("transfer"))?;
    transfer_audit(conn, &tr, "transfer.forced", actor, at)?;
    serde_json::to_value(TransferView::from(tr)).map_err(|e| ApiError::internal(e.to_string()))
}
