//! HTTP: `/v1/audit/verify`, on-demand checkpoints and the list of checkpoints lenders keep.

use actix_web::{get, post, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Checkpoint, Verification};
use crate::auth::{Principal, Role};
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::kernel::pagination::{Page, PageParams};
use crate::kernel::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(verify).service(checkpoint).service(list);
}

#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", operation_id = "verifyAudit",
    summary = "Recompute every audit chain and check the signed checkpoints",
    responses((status = 200, description = "The verdict; `ok` is false when anything was altered", body = Verification)))]
#[get("/v1/audit/verify")]
async fn verify(state: web::Data<AppState>, who: Principal) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator, Role::Regulator])?;
    let ring = state.secrets.ring.clone();
    let v = state
        .db(move |conn| Ok(super::verify(conn, &ring, &[])?))
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointCreated {
    pub id: i64,
}

#[utoipa::path(post, path = "/v1/audit/checkpoints", tag = "audit", operation_id = "createCheckpoint",
    summary = "Sign the current head of every audit chain now",
    responses((status = 201, description = "The checkpoint; `id` is its number (`seq`)", body = CheckpointCreated)))]
#[post("/v1/audit/checkpoints")]
async fn checkpoint(state: web::Data<AppState>, who: Principal) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let key = state.secrets.signing_key.clone();
    let now = db::now_micros(state.clock.now());
    let cp = state
        .db(move |conn| super::checkpoint(conn, &key, now, false))
        .await?
        .ok_or_else(|| ApiError::internal("no checkpoint was made"))?;
    Ok(HttpResponse::Created().json(CheckpointCreated { id: cp.seq }))
}

#[utoipa::path(get, path = "/v1/audit/checkpoints", tag = "audit", operation_id = "listCheckpoints",
    summary = "The signed checkpoints, oldest first, for lenders to keep as witnesses",
    description = "Each checkpoint signs a commitment to every audit chain's head and length \
(`heads_root`) and the digest of the checkpoint before it. Operators and the regulator also see \
the heads themselves; a bank sees only the commitment, which names no chain. A lender that keeps \
them (they also arrive as `audit.checkpoint` webhook events) can have the registry's operator or \
auditor prove with `registry audit verify --witness FILE` that the database still extends them: \
deleting, truncating or re-signing history is then detected. Verify a checkpoint offline: \
`digest` is the hex SHA-256 of the RFC 8785 JSON of `{seq, at, prev_hash, heads_root, key_id}` \
(checkpoints without `heads_root`, from before it: `heads` in its place), and `signature` the hex \
Ed25519 signature over the 64 characters of `digest` by the key `key_id` of \
`GET /v1/registry-keys`.",
    params(PageParams),
    responses((status = 200, description = "One page of checkpoints", body = Page<Checkpoint>)))]
#[get("/v1/audit/checkpoints")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
    page: PageParams,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank, Role::Operator, Role::Regulator])?;
    let (after, limit) = page.resolve()?;
    let mut rows = state
        .db(move |conn| Ok(super::checkpoints_after(conn, after, limit + 1)?))
        .await?;
    // A bank sees the commitment, not which chains exist and how long they are.
    if who.role == Role::Bank {
        rows = rows.iter().map(Checkpoint::commitment).collect();
    }
    Ok(Page::respond(rows, limit, |c| c.seq))
}
