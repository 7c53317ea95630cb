//! HTTP: `/v1/audit/verify` and on-demand checkpoints.

use actix_web::{get, post, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::Verification;
use crate::app::AppState;
use crate::auth::{Principal, Role};
use crate::db;
use crate::error::ApiResult;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(verify).service(checkpoint);
}

#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", operation_id = "verifyAudit",
    summary = "Recompute every audit chain and check the signed checkpoints",
    responses((status = 200, description = "The verdict; `ok` is false when anything was altered", body = Verification)))]
#[get("/v1/audit/verify")]
async fn verify(state: web::Data<AppState>, who: Principal) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator, Role::Regulator])?;
    let key = state.secrets.signing_key.verifying_key();
    let v = state.db(move |conn| Ok(super::verify(conn, &key)?)).await?;
    Ok(HttpResponse::Ok().json(v))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointCreated {
    pub id: i64,
}

#[utoipa::path(post, path = "/v1/audit/checkpoints", tag = "audit", operation_id = "createCheckpoint",
    summary = "Sign the current head of every audit chain now",
    responses((status = 201, description = "The checkpoint", body = CheckpointCreated)))]
#[post("/v1/audit/checkpoints")]
async fn checkpoint(state: web::Data<AppState>, who: Principal) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let key = state.secrets.signing_key.clone();
    let now = db::now_micros(state.clock.now());
    let id = state
        .db(move |conn| Ok(super::checkpoint(conn, &key, now)?))
        .await?;
    Ok(HttpResponse::Created().json(CheckpointCreated { id }))
}
