//! HTTP: `/v1/forest-rights` — register parcels, search them, and change their holder (the
//! mortgages follow the parcel unless a transfer ban was registered, Civil Code art. 406).

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::{add_entry, mortgages_on, parcel, ParcelRow, LIVE};
use crate::auth::{Principal, Role};
use crate::collateral::lender::PartyRef;
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::{hundredths, Dec};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::pagination::{Page, PageParams};
use crate::kernel::state::AppState;
use crate::kernel::text::document_key;
use crate::parties::uscc::IdNumber;
use crate::schema::{forest_parcels as fp, parcel_holders as ph, parties as pt};

mod holder_changes;
mod lookup;
mod registration;
mod splitting;

pub use holder_changes::*;
pub use lookup::*;
pub use registration::*;
pub use splitting::*;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(register)
        .service(search)
        .service(get_one)
        .service(change_holder)
        .service(split);
}

/// A parcel as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParcelView {
    pub id: i64,
    pub certificate_no: String,
    /// The representative holder.
    pub holder: PartyRef,
    /// Every holder with its share.
    pub holders: Vec<HolderShare>,
    pub rights: Vec<String>,
    pub county_code: String,
    pub township: String,
    pub village: String,
    pub compartment: String,
    pub sub_compartment: String,
    pub place_name: Option<String>,
    pub area_mu: Dec,
    /// The same area in hectares (15 mu = 1 ha), 4 places.
    pub area_ha: Dec,
    pub forest_category: String,
    pub commercial_kind: Option<String>,
    pub origin: String,
    pub dominant_species: String,
    pub age_group: Option<String>,
    pub stock_volume: Dec,
    pub woodland_term_end: NaiveDate,
    pub ownership: String,
    pub management_form: String,
    pub registered: bool,
    pub disputed: bool,
    pub boundary: Option<serde_json::Value>,
    /// `active`, or `split` once divided into new parcels.
    pub status: String,
    /// The parcel this one was split from.
    pub split_from: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub fn view(conn: &mut DbConn, p: ParcelRow) -> ApiResult<ParcelView> {
    let holder = crate::parties::store::find(conn, p.holder_id)?
        .ok_or_else(|| ApiError::internal("holder vanished"))?;
    let ha = (Decimal::new(p.area_mu, 2) / Decimal::from(15)).round_dp(4);
    let mut holders = Vec::new();
    for (party, share) in super::holders(conn, p.id)? {
        let row = crate::parties::store::find(conn, party)?
            .ok_or_else(|| ApiError::internal("holder vanished"))?;
        holders.push(HolderShare {
            party: row.into(),
            share: Dec::money(i64::from(share)),
        });
    }
    Ok(ParcelView {
        id: p.id,
        certificate_no: p.certificate_no,
        holder: holder.into(),
        holders,
        rights: p.rights.split(',').map(str::to_string).collect(),
        county_code: p.county_code,
        township: p.township,
        village: p.village,
        compartment: p.compartment,
        sub_compartment: p.sub_compartment,
        place_name: p.place_name,
        area_mu: Dec::money(p.area_mu),
        area_ha: Dec(ha),
        forest_category: p.forest_category,
        commercial_kind: p.commercial_kind,
        origin: p.origin,
        dominant_species: p.dominant_species,
        age_group: p.age_group,
        stock_volume: Dec::money(p.stock_volume),
        woodland_term_end: p.woodland_term_end,
        ownership: p.ownership,
        management_form: p.management_form,
        registered: p.registered,
        disputed: p.disputed,
        boundary: p.boundary.and_then(|b| serde_json::from_str(&b).ok()),
        status: p.status,
        split_from: p.split_from,
        created_at: p.created_at.and_utc(),
        updated_at: p.updated_at.and_utc(),
    })
}

/// Loads a parcel the caller may see (holders their own, banks those they lend or were asked
/// to lend on, operators and regulators all); any other is a 404, as if it did not exist.
pub fn visible(conn: &mut DbConn, who: &Principal, id: i64) -> ApiResult<ParcelRow> {
    let p = parcel(conn, id)?.ok_or_else(|| ApiError::not_found("parcel"))?;
    if !super::sees_parcel(conn, who, p.id)? {
        return Err(ApiError::not_found("parcel"));
    }
    Ok(p)
}

#[utoipa::path(get, path = "/v1/forest-rights/{id}", tag = "forest", operation_id = "getParcel", summary = "A parcel",
    params(("id" = i64, Path, description = "Parcel id")), responses((status = 200, description = "The parcel", body = ParcelView)))]
#[get("/v1/forest-rights/{id}")]
async fn get_one(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let v = state
        .db(move |conn| {
            let p = visible(conn, &who, id)?;
            view(conn, p)
        })
        .await?;
    Ok(HttpResponse::Ok().json(v))
}
