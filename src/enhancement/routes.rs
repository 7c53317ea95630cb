//! HTTP: `/v1/pledges/{id}/credit-enhancements` and `/v1/forest-mortgages/{id}/credit-enhancements`
//! — the lender (or an operator) records a guarantee or an insurance policy; the parties, the
//! guarantors, operators and regulators read them with the shortfall split.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::NaiveDate;
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::rules::{self, Kind};
use super::{CreditEnhancement, Encumbrance, EnhancementRow, EnhancementView};
use crate::auth::{Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::{money_to_fen, Dec};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::state::AppState;
use crate::schema::{credit_enhancements as ce, forest_mortgages as fm, pledges as pl};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(record_on_pledge)
        .service(list_on_pledge)
        .service(record_on_mortgage)
        .service(list_on_mortgage);
}

/// A guarantee (guarantor, its share of a loss and the guaranteed amount) or an insurance policy
/// (insurer, policy number, insured amount, beneficiary), with its term.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "guarantee", "guarantor_party_id": 5, "guaranteed_share_percent": "80",
    "amount": "1600000.00", "term_from": "2026-12-01", "term_to": "2028-12-31"}))]
pub struct RecordEnhancement {
    pub kind: Kind,
    /// Guarantee: the guarantor (a registered party).
    pub guarantor_party_id: Option<i64>,
    /// Guarantee: its share of a loss in percent, e.g. 80 for an 80/20 guarantor–bank split.
    pub guaranteed_share_percent: Option<Dec>,
    /// Insurance: the insurer's name.
    pub insurer: Option<String>,
    /// Insurance: the policy number.
    pub policy_no: Option<String>,
    /// The guaranteed or insured amount (yuan): the most it pays.
    pub amount: Dec,
    /// Insurance: the beneficiary (a registered party, usually the lender).
    pub beneficiary_party_id: Option<i64>,
    pub term_from: NaiveDate,
    pub term_to: NaiveDate,
}

/// (grantor, lender, status) of the encumbrance; 404 when there is none.
fn facts(conn: &mut DbConn, on: Encumbrance, id: i64) -> ApiResult<(i64, i64, String)> {
    let found = match on {
        Encumbrance::Pledge => pl::table
            .find(id)
            .select((pl::pledgor_id, pl::lender_id, pl::status))
            .first(conn)
            .optional()?,
        Encumbrance::ForestMortgage => fm::table
            .find(id)
            .select((fm::mortgagor_id, fm::lender_id, fm::status))
            .first(conn)
            .optional()?,
    };
    found.ok_or_else(|| ApiError::not_found(on.as_str()))
}

/// The grantor, the lender, operators, regulators and the encumbrance's guarantors see it.
fn may_see(
    conn: &mut DbConn,
    who: &Principal,
    on: Encumbrance,
    id: i64,
) -> ApiResult<(i64, i64, String)> {
    let (grantor, lender, status) = facts(conn, on, id)?;
    if who.sees_party(grantor) || who.sees_party(lender) {
        return Ok((grantor, lender, status));
    }
    if let Some(me) = who.party_id {
        let guarantees: i64 = ce::table
            .filter(ce::encumbrance_kind.eq(on.as_str()))
            .filter(ce::encumbrance_id.eq(id))
            .filter(ce::guarantor_id.eq(me))
            .count()
            .get_result(conn)?;
        if guarantees > 0 {
            return Ok((grantor, lender, status));
        }
    }
    Err(ApiError::not_found(on.as_str()))
}

/// Statuses in which the loan is still to be made or running.
fn open(on: Encumbrance, status: &str) -> bool {
    match on {
        Encumbrance::Pledge => matches!(status, "applied" | "registered" | "enforcing"),
        Encumbrance::ForestMortgage => matches!(
            status,
            "applied"
                | "pending_official_registration"
                | "pending_confirmation"
                | "registered"
                | "enforcing"
        ),
    }
}

fn text(field: &str, v: &Option<String>) -> ApiResult<String> {
    let t = v.as_deref().map(str::trim).unwrap_or("");
    if t.is_empty() || t.chars().count() > 200 {
        return Err(ApiError::invalid_field(
            field,
            "required, at most 200 characters",
        ));
    }
    Ok(t.to_string())
}

fn registered_party(conn: &mut DbConn, field: &str, id: Option<i64>) -> ApiResult<i64> {
    let id = id.ok_or_else(|| ApiError::invalid_field(field, "required"))?;
    crate::parties::store::find(conn, id)?
        .ok_or_else(|| ApiError::invalid_field(field, "not a registered party"))?;
    Ok(id)
}

async fn record(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    on: Encumbrance,
    id: i64,
    body: ApiJson<RecordEnhancement>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank, Role::Operator])?;
    let r = body.value;
    let amount = money_to_fen(r.amount.0, false)
        .map_err(|e| ApiError::invalid_field("amount", e.to_string()))?;
    if r.term_to < r.term_from {
        return Err(ApiError::unprocessable(
            "term_reversed",
            "term_to is before term_from",
        ));
    }
    if on == Encumbrance::Pledge && r.kind == Kind::ForestInsurance {
        return Err(ApiError::invalid_field(
            "kind",
            "forest insurance covers forest mortgages only",
        ));
    }
    let (actor, now) = (who.actor(), db::now_micros(state.clock.now()));
    let w = who.clone();
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Optional,
        StatusCode::CREATED,
        move |conn| {
            // The encumbrance row is the queue for its enhancements: two guarantees recorded at
            // once cannot together pass the whole loss.
            match on {
                Encumbrance::Pledge => diesel::update(pl::table.find(id))
                    .set(pl::updated_at.eq(pl::updated_at))
                    .execute(conn)?,
                Encumbrance::ForestMortgage => diesel::update(fm::table.find(id))
                    .set(fm::updated_at.eq(fm::updated_at))
                    .execute(conn)?,
            };
            let (grantor, lender, status) = may_see(conn, &w, on, id)?;
            if w.role == Role::Bank && w.party_id != Some(lender) {
                return Err(ApiError::forbidden(
                    "only the lender or an operator records credit enhancement",
                ));
            }
            if !open(on, &status) {
                return Err(ApiError::conflict(
                    "encumbrance_status",
                    format!("the {} is {status}", on.as_str()),
                ));
            }
            let (mut guarantor, mut share, mut insurer, mut policy, mut beneficiary) =
                (None, None, None, None, None);
            if r.kind == Kind::Guarantee {
                let g = registered_party(conn, "guarantor_party_id", r.guarantor_party_id)?;
                if g == grantor || g == lender {
                    return Err(ApiError::invalid_field(
                        "guarantor_party_id",
                        "the guarantor is a third party, neither the borrower nor the lender",
                    ));
                }
                let pct = r.guaranteed_share_percent.ok_or_else(|| {
                    ApiError::invalid_field("guaranteed_share_percent", "required")
                })?;
                let bp = money_to_fen(pct.0, false)
                    .ok()
                    .and_then(|v| i32::try_from(v).ok())
                    .filter(|v| *v <= rules::WHOLE_BP)
                    .ok_or_else(|| {
                        ApiError::invalid_field(
                            "guaranteed_share_percent",
                            "above 0 and at most 100, with at most 2 decimal places",
                        )
                    })?;
                let existing: Vec<Option<i32>> = ce::table
                    .filter(ce::encumbrance_kind.eq(on.as_str()))
                    .filter(ce::encumbrance_id.eq(id))
                    .filter(ce::kind.eq(Kind::Guarantee.as_str()))
                    .select(ce::guaranteed_share_bp)
                    .load(conn)?;
                let existing: Vec<i32> = existing.into_iter().flatten().collect();
                if !rules::shares_fit(&existing, bp) {
                    return Err(ApiError::conflict(
                        "guarantee_shares_exceed",
                        "the guarantees on this loan would together bear more than the whole loss",
                    ));
                }
                guarantor = Some(g);
                share = Some(bp);
            } else {
                insurer = Some(text("insurer", &r.insurer)?);
                policy = Some(text("policy_no", &r.policy_no)?);
                beneficiary = Some(registered_party(
                    conn,
                    "beneficiary_party_id",
                    r.beneficiary_party_id,
                )?);
            }
            diesel::insert_into(ce::table)
                .values((
                    ce::encumbrance_kind.eq(on.as_str()),
                    ce::encumbrance_id.eq(id),
                    ce::kind.eq(r.kind.as_str()),
                    ce::guarantor_id.eq(guarantor),
                    ce::guaranteed_share_bp.eq(share),
                    ce::insurer.eq(&insurer),
                    ce::policy_no.eq(&policy),
                    ce::amount.eq(amount),
                    ce::beneficiary_id.eq(beneficiary),
                    ce::term_from.eq(r.term_from),
                    ce::term_to.eq(r.term_to),
                    ce::recorded_by.eq(&actor),
                    ce::recorded_at.eq(now),
                ))
                .execute(conn)?;
            let row: EnhancementRow = ce::table
                .filter(ce::encumbrance_kind.eq(on.as_str()))
                .filter(ce::encumbrance_id.eq(id))
                .order(ce::id.desc())
                .select(EnhancementRow::as_select())
                .first(conn)?;
            let view = EnhancementView::of(row);
            crate::audit::record(
                conn,
                crate::audit::Event {
                    chain: format!("{}:{id}", on.as_str()),
                    actor: &actor,
                    action: "credit_enhancement.recorded",
                    object_type: "credit_enhancement",
                    object_id: view.id.to_string(),
                    payload: json!(view),
                    at: now,
                },
            )?;
            Outcome::of(&view)
        },
    )
    .await
}

async fn show(
    state: web::Data<AppState>,
    who: Principal,
    on: Encumbrance,
    id: i64,
) -> ApiResult<HttpResponse> {
    let v = state
        .db(move |conn| {
            may_see(conn, &who, on, id)?;
            let summary = match on {
                Encumbrance::Pledge => {
                    let p = crate::collateral::find(conn, id)?
                        .ok_or_else(|| ApiError::not_found("pledge"))?;
                    super::for_pledge(conn, &p)?
                }
                Encumbrance::ForestMortgage => {
                    let m = crate::forest::mortgage(conn, id)?
                        .ok_or_else(|| ApiError::not_found("forest mortgage"))?;
                    super::for_mortgage(conn, &m)?
                }
            };
            Ok(summary.unwrap_or(CreditEnhancement {
                items: Vec::new(),
                shortfall: None,
            }))
        })
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

#[utoipa::path(post, path = "/v1/pledges/{id}/credit-enhancements", tag = "pledges", operation_id = "recordPledgeCreditEnhancement",
    summary = "The lender (or an operator) records a guarantee or loan-guarantee insurance on a pledge",
    params(("id" = i64, Path, description = "Pledge id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = RecordEnhancement, responses((status = 201, description = "Recorded", body = EnhancementView),
        (status = 409, description = "guarantee_shares_exceed, encumbrance_status", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/pledges/{id}/credit-enhancements")]
pub async fn record_on_pledge(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<RecordEnhancement>,
) -> ApiResult<HttpResponse> {
    record(state, who, idem, Encumbrance::Pledge, id.into_inner(), body).await
}

#[utoipa::path(get, path = "/v1/pledges/{id}/credit-enhancements", tag = "pledges", operation_id = "listPledgeCreditEnhancements",
    summary = "A pledge's guarantees and insurance, and once enforcement began who owes what of the shortfall",
    params(("id" = i64, Path, description = "Pledge id")),
    responses((status = 200, description = "The enhancements", body = CreditEnhancement)))]
#[get("/v1/pledges/{id}/credit-enhancements")]
pub async fn list_on_pledge(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    show(state, who, Encumbrance::Pledge, id.into_inner()).await
}

#[utoipa::path(post, path = "/v1/forest-mortgages/{id}/credit-enhancements", tag = "forest", operation_id = "recordMortgageCreditEnhancement",
    summary = "The lender (or an operator) records a guarantee, loan-guarantee or forest insurance on a forest mortgage",
    params(("id" = i64, Path, description = "Mortgage id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = RecordEnhancement, responses((status = 201, description = "Recorded", body = EnhancementView),
        (status = 409, description = "guarantee_shares_exceed, encumbrance_status", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/forest-mortgages/{id}/credit-enhancements")]
pub async fn record_on_mortgage(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<RecordEnhancement>,
) -> ApiResult<HttpResponse> {
    record(
        state,
        who,
        idem,
        Encumbrance::ForestMortgage,
        id.into_inner(),
        body,
    )
    .await
}

#[utoipa::path(get, path = "/v1/forest-mortgages/{id}/credit-enhancements", tag = "forest", operation_id = "listMortgageCreditEnhancements",
    summary = "A forest mortgage's guarantees and insurance, and once enforcement began who owes what of the shortfall",
    params(("id" = i64, Path, description = "Mortgage id")),
    responses((status = 200, description = "The enhancements", body = CreditEnhancement)))]
#[get("/v1/forest-mortgages/{id}/credit-enhancements")]
pub async fn list_on_mortgage(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    show(state, who, Encumbrance::ForestMortgage, id.into_inner()).await
}
