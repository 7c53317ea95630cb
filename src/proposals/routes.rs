//! HTTP: `/v1/proposals` — list, inspect, approve (which runs the effect) and reject.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use diesel::prelude::*;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{decide, find, set_result, ProposalKind, ProposalRow, ProposalView};
use crate::auth::{Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::pagination::{Page, PageParams};
use crate::kernel::state::AppState;
use crate::rights::issuance::{self, CancellationPlan, IssuancePlan, LotView};
use crate::schema::proposals as p;
use crate::transfers::routes::{execute_forced, ForcedTransfer};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(get_one)
        .service(approve)
        .service(reject);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProposalQuery {
    /// pending, approved or rejected.
    pub status: Option<String>,
}

#[utoipa::path(get, path = "/v1/proposals", tag = "proposals", operation_id = "listProposals",
    summary = "Maker-checker proposals (operators, regulators)",
    params(ProposalQuery, PageParams), responses((status = 200, description = "A page", body = Page<ProposalView>)))]
#[get("/v1/proposals")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<ProposalQuery>,
    page: PageParams,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator, Role::Regulator])?;
    let q = q.into_inner();
    let (after, limit) = page.resolve()?;
    let rows = state
        .db(move |conn| {
            let mut query = p::table
                .filter(p::id.gt(after))
                .order(p::id)
                .limit(limit + 1)
                .select(ProposalRow::as_select())
                .into_boxed();
            if let Some(s) = q.status {
                query = query.filter(p::status.eq(s));
            }
            Ok(query.load(conn)?)
        })
        .await?;
    Ok(Page::respond(
        rows.into_iter().map(ProposalView::from).collect(),
        limit,
        |v| v.id,
    ))
}

#[utoipa::path(get, path = "/v1/proposals/{id}", tag = "proposals", operation_id = "getProposal", summary = "A proposal",
    params(("id" = i64, Path, description = "Proposal id")), responses((status = 200, description = "The proposal", body = ProposalView)))]
#[get("/v1/proposals/{id}")]
async fn get_one(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator, Role::Regulator])?;
    let id = id.into_inner();
    let row = state
        .db(move |conn| find(conn, id)?.ok_or_else(|| ApiError::not_found("proposal")))
        .await?;
    Ok(HttpResponse::Ok().json(ProposalView::from(row)))
}

fn payload<T: serde::de::DeserializeOwned>(row: &ProposalRow) -> ApiResult<T> {
    serde_json::from_str(&row.payload)
        .map_err(|e| ApiError::internal(format!("stored proposal unreadable: {e}")))
}

/// Runs what an approved proposal asks for, in the approval's transaction.
fn execute(
    conn: &mut DbConn,
    row: &ProposalRow,
    who: &Principal,
    actor: &str,
    today: chrono::NaiveDate,
    at: chrono::NaiveDateTime,
) -> ApiResult<serde_json::Value> {
    let to_json =
        |v: LotView| serde_json::to_value(v).map_err(|e| ApiError::internal(e.to_string()));
    match row.kind.as_str() {
        "issuance" => {
            let plan: IssuancePlan = payload(row)?;
            let lot = issuance::execute(conn, &plan, &row.proposed_by_name, actor, at)?;
            let lot = crate::rights::store::lot(conn, lot.id)?
                .ok_or_else(|| ApiError::not_found("lot"))?;
            to_json(LotView::of(lot, today))
        }
        "cancellation" => issuance::execute_cancellation(
            conn,
            &payload::<CancellationPlan>(row)?,
            row.id,
            actor,
            at,
        ),
        "forced_transfer" => execute_forced(
            conn,
            &payload::<ForcedTransfer>(row)?,
            row.id,
            &row.proposed_by_name,
            actor,
            at,
        ),
        "benchmark_price" => crate::market::execute_benchmark(
            conn,
            &payload::<crate::market::SetBenchmark>(row)?,
            row,
            actor,
            at,
        ),
        "registered_transfer" => crate::transfers::routes::execute_registered(
            conn,
            &payload(row)?,
            &row.proposed_by_name,
            actor,
            at,
            today,
        ),
        "disposal" => crate::collateral::pledges::execute_disposal(
            conn,
            &payload(row)?,
            actor,
            at,
            true,
        ),
        "forest_disposal" => {
            crate::forest::mortgages::execute_disposal(conn, &payload(row)?, actor, at, true)
        }
        "parcel_freeze_lift" => {
            crate::forest::freezes::execute_lift(conn, &payload(row)?, actor, at)
        }
        "freeze_lift" => {
            crate::collateral::execute_freeze_lift(conn, &payload(row)?, actor, at)
        }
        "retirement" => crate::rights::execute_retirement_on_behalf(
            conn,
            &payload(row)?,
            actor,
            at,
            today,
        ),
        "amendment_code_reset" => crate::collateral::pledges::execute_code_reset(
            conn,
            &payload(row)?,
            row.id,
            actor,
            at,
        ),
        "operator_account" => {
            crate::auth::execute_operator_account(conn, &payload(row)?, who, at, false)
        }
        "party_account" => {
            crate::auth::execute_operator_account(conn, &payload(row)?, who, at, true)
        }
        "parcel_holder_change" => {
            crate::forest::parcels::execute_holder_change(conn, &payload(row)?, actor, at, true)
        }
        "disposal_listing" => crate::market::execute_disposal_listing(
            conn,
            &payload(row)?,
            actor,
            at,
            today,
        ),
        "disposal_auction" => {
            crate::market::execute_disposal_auction(conn, &payload(row)?, actor, at, today)
        }
        "parcel_registration" => {
            crate::forest::parcels::execute_registration(conn, &payload(row)?, actor, at, true)
        }
        "parcel_split" => {
            crate::forest::parcels::execute_split(conn, &payload(row)?, actor, at, true)
        }
        "auction" => {
            crate::market::execute_disposal_auction(conn, &payload(row)?, actor, at, today)
        }
        "auction_cancellation" => {
            crate::market::execute_auction_cancellation(conn, &payload(row)?, actor, at)
        }
        "region_flag" => crate::market::execute_flag(conn, &payload(row)?, row, actor, at),
        "trade_payment" => crate::market::execute_payment(conn, &payload(row)?, who, at),
        "lender_product" => crate::forest::execute_lender_product(
            conn,
            &payload(row)?,
            &row.proposed_by_name,
            actor,
            at,
        ),
        "market_settings" => {
            crate::market::execute_settings(conn, &payload(row)?, &row.proposed_by_name, actor, at)
        }
        // The checker proves they hold the proposed file by uploading it.
        "lot_import" | "parcel_import" => Err(ApiError::conflict(
            "approve_by_upload",
            "an import is approved by uploading the same file: POST /v1/imports/{kind}?proposal={id}",
        )),
        other => Err(ApiError::internal(format!("unknown proposal kind {other}"))),
    }
}

#[utoipa::path(post, path = "/v1/proposals/{id}/approve", tag = "proposals", operation_id = "approveProposal",
    summary = "A second operator (another person) approves; what was proposed happens now",
    params(("id" = i64, Path, description = "Proposal id"), ("Idempotency-Key" = String, Header, description = "Required: approval moves quantity")),
    responses((status = 200, description = "Approved, with its result", body = ProposalView),
        (status = 403, description = "maker_checker: the proposer cannot approve", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "proposal_decided, approve_by_upload (a lot or parcel import)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/proposals/{id}/approve")]
async fn approve(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let (id, now, today) = (
        id.into_inner(),
        db::now_micros(state.clock.now()),
        state.clock.today(),
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
            let row = decide(conn, id, &w, "approved", None, now)?;
            let result = execute(conn, &row, &w, &w.actor(), today, now)?;
            set_result(conn, id, &result)?;
            audit_decision(conn, &row, "approved", &w.actor(), now)?;
            let row = find(conn, id)?.ok_or_else(|| ApiError::not_found("proposal"))?;
            Outcome::of(&ProposalView::from(row))
        },
    )
    .await
}

/// Approves proposal `id` as operator `who` outside HTTP (the demo seed), in the caller's
/// transaction, with the same checks and effect as POST /v1/proposals/{id}/approve.
pub fn approve_in(
    conn: &mut DbConn,
    id: i64,
    who: &Principal,
    today: chrono::NaiveDate,
    now: chrono::NaiveDateTime,
) -> ApiResult<serde_json::Value> {
    let row = decide(conn, id, who, "approved", None, now)?;
    let result = execute(conn, &row, who, &who.actor(), today, now)?;
    set_result(conn, id, &result)?;
    audit_decision(conn, &row, "approved", &who.actor(), now)?;
    Ok(result)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectProposal {
    pub reason: String,
}

#[utoipa::path(post, path = "/v1/proposals/{id}/reject", tag = "proposals", operation_id = "rejectProposal",
    summary = "A second operator rejects a proposal",
    params(("id" = i64, Path, description = "Proposal id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = RejectProposal, responses((status = 200, description = "Rejected", body = ProposalView)))]
#[post("/v1/proposals/{id}/reject")]
async fn reject(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<RejectProposal>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let reason = body.value.reason.trim().to_string();
    if reason.is_empty() {
        return Err(ApiError::invalid_field(
            "reason",
            "a rejection states its reason",
        ));
    }
    let (id, now) = (id.into_inner(), db::now_micros(state.clock.now()));
    let w = who.clone();
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Optional,
        StatusCode::OK,
        move |conn| {
            let row = decide(conn, id, &w, "rejected", Some(&reason), now)?;
            audit_decision(conn, &row, "rejected", &w.actor(), now)?;
            Outcome::of(&ProposalView::from(row))
        },
    )
    .await
}

fn audit_decision(
    conn: &mut DbConn,
    row: &ProposalRow,
    decision: &str,
    actor: &str,
    at: chrono::NaiveDateTime,
) -> ApiResult<()> {
    let kind = ProposalKind::parse(&row.kind);
    crate::audit::record(
        conn,
        crate::audit::Event {
            chain: format!("proposal:{}", row.id),
            actor,
            action: &format!("{}.{decision}", kind.as_str()),
            object_type: "proposal",
            object_id: row.id.to_string(),
            payload: serde_json::json!({"decision": decision, "reason": row.decision_reason}),
            at,
        },
    )?;
    Ok(())
}
