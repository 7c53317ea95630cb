//! Operational endpoints: health, readiness, the test clock, and answers for unknown routes.

use actix_web::http::StatusCode;
use actix_web::{get, put, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::kernel::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz)
        .service(readyz)
        .service(set_clock)
        .service(web::redirect("/docs", "/docs/"));
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

#[utoipa::path(get, path = "/healthz", tag = "ops", operation_id = "healthz", summary = "The process is up",
    security(()), responses((status = 200, description = "Up", body = Health)))]
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
    })
}

#[utoipa::path(get, path = "/readyz", tag = "ops", operation_id = "readyz",
    summary = "The database is reachable and its migrations are current", security(()),
    responses((status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let current = state
        .db(|conn| {
            crate::db::migrations_current(conn).map_err(|e| ApiError::unavailable(e.to_string()))
        })
        .await?;
    if !current {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "migrations_pending",
            "migrations are not current",
        ));
    }
    Ok(HttpResponse::Ok().json(Health {
        status: "ready".into(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockSetting {
    now: DateTime<Utc>,
}

/// Only with `--test-clock`: moves this process's clock. Not part of the public API.
#[put("/v1/test/clock")]
async fn set_clock(
    state: web::Data<AppState>,
    body: crate::kernel::json::ApiJson<ClockSetting>,
) -> ApiResult<HttpResponse> {
    if !state.test_clock {
        return Err(ApiError::not_found("route"));
    }
    state.clock.set(body.value.now);
    Ok(HttpResponse::Ok().json(serde_json::json!({"now": state.clock.now()})))
}

pub use crate::error::known_routes::KnownRoutes;

/// Any request no route matched: a 405 on a known path, else a 404.
pub async fn unmatched(req: HttpRequest, known: web::Data<KnownRoutes>) -> ApiResult<HttpResponse> {
    known
        .method_not_allowed(&req)
        .ok_or_else(|| ApiError::not_found("route"))
}
