//! Judicial freezes (查封/冻结): an operator records a court order freezing quantity of a holding;
//! frozen quantity cannot move or be pledged until a later order lifts it.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::auth::{Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::Dec;
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::rights::issuance::parse_quantity;
use crate::rights::ledger::{self, Movement, Side};
use crate::rights::store as rights;
use crate::rights::Bucket;
use crate::schema::judicial_freezes as jf;

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
}

impl FreezeRow {
    /// Freezes are listed among encumbrances under this number.
    pub fn registration_no(&self) -> String {
        format!("NPDJ-{:06}", self.id)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FreezeView {
    pub id: i64,
    pub registration_no: String,
    pub lot_id: i64,
    pub party_id: i64,
    pub quantity: Dec,
    pub court: String,
    pub case_no: String,
    pub document_ref: String,
    /// `active` or `lifted`.
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

/// Tells the lenders of live pledges on the frozen holding.
fn notify_lenders(
    conn: &mut DbConn,
    f: &FreezeRow,
    event: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    use crate::schema::pledges as pl;
    let live: Vec<(i64, i64, Option<String>)> = pl::table
        .filter(pl::lot_id.eq(f.lot_id))
        .filter(pl::pledgor_id.eq(f.party_id))
        .filter(pl::status.eq_any(super::LIVE))
        .select((pl::id, pl::lender_id, pl::registration_no))
        .load(conn)?;
    for (pledge, lender, registration_no) in live {
        let data = json!({"pledge_id": pledge, "registration_no": registration_no, "freeze": f.registration_no(),
            "court": f.court, "case_no": f.case_no, "quantity": Dec::qty(f.quantity)});
        super::webhooks::enqueue(conn, lender, &format!("pledge:{pledge}"), event, data, at)?;
    }
    Ok(())
}

fn audit(
    conn: &mut DbConn,
    f: &FreezeRow,
    action: &str,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    crate::audit::record(
        conn,
        crate::audit::Event {
            chain: format!("lot:{}", f.lot_id),
            actor,
            action,
            object_type: "judicial_freeze",
            object_id: f.id.to_string(),
            payload: json!({"party_id": f.party_id, "quantity": f.quantity, "court": f.court, "case_no": f.case_no,
                "document_ref": f.document_ref, "lift_document_ref": f.lift_document_ref}),
            at,
        },
    )?;
    Ok(())
}

/// A court order freezing quantity of a holding.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lot_id": 1, "party_id": 3, "quantity": "50", "court": "南平市延平区人民法院",
    "case_no": "(2026)闽0702执保123号", "document_ref": "协助执行通知书 2026-118"}))]
pub struct NewFreeze {
    pub lot_id: i64,
    pub party_id: i64,
    pub quantity: Dec,
    pub court: String,
    pub case_no: String,
    pub document_ref: String,
}

#[utoipa::path(post, path = "/v1/judicial-freezes", tag = "pledges", operation_id = "recordJudicialFreeze",
    summary = "Record a court order freezing available quantity of a holding",
    params(("Idempotency-Key" = String, Header, description = "Required: this moves quantity")),
    request_body = NewFreeze, responses((status = 201, description = "Frozen", body = FreezeView)))]
#[post("/v1/judicial-freezes")]
async fn freeze(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    body: ApiJson<NewFreeze>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let r = body.value;
    for (field, v) in [
        ("court", &r.court),
        ("case_no", &r.case_no),
        ("document_ref", &r.document_ref),
    ] {
        if v.trim().is_empty() {
            return Err(ApiError::invalid_field(field, "required"));
        }
    }
    let (actor, now) = (who.actor(), db::now_micros(state.clock.now()));
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Required,
        StatusCode::CREATED,
        move |conn| {
            let lot = rights::lock_lot(conn, r.lot_id)?;
            rights::holding(conn, r.party_id, lot.id)?
                .ok_or_else(|| ApiError::not_found("holding"))?;
            let t = rights::right_type(conn, &lot.right_type)?
                .ok_or_else(|| ApiError::internal("right type vanished"))?;
            let quantity = parse_quantity("quantity", r.quantity, &t)?;
            diesel::insert_into(jf::table)
                .values((
                    jf::lot_id.eq(lot.id),
                    jf::party_id.eq(r.party_id),
                    jf::quantity.eq(quantity),
                    jf::court.eq(r.court.trim()),
                    jf::case_no.eq(r.case_no.trim()),
                    jf::document_ref.eq(r.document_ref.trim()),
                    jf::status.eq("active"),
                    jf::ordered_by.eq(&actor),
                    jf::ordered_at.eq(now),
                ))
                .execute(conn)?;
            let f: FreezeRow = jf::table
                .filter(jf::lot_id.eq(lot.id))
                .order(jf::id.desc())
                .select(FreezeRow::as_select())
                .first(conn)?;
            ledger::move_quantity(
                conn,
                Movement {
                    lot: &lot,
                    from: Side::holder(r.party_id, Bucket::Available),
                    to: Side::holder(r.party_id, Bucket::Frozen),
                    quantity,
                    cause: "judicial_freeze",
                    reference: format!("freeze:{}", f.id),
                    actor: &actor,
                    at: now,
                    acquisition: None,
                    named_serials: None,
                },
            )?;
            audit(conn, &f, "freeze.recorded", &actor, now)?;
            notify_lenders(conn, &f, "judicial_freeze.recorded", now)?;
            Outcome::of(&FreezeView::from(f))
        },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiftFreeze {
    /// The later order that lifts the freeze.
    pub document_ref: String,
}

#[utoipa::path(post, path = "/v1/judicial-freezes/{id}/lift", tag = "pledges", operation_id = "liftJudicialFreeze",
    summary = "Record the order that lifts a freeze; the quantity is available again",
    params(("id" = i64, Path, description = "Freeze id"), ("Idempotency-Key" = String, Header, description = "Required: this moves quantity")),
    request_body = LiftFreeze, responses((status = 200, description = "Lifted", body = FreezeView)))]
#[post("/v1/judicial-freezes/{id}/lift")]
async fn lift(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<LiftFreeze>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let doc = body.value.document_ref.trim().to_string();
    if doc.is_empty() {
        return Err(ApiError::invalid_field("document_ref", "required"));
    }
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
        StatusCode::OK,
        move |conn| {
            let lot_id: i64 = jf::table
                .find(id)
                .select(jf::lot_id)
                .first(conn)
                .optional()?
                .ok_or_else(|| ApiError::not_found("freeze"))?;
            let lot = rights::lock_lot(conn, lot_id)?;
            let n = diesel::update(
                jf::table
                    .filter(jf::id.eq(id))
                    .filter(jf::status.eq("active")),
            )
            .set((
                jf::status.eq("lifted"),
                jf::lift_document_ref.eq(&doc),
                jf::lifted_by.eq(&actor),
                jf::lifted_at.eq(now),
            ))
            .execute(conn)?;
            if n != 1 {
                return Err(ApiError::conflict(
                    "freeze_lifted",
                    "this freeze is already lifted",
                ));
            }
            let f: FreezeRow = jf::table
                .find(id)
                .select(FreezeRow::as_select())
                .first(conn)?;
            ledger::move_quantity(
                conn,
                Movement {
                    lot: &lot,
                    from: Side::holder(f.party_id, Bucket::Frozen),
                    to: Side::holder(f.party_id, Bucket::Available),
                    quantity: f.quantity,
                    cause: "judicial_unfreeze",
                    reference: format!("freeze:{id}"),
                    actor: &actor,
                    at: now,
                    acquisition: None,
                    named_serials: None,
                },
            )?;
            audit(conn, &f, "freeze.lifted", &actor, now)?;
            notify_lenders(conn, &f, "judicial_freeze.lifted", now)?;
            Outcome::of(&FreezeView::from(f))
        },
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FreezeQuery {
    pub party_id: Option<i64>,
}

#[utoipa::path(get, path = "/v1/judicial-freezes", tag = "pledges", operation_id = "listJudicialFreezes",
    summary = "Judicial freezes (own for enterprises; all for operators and regulators)",
    params(FreezeQuery), responses((status = 200, description = "Freezes, oldest first", body = Vec<FreezeView>)))]
#[get("/v1/judicial-freezes")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<FreezeQuery>,
) -> ApiResult<HttpResponse> {
    let party = if who.role.sees_all() {
        q.party_id
    } else {
        Some(who.party_id.unwrap_or(-1))
    };
    let rows = state
        .db(move |conn| {
            let mut query = jf::table
                .order(jf::id)
                .select(FreezeRow::as_select())
                .into_boxed();
            if let Some(p) = party {
                query = query.filter(jf::party_id.eq(p));
            }
            Ok(query.load(conn)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(FreezeView::from).collect::<Vec<_>>()))
}
