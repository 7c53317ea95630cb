//! Retirement (注销/履约清缴) by the holder, and the record shared with cancellation (R5).

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::issuance::parse_quantity;
use super::ledger::{self, Movement, Side};
use super::serials::Range;
use super::store::{self, LotRow};
use super::Bucket;
use crate::audit;
use crate::auth::{Command, Principal, Role};
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::Dec;
use crate::kernel::idempotency::{KeyPolicy, Outcome};
use crate::kernel::pagination::{Page, PageParams};
use crate::kernel::state::AppState;
use crate::schema::retirements as rt;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(retire).service(list);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RetirementView {
    pub id: i64,
    pub lot_id: i64,
    pub party_id: i64,
    /// `retirement` (by the holder) or `cancellation` (by the registry).
    pub kind: String,
    pub quantity: Dec,
    pub reason: String,
    pub beneficiary: Option<String>,
    pub compliance_year: Option<i32>,
    /// Serial ranges retired, for carbon-sink lots ("first-last,…").
    pub serials: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

type Row = (
    i64,
    i64,
    i64,
    String,
    i64,
    String,
    Option<String>,
    Option<i32>,
    Option<String>,
    String,
    NaiveDateTime,
);

fn view(r: Row) -> RetirementView {
    RetirementView {
        id: r.0,
        lot_id: r.1,
        party_id: r.2,
        kind: r.3,
        quantity: Dec::qty(r.4),
        reason: r.5,
        beneficiary: r.6,
        compliance_year: r.7,
        serials: r.8,
        actor: r.9,
        at: r.10.and_utc(),
    }
}

fn columns() -> (
    rt::id,
    rt::lot_id,
    rt::party_id,
    rt::kind,
    rt::quantity,
    rt::reason,
    rt::beneficiary,
    rt::compliance_year,
    rt::serials,
    rt::actor,
    rt::at,
) {
    (
        rt::id,
        rt::lot_id,
        rt::party_id,
        rt::kind,
        rt::quantity,
        rt::reason,
        rt::beneficiary,
        rt::compliance_year,
        rt::serials,
        rt::actor,
        rt::at,
    )
}

/// Writes the retirement or cancellation record and its audit event; returns its view as JSON.
#[allow(clippy::too_many_arguments)]
pub fn record(
    conn: &mut DbConn,
    lot: &LotRow,
    party: i64,
    kind: &str,
    quantity: i64,
    reason: &str,
    beneficiary: Option<&str>,
    compliance_year: Option<i32>,
    serials: &[Range],
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<serde_json::Value> {
    let serial_text = super::serials::to_text(serials);
    diesel::insert_into(rt::table)
        .values((
            rt::lot_id.eq(lot.id),
            rt::party_id.eq(party),
            rt::kind.eq(kind),
            rt::quantity.eq(quantity),
            rt::reason.eq(reason),
            rt::beneficiary.eq(beneficiary),
            rt::compliance_year.eq(compliance_year),
            rt::serials.eq(&serial_text),
            rt::actor.eq(actor),
            rt::at.eq(at),
        ))
        .execute(conn)?;
    let row: Row = rt::table
        .filter(rt::lot_id.eq(lot.id))
        .order(rt::id.desc())
        .select(columns())
        .first(conn)?;
    audit::record(
        conn,
        audit::Event {
            chain: format!("lot:{}", lot.id),
            actor,
            action: &format!("lot.{kind}"),
            object_type: "retirement",
            object_id: row.0.to_string(),
            payload: json!({"party_id": party, "quantity": quantity, "reason": reason,
                "beneficiary": beneficiary, "compliance_year": compliance_year, "serials": serial_text}),
            at,
        },
    )?;
    serde_json::to_value(view(row)).map_err(|e| ApiError::internal(e.to_string()))
}

/// Retire quantity from circulation (R5: with a reason; carbon retirements name the beneficiary).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lot_id": 4, "quantity": "1000", "reason": "2025年度履约清缴", "beneficiary": "南平市某纸业有限公司", "compliance_year": 2025}))]
pub struct Retire {
    pub lot_id: i64,
    pub quantity: Dec,
    pub reason: String,
    /// Required for carbon allowances and carbon-sink credits.
    pub beneficiary: Option<String>,
    /// Required for carbon allowances (the year being surrendered for).
    pub compliance_year: Option<i32>,
    /// Carbon-sink lots: exactly which serial ranges to retire, as [first, last] pairs.
    pub serials: Option<Vec<(i64, i64)>>,
    /// Operators retiring on a holder's behalf name the holder; holders omit it. An operator's
    /// retirement is a proposal that a second operator approves.
    pub party_id: Option<i64>,
}

#[utoipa::path(post, path = "/v1/retirements", tag = "rights", operation_id = "retire",
    summary = "Retire quantity (注销/履约清缴)",
    description = "A holder retires its own quantity at once (201). An operator retiring on a holder's behalf (naming `party_id`) proposes it (202): a second operator (another person) approves through `POST /v1/proposals/{id}/approve`, and the quantity is retired then.",
    params(("Idempotency-Key" = String, Header, description = "Required: this moves quantity")),
    request_body = Retire,
    responses((status = 201, description = "Retired", body = RetirementView),
        (status = 202, description = "Proposed (an operator on a holder's behalf)", body = crate::proposals::ProposalView),
        (status = 409, description = "insufficient_quantity, lot_expired", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/retirements")]
async fn retire(cmd: Command<Retire>) -> ApiResult<HttpResponse> {
    let Command { body, cx } = cmd;
    let who = &cx.who;
    who.require(&[Role::Enterprise, Role::Operator])?;
    let mut r = body;
    let party = match (who.role, r.party_id, who.party_id) {
        (Role::Operator, Some(p), _) => p,
        (Role::Operator, None, _) => {
            return Err(ApiError::invalid_field("party_id", "name the holder"))
        }
        (_, Some(p), Some(own)) if p != own => return Err(ApiError::not_found("holding")),
        (_, _, Some(own)) => own,
        (_, _, None) => return Err(ApiError::forbidden("this user belongs to no party")),
    };
    r.party_id = Some(party);
    let (actor, now) = (who.actor(), cx.now);
    let today = cx.today;
    let on_behalf = who.role == Role::Operator;
    let w = who.clone();
    cx.run(
        KeyPolicy::Required,
        if on_behalf {
            StatusCode::ACCEPTED
        } else {
            StatusCode::CREATED
        },
        move |conn| {
            if !w.sees_party(party) {
                return Err(ApiError::not_found("holding"));
            }
            if on_behalf {
                carry_out(conn, &r, &actor, now, today, false)?;
                let row = crate::proposals::propose(
                    conn,
                    crate::proposals::ProposalKind::Retirement,
                    &r,
                    None,
                    &w,
                    now,
                )?;
                return Outcome::of(&crate::proposals::ProposalView::from(row));
            }
            Ok(Outcome {
                body: carry_out(conn, &r, &actor, now, today, true)?,
                secrets: None,
            })
        },
    )
    .await
}

/// Retires what an approved proposal (an operator on a holder's behalf) asks for.
pub fn execute_on_behalf(
    conn: &mut DbConn,
    r: &Retire,
    actor: &str,
    now: NaiveDateTime,
    today: chrono::NaiveDate,
) -> ApiResult<serde_json::Value> {
    carry_out(conn, r, actor, now, today, true)
}

/// Checks a retirement of `r.party_id`'s quantity (R5, R6) and, when `move_it`, retires it.
fn carry_out(
    conn: &mut DbConn,
    r: &Retire,
    actor: &str,
    now: NaiveDateTime,
    today: chrono::NaiveDate,
    move_it: bool,
) -> ApiResult<serde_json::Value> {
    let party = r
        .party_id
        .ok_or_else(|| ApiError::invalid_field("party_id", "name the holder"))?;
    // Checked now, not only when the quantity moves: nobody retires for an ended holder.
    crate::parties::store::require_active(conn, party)?;
    let reason = r.reason.trim().to_string();
    if reason.is_empty() {
        return Err(ApiError::invalid_field(
            "reason",
            "a retirement states its reason (R5)",
        ));
    }
    let beneficiary = r
        .beneficiary
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(str::to_string);
    let lot = store::lock_lot(conn, r.lot_id)?;
    if store::holding(conn, party, lot.id)?.is_none() {
        return Err(ApiError::not_found("holding"));
    }
    let t = store::right_type(conn, &lot.right_type)?
        .ok_or_else(|| ApiError::internal("right type vanished"))?;
    let quantity = parse_quantity("quantity", r.quantity, &t)?;
    let carbon = t.code == "CA" || t.code == "CS";
    if carbon && beneficiary.is_none() {
        return Err(ApiError::invalid_field(
            "beneficiary",
            "a carbon retirement names its beneficiary (R5)",
        ));
    }
    if t.code == "CA" && r.compliance_year.is_none() {
        return Err(ApiError::invalid_field(
            "compliance_year",
            "an allowance surrender names its compliance year",
        ));
    }
    if r.serials.is_some() && !t.serialized {
        return Err(ApiError::invalid_field(
            "serials",
            "this right type has no serial numbers",
        ));
    }
    lot.require_live(today)?;
    if !move_it {
        let held = store::holding(conn, party, lot.id)?.map_or(0, |h| h.available);
        if quantity > held {
            return Err(ApiError::conflict(
                "insufficient_quantity",
                "the holder does not hold this much available quantity",
            ));
        }
        return Ok(serde_json::Value::Null);
    }
    let moved = ledger::move_quantity(
        conn,
        Movement {
            lot: &lot,
            from: Side::holder(party, Bucket::Available),
            to: Side::lot(Bucket::Retired),
            quantity,
            cause: "retirement",
            reference: format!("party:{party}"),
            actor,
            at: now,
            acquisition: None,
            named_serials: r.serials.as_deref(),
        },
    )?;
    record(
        conn,
        &lot,
        party,
        "retirement",
        quantity,
        &reason,
        beneficiary.as_deref(),
        r.compliance_year,
        &moved,
        actor,
        now,
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RetirementQuery {
    pub lot_id: Option<i64>,
    pub party_id: Option<i64>,
}

#[utoipa::path(get, path = "/v1/retirements", tag = "rights", operation_id = "listRetirements",
    summary = "Retirements and cancellations (own, or all for operators and regulators)",
    params(RetirementQuery, PageParams), responses((status = 200, description = "A page", body = Page<RetirementView>)))]
#[get("/v1/retirements")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<RetirementQuery>,
    page: PageParams,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let (after, limit) = page.resolve()?;
    let only = if who.role.sees_all() {
        q.party_id
    } else {
        Some(who.party_id.unwrap_or(-1))
    };
    let rows = state
        .db(move |conn| {
            let mut query = rt::table
                .filter(rt::id.gt(after))
                .order(rt::id)
                .limit(limit + 1)
                .select(columns())
                .into_boxed();
            if let Some(p) = only {
                query = query.filter(rt::party_id.eq(p));
            }
            if let Some(l) = q.lot_id {
                query = query.filter(rt::lot_id.eq(l));
            }
            Ok(query.load::<Row>(conn)?)
        })
        .await?;
    Ok(Page::respond(
        rows.into_iter().map(view).collect(),
        limit,
        |v| v.id,
    ))
}
