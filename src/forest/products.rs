//! Lender products: R12's loan-to-value cap for forest mortgages is 50 % by default and may be set
//! per lender product. Operators register products, so a bank cannot raise its own cap, and a
//! product takes two persons (kind `lender_product`): one operator proposes, an operator of
//! another person approves. No product's cap exceeds `rules::MAX_LTV_CAP_BP`.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::{hundredths, Dec};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::state::AppState;
use crate::schema::lender_products as lp;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create).service(list);
}

/// The cap (basis points) of a lender's product, or the R12 default without one.
pub fn forest_cap_bp(conn: &mut DbConn, lender: i64, product: Option<&str>) -> ApiResult<i64> {
    let Some(code) = product else {
        return Ok(super::rules::DEFAULT_LTV_CAP_BP);
    };
    let cap: Option<i32> = lp::table
        .filter(lp::lender_id.eq(lender))
        .filter(lp::code.eq(code))
        .select(lp::forest_ltv_cap_bp)
        .first(conn)
        .optional()?;
    cap.map(i64::from)
        .ok_or_else(|| ApiError::invalid_field("product_code", "not a product of this lender"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lender_party_id": 3, "code": "FULINDAI", "name": "福林贷", "forest_ltv_cap_percent": "40"}))]
pub struct NewProduct {
    pub lender_party_id: i64,
    pub code: String,
    pub name: String,
    /// Percent of the appraised value, at most 2 places.
    pub forest_ltv_cap_percent: Dec,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductView {
    pub id: i64,
    pub lender_party_id: i64,
    pub code: String,
    pub name: String,
    pub forest_ltv_cap_percent: Dec,
    pub created_at: DateTime<Utc>,
}

type Row = (i64, i64, String, String, i32, NaiveDateTime);

fn view(r: Row) -> ProductView {
    ProductView {
        id: r.0,
        lender_party_id: r.1,
        code: r.2,
        name: r.3,
        forest_ltv_cap_percent: Dec::money(i64::from(r.4)),
        created_at: r.5.and_utc(),
    }
}

fn columns() -> (
    lp::id,
    lp::lender_id,
    lp::code,
    lp::name,
    lp::forest_ltv_cap_bp,
    lp::created_at,
) {
    (
        lp::id,
        lp::lender_id,
        lp::code,
        lp::name,
        lp::forest_ltv_cap_bp,
        lp::created_at,
    )
}

/// A validated product awaiting a second person's approval.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProductPlan {
    pub lender_party_id: i64,
    pub code: String,
    pub name: String,
    pub forest_ltv_cap_bp: i64,
}

/// Checks a product request without I/O: the cap within R12's bounds, a code and a name.
fn plan_of(r: NewProduct) -> ApiResult<ProductPlan> {
    let cap = hundredths(r.forest_ltv_cap_percent.0, false)
        .map_err(|e| ApiError::invalid_field("forest_ltv_cap_percent", e.to_string()))?;
    if !super::rules::ltv_cap_allowed(cap) {
        return Err(ApiError::invalid_field(
            "forest_ltv_cap_percent",
            format!(
                "above 0 and at most {} (percent of the appraised value)",
                super::rules::MAX_LTV_CAP_BP / 100
            ),
        ));
    }
    let (code, name) = (r.code.trim().to_string(), r.name.trim().to_string());
    if code.is_empty() || name.is_empty() {
        return Err(ApiError::invalid_field(
            if code.is_empty() { "code" } else { "name" },
            "required",
        ));
    }
    Ok(ProductPlan {
        lender_party_id: r.lender_party_id,
        code,
        name,
        forest_ltv_cap_bp: cap,
    })
}

/// Checks what needs the database: the lender is a registered bank without a product of the code.
fn check_plan(conn: &mut DbConn, p: &ProductPlan) -> ApiResult<()> {
    if crate::parties::store::find(conn, p.lender_party_id)?.is_none_or(|x| x.kind != "bank") {
        return Err(ApiError::invalid_field(
            "lender_party_id",
            "not a registered bank",
        ));
    }
    let exists: i64 = lp::table
        .filter(lp::lender_id.eq(p.lender_party_id))
        .filter(lp::code.eq(&p.code))
        .count()
        .get_result(conn)?;
    if exists > 0 {
        return Err(product_exists());
    }
    Ok(())
}

fn product_exists() -> ApiError {
    ApiError::conflict(
        "product_exists",
        "this lender already has a product with this code",
    )
}

#[utoipa::path(post, path = "/v1/lender-products", tag = "forest", operation_id = "createLenderProduct",
    summary = "Propose a lender's loan product with its forest-mortgage LTV cap; an operator of another person approves",
    description = "A product's cap decides how much a bank may lend against a forest parcel (R12: 50 % of the appraised value by default), \
        so one person never sets it: an operator proposes (202, kind `lender_product`) and the product exists when an operator of another \
        person approves (`POST /v1/proposals/{id}/approve`). A cap is above 0 and at most 70 %.",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = NewProduct, responses((status = 202, description = "Proposed", body = crate::proposals::ProposalView),
        (status = 409, description = "product_exists: the lender already has a product of that code", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A cap above 70 % or not above 0, an empty code or name, a lender that is not a bank; nothing is stored", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/lender-products")]
async fn create(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    body: ApiJson<NewProduct>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let plan = plan_of(body.value)?;
    let now = db::now_micros(state.clock.now());
    let w = who.clone();
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Optional,
        StatusCode::ACCEPTED,
        move |conn| {
            check_plan(conn, &plan)?;
            let row = crate::proposals::propose(
                conn,
                crate::proposals::ProposalKind::LenderProduct,
                &plan,
                None,
                &w,
                now,
            )?;
            Outcome::of(&crate::proposals::ProposalView::from(row))
        },
    )
    .await
}

/// Runs an approved `lender_product` proposal: the product is registered, checked again.
pub fn execute(
    conn: &mut DbConn,
    p: &ProductPlan,
    proposed_by: &str,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<serde_json::Value> {
    if !super::rules::ltv_cap_allowed(p.forest_ltv_cap_bp) {
        return Err(ApiError::invalid_field(
            "forest_ltv_cap_percent",
            "above the registry's ceiling",
        ));
    }
    check_plan(conn, p)?;
    diesel::insert_into(lp::table)
        .values((
            lp::lender_id.eq(p.lender_party_id),
            lp::code.eq(&p.code),
            lp::name.eq(&p.name),
            lp::forest_ltv_cap_bp.eq(p.forest_ltv_cap_bp as i32),
            lp::created_at.eq(at),
        ))
        .execute(conn)
        .map_err(|e| {
            if db::is_unique_violation(&e) {
                product_exists()
            } else {
                e.into()
            }
        })?;
    let row: Row = lp::table
        .filter(lp::lender_id.eq(p.lender_party_id))
        .filter(lp::code.eq(&p.code))
        .select(columns())
        .first(conn)?;
    crate::audit::record(
        conn,
        crate::audit::Event {
            chain: format!("party:{}", p.lender_party_id),
            actor,
            action: "lender_product.registered",
            object_type: "lender_product",
            object_id: row.0.to_string(),
            payload: serde_json::json!({"code": p.code, "name": p.name,
                "forest_ltv_cap_bp": p.forest_ltv_cap_bp, "proposed_by": proposed_by}),
            at,
        },
    )?;
    serde_json::to_value(view(row)).map_err(|e| ApiError::internal(e.to_string()))
}

#[utoipa::path(get, path = "/v1/lender-products", tag = "forest", operation_id = "listLenderProducts",
    summary = "Lender products (a bank sees its own)", responses((status = 200, description = "Products", body = Vec<ProductView>)))]
#[get("/v1/lender-products")]
async fn list(state: web::Data<AppState>, who: Principal) -> ApiResult<HttpResponse> {
    let only = (!who.role.sees_all()).then(|| who.party_id.unwrap_or(-1));
    let rows: Vec<Row> = state
        .db(move |conn| {
            let mut q = lp::table.order(lp::id).select(columns()).into_boxed();
            if let Some(p) = only {
                q = q.filter(lp::lender_id.eq(p));
            }
            Ok(q.load(conn)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(view).collect::<Vec<_>>()))
}
