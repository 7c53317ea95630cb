//! HTTP: `/v1/financing-requests` — post, list, read, withdraw, take (抢单), decline, the feed
//! for the 金服云 platform, the response-window setting and the sweep.

use actix_web::http::StatusCode;
use actix_web::{get, post, put, web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::rules::{self, GreenTag, RequestStatus};
use super::store::{self, RequestRow};
use crate::auth::{Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::{money_to_fen, Dec};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::pagination::{Page, PageParams};
use crate::kernel::state::AppState;
use crate::rights::issuance::parse_quantity;
use crate::rights::store as rights;
use crate::schema::{financing_request_events as ev, financing_requests as fr, settings as st};

pub fn configure(cfg: &mut web::ServiceConfig) {
    // The fixed paths first: `{id}` would otherwise match them.
    cfg.service(feed)
        .service(get_settings)
        .service(put_settings)
        .service(sweep)
        .service(post_request)
        .service(list)
        .service(get_one)
        .service(withdraw)
        .service(take)
        .service(decline);
}

/// The collateral offered: a quantity of one of the applicant's holdings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferedCollateral {
    pub lot_id: i64,
    pub quantity: Dec,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount": "2000000.00", "term_months": 24, "purpose": "扩建武夷岩茶加工厂的清洁能源烘焙线",
    "green_tag": "modern_green_agriculture", "collateral": {"lot_id": 1, "quantity": "100"}}))]
pub struct PostFinancingRequest {
    /// Yuan asked for, at most 2 decimal places.
    pub amount: Dec,
    /// The loan's term in whole months (1–360).
    pub term_months: i32,
    pub purpose: String,
    pub green_tag: GreenTag,
    pub collateral: OfferedCollateral,
}

/// The collateral as banks see it: what it is, what it is worth and what already weighs on the
/// holding it comes from.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfferedCollateralView {
    pub lot_id: i64,
    pub right_type: String,
    pub sub_kind: Option<String>,
    pub region_code: String,
    pub valid_to: NaiveDate,
    pub quantity: Dec,
    /// The value when the request was posted (R3: market price × quantity × whole years left
    /// for emission rights); absent when the right has no market price (the bank appraises).
    pub value: Option<Dec>,
    pub valuation_method: String,
    pub valued_on: NaiveDate,
    /// The rest of the holding: quantity pledged to lenders and under a judicial freeze.
    pub holding_pledged: Dec,
    pub holding_frozen: Dec,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FinancingRequestEvent {
    pub id: i64,
    pub event: String,
    pub bank_id: Option<i64>,
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// A financing request. A bank that has not taken it sees neither who the applicant is nor its
/// history: only the kind and county of the applicant, the terms and the collateral.
#[derive(Debug, Serialize, ToSchema)]
pub struct FinancingRequestView {
    pub id: i64,
    /// Shown to the applicant, to the bank that took the request, and to operators and regulators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applicant_id: Option<i64>,
    /// `enterprise` or `individual`.
    pub applicant_kind: String,
    pub applicant_region_code: String,
    pub amount: Dec,
    pub term_months: i32,
    pub purpose: String,
    pub green_tag: GreenTag,
    pub collateral: OfferedCollateralView,
    pub status: RequestStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bank_id: Option<i64>,
    /// The pledge application the take opened to the bank (accept it at `/v1/pledges/{id}/accept`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pledge_id: Option<i64>,
    pub taken_at: Option<DateTime<Utc>>,
    /// The bank must accept or decline by then, or the request reopens.
    pub response_due: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every step, for those who see the applicant (in `GET /v1/financing-requests/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<FinancingRequestEvent>>,
}

/// Whether `who` sees the request at all: its applicant, operators and regulators; banks see open
/// requests and those they took.
fn sees(who: &Principal, r: &RequestRow) -> bool {
    match who.role {
        Role::Operator | Role::Regulator => true,
        Role::Enterprise => who.party_id == Some(r.applicant_id),
        Role::Bank => {
            r.status() == RequestStatus::Open || who.party_id.is_some_and(|b| r.bank_id == Some(b))
        }
        Role::UserAdmin => false,
    }
}

/// Whether `who` sees who the applicant is and the history.
fn sees_applicant(who: &Principal, r: &RequestRow) -> bool {
    who.role.sees_all()
        || who.party_id == Some(r.applicant_id)
        || (who.role == Role::Bank && who.party_id.is_some() && r.bank_id == who.party_id)
}

fn view(
    conn: &mut DbConn,
    who: &Principal,
    r: RequestRow,
    with_events: bool,
) -> ApiResult<FinancingRequestView> {
    let lot = rights::lot(conn, r.lot_id)?.ok_or_else(|| ApiError::not_found("lot"))?;
    let party = crate::parties::store::find(conn, r.applicant_id)?
        .ok_or_else(|| ApiError::not_found("party"))?;
    let holding = rights::holding(conn, r.applicant_id, r.lot_id)?;
    let full = sees_applicant(who, &r);
    let events = if with_events && full {
        Some(
            store::events(conn, r.id)?
                .into_iter()
                .map(|e| FinancingRequestEvent {
                    id: e.id,
                    event: e.event,
                    bank_id: e.bank_id,
                    detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null),
                    at: e.at.and_utc(),
                })
                .collect(),
        )
    } else {
        None
    };
    Ok(FinancingRequestView {
        id: r.id,
        applicant_id: full.then_some(r.applicant_id),
        applicant_kind: party.kind,
        applicant_region_code: party.region_code,
        amount: Dec::money(r.amount),
        term_months: r.term_months,
        purpose: r.purpose.clone(),
        green_tag: GreenTag::parse(&r.green_tag).unwrap_or(GreenTag::None),
        collateral: OfferedCollateralView {
            lot_id: lot.id,
            right_type: lot.right_type,
            sub_kind: lot.sub_kind,
            region_code: lot.region_code,
            valid_to: lot.valid_to,
            quantity: Dec::qty(r.quantity),
            value: r.collateral_value.map(Dec::money),
            valuation_method: r.valuation_method.clone(),
            valued_on: r.valued_on,
            holding_pledged: Dec::qty(holding.as_ref().map_or(0, |h| h.pledged)),
            holding_frozen: Dec::qty(holding.as_ref().map_or(0, |h| h.frozen)),
        },
        status: r.status(),
        bank_id: if full { r.bank_id } else { None },
        pledge_id: if full { r.pledge_id } else { None },
        taken_at: r.taken_at.map(|t| t.and_utc()),
        response_due: r.response_due.map(|t| t.and_utc()),
        created_at: r.created_at.and_utc(),
        updated_at: r.updated_at.and_utc(),
        events,
    })
}

fn outcome(conn: &mut DbConn, who: &Principal, id: i64) -> ApiResult<Outcome> {
    let r = store::find(conn, id)?.ok_or_else(|| ApiError::not_found("financing request"))?;
    Outcome::of(&view(conn, who, r, true)?)
}

/// The request if `who` may see it; 404 otherwise (no existence leak).
fn visible(conn: &mut DbConn, who: &Principal, id: i64) -> ApiResult<RequestRow> {
    store::find(conn, id)?
        .filter(|r| sees(who, r))
        .ok_or_else(|| ApiError::not_found("financing request"))
}

fn status_conflict(r: &RequestRow) -> ApiError {
    ApiError::conflict(
        "request_status",
        format!("the financing request is {}", r.status),
    )
}

#[utoipa::path(post, path = "/v1/financing-requests", tag = "financing", operation_id = "postFinancingRequest",
    summary = "An enterprise or individual posts a financing request (融资需求), offering part of a holding as collateral",
    description = "The collateral is valued (R3) and reserved: it moves from the holding's `available` to its `reserved` bucket, so it can be neither offered again nor listed, transferred or pledged elsewhere until the request is withdrawn or funded. Emission rights must be pledgeable (R11: obtained for payment), the applicant must carry no compliance flag and the lot must be live.",
    params(("Idempotency-Key" = String, Header, description = "Required: this moves quantity")),
    request_body = PostFinancingRequest,
    responses((status = 201, description = "Posted and open to banks", body = FinancingRequestView),
        (status = 409, description = "insufficient_quantity, lot_expired, pledgor_flagged, party_inactive", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed, right_not_eligible", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/financing-requests")]
async fn post_request(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    body: ApiJson<PostFinancingRequest>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Enterprise])?;
    let applicant = who
        .party_id
        .ok_or_else(|| ApiError::forbidden("this user belongs to no party"))?;
    let r = body.value;
    let amount = money_to_fen(r.amount.0, false)
        .map_err(|e| ApiError::invalid_field("amount", e.to_string()))?;
    rules::check_terms(r.term_months, &r.purpose)
        .map_err(|(field, msg)| ApiError::invalid_field(field, msg))?;
    let purpose = r.purpose.trim().to_string();
    let (actor, now, today) = (
        who.actor(),
        db::now_micros(state.clock.now()),
        state.clock.today(),
    );
    let w = who.clone();
    idempotency::run(&state, &who, idem, &body.body_hash, KeyPolicy::Required, StatusCode::CREATED, move |conn| {
        let lot = rights::lock_lot(conn, r.collateral.lot_id)?;
        let h = rights::holding(conn, applicant, lot.id)?.ok_or_else(|| ApiError::not_found("holding"))?;
        let t = rights::right_type(conn, &lot.right_type)?
            .ok_or_else(|| ApiError::internal("right type vanished"))?;
        let quantity = parse_quantity("collateral.quantity", r.collateral.quantity, &t)?;
        if quantity <= 0 {
            return Err(ApiError::invalid_field("collateral.quantity", "must be greater than zero"));
        }
        crate::parties::store::require_active(conn, applicant)?;
        lot.require_live(today)?;
        if h.available < quantity {
            return Err(ApiError::conflict(
                "insufficient_quantity",
                "the available quantity is less than the collateral offered",
            ));
        }
        // R11, as the pledge will be checked: a flagged applicant cannot pledge, and only emission
        // rights obtained for payment (and not already pledged or reserved) can be.
        if let Some(f) = crate::parties::store::active_flags(conn, applicant)?.first() {
            return Err(ApiError::conflict(
                "pledgor_flagged",
                format!("the applicant carries a compliance flag: {}", f.flag),
            ));
        }
        if lot.right_type == "EM" {
            let paid = rights::acquired(conn, h.id)?.for_payment() - h.pledged - h.reserved;
            if quantity > paid {
                return Err(ApiError::unprocessable(
                    "right_not_eligible",
                    "only emission rights obtained for payment (paid-use allocation or market purchase) can be offered as collateral (R11)",
                ));
            }
        }
        let valued = crate::market::value_of(conn, &lot, quantity, today)?;
        let (value, method) = match valued {
            Some(v) => (Some(v.value), v.method),
            None => (None, "appraisal_required".to_string()),
        };
        diesel::insert_into(fr::table)
            .values((
                fr::applicant_id.eq(applicant),
                fr::amount.eq(amount),
                fr::term_months.eq(r.term_months),
                fr::purpose.eq(&purpose),
                fr::green_tag.eq(r.green_tag.as_str()),
                fr::lot_id.eq(lot.id),
                fr::quantity.eq(quantity),
                fr::collateral_value.eq(value),
                fr::valuation_method.eq(&method),
                fr::valued_on.eq(today),
                fr::status.eq(RequestStatus::Open.as_str()),
                fr::created_at.eq(now),
                fr::updated_at.eq(now),
            ))
            .execute(conn)?;
        let row: RequestRow = fr::table
            .filter(fr::applicant_id.eq(applicant))
            .order(fr::id.desc())
            .select(RequestRow::as_select())
            .first(conn)?;
        store::move_reservation(conn, &row, &lot, true, &actor, now)?;
        store::record(
            conn,
            &row,
            "posted",
            None,
            json!({"amount": Dec::money(amount), "term_months": r.term_months, "green_tag": r.green_tag,
                "lot_id": lot.id, "quantity": Dec::qty(quantity), "collateral_value": value.map(Dec::money),
                "valuation_method": method}),
            &actor,
            now,
        )?;
        outcome(conn, &w, row.id)
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// open, taken, funded or withdrawn.
    pub status: Option<String>,
    pub green_tag: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/financing-requests", tag = "financing", operation_id = "listFinancingRequests",
    summary = "Financing requests: an applicant's own; for banks the open ones and those they took; all for operators and regulators",
    params(ListQuery), responses((status = 200, description = "A page", body = Page<FinancingRequestView>)))]
#[get("/v1/financing-requests")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    who.require(&[
        Role::Enterprise,
        Role::Bank,
        Role::Operator,
        Role::Regulator,
    ])?;
    let q = q.into_inner();
    let (after, limit) = PageParams {
        cursor: q.cursor,
        limit: q.limit,
    }
    .resolve()?;
    if let Some(s) = &q.status {
        RequestStatus::parse(s)
            .ok_or_else(|| ApiError::invalid_field("status", "open, taken, funded or withdrawn"))?;
    }
    if let Some(t) = &q.green_tag {
        GreenTag::parse(t)
            .ok_or_else(|| ApiError::invalid_field("green_tag", "not a green tag"))?;
    }
    let page = state
        .db(move |conn| {
            let mut query = fr::table
                .filter(fr::id.gt(after))
                .order(fr::id)
                .limit(limit + 1)
                .select(RequestRow::as_select())
                .into_boxed();
            let me = who.party_id.unwrap_or(-1);
            match who.role {
                Role::Enterprise => query = query.filter(fr::applicant_id.eq(me)),
                Role::Bank => {
                    query = query.filter(
                        fr::status
                            .eq(RequestStatus::Open.as_str())
                            .or(fr::bank_id.eq(me)),
                    )
                }
                _ => {}
            }
            if let Some(s) = q.status {
                query = query.filter(fr::status.eq(s));
            }
            if let Some(t) = q.green_tag {
                query = query.filter(fr::green_tag.eq(t));
            }
            let rows: Vec<RequestRow> = query.load(conn)?;
            let views = rows
                .into_iter()
                .map(|r| view(conn, &who, r, false))
                .collect::<ApiResult<Vec<_>>>()?;
            Ok(Page::from_rows(views, limit, |v| v.id))
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(get, path = "/v1/financing-requests/{id}", tag = "financing", operation_id = "getFinancingRequest",
    summary = "A financing request; its applicant, the bank that took it, operators and regulators also see every step",
    params(("id" = i64, Path, description = "Financing request id")),
    responses((status = 200, description = "The request", body = FinancingRequestView)))]
#[get("/v1/financing-requests/{id}")]
async fn get_one(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let v = state
        .db(move |conn| {
            let r = visible(conn, &who, id)?;
            view(conn, &who, r, true)
        })
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "已获其他融资"}))]
pub struct FinancingReason {
    pub reason: Option<String>,
}

fn reason_text(r: Option<String>) -> ApiResult<Option<String>> {
    match r.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > 500 || s.chars().any(char::is_control) => Err(
            ApiError::invalid_field("reason", "at most 500 characters, no control characters"),
        ),
        other => Ok(other),
    }
}

#[utoipa::path(post, path = "/v1/financing-requests/{id}/withdraw", tag = "financing", operation_id = "withdrawFinancingRequest",
    summary = "The applicant withdraws its request (open or taken); the reserved collateral is released",
    params(("id" = i64, Path, description = "Financing request id"), ("Idempotency-Key" = String, Header, description = "Required: this moves quantity")),
    request_body = FinancingReason,
    responses((status = 200, description = "Withdrawn", body = FinancingRequestView),
        (status = 409, description = "request_status: already funded or withdrawn", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/financing-requests/{id}/withdraw")]
async fn withdraw(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<FinancingReason>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Enterprise])?;
    let reason = reason_text(body.value.reason)?;
    let (id, actor, now) = (
        id.into_inner(),
        who.actor(),
        db::now_micros(state.clock.now()),
    );
    let w = who.clone();
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Required,
        StatusCode::OK,
        move |conn| {
            let lot_id = visible(conn, &w, id)?.lot_id;
            let lot = rights::lock_lot(conn, lot_id)?;
            let r = visible(conn, &w, id)?;
            if !r.status().withdrawable() {
                return Err(status_conflict(&r));
            }
            let n = diesel::update(fr::table.filter(fr::id.eq(id)).filter(
                fr::status.eq_any([RequestStatus::Open.as_str(), RequestStatus::Taken.as_str()]),
            ))
            .set((
                fr::status.eq(RequestStatus::Withdrawn.as_str()),
                fr::updated_at.eq(now),
            ))
            .execute(conn)?;
            if n != 1 {
                return Err(status_conflict(&r));
            }
            store::close_pledge(conn, &r, "financing request withdrawn", &actor, now)?;
            store::move_reservation(conn, &r, &lot, false, &actor, now)?;
            store::record(
                conn,
                &r,
                "withdrawn",
                r.bank_id,
                json!({"reason": reason}),
                &actor,
                now,
            )?;
            outcome(conn, &w, id)
        },
    )
    .await
}

#[utoipa::path(post, path = "/v1/financing-requests/{id}/take", tag = "financing", operation_id = "takeFinancingRequest",
    summary = "A bank takes an open request (抢单): exactly one bank wins",
    description = "A conditional update from `open` to `taken`: of banks racing, in any number of server processes, one wins and the others get 409 `request_taken`. Taking opens the pledge application (`pledge_id`) to the bank on the request's terms; the bank accepts it with `POST /v1/pledges/{pledge_id}/accept` (which registers the pledge and funds the request) or declines, by `response_due` (the configured number of working days), after which the request reopens.",
    params(("id" = i64, Path, description = "Financing request id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 200, description = "Taken: the pledge application is open to this bank", body = FinancingRequestView),
        (status = 409, description = "request_taken", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/financing-requests/{id}/take")]
async fn take(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank])?;
    let bank = who
        .party_id
        .ok_or_else(|| ApiError::forbidden("this user belongs to no party"))?;
    let (id, actor, now) = (
        id.into_inner(),
        who.actor(),
        db::now_micros(state.clock.now()),
    );
    let w = who.clone();
    idempotency::run(&state, &who, idem, "", KeyPolicy::Optional, StatusCode::OK, move |conn| {
        let r = store::find(conn, id)?
            .filter(|r| r.status() != RequestStatus::Withdrawn || w.party_id == r.bank_id)
            .ok_or_else(|| ApiError::not_found("financing request"))?;
        if r.status() != RequestStatus::Open {
            return Err(store::request_taken(&r));
        }
        crate::parties::store::require_active(conn, bank)?;
        let days = load_settings(conn)?.response_working_days;
        let due = rules::response_due(now, days);
        if !store::claim(conn, id, bank, now, due)? {
            let r = store::find(conn, id)?.ok_or_else(|| ApiError::not_found("financing request"))?;
            return Err(store::request_taken(&r));
        }
        let r = store::find(conn, id)?.ok_or_else(|| ApiError::not_found("financing request"))?;
        let pledge = store::open_pledge(conn, &r, bank, &actor, now)?;
        store::record(
            conn,
            &r,
            "taken",
            Some(bank),
            json!({"pledge_id": pledge, "response_due": due.and_utc(), "response_working_days": days}),
            &actor,
            now,
        )?;
        outcome(conn, &w, id)
    })
    .await
}

#[utoipa::path(post, path = "/v1/financing-requests/{id}/decline", tag = "financing", operation_id = "declineFinancingRequest",
    summary = "The bank that took a request declines it; the request reopens to all banks",
    params(("id" = i64, Path, description = "Financing request id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = FinancingReason,
    responses((status = 200, description = "Declined and open again", body = FinancingRequestView),
        (status = 409, description = "request_status: not taken by this bank", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/financing-requests/{id}/decline")]
async fn decline(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<FinancingReason>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank])?;
    let reason = reason_text(body.value.reason)?;
    let (id, actor, now) = (
        id.into_inner(),
        who.actor(),
        db::now_micros(state.clock.now()),
    );
    let w = who.clone();
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Optional,
        StatusCode::OK,
        move |conn| {
            // Only the bank that took the request may decline it; to any other it is not there.
            let r = visible(conn, &w, id)?;
            if r.bank_id.is_none() || r.bank_id != w.party_id {
                return Err(ApiError::not_found("financing request"));
            }
            if r.status() != RequestStatus::Taken {
                return Err(status_conflict(&r));
            }
            if !store::reopen(conn, &r, "declined", json!({"reason": reason}), &actor, now)? {
                return Err(status_conflict(&r));
            }
            outcome(conn, &w, id)
        },
    )
    .await
}

/// The response window, kept in the database so that every server process applies the same.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"response_working_days": 3}))]
pub struct LendingSettings {
    /// Working days (Monday to Friday) a bank that took a request has to accept or decline.
    pub response_working_days: i32,
}

impl Default for LendingSettings {
    fn default() -> Self {
        LendingSettings {
            response_working_days: rules::DEFAULT_RESPONSE_WORKING_DAYS,
        }
    }
}

const SETTINGS: &str = "lending";

pub fn load_settings(conn: &mut DbConn) -> ApiResult<LendingSettings> {
    let stored: Option<String> = st::table
        .find(SETTINGS)
        .select(st::value)
        .first(conn)
        .optional()?;
    Ok(stored
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

#[utoipa::path(get, path = "/v1/financing-requests/settings", tag = "financing", operation_id = "getLendingSettings",
    summary = "The banks' response window in force",
    responses((status = 200, description = "The settings", body = LendingSettings)))]
#[get("/v1/financing-requests/settings")]
async fn get_settings(state: web::Data<AppState>, _who: Principal) -> ApiResult<HttpResponse> {
    let s = state.db(load_settings).await?;
    Ok(HttpResponse::Ok().json(s))
}

#[utoipa::path(put, path = "/v1/financing-requests/settings", tag = "financing", operation_id = "putLendingSettings",
    summary = "An operator sets the banks' response window (working days); it applies to requests taken from then on",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = LendingSettings, responses((status = 200, description = "In force", body = LendingSettings)))]
#[put("/v1/financing-requests/settings")]
async fn put_settings(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    body: ApiJson<LendingSettings>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let s = body.value;
    if !rules::RESPONSE_WORKING_DAYS_RANGE.contains(&s.response_working_days) {
        return Err(ApiError::invalid_field(
            "response_working_days",
            format!(
                "between {} and {}",
                rules::RESPONSE_WORKING_DAYS_RANGE.start(),
                rules::RESPONSE_WORKING_DAYS_RANGE.end()
            ),
        ));
    }
    let (actor, now) = (who.actor(), db::now_micros(state.clock.now()));
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Optional,
        StatusCode::OK,
        move |conn| {
            let text = serde_json::to_string(&s).map_err(|e| ApiError::internal(e.to_string()))?;
            crate::insert_or_ignore!(
                conn,
                st::table,
                (st::name.eq(SETTINGS), st::value.eq(&text))
            )?;
            diesel::update(st::table.find(SETTINGS))
                .set(st::value.eq(&text))
                .execute(conn)?;
            crate::audit::record(
                conn,
                crate::audit::Event {
                    chain: "lending:settings".into(),
                    actor: &actor,
                    action: "financing_request.settings_changed",
                    object_type: "settings",
                    object_id: SETTINGS.into(),
                    payload: json!({"settings": s}),
                    at: now,
                },
            )?;
            Outcome::of(&s)
        },
    )
    .await
}

#[utoipa::path(post, path = "/v1/financing-requests/sweep", tag = "financing", operation_id = "sweepFinancingRequests",
    summary = "Reopen taken requests whose response window ended (runs periodically too)",
    responses((status = 200, description = "What changed", body = super::FinancingSweep)))]
#[post("/v1/financing-requests/sweep")]
async fn sweep(state: web::Data<AppState>, who: Principal) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let (today, now) = (state.clock.today(), db::now_micros(state.clock.now()));
    let r = state
        .db(move |conn| super::run_sweep(conn, today, now))
        .await?;
    Ok(HttpResponse::Ok().json(r))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// The `next_since` of the previous answer (an event number), or an RFC 3339 time: the events
    /// after it. From the beginning when absent.
    pub since: Option<String>,
    /// `json` (default) or `csv`; `Accept: text/csv` also asks for CSV.
    pub format: Option<String>,
    /// Events per answer (1–1000, default 500).
    pub limit: Option<i64>,
}

/// One step of one request, with the request's terms and where it stands now.
#[derive(Debug, Serialize, ToSchema)]
pub struct FinancingFeedItem {
    /// The event's number: pass the last one as `since` to continue.
    pub event_id: i64,
    pub request_id: i64,
    /// posted, taken, declined, window_lapsed, funded, withdrawn.
    pub event: String,
    pub at: DateTime<Utc>,
    pub bank_id: Option<i64>,
    pub status: RequestStatus,
    pub applicant_kind: String,
    pub region_code: String,
    pub amount: Dec,
    pub term_months: i32,
    pub green_tag: GreenTag,
    pub right_type: String,
    pub collateral_quantity: Dec,
    pub collateral_value: Option<Dec>,
    pub pledge_id: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FinancingFeed {
    pub items: Vec<FinancingFeedItem>,
    /// The cursor for the next call (the last event's number, or `since` when nothing is new).
    pub next_since: String,
}

fn parse_since(since: Option<&str>) -> ApiResult<(i64, Option<NaiveDateTime>)> {
    match since.map(str::trim) {
        None | Some("") => Ok((0, None)),
        Some(s) => {
            if let Ok(n) = s.parse::<i64>() {
                if n < 0 {
                    return Err(ApiError::invalid_field(
                        "since",
                        "an event number is not negative",
                    ));
                }
                return Ok((n, None));
            }
            DateTime::parse_from_rfc3339(s)
                .map(|t| (0, Some(t.with_timezone(&Utc).naive_utc())))
                .map_err(|_| {
                    ApiError::invalid_field("since", "an event number or an RFC 3339 time")
                })
        }
    }
}

#[utoipa::path(get, path = "/v1/financing-requests/feed", tag = "financing", operation_id = "financingRequestFeed",
    summary = "For the 金服云 platform: every step of every financing request since a cursor or a time, as JSON or CSV",
    params(FeedQuery),
    responses((status = 200, description = "The events in order (`text/csv` with the same columns when asked)",
        content((FinancingFeed = "application/json"), (String = "text/csv")))))]
#[get("/v1/financing-requests/feed")]
async fn feed(
    state: web::Data<AppState>,
    who: Principal,
    req: HttpRequest,
    q: web::Query<FeedQuery>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator, Role::Regulator])?;
    let q = q.into_inner();
    let csv = match q.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(_) => return Err(ApiError::invalid_field("format", "json or csv")),
        None => req
            .headers()
            .get(actix_web::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("text/csv")),
    };
    let limit = q.limit.unwrap_or(500);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "between 1 and 1000"));
    }
    let (after, from_time) = parse_since(q.since.as_deref())?;
    let since_text = q.since.clone().unwrap_or_default();
    let items = state
        .db(move |conn| {
            let mut query = ev::table
                .filter(ev::id.gt(after))
                .order(ev::id)
                .limit(limit)
                .select(store::EventRow::as_select())
                .into_boxed();
            if let Some(t) = from_time {
                query = query.filter(ev::at.gt(t));
            }
            let events: Vec<store::EventRow> = query.load(conn)?;
            let mut out = Vec::with_capacity(events.len());
            for e in events {
                let Some(r) = store::find(conn, e.request_id)? else {
                    continue;
                };
                let party = crate::parties::store::find(conn, r.applicant_id)?;
                let lot = rights::lot(conn, r.lot_id)?;
                out.push(FinancingFeedItem {
                    event_id: e.id,
                    request_id: r.id,
                    event: e.event,
                    at: e.at.and_utc(),
                    bank_id: e.bank_id,
                    status: r.status(),
                    applicant_kind: party.as_ref().map(|p| p.kind.clone()).unwrap_or_default(),
                    region_code: party.map(|p| p.region_code).unwrap_or_default(),
                    amount: Dec::money(r.amount),
                    term_months: r.term_months,
                    green_tag: GreenTag::parse(&r.green_tag).unwrap_or(GreenTag::None),
                    right_type: lot.map(|l| l.right_type).unwrap_or_default(),
                    collateral_quantity: Dec::qty(r.quantity),
                    collateral_value: r.collateral_value.map(Dec::money),
                    pledge_id: r.pledge_id,
                });
            }
            Ok(out)
        })
        .await?;
    let next_since = items
        .last()
        .map(|i| i.event_id.to_string())
        .unwrap_or(since_text);
    if !csv {
        return Ok(HttpResponse::Ok().json(FinancingFeed { items, next_since }));
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = [
        "event_id",
        "request_id",
        "event",
        "at",
        "bank_id",
        "status",
        "applicant_kind",
        "region_code",
        "amount",
        "term_months",
        "green_tag",
        "right_type",
        "collateral_quantity",
        "collateral_value",
        "pledge_id",
    ];
    let csv_err = |e: csv::Error| ApiError::internal(e.to_string());
    w.write_record(header).map_err(csv_err)?;
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    for i in &items {
        w.write_record([
            i.event_id.to_string(),
            i.request_id.to_string(),
            i.event.clone(),
            i.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            opt(i.bank_id),
            i.status.as_str().to_string(),
            i.applicant_kind.clone(),
            i.region_code.clone(),
            i.amount.0.to_string(),
            i.term_months.to_string(),
            i.green_tag.as_str().to_string(),
            i.right_type.clone(),
            i.collateral_quantity.0.to_string(),
            i.collateral_value
                .as_ref()
                .map(|v| v.0.to_string())
                .unwrap_or_default(),
            opt(i.pledge_id),
        ])
        .map_err(csv_err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("X-Next-Since", next_since))
        .body(bytes))
}
