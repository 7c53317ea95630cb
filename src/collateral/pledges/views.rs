//! What a pledge looks like to its parties, and the endpoints that only read: list, one pledge, its
//! valuation.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::visible;
use crate::auth::Principal;
use crate::collateral::encumbrance::{entry_views, listing};
use crate::collateral::{rules, PledgeRow};
use crate::db::DbConn;
use crate::error::ApiResult;
use crate::kernel::amount::Dec;
use crate::kernel::pagination::{Page, PageParams};
use crate::kernel::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AppraisalView {
    pub value: Option<Dec>,
    pub appraiser: Option<String>,
    pub date: Option<NaiveDate>,
}

pub use crate::collateral::encumbrance::EntryView;

/// The lender's answer when the pledge is registered or its amendment code replaced: the pledge,
/// and the amendment code (修改码) shown this once. The registry keeps only its hash, so a replay of
/// the acceptance answers without it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PledgeAccepted {
    #[serde(flatten)]
    pub pledge: PledgeView,
    /// The amendment code (修改码): every later change of the registration needs it. Shown once;
    /// absent from a replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amendment_code: Option<String>,
}

/// A pledge as its parties (and operators, regulators) see it: notice and private terms.
#[derive(Debug, Serialize, ToSchema)]
pub struct PledgeView {
    pub id: i64,
    pub registration_no: Option<String>,
    pub lot_id: i64,
    pub pledgor_id: i64,
    pub lender_id: i64,
    /// The quantity still pledged.
    pub quantity: Dec,
    pub applied_quantity: Dec,
    pub serials: Option<String>,
    /// applied, registered, released, lapsed, enforcing, disposed, withdrawn.
    pub status: String,
    pub rank: Option<i32>,
    pub secured_amount: Option<Dec>,
    pub loan_reference: Option<String>,
    pub loan_maturity: Option<NaiveDate>,
    /// End of the registration period (R8).
    pub period_end: Option<NaiveDate>,
    pub registered_at: Option<DateTime<Utc>>,
    pub appraisal: AppraisalView,
    pub pboc_registration_no: Option<String>,
    /// For third-party checks (`GET /v1/encumbrances/{no}?verification_code=`).
    pub verification_code: Option<String>,
    /// principal + interest + costs declared on default.
    pub claim_amount: Option<Dec>,
    pub claim_detail: Option<serde_json::Value>,
    pub proceeds: Option<Dec>,
    pub paid_to_lender: Option<Dec>,
    pub paid_to_pledgor: Option<Dec>,
    pub entries: Vec<EntryView>,
    pub created_at: DateTime<Utc>,
    /// The pledgor's environmental credit grade in force, with a warning for yellow (警示) and red
    /// (不良); on the registration answer and on one pledge, absent when ungraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pledgor_credit: Option<crate::grades::CreditStanding>,
    /// Guarantees and insurance on the loan and, once enforcement began, who owes what of the
    /// shortfall; absent when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_enhancement: Option<crate::enhancement::CreditEnhancement>,
}

pub fn view(conn: &mut DbConn, p: PledgeRow) -> ApiResult<PledgeView> {
    let credit_enhancement = crate::enhancement::for_pledge(conn, &p)?;
    let entries = entry_views::<PledgeRow>(conn, p.id)?;
    Ok(PledgeView {
        id: p.id,
        registration_no: p.registration_no,
        lot_id: p.lot_id,
        pledgor_id: p.pledgor_id,
        lender_id: p.lender_id,
        quantity: Dec::qty(p.quantity),
        applied_quantity: Dec::qty(p.applied_quantity),
        serials: p.serials,
        status: p.status,
        rank: p.rank,
        secured_amount: p.secured_amount.map(Dec::money),
        loan_reference: p.loan_reference,
        loan_maturity: p.loan_maturity,
        period_end: p.period_end,
        registered_at: p.registered_at.map(|t| t.and_utc()),
        appraisal: AppraisalView {
            value: p.appraisal_value.map(Dec::money),
            appraiser: p.appraiser,
            date: p.appraisal_date,
        },
        pboc_registration_no: p.pboc_registration_no,
        verification_code: p.verification_code,
        claim_amount: p.claim_amount.map(Dec::money),
        claim_detail: p.claim_detail.and_then(|d| serde_json::from_str(&d).ok()),
        proceeds: p.proceeds.map(Dec::money),
        paid_to_lender: p.paid_to_lender.map(Dec::money),
        paid_to_pledgor: p.paid_to_pledgor.map(Dec::money),
        entries,
        created_at: p.created_at.and_utc(),
        pledgor_credit: None,
        credit_enhancement,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PledgeQuery {
    pub status: Option<String>,
    pub lot_id: Option<i64>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/pledges", tag = "pledges", operation_id = "listPledges",
    summary = "Pledges the caller is party to (all for operators and regulators)",
    params(PledgeQuery), responses((status = 200, description = "A page", body = Page<PledgeView>)))]
#[get("/v1/pledges")]
pub(super) async fn list(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<PledgeQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let page = PageParams {
        cursor: q.cursor,
        limit: q.limit,
    };
    listing::list::<PledgeRow>(state, who, page, q.status, q.lot_id).await
}

#[utoipa::path(get, path = "/v1/pledges/{id}", tag = "pledges", operation_id = "getPledge", summary = "A pledge, with its entries",
    params(("id" = i64, Path, description = "Pledge id")), responses((status = 200, description = "The pledge", body = PledgeView)))]
#[get("/v1/pledges/{id}")]
pub(super) async fn get_one(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    // One pledge also shows the pledgor's environmental credit grade in force (R11).
    let id = id.into_inner();
    let today = state.clock.today();
    let v = state
        .db(move |conn| {
            let p = visible(conn, &who, id)?;
            let mut v = view(conn, p)?;
            v.pledgor_credit = crate::grades::standing(conn, v.pledgor_id, today)?;
            Ok(v)
        })
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Valuation {
    pub pledge_id: i64,
    /// How the value was obtained (R3): `vwap_<N>d` (settled trades of the lot's market over N
    /// days), `benchmark` (the benchmark price in force), or `appraisal` (the lender's registered
    /// appraisal) when the market shows no price.
    pub method: String,
    /// The reference price per unit (EM: per ton-year), for the market methods.
    pub unit_price: Option<Dec>,
    /// EM: the whole years of the term left on `as_of` that the value counts (R3; a partly
    /// elapsed year does not count, 0 in the last year of the term).
    pub years: Option<i32>,
    pub value: Option<Dec>,
    pub secured_amount: Option<Dec>,
    /// secured ÷ value, in percent with 2 places.
    pub loan_to_value_percent: Option<Dec>,
    pub as_of: DateTime<Utc>,
}

#[utoipa::path(get, path = "/v1/pledges/{id}/valuation", tag = "pledges", operation_id = "pledgeValuation",
    summary = "The collateral's current value with its method (market prices per R3, else the appraisal), and the loan-to-value",
    params(("id" = i64, Path, description = "Pledge id")), responses((status = 200, description = "The valuation", body = Valuation)))]
#[get("/v1/pledges/{id}/valuation")]
pub(super) async fn valuation(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let (as_of, today) = (state.clock.now(), state.clock.today());
    let v = state
        .db(move |conn| {
            let p = visible(conn, &who, id)?;
            let (method, market, appraisal) =
                crate::collateral::monitoring::current_value(conn, &p, today)?;
            let value = market.as_ref().map(|m| m.value).or(appraisal);
            let ltv = match (p.secured_amount, value) {
                (Some(s), Some(v)) => rules::ltv_bp(s, v).map(Dec::money),
                _ => None,
            };
            Ok(Valuation {
                pledge_id: p.id,
                method,
                unit_price: market.as_ref().map(|m| Dec::price(m.unit_price)),
                years: market.as_ref().map(|m| m.years),
                value: value.map(Dec::money),
                secured_amount: p.secured_amount.map(Dec::money),
                loan_to_value_percent: ltv,
                as_of,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(v))
}
