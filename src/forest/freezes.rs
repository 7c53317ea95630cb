//! Judicial freezes of forest parcels (查封): recorded by an operator on a court order, they block
//! every change of the parcel (holder change, split, new mortgages) until a later order lifts them,
//! and show in every lender search.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{add_entry, mortgages_on, parcel, ParcelRow, LIVE};
use crate::auth::{Principal, Role};
use crate::collateral::encumbrance::{self, court};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::state::AppState;
use crate::proposals::ProposalKind;
use crate::schema::{forest_parcels as fp, parcel_freezes as pf};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(freeze).service(lift);
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = pf)]
pub struct ParcelFreezeRow {
    pub id: i64,
    pub parcel_id: i64,
    pub court: String,
    pub case_no: String,
    pub document_ref: String,
    pub status: String,
    pub ordered_by: String,
    pub ordered_at: NaiveDateTime,
    pub lift_document_ref: Option<String>,
    pub lifted_at: Option<NaiveDateTime>,
}

impl ParcelFreezeRow {
    pub fn registration_no(&self) -> String {
        format!("NPLD-{:06}", self.id)
    }
}

pub fn active(conn: &mut DbConn, parcel_id: i64) -> QueryResult<Vec<ParcelFreezeRow>> {
    pf::table
        .filter(pf::parcel_id.eq(parcel_id))
        .filter(pf::status.eq("active"))
        .order(pf::id)
        .select(ParcelFreezeRow::as_select())
        .load(conn)
}

/// Active freezes on the parcels a party holds.
pub fn active_for_holder(conn: &mut DbConn, party: i64) -> QueryResult<Vec<ParcelFreezeRow>> {
    pf::table
        .filter(pf::parcel_id.eq_any(crate::parcels_held_by!(party)))
        .filter(pf::status.eq("active"))
        .order(pf::id)
        .select(ParcelFreezeRow::as_select())
        .load(conn)
}

/// Active freezes on any of the parcels a mortgage burdens.
pub fn active_on_mortgage(
    conn: &mut DbConn,
    mortgage_id: i64,
) -> QueryResult<Vec<ParcelFreezeRow>> {
    use crate::schema::forest_mortgage_parcels as fmp;
    pf::table
        .filter(
            pf::parcel_id.eq_any(
                fmp::table
                    .filter(fmp::mortgage_id.eq(mortgage_id))
                    .select(fmp::parcel_id),
            ),
        )
        .filter(pf::status.eq("active"))
        .order(pf::id)
        .select(ParcelFreezeRow::as_select())
        .load(conn)
}

/// Refuses any change of a parcel that is frozen or no longer exists as such (split).
pub fn require_changeable(conn: &mut DbConn, p: &ParcelRow) -> ApiResult<()> {
    if p.status != "active" {
        return Err(ApiError::conflict(
            "parcel_split",
            format!("{} was split; use its parts", p.certificate_no),
        ));
    }
    require_unfrozen(conn, p)
}

/// Courts come first: a frozen parcel is not sold, disposed of or otherwise changed until a later
/// order lifts the freeze.
pub fn require_unfrozen(conn: &mut DbConn, p: &ParcelRow) -> ApiResult<()> {
    if let Some(f) = active(conn, p.id)?.first() {
        return Err(ApiError::conflict(
            "parcel_frozen",
            format!(
                "{} is under a judicial freeze ({} {})",
                p.certificate_no, f.court, f.case_no
            ),
        ));
    }
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ParcelFreezeView {
    pub id: i64,
    pub registration_no: String,
    pub parcel_id: i64,
    pub court: String,
    pub case_no: String,
    pub document_ref: String,
    /// `active` or `lifted`.
    pub status: String,
    pub ordered_at: DateTime<Utc>,
    pub lift_document_ref: Option<String>,
    pub lifted_at: Option<DateTime<Utc>>,
}

impl From<ParcelFreezeRow> for ParcelFreezeView {
    fn from(f: ParcelFreezeRow) -> Self {
        ParcelFreezeView {
            registration_no: f.registration_no(),
            id: f.id,
            parcel_id: f.parcel_id,
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

/// Tells the lenders of live mortgages on the parcel, as an entry of each mortgage.
fn notify(
    conn: &mut DbConn,
    f: &ParcelFreezeRow,
    kind: &str,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    for m in mortgages_on(conn, f.parcel_id, &LIVE)? {
        add_entry(
            conn,
            &m,
            kind,
            json!({"parcel_id": f.parcel_id, "freeze": f.registration_no(), "court": f.court, "case_no": f.case_no}),
            actor,
            at,
        )?;
    }
    let event = court::FreezeEvent {
        chain: format!("parcel:{}", f.parcel_id),
        action: &format!("parcel.{kind}"),
        object_type: "parcel_freeze",
        id: f.id,
        payload: json!({"court": f.court, "case_no": f.case_no, "document_ref": f.document_ref, "lift_document_ref": f.lift_document_ref}),
    };
    court::audit(conn, event, actor, at)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"court": "顺昌县人民法院", "case_no": "(2027)闽0721执保8号", "document_ref": "协助执行通知书 2027-8"}))]
pub struct NewParcelFreeze {
    pub court: String,
    pub case_no: String,
    pub document_ref: String,
}

#[utoipa::path(post, path = "/v1/forest-rights/{id}/freezes", tag = "forest", operation_id = "freezeParcel",
    summary = "Record a court order freezing a parcel",
    params(("id" = i64, Path, description = "Parcel id"), ("Idempotency-Key" = String, Header, description = "Required: this freezes a parcel")),
    request_body = NewParcelFreeze, responses((status = 201, description = "Frozen", body = ParcelFreezeView)))]
#[post("/v1/forest-rights/{id}/freezes")]
async fn freeze(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<NewParcelFreeze>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let r = body.value;
    court::require_order(&r.court, &r.case_no, &r.document_ref)?;
    let (id, actor, now) = (
        id.into_inner(),
        who.actor(),
        db::now_micros(state.clock.now()),
    );
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Required,
        StatusCode::CREATED,
        move |conn| {
            let n = diesel::update(fp::table.find(id))
                .set(fp::updated_at.eq(now))
                .execute(conn)?;
            parcel(conn, id)?
                .filter(|_| n == 1)
                .ok_or_else(|| ApiError::not_found("parcel"))?;
            diesel::insert_into(pf::table)
                .values((
                    pf::parcel_id.eq(id),
                    pf::court.eq(r.court.trim()),
                    pf::case_no.eq(r.case_no.trim()),
                    pf::document_ref.eq(r.document_ref.trim()),
                    pf::status.eq("active"),
                    pf::ordered_by.eq(&actor),
                    pf::ordered_at.eq(now),
                ))
                .execute(conn)?;
            let f: ParcelFreezeRow = pf::table
                .filter(pf::parcel_id.eq(id))
                .order(pf::id.desc())
                .select(ParcelFreezeRow::as_select())
                .first(conn)?;
            notify(conn, &f, "judicial_freeze", &actor, now)?;
            Outcome::of(&ParcelFreezeView::from(f))
        },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiftParcelFreeze {
    /// The later order that lifts it.
    pub document_ref: String,
}

/// What a parcel-freeze lift proposal stores.
#[derive(Debug, Deserialize, Serialize)]
pub struct ParcelLiftProposal {
    pub parcel_id: i64,
    pub freeze_id: i64,
    pub document_ref: String,
}

#[utoipa::path(post, path = "/v1/forest-rights/{id}/freezes/{freeze_id}/lift", tag = "forest", operation_id = "liftParcelFreeze",
    summary = "Propose recording the order that lifts a parcel's freeze; it is lifted once a second operator approves",
    params(("id" = i64, Path, description = "Parcel id"), ("freeze_id" = i64, Path, description = "Freeze id"), ("Idempotency-Key" = String, Header, description = "Required: this lifts a court order once approved")),
    request_body = LiftParcelFreeze, responses((status = 202, description = "Proposed", body = crate::proposals::ProposalView)))]
#[post("/v1/forest-rights/{id}/freezes/{freeze_id}/lift")]
async fn lift(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    path: web::Path<(i64, i64)>,
    body: ApiJson<LiftParcelFreeze>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let doc = court::lift_document(&body.value.document_ref)?;
    let ((id, freeze_id), kind) = (path.into_inner(), ProposalKind::ParcelFreezeLift);
    encumbrance::propose(state, who, idem, &body.body_hash, kind, move |conn, _| {
        let active: i64 = pf::table
            .filter(pf::id.eq(freeze_id))
            .filter(pf::parcel_id.eq(id))
            .filter(pf::status.eq("active"))
            .count()
            .get_result(conn)?;
        if active != 1 {
            return Err(ApiError::not_found("active freeze"));
        }
        Ok(ParcelLiftProposal {
            parcel_id: id,
            freeze_id,
            document_ref: doc,
        })
    })
    .await
}

/// Carries out an approved lift of a parcel's freeze.
pub fn execute_lift(
    conn: &mut DbConn,
    r: &ParcelLiftProposal,
    actor: &str,
    now: NaiveDateTime,
) -> ApiResult<serde_json::Value> {
    let n = diesel::update(
        pf::table
            .filter(pf::id.eq(r.freeze_id))
            .filter(pf::parcel_id.eq(r.parcel_id))
            .filter(pf::status.eq("active")),
    )
    .set((
        pf::status.eq("lifted"),
        pf::lift_document_ref.eq(&r.document_ref),
        pf::lifted_at.eq(now),
    ))
    .execute(conn)?;
    if n != 1 {
        return Err(ApiError::not_found("active freeze"));
    }
    let f: ParcelFreezeRow = pf::table
        .find(r.freeze_id)
        .select(ParcelFreezeRow::as_select())
        .first(conn)?;
    notify(conn, &f, "judicial_freeze_lifted", actor, now)?;
    serde_json::to_value(ParcelFreezeView::from(f)).map_err(|e| ApiError::internal(e.to_string()))
}
