//! A transfer as its parties see it, and the endpoints that only read: the list and one transfer.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::Dec;
use crate::kernel::pagination::{Page, PageParams};
use crate::kernel::state::AppState;
use crate::schema::transfers as t;
use crate::transfers::rules::Status;
use crate::transfers::store::{self, TransferRow};

#[derive(Debug, Serialize, ToSchema)]
pub struct TransferView {
    pub id: i64,
    pub lot_id: i64,
    pub from_party_id: i64,
    pub to_party_id: i64,
    pub quantity: Dec,
    /// `bilateral`, `registered` (agreed off-registry, registered by an operator), `court_order` or `merger`.
    pub kind: String,
    pub status: Status,
    pub requires_approval: bool,
    pub unit_price: Option<Dec>,
    /// EM trades: whole years of the term traded (R3).
    pub years: Option<i32>,
    /// quantity × unit price (× years for EM), rounded once half-up to the fen (R3).
    pub amount: Option<Dec>,
    pub document_ref: Option<String>,
    pub note: Option<String>,
    pub serials: Option<String>,
    pub requested_by: String,
    pub confirmed_by: Option<String>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<TransferRow> for TransferView {
    fn from(r: TransferRow) -> Self {
        TransferView {
            id: r.id,
            lot_id: r.lot_id,
            from_party_id: r.from_party_id,
            to_party_id: r.to_party_id,
            quantity: Dec::qty(r.quantity),
            kind: r.kind,
            status: Status::parse(&r.status).unwrap_or(Status::Requested),
            requires_approval: r.requires_approval,
            unit_price: r.unit_price.map(Dec::price),
            years: r.years,
            amount: r.amount.map(Dec::money),
            document_ref: r.document_ref,
            note: r.note,
            serials: r.serials,
            requested_by: r.requested_by,
            confirmed_by: r.confirmed_by,
            decided_by: r.decided_by,
            decision_reason: r.decision_reason,
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TransferQuery {
    pub lot_id: Option<i64>,
    pub status: Option<Status>,
}

#[utoipa::path(get, path = "/v1/transfers", tag = "transfers", operation_id = "listTransfers",
    summary = "Transfers the caller is party to (all for operators and regulators)",
    params(TransferQuery, PageParams), responses((status = 200, description = "A page", body = Page<TransferView>)))]
#[get("/v1/transfers")]
pub(super) async fn list(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<TransferQuery>,
    page: PageParams,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let (after, limit) = page.resolve()?;
    let rows = state
        .db(move |conn| {
            let mut query = t::table
                .filter(t::id.gt(after))
                .order(t::id)
                .limit(limit + 1)
                .select(TransferRow::as_select())
                .into_boxed();
            if !who.role.sees_all() {
                let p = who.party_id.unwrap_or(-1);
                query = query.filter(t::from_party_id.eq(p).or(t::to_party_id.eq(p)));
            }
            if let Some(l) = q.lot_id {
                query = query.filter(t::lot_id.eq(l));
            }
            if let Some(s) = q.status {
                query = query.filter(t::status.eq(s.as_str()));
            }
            Ok(query.load(conn)?)
        })
        .await?;
    Ok(Page::respond(
        rows.into_iter().map(TransferView::from).collect(),
        limit,
        |v| v.id,
    ))
}

#[utoipa::path(get, path = "/v1/transfers/{id}", tag = "transfers", operation_id = "getTransfer", summary = "A transfer",
    params(("id" = i64, Path, description = "Transfer id")), responses((status = 200, description = "The transfer", body = TransferView)))]
#[get("/v1/transfers/{id}")]
pub(super) async fn get_one(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let tr = state
        .db(move |conn| store::find(conn, id)?.ok_or_else(|| ApiError::not_found("transfer")))
        .await?;
    if !(who.sees_party(tr.from_party_id) || who.sees_party(tr.to_party_id)) {
        return Err(ApiError::not_found("transfer"));
    }
    Ok(HttpResponse::Ok().json(TransferView::from(tr)))
}
