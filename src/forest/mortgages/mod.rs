//! HTTP: `/v1/forest-mortgages` — apply, complete (R12), official registration (R14), release,
//! enforce, dispose (proceeds by rank, R13).

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::rules::{self, Consent, ParcelFacts, Terms};
use super::{
    add_entry, current_rank, mortgage, mortgage_parcels, mortgages_on, MortgageRow, RANKED,
};
use crate::auth::{Principal, Role};
use crate::collateral::encumbrance::{
    self, entry_views, listing, require_lender, require_status, EntryView,
};
use crate::collateral::random_code;
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::{money_to_fen, Dec};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::pagination::{Page, PageParams};
use crate::kernel::state::AppState;
use crate::schema::{forest_mortgage_parcels as fmp, forest_mortgages as fm};

mod application;
mod completion;
mod enforcement;
mod official_registration;
mod views;

pub use application::*;
pub use completion::*;
pub use enforcement::*;
pub use official_registration::*;
pub use views::*;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(apply)
        .service(list)
        .service(get_one)
        .service(complete)
        .service(official)
        .service(confirm_official)
        .service(reject_official)
        .service(release)
        .service(enforce)
        .service(dispose);
}

fn outcome(conn: &mut DbConn, id: i64) -> ApiResult<Outcome> {
    encumbrance::outcome::<MortgageRow>(conn, id)
}

fn visible(conn: &mut DbConn, who: &Principal, id: i64) -> ApiResult<MortgageRow> {
    encumbrance::visible(conn, who, id)
}

/// Locks every parcel of the mortgage, then re-reads it (see `Encumbrance::lock_collateral`).
fn lock(conn: &mut DbConn, who: &Principal, id: i64, now: NaiveDateTime) -> ApiResult<MortgageRow> {
    Ok(encumbrance::lock(conn, Some(who), id, now)?.0)
}

/// A mortgage is granted only between parties that still exist: neither a mortgagor nor a lender
/// that merged, split or otherwise ended takes part in completing or registering one.
fn require_parties_active(conn: &mut DbConn, m: &MortgageRow) -> ApiResult<()> {
    crate::parties::store::require_active(conn, m.mortgagor_id)?;
    crate::parties::store::require_active(conn, m.lender_id)?;
    Ok(())
}

fn fen(field: &str, d: Dec, allow_zero: bool) -> ApiResult<i64> {
    money_to_fen(d.0, allow_zero).map_err(|e| ApiError::invalid_field(field, e.to_string()))
}
