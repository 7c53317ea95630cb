//! Judicial freezes (查封/冻结): an operator records a court order freezing quantity of a holding.
//! Courts come first ([`super::courts`]): the freeze reaches available quantity (moved to `frozen`)
//! and pledged quantity (it stays pledged and is frozen as well); nothing of it moves until a later
//! order lifts it, except by a forced transfer by court order, which executes against it.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::courts;
use crate::app::AppState;
use crate::auth::{Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::Dec;
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::rights::issuance::parse_quantity;
use crate::rights::ledger::{self, Movement, Side};
use crate::rights::serials::Range;
use crate::rights::store::{self as rights, LotRow};
use crate::rights::{Acquisition, Bucket};
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
    /// The part resting on the holding's pledged quantity (the rest sits in `frozen`).
    pub pledged: i64,
    /// The part a forced transfer by court order has taken.
    pub executed: i64,
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
        self.holds() - self.pledged
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
    /// release, disposal or transfer of the pledge moves it.
    pub pledged_quantity: Dec,
    /// Of it, the part a forced transfer by court order has executed (taken).
    pub executed_quantity: Dec,
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

/// The freeze a court-ordered forced transfer names by its registration number (`NPDJ-000001`),
/// checked to be an active freeze of the holding the order takes from. An order executes only
/// against the freeze of its own case: another court's freeze on the same holding is that court's.
pub fn named_for_holding(
    conn: &mut DbConn,
    freeze_no: &str,
    party: i64,
    lot: i64,
) -> ApiResult<FreezeRow> {
    let id = freeze_no
        .trim()
        .strip_prefix("NPDJ-")
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            ApiError::invalid_field(
                "freeze_no",
                "a freeze registration number, e.g. NPDJ-000001",
            )
        })?;
    let f: FreezeRow = jf::table
        .find(id)
        .select(FreezeRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::invalid_field("freeze_no", "no such freeze"))?;
    if f.party_id != party || f.lot_id != lot {
        return Err(ApiError::conflict(
            "freeze_not_of_holding",
            format!(
                "{} freezes another holding: an order executes only against a freeze of the holding it takes from",
                f.registration_no()
            ),
        ));
    }
    if f.status != "active" {
        return Err(ApiError::conflict(
            "freeze_not_active",
            format!(
                "{} is {}: there is nothing of it left to execute",
                f.registration_no(),
                f.status
            ),
        ));
    }
    Ok(f)
}

/// A forced transfer by court order (R13's court counterpart). Naming its freeze (`freeze_no`), it
/// executes against the quantity that freeze holds in `frozen` first, then takes available
/// quantity; without one it takes available quantity only, so an order never spends the frozen
/// quantity of another court's case. Frozen quantity that is also pledged is not taken: the pledgee
/// ranks first on it, and it is reached through the pledge's disposal once the court lifts its
/// freeze (409 `frozen_pledged_quantity`). Returns the serial ranges that moved.
#[allow(clippy::too_many_arguments)]
pub fn court_transfer(
    conn: &mut DbConn,
    lot: &LotRow,
    from: i64,
    to: i64,
    quantity: i64,
    freeze_no: Option<&str>,
    reference: String,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<Vec<Range>> {
    let named = match freeze_no {
        Some(no) => Some(named_for_holding(conn, no, from, lot.id)?),
        None => None,
    };
    let from_frozen = named.as_ref().map_or(0, |f| f.in_frozen().min(quantity));
    if let Some(f) = &named {
        let available = rights::holding(conn, from, lot.id)?.map_or(0, |h| h.available);
        if f.pledged > 0 && quantity - from_frozen > available {
            return Err(ApiError::conflict(
                "frozen_pledged_quantity",
                format!(
                    "{} of {} rests on pledged quantity: the pledgee ranks first on it, so it is executed \
                     through the pledge's disposal once the court lifts or converts its freeze; this order \
                     can take {} (frozen unpledged plus available)",
                    Dec::qty(f.pledged).0,
                    f.registration_no(),
                    Dec::qty(from_frozen + available).0
                ),
            ));
        }
    }
    if let Some(f) = named.as_ref().filter(|_| from_frozen > 0) {
        let executed = f.executed + from_frozen;
        let status = if executed == f.quantity {
            "executed"
        } else {
            "active"
        };
        diesel::update(jf::table.find(f.id))
            .set((jf::executed.eq(executed), jf::status.eq(status)))
            .execute(conn)?;
        let f = FreezeRow {
            executed,
            status: status.into(),
            ..f.clone()
        };
        audit(conn, &f, "freeze.executed", actor, at)?;
        notify_lenders(conn, &f, "judicial_freeze.executed", at)?;
    }
    let mut moved = court_move(
        conn,
        lot,
        Side::holder(from, Bucket::Frozen),
        Side::holder(to, Bucket::Available),
        from_frozen,
        "court_forced_transfer",
        reference.clone(),
        actor,
        at,
        Some(Acquisition::Other),
    )?;
    moved.extend(court_move(
        conn,
        lot,
        Side::holder(from, Bucket::Available),
        Side::holder(to, Bucket::Available),
        quantity - from_frozen,
        "forced_transfer",
        reference,
        actor,
        at,
        Some(Acquisition::Other),
    )?);
    Ok(moved)
}

/// How much of `leaving` pledged quantity of a holding the active freezes still need, when a
/// pledge lapses: that part goes to `frozen` (see [`lapse_into_frozen`]), the rest is released.
pub fn needed_on_lapse(conn: &mut DbConn, party: i64, lot: i64, leaving: i64) -> ApiResult<i64> {
    let frozen_pledged: i64 = active_on_holding(conn, party, lot)?
        .iter()
        .map(|f| f.pledged)
        .sum();
    if frozen_pledged == 0 {
        return Ok(0);
    }
    let pledged = rights::holding(conn, party, lot)?.map_or(0, |h| h.pledged);
    Ok(courts::lapse_to_frozen(pledged, frozen_pledged, leaving))
}

/// Records that `quantity` the freezes rested on in `pledged` now sits in `frozen` (the pledge
/// under them lapsed): their pledged parts shrink, oldest first. The caller moves the quantity.
pub fn lapse_into_frozen(conn: &mut DbConn, party: i64, lot: i64, quantity: i64) -> ApiResult<()> {
    let freezes = active_on_holding(conn, party, lot)?;
    let parts: Vec<i64> = freezes.iter().map(|f| f.pledged).collect();
    for (f, take) in freezes.iter().zip(courts::oldest_first(&parts, quantity)) {
        if take > 0 {
            diesel::update(jf::table.find(f.id))
                .set(jf::pledged.eq(f.pledged - take))
                .execute(conn)?;
        }
    }
    Ok(())
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
    summary = "Record a court order freezing quantity of a holding: available quantity first, then pledged quantity (which stays pledged and is frozen as well), then the holder's own listed quantity, newest listing first (its unsold quantity shrinks; a listing left with nothing is withdrawn). Quantity in pending transfers and trades awaiting payment is not taken: the other side is bound; 409 freeze_exceeds_holding if the rest does not cover the order",
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
            let h = rights::holding(conn, r.party_id, lot.id)?
                .ok_or_else(|| ApiError::not_found("holding"))?;
            let t = rights::right_type(conn, &lot.right_type)?
                .ok_or_else(|| ApiError::internal("right type vanished"))?;
            let quantity = parse_quantity("quantity", r.quantity, &t)?;
            let frozen_pledged: i64 = active_on_holding(conn, r.party_id, lot.id)?
                .iter()
                .map(|f| f.pledged)
                .sum();
            // Available and pledged quantity first; what they do not cover the freeze takes from
            // the holder's own open listings (newest first): while it stands nothing of it is sold.
            // Quantity in pending transfers and trades awaiting payment is not taken here: a trade's
            // buyer is already bound to it, and an unsettled transfer is cancelled or rejected
            // first; the order is then recorded on what came back.
            let listings = crate::market::listings::selling_own(conn, r.party_id, lot.id)?;
            let listed: i64 = listings.iter().map(|l| l.remaining).sum();
            let from_listed = courts::from_listed(h.available, h.pledged, frozen_pledged, listed, quantity);
            let reach = courts::reach(h.available, h.pledged, frozen_pledged, quantity - from_listed)
                .map_err(|s| {
                    ApiError::conflict(
                        "freeze_exceeds_holding",
                        format!(
                            "the order asks for more than the holding has to freeze: {} available, pledged or \
                             listed for sale; {} in pending transfers and trades awaiting payment is bound to \
                             the other side and must first come back (the transfer cancelled or rejected)",
                            Dec::qty(s.reachable + listed).0,
                            Dec::qty(h.in_transfer).0
                        ),
                    )
                })?;
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
                    jf::pledged.eq(reach.from_pledged),
                ))
                .execute(conn)?;
            let f: FreezeRow = jf::table
                .filter(jf::lot_id.eq(lot.id))
                .order(jf::id.desc())
                .select(FreezeRow::as_select())
                .first(conn)?;
            court_move(
                conn,
                &lot,
                Side::holder(r.party_id, Bucket::Available),
                Side::holder(r.party_id, Bucket::Frozen),
                reach.from_available,
                "judicial_freeze",
                format!("freeze:{}", f.id),
                &actor,
                now,
                None,
            )?;
            let takes = courts::oldest_first(
                &listings.iter().map(|l| l.remaining).collect::<Vec<_>>(),
                from_listed,
            );
            for (l, take) in listings.iter().zip(takes).filter(|(_, t)| *t > 0) {
                crate::market::listings::shrink_for_freeze(conn, l, take, &actor, now)?;
            }
            court_move(
                conn,
                &lot,
                Side::holder(r.party_id, Bucket::Listed),
                Side::holder(r.party_id, Bucket::Frozen),
                from_listed,
                "judicial_freeze",
                format!("freeze:{}", f.id),
                &actor,
                now,
                None,
            )?;
            audit(conn, &f, "freeze.recorded", &actor, now)?;
            notify_lenders(conn, &f, "judicial_freeze.recorded", now)?;
            Outcome::of(&FreezeView::from(f))
        },
    )
    .await
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiftFreeze {
    /// The later order that lifts the freeze.
    pub document_ref: String,
}

/// What a freeze-lift proposal stores.
#[derive(Debug, Deserialize, Serialize)]
pub struct LiftProposal {
    pub freeze_id: i64,
    pub document_ref: String,
}

#[utoipa::path(post, path = "/v1/judicial-freezes/{id}/lift", tag = "pledges", operation_id = "liftJudicialFreeze",
    summary = "Propose recording the order that lifts a freeze; once a second operator approves, the quantity is available again",
    params(("id" = i64, Path, description = "Freeze id"), ("Idempotency-Key" = String, Header, description = "Required: this moves quantity once approved")),
    request_body = LiftFreeze, responses((status = 202, description = "Proposed", body = crate::proposals::ProposalView),
        (status = 409, description = "freeze_lifted", body = crate::error::Problem, content_type = "application/problem+json")))]
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
    let (id, now) = (id.into_inner(), db::now_micros(state.clock.now()));
    let w = who.clone();
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Required,
        StatusCode::ACCEPTED,
        move |conn| {
            let status: String = jf::table
                .find(id)
                .select(jf::status)
                .first(conn)
                .optional()?
                .ok_or_else(|| ApiError::not_found("freeze"))?;
            if status != "active" {
                return Err(ApiError::conflict(
                    "freeze_lifted",
                    "this freeze is already lifted",
                ));
            }
            let asked = LiftProposal {
                freeze_id: id,
                document_ref: doc,
            };
            let row = crate::proposals::propose(
                conn,
                crate::proposals::ProposalKind::FreezeLift,
                &asked,
                None,
                &w,
                now,
            )?;
            Outcome::of(&crate::proposals::ProposalView::from(row))
        },
    )
    .await
}

/// Carries out an approved lift: what the freeze held in `frozen` is available again.
pub fn execute_lift(
    conn: &mut DbConn,
    r: &LiftProposal,
    actor: &str,
    now: NaiveDateTime,
) -> ApiResult<serde_json::Value> {
    let (id, doc) = (r.freeze_id, &r.document_ref);
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
        jf::lift_document_ref.eq(doc),
        jf::lifted_by.eq(actor),
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
    // What it held in `frozen` is available again; what it rested on stays pledged.
    court_move(
        conn,
        &lot,
        Side::holder(f.party_id, Bucket::Frozen),
        Side::holder(f.party_id, Bucket::Available),
        f.in_frozen(),
        "judicial_unfreeze",
        format!("freeze:{id}"),
        actor,
        now,
        None,
    )?;
    audit(conn, &f, "freeze.lifted", actor, now)?;
    notify_lenders(conn, &f, "judicial_freeze.lifted", now)?;
    serde_json::to_value(FreezeView::from(f)).map_err(|e| ApiError::internal(e.to_string()))
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
