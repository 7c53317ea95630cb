//! HTTP: `/v1/statistics/green-finance` — the monthly report for operators and regulators, as
//! JSON or CSV, and its charts as SVG.

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{rules, Report};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::kernel::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(green_finance).service(green_finance_chart);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MonthQuery {
    /// The month, YYYY-MM; the current month when absent.
    pub month: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

async fn load(state: &AppState, who: &Principal, month: Option<String>) -> ApiResult<Report> {
    who.require(&[Role::Operator, Role::Regulator])?;
    let month = month.unwrap_or_else(|| state.clock.today().format("%Y-%m").to_string());
    let (first, last) = rules::month_bounds(&month)
        .ok_or_else(|| ApiError::invalid_field("month", "a month as YYYY-MM"))?;
    state
        .db(move |conn| super::report(conn, &month, first, last))
        .await
}

#[utoipa::path(get, path = "/v1/statistics/green-finance", tag = "statistics", operation_id = "greenFinanceStatistics",
    summary = "The monthly green-finance statistics: secured loans outstanding and new, borrowers, coverage, credit enhancement, by county, bank and right type",
    description = "For operators and regulators. `format=csv` answers one CSV table (text/csv): a row for the whole, then one per county, bank and right type.",
    params(MonthQuery),
    responses((status = 200, description = "The report (JSON, or CSV with `format=csv`)",
        content((Report = "application/json"), (String = "text/csv")))))]
#[get("/v1/statistics/green-finance")]
pub async fn green_finance(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<MonthQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::invalid_field("format", "json or csv")),
    };
    let r = load(&state, &who, q.month).await?;
    if csv {
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .body(super::csv(&r)));
    }
    Ok(HttpResponse::Ok().json(r))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChartQuery {
    /// The month, YYYY-MM; the current month when absent.
    pub month: Option<String>,
}

#[utoipa::path(get, path = "/v1/statistics/green-finance/charts/{chart}", tag = "statistics", operation_id = "greenFinanceChart",
    summary = "A chart of the monthly report (SVG): outstanding secured amount by_county, by_bank or by_right_type",
    params(("chart" = String, Path, description = "by_county, by_bank or by_right_type"), ChartQuery),
    responses((status = 200, description = "The chart", body = String, content_type = "image/svg+xml")))]
#[get("/v1/statistics/green-finance/charts/{chart}")]
pub async fn green_finance_chart(
    state: web::Data<AppState>,
    who: Principal,
    chart: web::Path<String>,
    q: web::Query<ChartQuery>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator, Role::Regulator])?;
    let which = chart.into_inner();
    if !super::CHARTS.contains(&which.as_str()) {
        return Err(ApiError::not_found("chart"));
    }
    let r = load(&state, &who, q.into_inner().month).await?;
    let svg = super::chart(&r, &which)
        .ok_or_else(|| ApiError::not_found("chart"))?
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().content_type("image/svg+xml").body(svg))
}
