//! Lender changes under the amendment code (修改码): renewal, amendment, and replacing or resetting
//! the code.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{
    check_code, fen, lock, maturity_limit, outcome, require_lender, require_status, view, visible,
    PledgeAccepted, PledgeView,
};
use crate::auth::{Principal, Role};
use crate::collateral::encumbrance;
use crate::collateral::{add_entry, code_hash, find, random_code, rules, LIVE};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::Dec;
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::state::AppState;
use crate::proposals::{self, ProposalKind, ProposalView};
use crate::rights::store as rights;
use crate::schema::pledges as pl;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Renew {
    pub amendment_code: String,
    /// The new end of the registration period.
    pub period_end: NaiveDate,
}

#[utoipa::path(post, path = "/v1/pledges/{id}/renew", tag = "pledges", operation_id = "renewPledge",
    summary = "The lender renews the registration (only in the 90 days before it ends)",
    params(("id" = i64, Path, description = "Pledge id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = Renew, responses((status = 200, description = "Renewed", body = PledgeView),
        (status = 409, description = "renewal_window", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/pledges/{id}/renew")]
pub(super) async fn renew(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<Renew>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank])?;
    let r = body.value;
    let (id, actor, now, today) = (
        id.into_inner(),
        who.actor(),
        db::now_micros(state.clock.now()),
        state.clock.today(),
    );
    let w = who.clone();
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Optional,
        StatusCode::OK,
        move |conn| {
            let (p, _) = lock(conn, &w, id)?;
            require_lender(&w, &p)?;
            check_code(&p, &r.amendment_code)?;
            require_status(&p, &LIVE)?;
            let end = p
                .period_end
                .ok_or_else(|| ApiError::internal("registered pledge without a period"))?;
            if !rules::in_renewal_window(today, end) {
                return Err(ApiError::conflict(
                    "renewal_window",
                    format!("renewal is accepted only in the 90 days before {end} (R8)"),
                ));
            }
            if !rules::period_ok(end, r.period_end) {
                return Err(ApiError::invalid_field(
                    "period_end",
                    "a renewal runs for 1 month to 30 years from the current end (R8)",
                ));
            }
            diesel::update(pl::table.find(id))
                .set((
                    pl::period_end.eq(r.period_end),
                    pl::lapse_warned_at.eq(None::<NaiveDateTime>),
                    pl::updated_at.eq(now),
                ))
                .execute(conn)?;
            encumbrance::recorded(
                conn,
                &p,
                "renewed",
                json!({"from": end, "to": r.period_end}),
                &actor,
                now,
            )
        },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Amend {
    pub amendment_code: String,
    pub secured_amount: Option<Dec>,
    pub loan_maturity: Option<NaiveDate>,
    pub loan_reference: Option<String>,
}

#[utoipa::path(post, path = "/v1/pledges/{id}/amend", tag = "pledges", operation_id = "amendPledge",
    summary = "The lender amends the registered terms",
    params(("id" = i64, Path, description = "Pledge id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = Amend, responses((status = 200, description = "Amended", body = PledgeView)))]
#[post("/v1/pledges/{id}/amend")]
pub(super) async fn amend(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<Amend>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank])?;
    let r = body.value;
    let secured = r
        .secured_amount
        .map(|s| fen("secured_amount", s))
        .transpose()?;
    let (id, actor, now) = (
        id.into_inner(),
        who.actor(),
        db::now_micros(state.clock.now()),
    );
    let w = who.clone();
    idempotency::run(&state, &who, idem, &body.body_hash, KeyPolicy::Optional, StatusCode::OK, move |conn| {
        let (p, lot) = lock(conn, &w, id)?;
        require_lender(&w, &p)?;
        check_code(&p, &r.amendment_code)?;
        require_status(&p, &LIVE)?;
        let new_secured = secured.or(p.secured_amount).unwrap_or(0);
        if !rules::ltv_ok(new_secured, p.appraisal_value.unwrap_or(0), rules::LTV_CAP_BP) {
            return Err(ApiError::unprocessable("ltv_exceeded", "the secured amount exceeds 80 % of the appraised value (R11)"));
        }
        let maturity = r.loan_maturity.or(p.loan_maturity);
        if maturity.is_some_and(|m| m > maturity_limit(&lot)) {
            return Err(ApiError::unprocessable("maturity_after_validity", "the loan matures after the right's validity"));
        }
        diesel::update(pl::table.find(id))
            .set((
                pl::secured_amount.eq(new_secured),
                pl::loan_maturity.eq(maturity),
                pl::loan_reference.eq(r.loan_reference.clone().or(p.loan_reference.clone())),
                pl::updated_at.eq(now),
            ))
            .execute(conn)?;
        add_entry(conn, &p, "amended", json!({"secured_amount": secured, "loan_maturity": r.loan_maturity, "loan_reference_changed": r.loan_reference.is_some()}), &actor, now)?;
        crate::collateral::monitoring::check_ltv(conn, &p, new_secured, now)?;
        outcome(conn, id)
    })
    .await
}

/// Replacing the amendment code.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"current_code": "K7PQ2M9XW4RT8HZN"}))]
pub struct RotateCode {
    /// The code in force. Omitted only after an approved operator-assisted reset
    /// (`POST /v1/pledges/{id}/amendment-code/reset`), which voids the old code.
    pub current_code: Option<String>,
}

/// Marks a pledge whose code an approved reset voided: no code hashes to this form, so nothing
/// matches it until the lender sets a new code.
const RESET_MARK: &str = "reset:";

#[utoipa::path(post, path = "/v1/pledges/{id}/amendment-code", tag = "pledges", operation_id = "rotateAmendmentCode",
    summary = "The lender replaces the amendment code; the new one is shown once",
    description = "Needs the lender's login and the code in force (R7): a login alone does not replace it. A lender that lost the code asks the exchange for a reset on a documented request; once two operators approved it (`POST /v1/pledges/{id}/amendment-code/reset`), the lender's login sets a new code without the old one, once. Every rotation and reset is an entry in the pledge's history.",
    params(("id" = i64, Path, description = "Pledge id")),
    request_body = RotateCode,
    responses((status = 200, description = "The pledge, with `amendment_code` this once", body = PledgeAccepted),
        (status = 403, description = "amendment_code_invalid: the current code is missing or wrong", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/pledges/{id}/amendment-code")]
pub(super) async fn rotate_code(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
    body: ApiJson<RotateCode>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank])?;
    let current = body.value.current_code;
    let (id, actor, now) = (
        id.into_inner(),
        who.actor(),
        db::now_micros(state.clock.now()),
    );
    // Never idempotent-replayable: the answer carries a secret the registry does not keep.
    let body = state
        .db(move |conn| {
            db::write_tx(conn, |conn| {
                let (p, _) = lock(conn, &who, id)?;
                require_lender(&who, &p)?;
                let after_reset = p
                    .amendment_code_hash
                    .as_deref()
                    .is_some_and(|h| h.starts_with(RESET_MARK));
                match current.as_deref() {
                    Some(code) => check_code(&p, code)?,
                    None if after_reset => {}
                    None => check_code(&p, "")?,
                }
                let fresh = random_code(16);
                diesel::update(pl::table.find(id))
                    .set((
                        pl::amendment_code_hash.eq(code_hash(&fresh)),
                        pl::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                add_entry(
                    conn,
                    &p,
                    "code_rotated",
                    json!({"after_reset": after_reset && current.is_none()}),
                    &actor,
                    now,
                )?;
                let p = find(conn, id)?.ok_or_else(|| ApiError::not_found("pledge"))?;
                Ok(PledgeAccepted {
                    pledge: view(conn, p)?,
                    amendment_code: Some(fresh),
                })
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// The lender's documented request to reset a lost amendment code.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "the officer holding the code left the bank", "document_ref": "兴业银行南平分行函〔2026〕12号"}))]
pub struct ResetCode {
    pub reason: String,
    /// The lender's written request.
    pub document_ref: String,
}

/// What an amendment-code reset proposal stores.
#[derive(Debug, Deserialize, Serialize)]
pub struct CodeResetProposal {
    pub pledge_id: i64,
    pub request: ResetCode,
}

#[utoipa::path(post, path = "/v1/pledges/{id}/amendment-code/reset", tag = "pledges", operation_id = "proposeAmendmentCodeReset",
    summary = "An operator proposes resetting a lost amendment code on the lender's documented request; a second operator approves",
    description = "The approval voids the code in force; the lender's login then sets a new one (`POST /v1/pledges/{id}/amendment-code` without `current_code`), once. Reason and document are kept in the proposal, the pledge's history and the audit trail.",
    params(("id" = i64, Path, description = "Pledge id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = ResetCode, responses((status = 202, description = "Proposed", body = ProposalView)))]
#[post("/v1/pledges/{id}/amendment-code/reset")]
pub(super) async fn reset_code(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<ResetCode>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let r = body.value;
    let request = ResetCode {
        reason: r.reason.trim().to_string(),
        document_ref: r.document_ref.trim().to_string(),
    };
    if request.reason.is_empty() {
        return Err(ApiError::invalid_field("reason", "required"));
    }
    if request.document_ref.is_empty() {
        return Err(ApiError::invalid_field(
            "document_ref",
            "the lender's written request",
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
        StatusCode::ACCEPTED,
        move |conn| {
            let p = visible(conn, &w, id)?;
            require_status(&p, &LIVE)?;
            let asked = CodeResetProposal {
                pledge_id: id,
                request,
            };
            let row = proposals::propose(
                conn,
                ProposalKind::AmendmentCodeReset,
                &asked,
                None,
                &w,
                now,
            )?;
            Outcome::of(&ProposalView::from(row))
        },
    )
    .await
}

/// Carries out an approved reset: the code in force no longer works, and the lender may set a
/// new one without it.
pub fn execute_code_reset(
    conn: &mut DbConn,
    r: &CodeResetProposal,
    proposal_id: i64,
    actor: &str,
    now: NaiveDateTime,
) -> ApiResult<serde_json::Value> {
    let lot_id = find(conn, r.pledge_id)?
        .ok_or_else(|| ApiError::not_found("pledge"))?
        .lot_id;
    rights::lock_lot(conn, lot_id)?;
    let p = find(conn, r.pledge_id)?.ok_or_else(|| ApiError::not_found("pledge"))?;
    require_status(&p, &LIVE)?;
    diesel::update(pl::table.find(p.id))
        .set((
            pl::amendment_code_hash.eq(format!("{RESET_MARK}{proposal_id}")),
            pl::updated_at.eq(now),
        ))
        .execute(conn)?;
    add_entry(
        conn,
        &p,
        "code_reset",
        json!({"proposal": proposal_id, "reason": r.request.reason, "document_ref": r.request.document_ref}),
        actor,
        now,
    )?;
    Ok(outcome(conn, p.id)?.body)
}
