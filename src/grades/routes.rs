//! HTTP: `/v1/parties/{id}/environmental-credit` — regulators record grades; the party, its
//! lenders, operators and regulators read them.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::rules::{self, Grade};
use super::{CreditStanding, GradeView, NewGrade};
use crate::auth::{Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(record).service(show);
}

/// A grade as the grading authority published it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"grade": "yellow", "source_document": "闽环信〔2026〕7号 2025年度企业环境信用评价结果",
    "valid_from": "2026-07-01", "valid_to": "2027-06-30"}))]
pub struct RecordGrade {
    pub grade: Grade,
    /// The grading decision or published list.
    pub source_document: String,
    pub valid_from: NaiveDate,
    /// Open-ended when absent (until a new grade is recorded).
    pub valid_to: Option<NaiveDate>,
}

/// A party's grades: the one in force today and every one recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartyCredit {
    pub party_id: i64,
    /// The grade in force today; absent for an ungraded party.
    pub in_force: Option<CreditStanding>,
    /// Every grade recorded, oldest first (append-only: a correction is a newer record).
    pub history: Vec<GradeView>,
}

/// Operators, regulators and the party see its grades; a bank sees those of a party that applied
/// to it for credit. Anyone else: 404.
fn may_see(conn: &mut DbConn, who: &Principal, party: i64) -> ApiResult<()> {
    if who.sees_party(party) {
        return Ok(());
    }
    if who.role == Role::Bank {
        if let Some(bank) = who.party_id {
            if super::lender_deals_with(conn, bank, party)? {
                return Ok(());
            }
        }
    }
    Err(ApiError::not_found("party"))
}

#[utoipa::path(post, path = "/v1/parties/{id}/environmental-credit", tag = "parties", operation_id = "recordEnvironmentalCredit",
    summary = "A regulator records a party's environmental credit grade (green 环保诚信, blue 良好, yellow 警示, red 不良)",
    description = "Append-only: the grade in force is the latest recorded one whose validity covers the day. A red grade bars the party from pledging (409 `pledgor_credit_red`); a yellow one is shown to lenders as a warning. The banks the party borrows from or applied to receive the webhook event `party.environmental_credit_graded`.",
    params(("id" = i64, Path, description = "Party id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = RecordGrade, responses((status = 201, description = "The recorded grade", body = GradeView),
        (status = 422, description = "validity_reversed or a field error", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/parties/{id}/environmental-credit")]
pub async fn record(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<RecordGrade>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Regulator])?;
    let party_id = id.into_inner();
    let r = body.value;
    let doc = r.source_document.trim().to_string();
    if doc.is_empty() || doc.chars().count() > 500 {
        return Err(ApiError::invalid_field(
            "source_document",
            "1 to 500 characters",
        ));
    }
    if !rules::validity_ok(r.valid_from, r.valid_to) {
        return Err(ApiError::unprocessable(
            "validity_reversed",
            "valid_to is before valid_from",
        ));
    }
    let g = NewGrade {
        party_id,
        grade: r.grade,
        source_document: doc,
        valid_from: r.valid_from,
        valid_to: r.valid_to,
    };
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
        KeyPolicy::Optional,
        StatusCode::CREATED,
        move |conn| {
            let party = crate::parties::store::find(conn, party_id)?
                .ok_or_else(|| ApiError::not_found("party"))?;
            if !matches!(party.kind.as_str(), "enterprise" | "individual") {
                return Err(ApiError::invalid_field(
                    "id",
                    "only enterprises and individuals are graded",
                ));
            }
            let row = super::record(conn, &g, &actor, now, today)?;
            let view = GradeView::of(row).ok_or_else(|| ApiError::internal("grade unreadable"))?;
            Outcome::of(&view)
        },
    )
    .await
}

#[utoipa::path(get, path = "/v1/parties/{id}/environmental-credit", tag = "parties", operation_id = "getEnvironmentalCredit",
    summary = "A party's environmental credit grade in force and its history",
    description = "For operators, regulators, the party itself, and banks the party applied to for credit (pledge or forest mortgage); 404 to anyone else.",
    params(("id" = i64, Path, description = "Party id")),
    responses((status = 200, description = "The grades", body = PartyCredit)))]
#[get("/v1/parties/{id}/environmental-credit")]
pub async fn show(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let party_id = id.into_inner();
    let today = state.clock.today();
    let v = state
        .db(move |conn| {
            may_see(conn, &who, party_id)?;
            crate::parties::store::find(conn, party_id)?
                .ok_or_else(|| ApiError::not_found("party"))?;
            Ok(PartyCredit {
                party_id,
                in_force: super::standing(conn, party_id, today)?,
                history: super::history(conn, party_id)?
                    .into_iter()
                    .filter_map(GradeView::of)
                    .collect(),
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(v))
}
