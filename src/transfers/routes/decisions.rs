//! What happens to a requested transfer: the receiver confirms, an operator approves or rejects,
//! the sender cancels; an expired lot unwinds it.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpResponse};
use chrono::NaiveDateTime;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::state::AppState;
use crate::rights::ledger::{self, Movement, Side};
use crate::rights::serials;
use crate::rights::store::{self as rights};
use crate::rights::{Acquisition, Bucket};
use crate::transfers::rules::{self, Action, Actor, Status};
use crate::transfers::store::{self, TransferRow};

use super::*;

/// A reason, for rejections and cancellations.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub reason: Option<String>,
}

pub(super) fn actor_of(who: &Principal, tr: &TransferRow) -> Actor {
    match (who.role, who.party_id) {
        (Role::Operator, _) => Actor::Operator,
        (_, Some(p)) if p == tr.from_party_id => Actor::Sender,
        (_, Some(p)) if p == tr.to_party_id => Actor::Receiver,
        _ => Actor::Other,
    }
}

/// Applies an action to a transfer in one transaction: lot lock, status change, movement, audit.
pub(super) async fn act(
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
                crate::collateral::require_not_held(conn, &format!("transfer:{id}"))?;
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
                let settings = crate::market::load_settings(conn)?;
                let receiver = crate::parties::store::find(conn, tr.to_party_id)?
                    .ok_or_else(|| ApiError::internal("receiver vanished"))?;
                crate::market::check_r4(
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
                    Some(Acquisition::of_purchase(crate::market::price_standing(
                        conn,
                        &lot,
                        tr.unit_price,
                        tr.created_at.date(),
                    )?)),
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
                crate::collateral::step_ended(
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
pub(super) fn unwind_expired(conn: &mut DbConn, id: i64, now: NaiveDateTime) -> ApiResult<()> {
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
    crate::collateral::step_ended(
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
pub(super) async fn confirm(
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
pub(super) async fn approve(
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
pub(super) async fn reject(
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
pub(super) async fn cancel(
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
