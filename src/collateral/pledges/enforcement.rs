//! Default and disposal: the lender enforces, an operator sells the pledged quantity and the
//! proceeds pay the claim first.

use actix_web::{post, web, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{check_code, outcome, require_status, unpledge, visible, PledgeView};
use crate::auth::{Principal, Role};
use crate::collateral::encumbrance;
use crate::collateral::{add_entry, rules, PledgeRow};
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::{price_to_stored, trade_amount_fen, Dec};
use crate::kernel::idempotency::IdemKey;
use crate::kernel::json::ApiJson;
use crate::kernel::state::AppState;
use crate::proposals::{ProposalKind, ProposalView};
use crate::rights::ledger::Side;
use crate::rights::store as rights;
use crate::rights::{Acquisition, Bucket};
use crate::schema::pledges as pl;

/// Default: the lender declares its outstanding claim (Civil Code art. 389).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amendment_code": "K7PQ2M9XW4RT8HZN", "principal": "2000000.00", "interest": "56000.00", "costs": "12000.00"}))]
pub struct Enforce {
    /// Not required: the 修改码 guards amending, renewing and discharging a registration, and
    /// enforcement is none of these (as for a forest mortgage, which has no 修改码); the lender's
    /// identity is what enforcement checks. Given, it must be right.
    #[serde(default)]
    pub amendment_code: Option<String>,
    pub principal: Dec,
    pub interest: Dec,
    pub costs: Dec,
}

#[utoipa::path(post, path = "/v1/pledges/{id}/enforce", tag = "pledges", operation_id = "enforcePledge",
    summary = "The lender declares default and its outstanding claim; the quantity stays frozen",
    params(("id" = i64, Path, description = "Pledge id"), ("Idempotency-Key" = String, Header, description = "Required")),
    request_body = Enforce, responses((status = 200, description = "Enforcing", body = PledgeView)))]
#[post("/v1/pledges/{id}/enforce")]
pub(super) async fn enforce(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<Enforce>,
) -> ApiResult<HttpResponse> {
    let r = body.value;
    let (claim, code) = ([r.principal, r.interest, r.costs], r.amendment_code);
    encumbrance::enforce(
        state,
        who,
        idem,
        id.into_inner(),
        &body.body_hash,
        claim,
        move |p| match &code {
            Some(code) => check_code(p, code),
            None => Ok(()),
        },
    )
    .await
}

/// An operator-recorded sale of the pledged quantity (until the market module runs disposal).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"buyer_party_id": 7, "unit_price": "6300", "years": 4}))]
pub struct Dispose {
    pub buyer_party_id: i64,
    pub unit_price: Dec,
    /// EM: whole years of the remaining term sold (R3): 1 to the whole years left from the day
    /// of the sale to the lot's `valid_to` (a partly elapsed year does not count); more is a 422
    /// `years_beyond_term`.
    pub years: Option<i32>,
}

/// What a disposal proposal stores: the pledge and the sale.
#[derive(Debug, Deserialize, Serialize)]
pub struct DisposalProposal {
    pub pledge_id: i64,
    pub sale: Dispose,
}

#[utoipa::path(post, path = "/v1/pledges/{id}/dispose", tag = "pledges", operation_id = "disposePledge",
    summary = "An operator proposes the sale of an enforced pledge; a second operator approves and it happens then",
    description = "The price and buyer are checked now and again at approval (`POST /v1/proposals/{id}/approve`, by another person); at approval the proceeds pay the claim first, the rest to the pledgor.",
    params(("id" = i64, Path, description = "Pledge id"), ("Idempotency-Key" = String, Header, description = "Required")),
    request_body = Dispose, responses((status = 202, description = "Proposed", body = ProposalView),
        (status = 422, description = "validation_failed, years_beyond_term, price_below_benchmark, region_non_attainment", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/pledges/{id}/dispose")]
pub(super) async fn dispose(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<Dispose>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let r = body.value;
    price_to_stored(r.unit_price.0)
        .map_err(|e| ApiError::invalid_field("unit_price", e.to_string()))?;
    let (id, actor, w) = (id.into_inner(), who.actor(), who.clone());
    let kind = ProposalKind::Disposal;
    encumbrance::propose(state, who, idem, &body.body_hash, kind, move |conn, now| {
        visible(conn, &w, id)?;
        let asked = DisposalProposal {
            pledge_id: id,
            sale: r,
        };
        execute_disposal(conn, &asked, &actor, now, false)?;
        Ok(asked)
    })
    .await
}

/// Checks a disposal (price, buyer, R3 years, R4) and, when `carry_out`, sells: the pledged
/// quantity goes to the buyer and the proceeds pay the claim first, the rest to the pledgor.
pub fn execute_disposal(
    conn: &mut DbConn,
    d: &DisposalProposal,
    actor: &str,
    now: NaiveDateTime,
    carry_out: bool,
) -> ApiResult<serde_json::Value> {
    let (id, r) = (d.pledge_id, &d.sale);
    let price = price_to_stored(r.unit_price.0)
        .map_err(|e| ApiError::invalid_field("unit_price", e.to_string()))?;
    let (p, lot) = encumbrance::lock::<PledgeRow>(conn, None, id, now)?;
    require_status(&p, &["enforcing"])?;
    let t = rights::right_type(conn, &lot.right_type)?
        .ok_or_else(|| ApiError::internal("right type vanished"))?;
    let years = lot.years_traded(&t, r.years, now.date())?.unwrap_or(1) as u32;
    let buyer = crate::parties::store::find(conn, r.buyer_party_id)?;
    if buyer
        .as_ref()
        .is_none_or(|b| b.kind == "bank" || b.kind == "regulator" || b.id == p.pledgor_id)
    {
        return Err(ApiError::invalid_field(
            "buyer_party_id",
            "a registered party other than the pledgor that may hold rights",
        ));
    }
    // R4, the same check as every sale of an emission right.
    let settings = crate::market::settings::load(conn)?;
    let standing = crate::market::benchmarks::check_r4(
        conn,
        &settings,
        &lot,
        buyer.as_ref().map(|b| b.region_code.as_str()),
        Some(price),
        now.date(),
    )?;
    let proceeds = trade_amount_fen(p.quantity, price, years)
        .map_err(|e| ApiError::invalid_field("unit_price", e.to_string()))?;
    if !carry_out {
        return Ok(serde_json::Value::Null);
    }
    let (paid, rest) = rules::split_proceeds(
        proceeds,
        &[crate::collateral::disposal::claim_left(conn, &p)?],
    );
    let to_lender = paid.first().copied().unwrap_or(0);
    unpledge(
        conn,
        &p,
        &lot,
        p.quantity,
        Side::holder(r.buyer_party_id, Bucket::Available),
        "pledge_disposal",
        Some(Acquisition::of_purchase(standing)),
        actor,
        now,
    )?;
    diesel::update(pl::table.find(id))
        .set((
            pl::status.eq("disposed"),
            pl::proceeds.eq(proceeds),
            pl::paid_to_lender.eq(to_lender),
            pl::paid_to_pledgor.eq(rest),
            pl::updated_at.eq(now),
        ))
        .execute(conn)?;
    add_entry(
        conn,
        &p,
        "disposal",
        json!({"buyer": r.buyer_party_id, "unit_price": price, "years": years,
    "proceeds": proceeds, "paid_to_lender": to_lender, "paid_to_pledgor": rest}),
        actor,
        now,
    )?;
    Ok(outcome(conn, id)?.body)
}
