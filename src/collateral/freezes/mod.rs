//! Judicial freezes (查封/冻结): an operator records a court order freezing quantity of a holding.
//! Courts come first ([`super::courts`]): the freeze reaches available quantity (moved to `frozen`),
//! pledged quantity (it stays pledged and is frozen as well), the holder's own listed quantity
//! (its listings, then its scheduled auctions),
//! quantity in its pending transfers and trades awaiting payment (held where it is: they cannot
//! settle), and last the quantity a pledgee offers for sale in disposing of the holder's pledge
//! (taken off the listing or auction, back under the pledge, frozen there); nothing of it moves until a later order lifts it, except by a forced transfer by court
//! order, which executes against it (a pledge on it follows it, or the order discharges it).

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::courts;
use super::encumbrance::{self, court};
use crate::auth::{Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::Dec;
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::state::AppState;
use crate::proposals::ProposalKind;
use crate::rights::issuance::parse_quantity;
use crate::rights::ledger::{self, Movement, Side};
use crate::rights::serials::Range;
use crate::rights::store::{self as rights, LotRow};
use crate::rights::{Acquisition, Bucket};
use crate::schema::judicial_freeze_holds as jfh;
use crate::schema::judicial_freezes as jf;

mod court_transfers;
mod holds;
mod recording;

pub use court_transfers::*;
pub use holds::*;
pub use recording::*;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(freeze).service(lift).service(list);
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = jf)]
pub struct FreezeRow {
    pub id: i64,
    pub lot_id: i64,
    pub party_id: i64,
    pub quantity: i64,
    pub court: String,
    pub case_no: String,
    pub document_ref: String,
    pub status: String,
    pub ordered_by: String,
    pub ordered_at: NaiveDateTime,
    pub lift_document_ref: Option<String>,
    pub lifted_by: Option<String>,
    pub lifted_at: Option<NaiveDateTime>,
    /// The part resting on the holding's pledged quantity (the rest sits in `frozen`).
    pub pledged: i64,
    /// The part a forced transfer by court order has taken.
    pub executed: i64,
    /// The part resting on quantity in pending transfers and trades awaiting payment (held where
    /// it is, see [`Hold`]).
    pub pending: i64,
}

impl FreezeRow {
    /// Freezes are listed among encumbrances under this number.
    pub fn registration_no(&self) -> String {
        format!("NPDJ-{:06}", self.id)
    }
    /// What the freeze still holds.
    pub fn holds(&self) -> i64 {
        self.quantity - self.executed
    }
    /// The part it holds in the holding's `frozen` bucket.
    pub fn in_frozen(&self) -> i64 {
        self.holds() - self.pledged - self.pending
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FreezeView {
    pub id: i64,
    pub registration_no: String,
    pub lot_id: i64,
    pub party_id: i64,
    /// The quantity ordered frozen.
    pub quantity: Dec,
    /// Of it, the part that is pledged quantity: it stays pledged and is frozen as well, so no
    /// disposal or transfer of the pledge moves it; what a release or a lapse of a pledge frees
    /// goes to the frozen part first (the lender's claim ends, the court's does not). Quantity the freeze took off a
    /// pledgee's disposal offer returned under the pledge and is counted here.
    pub pledged_quantity: Dec,
    /// Of it, the part a forced transfer by court order has executed (taken).
    pub executed_quantity: Dec,
    /// Of it, the part held in the holder's pending transfers and trades awaiting payment: it stays
    /// there, and they cannot settle (409 `quantity_frozen`) while the freeze stands; a transfer or
    /// trade that ends otherwise returns it to the holder still frozen.
    pub pending_quantity: Dec,
    pub court: String,
    pub case_no: String,
    pub document_ref: String,
    /// `active`, `lifted`, or `executed` (a forced transfer by court order took all of it).
    pub status: String,
    pub ordered_at: DateTime<Utc>,
    pub lift_document_ref: Option<String>,
    pub lifted_at: Option<DateTime<Utc>>,
}

impl From<FreezeRow> for FreezeView {
    fn from(f: FreezeRow) -> Self {
        FreezeView {
            registration_no: f.registration_no(),
            id: f.id,
            lot_id: f.lot_id,
            party_id: f.party_id,
            quantity: Dec::qty(f.quantity),
            pledged_quantity: Dec::qty(f.pledged),
            executed_quantity: Dec::qty(f.executed),
            pending_quantity: Dec::qty(f.pending),
            court: f.court,
            case_no: f.case_no,
            document_ref: f.document_ref,
            status: f.status,
            ordered_at: f.ordered_at.and_utc(),
            lift_document_ref: f.lift_document_ref,
            lifted_at: f.lifted_at.map(|t| t.and_utc()),
        }
    }
}

pub fn active_for_party(conn: &mut DbConn, party: i64) -> QueryResult<Vec<FreezeRow>> {
    jf::table
        .filter(jf::party_id.eq(party))
        .filter(jf::status.eq("active"))
        .order(jf::id)
        .select(FreezeRow::as_select())
        .load(conn)
}

pub fn active_for_lot(conn: &mut DbConn, lot: i64) -> QueryResult<Vec<FreezeRow>> {
    jf::table
        .filter(jf::lot_id.eq(lot))
        .filter(jf::status.eq("active"))
        .order(jf::id)
        .select(FreezeRow::as_select())
        .load(conn)
}

/// The active freezes of one holding, oldest first.
pub fn active_on_holding(conn: &mut DbConn, party: i64, lot: i64) -> QueryResult<Vec<FreezeRow>> {
    jf::table
        .filter(jf::party_id.eq(party))
        .filter(jf::lot_id.eq(lot))
        .filter(jf::status.eq("active"))
        .order(jf::id)
        .select(FreezeRow::as_select())
        .load(conn)
}

/// Moves quantity of a holding into or out of `frozen` on a court's order.
#[allow(clippy::too_many_arguments)]
fn court_move(
    conn: &mut DbConn,
    lot: &LotRow,
    from: Side,
    to: Side,
    quantity: i64,
    cause: &str,
    reference: String,
    actor: &str,
    at: NaiveDateTime,
    acquisition: Option<Acquisition>,
) -> ApiResult<Vec<Range>> {
    if quantity == 0 {
        return Ok(Vec::new());
    }
    ledger::move_quantity(
        conn,
        Movement {
            lot,
            from,
            to,
            quantity,
            cause,
            reference,
            actor,
            at,
            acquisition,
            named_serials: None,
        },
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FreezeQuery {
    pub party_id: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page (1–500, default 50).
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/judicial-freezes", tag = "pledges", operation_id = "listJudicialFreezes",
    summary = "Judicial freezes (own for enterprises; all for operators and regulators)",
    params(FreezeQuery), responses((status = 200, description = "A page of freezes, oldest first", body = crate::kernel::pagination::Page<FreezeView>)))]
#[get("/v1/judicial-freezes")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<FreezeQuery>,
) -> ApiResult<HttpResponse> {
    let (after, limit) = crate::kernel::pagination::PageParams {
        cursor: q.cursor.clone(),
        limit: q.limit,
    }
    .resolve()?;
    let party = if who.role.sees_all() {
        q.party_id
    } else {
        Some(who.party_id.unwrap_or(-1))
    };
    let rows = state
        .db(move |conn| {
            let mut query = jf::table
                .filter(jf::id.gt(after))
                .order(jf::id)
                .limit(limit + 1)
                .select(FreezeRow::as_select())
                .into_boxed();
            if let Some(p) = party {
                query = query.filter(jf::party_id.eq(p));
            }
            Ok(query.load(conn)?)
        })
        .await?;
    Ok(
        HttpResponse::Ok().json(crate::kernel::pagination::Page::from_rows(
            rows.into_iter().map(FreezeView::from).collect(),
            limit,
            |f| f.id,
        )),
    )
}
