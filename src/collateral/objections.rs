//! Objections (异议登记, R8). A party with standing — the grantor, or another creditor of the same
//! grantor or on the same asset — objects to a registration it holds wrong. The objection is its own
//! numbered record and an entry in the encumbrance's append-only history; it shows on the notice
//! (search, verification, certificates) until the objector withdraws it, an operator records how
//! it was resolved, or it lapses.
//!
//! The period follows the PBoC unified registry (中登网) under 《动产和权利担保统一登记办法》
//! (中国人民银行令〔2021〕第7号): an objection lapses 30 days after it is filed unless the dispute is
//! taken to court or arbitration (recorded here as its resolution by an operator). The period is
//! configurable: the `settings` row `objections` holds `{"period_days": N}`.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::{Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::state::AppState;
use crate::schema::{forest_mortgages as fm, objections as ob, pledges as pl, settings as st};

/// Days an objection stands unless withdrawn or resolved (中登网's period).
pub const DEFAULT_PERIOD_DAYS: i64 = 30;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(file).service(withdraw).service(resolve);
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ob)]
pub struct ObjectionRow {
    pub id: i64,
    pub registration_no: String,
    pub party_id: i64,
    pub standing: String,
    pub reason: String,
    pub status: String,
    pub filed_by: String,
    pub filed_at: NaiveDateTime,
    pub lapses_at: NaiveDateTime,
    pub closed_by: Option<String>,
    pub closed_at: Option<NaiveDateTime>,
    pub resolution: Option<String>,
}

/// An objection as it shows on the notice and to its parties.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ObjectionView {
    pub id: i64,
    /// 异议登记编号.
    pub objection_no: String,
    /// The registration objected to.
    pub registration_no: String,
    pub party_id: i64,
    /// `grantor` or `creditor`.
    pub standing: String,
    pub reason: String,
    /// `active`, `withdrawn`, `resolved` or `lapsed`.
    pub status: String,
    pub filed_at: DateTime<Utc>,
    /// When it lapses unless withdrawn or resolved first.
    pub lapses_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
}

impl From<ObjectionRow> for ObjectionView {
    fn from(o: ObjectionRow) -> Self {
        ObjectionView {
            objection_no: format!("NPYY-{:06}", o.id),
            id: o.id,
            registration_no: o.registration_no,
            party_id: o.party_id,
            standing: o.standing,
            reason: o.reason,
            status: o.status,
            filed_at: o.filed_at.and_utc(),
            lapses_at: o.lapses_at.and_utc(),
            closed_at: o.closed_at.map(|t| t.and_utc()),
            resolution: o.resolution,
        }
    }
}

/// The standing objections to a registration, oldest first (shown on its notice).
pub fn active_for(conn: &mut DbConn, registration_no: &str) -> QueryResult<Vec<ObjectionView>> {
    Ok(ob::table
        .filter(ob::registration_no.eq(registration_no))
        .filter(ob::status.eq("active"))
        .order(ob::id)
        .select(ObjectionRow::as_select())
        .load(conn)?
        .into_iter()
        .map(ObjectionView::from)
        .collect())
}

fn period_days(conn: &mut DbConn) -> ApiResult<i64> {
    let text: Option<String> = st::table
        .find("objections")
        .select(st::value)
        .first(conn)
        .optional()?;
    Ok(text
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["period_days"].as_i64())
        .filter(|d| *d > 0)
        .unwrap_or(DEFAULT_PERIOD_DAYS))
}

/// The encumbrance a registration number names.
enum Target {
    Pledge(super::PledgeRow),
    Mortgage(crate::forest::MortgageRow),
}

impl Target {
    fn find(conn: &mut DbConn, no: &str) -> ApiResult<Option<Target>> {
        if let Some(p) = super::find_by_registration(conn, no)? {
            return Ok(Some(Target::Pledge(p)));
        }
        Ok(crate::forest::mortgage_by_registration(conn, no)?.map(Target::Mortgage))
    }

    fn grantor(&self) -> i64 {
        match self {
            Target::Pledge(p) => p.pledgor_id,
            Target::Mortgage(m) => m.mortgagor_id,
        }
    }

    fn lender(&self) -> i64 {
        match self {
            Target::Pledge(p) => p.lender_id,
            Target::Mortgage(m) => m.lender_id,
        }
    }

    fn live(&self) -> bool {
        match self {
            Target::Pledge(p) => super::LIVE.contains(&p.status.as_str()),
            Target::Mortgage(m) => crate::forest::LIVE.contains(&m.status.as_str()),
        }
    }

    /// Appends the entry to the encumbrance's own history.
    fn entry(
        &self,
        conn: &mut DbConn,
        kind: &str,
        details: serde_json::Value,
        actor: &str,
        at: NaiveDateTime,
    ) -> ApiResult<()> {
        match self {
            Target::Pledge(p) => super::add_entry(conn, p, kind, details, actor, at),
            Target::Mortgage(m) => crate::forest::add_entry(conn, m, kind, details, actor, at),
        }
    }

    /// Another creditor: `party` is the lender of another registered encumbrance given by the
    /// same grantor (which covers a pledge of the same holding, lot and grantor) or ranking on
    /// the same parcel. A pledge of another holder's share of the same lot is no claim on this
    /// grantor, and a mortgage whose official registration is not yet confirmed does not rank,
    /// so neither gives standing.
    fn creditor(&self, conn: &mut DbConn, party: i64) -> ApiResult<bool> {
        use crate::schema::forest_mortgage_parcels as fmp;
        if party == self.lender() {
            return Ok(false);
        }
        let grantor = self.grantor();
        let pledges: i64 = pl::table
            .filter(pl::lender_id.eq(party))
            .filter(pl::status.eq_any(super::LIVE))
            .filter(pl::pledgor_id.eq(grantor))
            .count()
            .get_result(conn)?;
        if pledges > 0 {
            return Ok(true);
        }
        let parcels: Vec<i64> = match self {
            Target::Mortgage(m) => fmp::table
                .filter(fmp::mortgage_id.eq(m.id))
                .select(fmp::parcel_id)
                .load(conn)?,
            Target::Pledge(_) => Vec::new(),
        };
        let on_parcels = fmp::table
            .filter(fmp::parcel_id.eq_any(parcels))
            .select(fmp::mortgage_id);
        let mortgages: i64 = fm::table
            .filter(fm::lender_id.eq(party))
            .filter(fm::status.eq_any(crate::forest::RANKED))
            .filter(fm::mortgagor_id.eq(grantor).or(fm::id.eq_any(on_parcels)))
            .count()
            .get_result(conn)?;
        Ok(mortgages > 0)
    }
}

/// The longest reason an objection may state, in characters.
pub const REASON_MAX_CHARS: usize = 2000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "主债务已于 2026-10-31 清偿，质权人未办理注销登记"}))]
pub struct NewObjection {
    /// What is wrong with the registration (at most 2,000 characters).
    #[schema(max_length = 2000)]
    pub reason: String,
}

#[utoipa::path(post, path = "/v1/encumbrances/{registration_no}/objections", tag = "lender", operation_id = "fileObjection",
    summary = "A party with standing (the grantor, or another creditor of the same grantor or on the same asset) files an objection (异议登记) to a registration; it shows on the notice until withdrawn, resolved or lapsed",
    params(("registration_no" = String, Path, description = "Registration number"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = NewObjection, responses((status = 201, description = "Filed", body = ObjectionView),
        (status = 404, description = "No such registration, or the caller has no standing (neither the grantor nor another creditor of the same grantor or asset)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "encumbrance_not_live; objection_already_active: the caller's objection to this registration is still active", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "objection_reason_too_long: more than 2,000 characters", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/encumbrances/{registration_no}/objections")]
async fn file(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    no: web::Path<String>,
    body: ApiJson<NewObjection>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Enterprise, Role::Bank])?;
    let party = who
        .party_id
        .ok_or_else(|| ApiError::forbidden("this user belongs to no party"))?;
    let reason = body.value.reason.trim().to_string();
    if reason.is_empty() {
        return Err(ApiError::invalid_field("reason", "required"));
    }
    // The reason is shown on every notice, search answer and signed certificate of the
    // registration: a statement of the dispute, not a document store.
    if reason.chars().count() > REASON_MAX_CHARS {
        return Err(ApiError::unprocessable(
            "objection_reason_too_long",
            format!("reason: at most {REASON_MAX_CHARS} characters"),
        ));
    }
    let (no, actor, now) = (
        no.into_inner(),
        who.actor(),
        db::now_micros(state.clock.now()),
    );
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Optional,
        StatusCode::CREATED,
        move |conn| {
            let target = Target::find(conn, &no)?;
            let Some(target) = target else {
                return Err(ApiError::not_found("encumbrance"));
            };
            let standing = if party == target.grantor() {
                "grantor"
            } else if target.creditor(conn, party)? {
                "creditor"
            } else {
                // Standing is the grantor's or another creditor's; for anyone else there is no
                // registration to object to (the same answer as for a number that does not exist).
                return Err(ApiError::not_found("encumbrance"));
            };
            if !target.live() {
                return Err(ApiError::conflict(
                    "encumbrance_not_live",
                    "only a live registration can be objected to",
                ));
            }
            // One active objection per party per registration: a further filing adds nothing a
            // court or lender needs, only bulk on every notice. One past its period but not yet
            // swept lapses here first, so the party can file again.
            let mine: Vec<ObjectionRow> = ob::table
                .filter(ob::registration_no.eq(&no))
                .filter(ob::party_id.eq(party))
                .filter(ob::status.eq("active"))
                .select(ObjectionRow::as_select())
                .load(conn)?;
            for o in mine {
                if o.lapses_at > now {
                    return Err(ApiError::conflict(
                        "objection_already_active",
                        format!("this party's objection NPYY-{:06} to the registration is still active: withdraw it first", o.id),
                    ));
                }
                close(conn, o.id, "lapsed", None, "registry", now, |_| Ok(()))?;
            }
            let lapses_at = now + chrono::Duration::days(period_days(conn)?);
            diesel::insert_into(ob::table)
                .values((
                    ob::registration_no.eq(&no),
                    ob::party_id.eq(party),
                    ob::standing.eq(standing),
                    ob::reason.eq(&reason),
                    ob::status.eq("active"),
                    ob::filed_by.eq(&actor),
                    ob::filed_at.eq(now),
                    ob::lapses_at.eq(lapses_at),
                ))
                .execute(conn)?;
            let o: ObjectionRow = ob::table
                .filter(ob::registration_no.eq(&no))
                .order(ob::id.desc())
                .select(ObjectionRow::as_select())
                .first(conn)?;
            let v = ObjectionView::from(o);
            target.entry(
                conn,
                "objection",
                json!({"objection_no": v.objection_no, "party_id": party, "standing": standing, "reason": reason, "lapses_at": v.lapses_at}),
                &actor,
                now,
            )?;
            Outcome::of(&v)
        },
    )
    .await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"note": "质权人已办理变更登记"}))]
pub struct CloseObjection {
    /// Withdrawal: optional note. Resolution: how it was resolved (court judgment, arbitration
    /// award, the registration amended or discharged).
    pub note: Option<String>,
}

/// Ends an active objection as `status`, with an entry in the encumbrance's history.
fn close(
    conn: &mut DbConn,
    id: i64,
    status: &str,
    note: Option<String>,
    actor: &str,
    now: NaiveDateTime,
    allowed: impl FnOnce(&ObjectionRow) -> ApiResult<()>,
) -> ApiResult<Outcome> {
    let o: ObjectionRow = ob::table
        .find(id)
        .select(ObjectionRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::not_found("objection"))?;
    allowed(&o)?;
    let n = diesel::update(
        ob::table
            .filter(ob::id.eq(id))
            .filter(ob::status.eq("active")),
    )
    .set((
        ob::status.eq(status),
        ob::closed_by.eq(actor),
        ob::closed_at.eq(now),
        ob::resolution.eq(&note),
    ))
    .execute(conn)?;
    if n != 1 {
        return Err(ApiError::conflict(
            "objection_closed",
            format!("this objection is already {}", o.status),
        ));
    }
    if let Some(target) = Target::find(conn, &o.registration_no)? {
        target.entry(
            conn,
            &format!("objection_{status}"),
            json!({"objection_no": format!("NPYY-{:06}", o.id), "note": note}),
            actor,
            now,
        )?;
    }
    let o: ObjectionRow = ob::table
        .find(id)
        .select(ObjectionRow::as_select())
        .first(conn)?;
    Outcome::of(&ObjectionView::from(o))
}

#[utoipa::path(post, path = "/v1/objections/{id}/withdraw", tag = "lender", operation_id = "withdrawObjection",
    summary = "The objector withdraws its objection",
    params(("id" = i64, Path, description = "Objection id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = CloseObjection, responses((status = 200, description = "Withdrawn", body = ObjectionView)))]
#[post("/v1/objections/{id}/withdraw")]
async fn withdraw(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<CloseObjection>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Enterprise, Role::Bank])?;
    let (id, note, actor, now) = (
        id.into_inner(),
        body.value.note.clone(),
        who.actor(),
        db::now_micros(state.clock.now()),
    );
    let party = who.party_id;
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Optional,
        StatusCode::OK,
        move |conn| {
            close(conn, id, "withdrawn", note, &actor, now, |o| {
                if party == Some(o.party_id) {
                    Ok(())
                } else {
                    Err(ApiError::not_found("objection"))
                }
            })
        },
    )
    .await
}

#[utoipa::path(post, path = "/v1/objections/{id}/resolve", tag = "lender", operation_id = "resolveObjection",
    summary = "An operator records how an objection was resolved (judgment, award, the registration amended or discharged)",
    params(("id" = i64, Path, description = "Objection id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = CloseObjection, responses((status = 200, description = "Resolved", body = ObjectionView)))]
#[post("/v1/objections/{id}/resolve")]
async fn resolve(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<CloseObjection>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let note = body.value.note.clone().map(|n| n.trim().to_string());
    if note.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::invalid_field("note", "say how it was resolved"));
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
        KeyPolicy::Optional,
        StatusCode::OK,
        move |conn| close(conn, id, "resolved", note, &actor, now, |_| Ok(())),
    )
    .await
}

/// Lapses the objections whose period has passed (run by the collateral sweep): each gets an
/// `objection_lapsed` entry in its encumbrance's history. Returns their ids.
pub fn lapse_due(conn: &mut DbConn, now: NaiveDateTime) -> ApiResult<Vec<i64>> {
    let due: Vec<i64> = ob::table
        .filter(ob::status.eq("active"))
        .filter(ob::lapses_at.le(now))
        .order(ob::id)
        .select(ob::id)
        .load(conn)?;
    let mut out = Vec::new();
    for id in due {
        let done = db::write_tx(conn, |conn| -> ApiResult<bool> {
            match close(conn, id, "lapsed", None, "registry", now, |_| Ok(())) {
                Ok(_) => Ok(true),
                Err(e) if e.code == "objection_closed" => Ok(false),
                Err(e) => Err(e),
            }
        })?;
        if done {
            out.push(id);
        }
    }
    Ok(out)
}
