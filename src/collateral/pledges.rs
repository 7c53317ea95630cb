//! HTTP: `/v1/pledges` — the pledge lifecycle: apply, accept (register), amend, renew, release,
//! lapse, enforce, dispose; and the amendment code (修改码) that guards every lender change.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::{add_entry, code_hash, entries, find, random_code, rules, PledgeRow, LIVE};
use crate::app::AppState;
use crate::auth::{Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::{money_to_fen, price_to_stored, trade_amount_fen, Dec};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::pagination::{Page, PageParams};
use crate::proposals::{self, ProposalKind, ProposalView};
use crate::rights::issuance::parse_quantity;
use crate::rights::ledger::{self, Movement, Side};
use crate::rights::serials::{self, Owner, Range};
use crate::rights::store::{self as rights, LotRow};
use crate::rights::{Acquisition, Bucket};
use crate::schema::pledges as pl;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(apply)
        .service(list)
        .service(get_one)
        .service(accept)
        .service(withdraw)
        .service(release)
        .service(renew)
        .service(amend)
        .service(rotate_code)
        .service(reset_code)
        .service(enforce)
        .service(dispose)
        .service(valuation)
        .service(sweep);
}

/// The pledgor applies, naming its holding (lot), the quantity and the lender.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lot_id": 1, "quantity": "100", "lender_party_id": 2}))]
pub struct ApplyPledge {
    pub lot_id: i64,
    pub quantity: Dec,
    pub lender_party_id: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppraisalView {
    pub value: Option<Dec>,
    pub appraiser: Option<String>,
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntryView {
    /// Entries are numbered from 1 per pledge and never change (R8).
    pub seq: i32,
    /// applied, registered, amended, renewed, released, lapse_warning, lapsed, enforcement, disposal, code_rotated, withdrawn.
    pub kind: String,
    /// What the entry recorded; only for the parties, operators and regulators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    /// Who made it; only for the parties, operators and regulators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    pub at: DateTime<Utc>,
}

impl EntryView {
    /// The entry as a non-party sees it: that it happened and when, not the private details.
    pub fn public(self) -> EntryView {
        EntryView {
            details: None,
            actor: None,
            ..self
        }
    }
}

/// The lender's answer when the pledge is registered or its amendment code replaced: the pledge,
/// and the amendment code (修改码) shown this once. The registry keeps only its hash, so a replay of
/// the acceptance answers without it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PledgeAccepted {
    #[serde(flatten)]
    pub pledge: PledgeView,
    /// The amendment code (修改码): every later change of the registration needs it. Shown once;
    /// absent from a replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amendment_code: Option<String>,
}

/// A pledge as its parties (and operators, regulators) see it: notice and private terms.
#[derive(Debug, Serialize, ToSchema)]
pub struct PledgeView {
    pub id: i64,
    pub registration_no: Option<String>,
    pub lot_id: i64,
    pub pledgor_id: i64,
    pub lender_id: i64,
    /// The quantity still pledged.
    pub quantity: Dec,
    pub applied_quantity: Dec,
    pub serials: Option<String>,
    /// applied, registered, released, lapsed, enforcing, disposed, withdrawn.
    pub status: String,
    pub rank: Option<i32>,
    pub secured_amount: Option<Dec>,
    pub loan_reference: Option<String>,
    pub loan_maturity: Option<NaiveDate>,
    /// End of the registration period (R8).
    pub period_end: Option<NaiveDate>,
    pub registered_at: Option<DateTime<Utc>>,
    pub appraisal: AppraisalView,
    pub pboc_registration_no: Option<String>,
    /// For third-party checks (`GET /v1/encumbrances/{no}?verification_code=`).
    pub verification_code: Option<String>,
    /// principal + interest + costs declared on default.
    pub claim_amount: Option<Dec>,
    pub claim_detail: Option<serde_json::Value>,
    pub proceeds: Option<Dec>,
    pub paid_to_lender: Option<Dec>,
    pub paid_to_pledgor: Option<Dec>,
    pub entries: Vec<EntryView>,
    pub created_at: DateTime<Utc>,
}

pub fn view(conn: &mut DbConn, p: PledgeRow) -> ApiResult<PledgeView> {
    let entries = entries(conn, p.id)?
        .into_iter()
        .map(|e| EntryView {
            seq: e.seq,
            kind: e.kind,
            details: serde_json::from_str(&e.details).ok(),
            actor: Some(e.actor),
            at: e.at.and_utc(),
        })
        .collect();
    Ok(PledgeView {
        id: p.id,
        registration_no: p.registration_no,
        lot_id: p.lot_id,
        pledgor_id: p.pledgor_id,
        lender_id: p.lender_id,
        quantity: Dec::qty(p.quantity),
        applied_quantity: Dec::qty(p.applied_quantity),
        serials: p.serials,
        status: p.status,
        rank: p.rank,
        secured_amount: p.secured_amount.map(Dec::money),
        loan_reference: p.loan_reference,
        loan_maturity: p.loan_maturity,
        period_end: p.period_end,
        registered_at: p.registered_at.map(|t| t.and_utc()),
        appraisal: AppraisalView {
            value: p.appraisal_value.map(Dec::money),
            appraiser: p.appraiser,
            date: p.appraisal_date,
        },
        pboc_registration_no: p.pboc_registration_no,
        verification_code: p.verification_code,
        claim_amount: p.claim_amount.map(Dec::money),
        claim_detail: p.claim_detail.and_then(|d| serde_json::from_str(&d).ok()),
        proceeds: p.proceeds.map(Dec::money),
        paid_to_lender: p.paid_to_lender.map(Dec::money),
        paid_to_pledgor: p.paid_to_pledgor.map(Dec::money),
        entries,
        created_at: p.created_at.and_utc(),
    })
}

fn outcome(conn: &mut DbConn, id: i64) -> ApiResult<Outcome> {
    let p = find(conn, id)?.ok_or_else(|| ApiError::not_found("pledge"))?;
    Outcome::of(&view(conn, p)?)
}

/// A pledge the caller is party to (or sees as operator/regulator); anyone else gets 404.
fn visible(conn: &mut DbConn, who: &Principal, id: i64) -> ApiResult<PledgeRow> {
    let p = find(conn, id)?.ok_or_else(|| ApiError::not_found("pledge"))?;
    if who.sees_party(p.pledgor_id) || who.sees_party(p.lender_id) {
        Ok(p)
    } else {
        Err(ApiError::not_found("pledge"))
    }
}

/// Locks the pledge's lot, then re-reads the pledge: every change of a pledge queues here.
fn lock(conn: &mut DbConn, who: &Principal, id: i64) -> ApiResult<(PledgeRow, LotRow)> {
    let lot_id = visible(conn, who, id)?.lot_id;
    let lot = rights::lock_lot(conn, lot_id)?;
    let p = find(conn, id)?.ok_or_else(|| ApiError::not_found("pledge"))?;
    Ok((p, lot))
}

fn require_status(p: &PledgeRow, allowed: &[&str]) -> ApiResult<()> {
    if allowed.contains(&p.status.as_str()) {
        Ok(())
    } else {
        Err(ApiError::conflict(
            "pledge_status",
            format!("the pledge is {}", p.status),
        ))
    }
}

fn require_lender(who: &Principal, p: &PledgeRow) -> ApiResult<()> {
    if who.role == Role::Bank && who.party_id == Some(p.lender_id) {
        Ok(())
    } else {
        Err(ApiError::forbidden("only the lender may do this"))
    }
}

/// R7: lender changes need the amendment code; a wrong one is a 403 and changes nothing.
fn check_code(p: &PledgeRow, code: &str) -> ApiResult<()> {
    if p.amendment_code_hash.as_deref() == Some(code_hash(code).as_str()) {
        Ok(())
    } else {
        let mut e = ApiError::forbidden("the amendment code (修改码) is wrong");
        e.code = "amendment_code_invalid";
        Err(e)
    }
}

fn set_status(conn: &mut DbConn, id: i64, status: &str, at: NaiveDateTime) -> ApiResult<()> {
    diesel::update(pl::table.find(id))
        .set((pl::status.eq(status), pl::updated_at.eq(at)))
        .execute(conn)?;
    Ok(())
}

/// R11: an active compliance flag bars the pledgor.
fn check_not_flagged(conn: &mut DbConn, party: i64) -> ApiResult<()> {
    let flags = crate::parties::store::active_flags(conn, party)?;
    if let Some(f) = flags.first() {
        return Err(ApiError::conflict(
            "pledgor_flagged",
            format!("the pledgor carries a compliance flag: {}", f.flag),
        ));
    }
    Ok(())
}

/// R11: emission rights can be pledged only as far as the holder obtained them for payment.
fn check_eligible(conn: &mut DbConn, lot: &LotRow, party: i64, quantity: i64) -> ApiResult<()> {
    if lot.right_type != "EM" {
        return Ok(());
    }
    let h = rights::holding(conn, party, lot.id)?.ok_or_else(|| ApiError::not_found("holding"))?;
    let paid = rights::acquired(conn, h.id)?.for_payment() - h.pledged;
    if quantity > paid {
        return Err(ApiError::unprocessable(
            "right_not_eligible",
            "only emission rights obtained for payment (paid-use allocation or market purchase) can be pledged (R11)",
        ));
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/pledges", tag = "pledges", operation_id = "applyPledge",
    summary = "The pledgor applies to pledge part of a holding to a lender",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = ApplyPledge,
    responses((status = 201, description = "Applied; the lender now sees the holding", body = PledgeView),
        (status = 409, description = "insufficient_quantity, lot_expired, pledgor_flagged", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/pledges")]
async fn apply(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    body: ApiJson<ApplyPledge>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Enterprise])?;
    let pledgor = who
        .party_id
        .ok_or_else(|| ApiError::forbidden("this user belongs to no party"))?;
    let r = body.value;
    let (actor, now, today) = (
        who.actor(),
        db::now_micros(state.clock.now()),
        state.clock.today(),
    );
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Optional,
        StatusCode::CREATED,
        move |conn| {
            let lot = rights::lock_lot(conn, r.lot_id)?;
            let h = rights::holding(conn, pledgor, lot.id)?
                .ok_or_else(|| ApiError::not_found("holding"))?;
            let t = rights::right_type(conn, &lot.right_type)?
                .ok_or_else(|| ApiError::internal("right type vanished"))?;
            let quantity = parse_quantity("quantity", r.quantity, &t)?;
            let lender =
                crate::parties::store::find(conn, r.lender_party_id)?.filter(|p| p.kind == "bank");
            if lender.is_none() {
                return Err(ApiError::invalid_field(
                    "lender_party_id",
                    "not a registered bank",
                ));
            }
            lot.require_live(today)?;
            check_not_flagged(conn, pledgor)?;
            check_eligible(conn, &lot, pledgor, quantity)?;
            if h.available < quantity {
                return Err(ApiError::conflict(
                    "insufficient_quantity",
                    "the available quantity is less than requested",
                ));
            }
            diesel::insert_into(pl::table)
                .values((
                    pl::lot_id.eq(lot.id),
                    pl::pledgor_id.eq(pledgor),
                    pl::lender_id.eq(r.lender_party_id),
                    pl::quantity.eq(quantity),
                    pl::applied_quantity.eq(quantity),
                    pl::status.eq("applied"),
                    pl::created_at.eq(now),
                    pl::updated_at.eq(now),
                ))
                .execute(conn)?;
            let p: PledgeRow = pl::table
                .filter(pl::pledgor_id.eq(pledgor))
                .filter(pl::lot_id.eq(lot.id))
                .order(pl::id.desc())
                .select(PledgeRow::as_select())
                .first(conn)?;
            add_entry(
                conn,
                &p,
                "applied",
                json!({"quantity": quantity, "lender_id": r.lender_party_id}),
                &actor,
                now,
            )?;
            outcome(conn, p.id)
        },
    )
    .await
}

/// The lender accepts with the loan terms: the quantity is pledged in the same transaction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"secured_amount": "2000000.00", "loan_maturity": "2028-12-31", "period_end": "2029-06-30",
    "loan_reference": "CIB-NP-2026-0815", "appraisal_value": "3442494.00", "appraiser": "福建中兴资产评估", "appraisal_date": "2026-11-20"}))]
pub struct AcceptPledge {
    /// CNY secured (registered).
    pub secured_amount: Dec,
    pub loan_maturity: NaiveDate,
    /// End of the registration period: 1 month to 30 years from today (R8).
    pub period_end: NaiveDate,
    pub loan_reference: String,
    pub appraisal_value: Dec,
    pub appraiser: String,
    pub appraisal_date: NaiveDate,
    /// The pledge's PBoC unified-registry (中登网) number, if registered there too (R14).
    pub pboc_registration_no: Option<String>,
}

fn fen(field: &str, d: Dec) -> ApiResult<i64> {
    money_to_fen(d.0, false).map_err(|e| ApiError::invalid_field(field, e.to_string()))
}

/// R11: the loan may not outlive the right, nor an allowance's compliance deadline (the end of
/// the year after its compliance year).
fn maturity_limit(lot: &LotRow) -> NaiveDate {
    let compliance = lot
        .compliance_year
        .and_then(|y| NaiveDate::from_ymd_opt(y + 1, 12, 31));
    match compliance {
        Some(c) if lot.right_type == "CA" => c.min(lot.valid_to),
        _ => lot.valid_to,
    }
}

#[utoipa::path(post, path = "/v1/pledges/{id}/accept", tag = "pledges", operation_id = "acceptPledge",
    summary = "The lender accepts and registers the pledge",
    description = "Returns the registration number, the verification code and, once only, the amendment code (修改码); the registry keeps only its hash and a replay omits it.",
    params(("id" = i64, Path, description = "Pledge id"), ("Idempotency-Key" = String, Header, description = "Required: this moves quantity")),
    request_body = AcceptPledge,
    responses((status = 200, description = "Registered, with `amendment_code` this once", body = PledgeAccepted),
        (status = 409, description = "insufficient_quantity, lot_expired, pledgor_flagged, pledge_status", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/pledges/{id}/accept")]
async fn accept(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<AcceptPledge>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank])?;
    let r = body.value;
    let secured = fen("secured_amount", r.secured_amount)?;
    let appraisal = fen("appraisal_value", r.appraisal_value)?;
    let reference = r.loan_reference.trim().to_string();
    let appraiser = r.appraiser.trim().to_string();
    if reference.is_empty() || appraiser.is_empty() {
        return Err(ApiError::invalid_field(
            if reference.is_empty() {
                "loan_reference"
            } else {
                "appraiser"
            },
            "required",
        ));
    }
    let (id, actor, now, today) = (
        id.into_inner(),
        who.actor(),
        db::now_micros(state.clock.now()),
        state.clock.today(),
    );
    let w = who.clone();
    idempotency::run(&state, &who, idem, &body.body_hash, KeyPolicy::Required, StatusCode::OK, move |conn| {
        let (p, lot) = lock(conn, &w, id)?;
        require_lender(&w, &p)?;
        require_status(&p, &["applied"])?;
        if !rules::ltv_ok(secured, appraisal, rules::LTV_CAP_BP) {
            return Err(ApiError::unprocessable("ltv_exceeded", "the secured amount exceeds 80 % of the appraised value (R11)"));
        }
        if r.loan_maturity > maturity_limit(&lot) {
            return Err(ApiError::unprocessable(
                "maturity_after_validity",
                format!("the loan matures after the right's validity or compliance deadline ({})", maturity_limit(&lot)),
            ));
        }
        if !rules::period_ok(today, r.period_end) {
            return Err(ApiError::invalid_field("period_end", "a registration runs for 1 month to 30 years (R8)"));
        }
        lot.require_live(today)?;
        check_not_flagged(conn, p.pledgor_id)?;
        // Under the lot lock: the quantity is still there, or another pledge took it first.
        let h = rights::holding(conn, p.pledgor_id, lot.id)?.ok_or_else(|| ApiError::not_found("holding"))?;
        if h.available < p.quantity {
            return Err(ApiError::conflict("insufficient_quantity", "the available quantity is less than the pledge"));
        }
        check_eligible(conn, &lot, p.pledgor_id, p.quantity)?;
        let moved = ledger::move_quantity(
            conn,
            Movement {
                lot: &lot,
                from: Side::holder(p.pledgor_id, Bucket::Available),
                to: Side::holder(p.pledgor_id, Bucket::Pledged),
                quantity: p.quantity,
                cause: "pledge",
                reference: format!("pledge:{id}"),
                actor: &actor,
                at: now,
                acquisition: None,
                named_serials: None,
            },
        )?;
        // R9: rank on the asset is the order of registration; ranks are never reused.
        let last_rank: Option<i32> = pl::table
            .filter(pl::lot_id.eq(lot.id))
            .filter(pl::pledgor_id.eq(p.pledgor_id))
            .select(diesel::dsl::max(pl::rank))
            .first(conn)?;
        let registration_no = format!("NPZY-{}-{:06}", today.year(), id);
        let verification = random_code(10);
        let amendment = random_code(16);
        diesel::update(pl::table.find(id))
            .set((
                pl::status.eq("registered"),
                pl::registration_no.eq(&registration_no),
                pl::rank.eq(last_rank.unwrap_or(0) + 1),
                pl::secured_amount.eq(secured),
                pl::loan_reference.eq(&reference),
                pl::loan_maturity.eq(r.loan_maturity),
                pl::period_end.eq(r.period_end),
                pl::registered_at.eq(now),
                pl::appraisal_value.eq(appraisal),
                pl::appraiser.eq(&appraiser),
                pl::appraisal_date.eq(r.appraisal_date),
                pl::pboc_registration_no.eq(&r.pboc_registration_no),
                pl::verification_code.eq(&verification),
                pl::amendment_code_hash.eq(code_hash(&amendment)),
                pl::serials.eq(serials::to_text(&moved)),
                pl::updated_at.eq(now),
            ))
            .execute(conn)?;
        let p = find(conn, id)?.ok_or_else(|| ApiError::not_found("pledge"))?;
        add_entry(conn, &p, "registered", json!({"registration_no": registration_no, "secured_amount": secured, "period_end": r.period_end}), &actor, now)?;
        super::monitoring::check_ltv(conn, &p, secured, now)?;
        let mut out = outcome(conn, id)?;
        out.secrets = Some(json!({ "amendment_code": amendment }));
        Ok(out)
    })
    .await
}

/// An inclusive range of serial numbers.
type SerialSpan = (i64, i64);

/// Splits `quantity` off a pledge's own serials (lowest first): (the part that moves, the rest).
pub(crate) fn split_serials(
    p: &PledgeRow,
    quantity: i64,
) -> ApiResult<(Option<Vec<SerialSpan>>, Option<String>)> {
    let Some(text) = &p.serials else {
        return Ok((None, None));
    };
    let mine = Owner {
        party: Some(p.pledgor_id),
        state: "pledged".into(),
    };
    let moving = Owner {
        party: None,
        state: "moving".into(),
    };
    let ranges: Vec<Range> = serials::parse_text(text)
        .into_iter()
        .map(|(first, last)| Range {
            first,
            last,
            owner: mine.clone(),
        })
        .collect();
    let (rest, moved) = serials::transfer(&ranges, &mine, &moving, quantity / 10_000)
        .map_err(|e| ApiError::conflict("serials_unavailable", e.to_string()))?;
    let named = moved.iter().map(|r| (r.first, r.last)).collect();
    let remaining: Vec<Range> = rest.into_iter().filter(|r| r.owner == mine).collect();
    Ok((Some(named), serials::to_text(&remaining)))
}

/// Moves `quantity` of a pledge out of the pledgor's pledged bucket.
#[allow(clippy::too_many_arguments)]
pub(crate) fn unpledge(
    conn: &mut DbConn,
    p: &PledgeRow,
    lot: &LotRow,
    quantity: i64,
    to: Side,
    cause: &str,
    acquisition: Option<Acquisition>,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    let (named, rest) = split_serials(p, quantity)?;
    ledger::move_quantity(
        conn,
        Movement {
            lot,
            from: Side::holder(p.pledgor_id, Bucket::Pledged),
            to,
            quantity,
            cause,
            reference: format!("pledge:{}", p.id),
            actor,
            at,
            acquisition,
            named_serials: named.as_deref(),
        },
    )?;
    diesel::update(pl::table.find(p.id))
        .set((
            pl::quantity.eq(pl::quantity - quantity),
            pl::serials.eq(rest),
            pl::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Withdraw {
    pub reason: Option<String>,
}

#[utoipa::path(post, path = "/v1/pledges/{id}/withdraw", tag = "pledges", operation_id = "withdrawPledge",
    summary = "The pledgor withdraws, or the lender declines, an application not yet accepted",
    params(("id" = i64, Path, description = "Pledge id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = Withdraw, responses((status = 200, description = "Withdrawn", body = PledgeView),
        (status = 409, description = "pledge_status: the pledge is no longer an open application", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/pledges/{id}/withdraw")]
async fn withdraw(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<Withdraw>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Enterprise, Role::Bank])?;
    let (id, actor, now) = (
        id.into_inner(),
        who.actor(),
        db::now_micros(state.clock.now()),
    );
    let reason = body.value.reason;
    let w = who.clone();
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Optional,
        StatusCode::OK,
        move |conn| {
            let (p, _) = lock(conn, &w, id)?;
            require_status(&p, &["applied"])?;
            set_status(conn, id, "withdrawn", now)?;
            add_entry(
                conn,
                &p,
                "withdrawn",
                json!({"reason": reason}),
                &actor,
                now,
            )?;
            outcome(conn, id)
        },
    )
    .await
}

/// A lender change guarded by the amendment code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amendment_code": "K7PQ2M9XW4RT8HZN", "quantity": "40"}))]
pub struct Release {
    pub amendment_code: String,
    /// Part of the pledged quantity to release; all of it when absent.
    pub quantity: Option<Dec>,
}

#[utoipa::path(post, path = "/v1/pledges/{id}/release", tag = "pledges", operation_id = "releasePledge",
    summary = "The lender releases the pledge, wholly or in part",
    params(("id" = i64, Path, description = "Pledge id"), ("Idempotency-Key" = String, Header, description = "Required: this moves quantity")),
    request_body = Release, responses((status = 200, description = "Released (status `released` once nothing is left)", body = PledgeView)))]
#[post("/v1/pledges/{id}/release")]
async fn release(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<Release>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank])?;
    let r = body.value;
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
            let (p, lot) = lock(conn, &w, id)?;
            require_lender(&w, &p)?;
            check_code(&p, &r.amendment_code)?;
            require_status(&p, &["registered"])?;
            let t = rights::right_type(conn, &lot.right_type)?
                .ok_or_else(|| ApiError::internal("right type vanished"))?;
            let quantity = match r.quantity {
                Some(q) => parse_quantity("quantity", q, &t)?,
                None => p.quantity,
            };
            if quantity > p.quantity {
                return Err(ApiError::invalid_field("quantity", "more than is pledged"));
            }
            // A release ends the lender's claim, not a court's: what a freeze rests on goes to frozen.
            let frozen = super::freezes::unpledge_to_holder(
                conn,
                &p,
                &lot,
                quantity,
                "pledge_release",
                &actor,
                now,
            )?;
            if quantity == p.quantity {
                set_status(conn, id, "released", now)?;
            }
            add_entry(
                conn,
                &p,
                "released",
                json!({"quantity": quantity, "remaining": p.quantity - quantity,
                    "kept_frozen_by_court": frozen}),
                &actor,
                now,
            )?;
            outcome(conn, id)
        },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Renew {
    pub amendment_code: String,
    /// The new end of the registration period.
    pub period_end: NaiveDate,
}

#[utoipa::path(post, path = "/v1/pledges/{id}/renew", tag = "pledges", operation_id = "renewPledge",
    summary = "The lender renews the registration (only in the 90 days before it ends)",
    params(("id" = i64, Path, description = "Pledge id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = Renew, responses((status = 200, description = "Renewed", body = PledgeView),
        (status = 409, description = "renewal_window", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/pledges/{id}/renew")]
async fn renew(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<Renew>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank])?;
    let r = body.value;
    let (id, actor, now, today) = (
        id.into_inner(),
        who.actor(),
        db::now_micros(state.clock.now()),
        state.clock.today(),
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
            let (p, _) = lock(conn, &w, id)?;
            require_lender(&w, &p)?;
            check_code(&p, &r.amendment_code)?;
            require_status(&p, &LIVE)?;
            let end = p
                .period_end
                .ok_or_else(|| ApiError::internal("registered pledge without a period"))?;
            if !rules::in_renewal_window(today, end) {
                return Err(ApiError::conflict(
                    "renewal_window",
                    format!("renewal is accepted only in the 90 days before {end} (R8)"),
                ));
            }
            if !rules::period_ok(end, r.period_end) {
                return Err(ApiError::invalid_field(
                    "period_end",
                    "a renewal runs for 1 month to 30 years from the current end (R8)",
                ));
            }
            diesel::update(pl::table.find(id))
                .set((
                    pl::period_end.eq(r.period_end),
                    pl::lapse_warned_at.eq(None::<NaiveDateTime>),
                    pl::updated_at.eq(now),
                ))
                .execute(conn)?;
            add_entry(
                conn,
                &p,
                "renewed",
                json!({"from": end, "to": r.period_end}),
                &actor,
                now,
            )?;
            outcome(conn, id)
        },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Amend {
    pub amendment_code: String,
    pub secured_amount: Option<Dec>,
    pub loan_maturity: Option<NaiveDate>,
    pub loan_reference: Option<String>,
}

#[utoipa::path(post, path = "/v1/pledges/{id}/amend", tag = "pledges", operation_id = "amendPledge",
    summary = "The lender amends the registered terms",
    params(("id" = i64, Path, description = "Pledge id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = Amend, responses((status = 200, description = "Amended", body = PledgeView)))]
#[post("/v1/pledges/{id}/amend")]
async fn amend(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<Amend>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank])?;
    let r = body.value;
    let secured = r
        .secured_amount
        .map(|s| fen("secured_amount", s))
        .transpose()?;
    let (id, actor, now) = (
        id.into_inner(),
        who.actor(),
        db::now_micros(state.clock.now()),
    );
    let w = who.clone();
    idempotency::run(&state, &who, idem, &body.body_hash, KeyPolicy::Optional, StatusCode::OK, move |conn| {
        let (p, lot) = lock(conn, &w, id)?;
        require_lender(&w, &p)?;
        check_code(&p, &r.amendment_code)?;
        require_status(&p, &LIVE)?;
        let new_secured = secured.or(p.secured_amount).unwrap_or(0);
        if !rules::ltv_ok(new_secured, p.appraisal_value.unwrap_or(0), rules::LTV_CAP_BP) {
            return Err(ApiError::unprocessable("ltv_exceeded", "the secured amount exceeds 80 % of the appraised value (R11)"));
        }
        let maturity = r.loan_maturity.or(p.loan_maturity);
        if maturity.is_some_and(|m| m > maturity_limit(&lot)) {
            return Err(ApiError::unprocessable("maturity_after_validity", "the loan matures after the right's validity"));
        }
        diesel::update(pl::table.find(id))
            .set((
                pl::secured_amount.eq(new_secured),
                pl::loan_maturity.eq(maturity),
                pl::loan_reference.eq(r.loan_reference.clone().or(p.loan_reference.clone())),
                pl::updated_at.eq(now),
            ))
            .execute(conn)?;
        add_entry(conn, &p, "amended", json!({"secured_amount": secured, "loan_maturity": r.loan_maturity, "loan_reference_changed": r.loan_reference.is_some()}), &actor, now)?;
        super::monitoring::check_ltv(conn, &p, new_secured, now)?;
        outcome(conn, id)
    })
    .await
}

/// Replacing the amendment code.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"current_code": "K7PQ2M9XW4RT8HZN"}))]
pub struct RotateCode {
    /// The code in force. Omitted only after an approved operator-assisted reset
    /// (`POST /v1/pledges/{id}/amendment-code/reset`), which voids the old code.
    pub current_code: Option<String>,
}

/// Marks a pledge whose code an approved reset voided: no code hashes to this form, so nothing
/// matches it until the lender sets a new code.
const RESET_MARK: &str = "reset:";

#[utoipa::path(post, path = "/v1/pledges/{id}/amendment-code", tag = "pledges", operation_id = "rotateAmendmentCode",
    summary = "The lender replaces the amendment code; the new one is shown once",
    description = "Needs the lender's login and the code in force (R7): a login alone does not replace it. A lender that lost the code asks the exchange for a reset on a documented request; once two operators approved it (`POST /v1/pledges/{id}/amendment-code/reset`), the lender's login sets a new code without the old one, once. Every rotation and reset is an entry in the pledge's history.",
    params(("id" = i64, Path, description = "Pledge id")),
    request_body = RotateCode,
    responses((status = 200, description = "The pledge, with `amendment_code` this once", body = PledgeAccepted),
        (status = 403, description = "amendment_code_invalid: the current code is missing or wrong", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/pledges/{id}/amendment-code")]
async fn rotate_code(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
    body: ApiJson<RotateCode>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank])?;
    let current = body.value.current_code;
    let (id, actor, now) = (
        id.into_inner(),
        who.actor(),
        db::now_micros(state.clock.now()),
    );
    // Never idempotent-replayable: the answer carries a secret the registry does not keep.
    let body = state
        .db(move |conn| {
            db::write_tx(conn, |conn| {
                let (p, _) = lock(conn, &who, id)?;
                require_lender(&who, &p)?;
                let after_reset = p
                    .amendment_code_hash
                    .as_deref()
                    .is_some_and(|h| h.starts_with(RESET_MARK));
                match current.as_deref() {
                    Some(code) => check_code(&p, code)?,
                    None if after_reset => {}
                    None => check_code(&p, "")?,
                }
                let fresh = random_code(16);
                diesel::update(pl::table.find(id))
                    .set((
                        pl::amendment_code_hash.eq(code_hash(&fresh)),
                        pl::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                add_entry(
                    conn,
                    &p,
                    "code_rotated",
                    json!({"after_reset": after_reset && current.is_none()}),
                    &actor,
                    now,
                )?;
                let p = find(conn, id)?.ok_or_else(|| ApiError::not_found("pledge"))?;
                Ok(PledgeAccepted {
                    pledge: view(conn, p)?,
                    amendment_code: Some(fresh),
                })
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// The lender's documented request to reset a lost amendment code.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "the officer holding the code left the bank", "document_ref": "兴业银行南平分行函〔2026〕12号"}))]
pub struct ResetCode {
    pub reason: String,
    /// The lender's written request.
    pub document_ref: String,
}

/// What an amendment-code reset proposal stores.
#[derive(Debug, Deserialize, Serialize)]
pub struct CodeResetProposal {
    pub pledge_id: i64,
    pub request: ResetCode,
}

#[utoipa::path(post, path = "/v1/pledges/{id}/amendment-code/reset", tag = "pledges", operation_id = "proposeAmendmentCodeReset",
    summary = "An operator proposes resetting a lost amendment code on the lender's documented request; a second operator approves",
    description = "The approval voids the code in force; the lender's login then sets a new one (`POST /v1/pledges/{id}/amendment-code` without `current_code`), once. Reason and document are kept in the proposal, the pledge's history and the audit trail.",
    params(("id" = i64, Path, description = "Pledge id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = ResetCode, responses((status = 202, description = "Proposed", body = ProposalView)))]
#[post("/v1/pledges/{id}/amendment-code/reset")]
async fn reset_code(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<ResetCode>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let r = body.value;
    let request = ResetCode {
        reason: r.reason.trim().to_string(),
        document_ref: r.document_ref.trim().to_string(),
    };
    if request.reason.is_empty() {
        return Err(ApiError::invalid_field("reason", "required"));
    }
    if request.document_ref.is_empty() {
        return Err(ApiError::invalid_field(
            "document_ref",
            "the lender's written request",
        ));
    }
    let (id, now) = (id.into_inner(), db::now_micros(state.clock.now()));
    let w = who.clone();
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Optional,
        StatusCode::ACCEPTED,
        move |conn| {
            let p = visible(conn, &w, id)?;
            require_status(&p, &LIVE)?;
            let asked = CodeResetProposal {
                pledge_id: id,
                request,
            };
            let row = proposals::propose(
                conn,
                ProposalKind::AmendmentCodeReset,
                &asked,
                None,
                &w,
                now,
            )?;
            Outcome::of(&ProposalView::from(row))
        },
    )
    .await
}

/// Carries out an approved reset: the code in force no longer works, and the lender may set a
/// new one without it.
pub fn execute_code_reset(
    conn: &mut DbConn,
    r: &CodeResetProposal,
    proposal_id: i64,
    actor: &str,
    now: NaiveDateTime,
) -> ApiResult<serde_json::Value> {
    let lot_id = find(conn, r.pledge_id)?
        .ok_or_else(|| ApiError::not_found("pledge"))?
        .lot_id;
    rights::lock_lot(conn, lot_id)?;
    let p = find(conn, r.pledge_id)?.ok_or_else(|| ApiError::not_found("pledge"))?;
    require_status(&p, &LIVE)?;
    diesel::update(pl::table.find(p.id))
        .set((
            pl::amendment_code_hash.eq(format!("{RESET_MARK}{proposal_id}")),
            pl::updated_at.eq(now),
        ))
        .execute(conn)?;
    add_entry(
        conn,
        &p,
        "code_reset",
        json!({"proposal": proposal_id, "reason": r.request.reason, "document_ref": r.request.document_ref}),
        actor,
        now,
    )?;
    Ok(outcome(conn, p.id)?.body)
}

/// Default: the lender declares its outstanding claim (Civil Code art. 389).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amendment_code": "K7PQ2M9XW4RT8HZN", "principal": "2000000.00", "interest": "56000.00", "costs": "12000.00"}))]
pub struct Enforce {
    pub amendment_code: String,
    pub principal: Dec,
    pub interest: Dec,
    pub costs: Dec,
}

#[utoipa::path(post, path = "/v1/pledges/{id}/enforce", tag = "pledges", operation_id = "enforcePledge",
    summary = "The lender declares default and its outstanding claim; the quantity stays frozen",
    params(("id" = i64, Path, description = "Pledge id"), ("Idempotency-Key" = String, Header, description = "Required")),
    request_body = Enforce, responses((status = 200, description = "Enforcing", body = PledgeView)))]
#[post("/v1/pledges/{id}/enforce")]
async fn enforce(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<Enforce>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank])?;
    let r = body.value;
    let parts = [
        ("principal", r.principal),
        ("interest", r.interest),
        ("costs", r.costs),
    ];
    let mut claim = 0i64;
    for (field, v) in parts {
        claim = claim
            .checked_add(
                money_to_fen(v.0, true)
                    .map_err(|e| ApiError::invalid_field(field, e.to_string()))?,
            )
            .ok_or_else(|| ApiError::invalid_field(field, "is too large"))?;
    }
    let detail =
        json!({"principal": r.principal, "interest": r.interest, "costs": r.costs}).to_string();
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
            let (p, _) = lock(conn, &w, id)?;
            require_lender(&w, &p)?;
            check_code(&p, &r.amendment_code)?;
            require_status(&p, &["registered"])?;
            diesel::update(pl::table.find(id))
                .set((
                    pl::status.eq("enforcing"),
                    pl::claim_amount.eq(claim),
                    pl::claim_detail.eq(&detail),
                    pl::updated_at.eq(now),
                ))
                .execute(conn)?;
            add_entry(
                conn,
                &p,
                "enforcement",
                json!({"claim": claim}),
                &actor,
                now,
            )?;
            outcome(conn, id)
        },
    )
    .await
}

/// An operator-recorded sale of the pledged quantity (until the market module runs disposal).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"buyer_party_id": 7, "unit_price": "6300", "years": 4}))]
pub struct Dispose {
    pub buyer_party_id: i64,
    pub unit_price: Dec,
    /// EM: whole years of the remaining term sold (R3): 1 to the whole years left from the day
    /// of the sale to the lot's `valid_to` (a partly elapsed year does not count); more is a 422
    /// `years_beyond_term`.
    pub years: Option<i32>,
}

/// What a disposal proposal stores: the pledge and the sale.
#[derive(Debug, Deserialize, Serialize)]
pub struct DisposalProposal {
    pub pledge_id: i64,
    pub sale: Dispose,
}

#[utoipa::path(post, path = "/v1/pledges/{id}/dispose", tag = "pledges", operation_id = "disposePledge",
    summary = "An operator proposes the sale of an enforced pledge; a second operator approves and it happens then",
    description = "The price and buyer are checked now and again at approval (`POST /v1/proposals/{id}/approve`, by another person); at approval the proceeds pay the claim first, the rest to the pledgor.",
    params(("id" = i64, Path, description = "Pledge id"), ("Idempotency-Key" = String, Header, description = "Required")),
    request_body = Dispose, responses((status = 202, description = "Proposed", body = ProposalView),
        (status = 422, description = "validation_failed, years_beyond_term, price_below_benchmark, region_non_attainment", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/pledges/{id}/dispose")]
async fn dispose(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<Dispose>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let r = body.value;
    price_to_stored(r.unit_price.0)
        .map_err(|e| ApiError::invalid_field("unit_price", e.to_string()))?;
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
        StatusCode::ACCEPTED,
        move |conn| {
            visible(conn, &w, id)?;
            let asked = DisposalProposal {
                pledge_id: id,
                sale: r,
            };
            execute_disposal(conn, &asked, &actor, now, false)?;
            let row = proposals::propose(conn, ProposalKind::Disposal, &asked, None, &w, now)?;
            Outcome::of(&ProposalView::from(row))
        },
    )
    .await
}

/// Checks a disposal (price, buyer, R3 years, R4) and, when `carry_out`, sells: the pledged
/// quantity goes to the buyer and the proceeds pay the claim first, the rest to the pledgor.
pub fn execute_disposal(
    conn: &mut DbConn,
    d: &DisposalProposal,
    actor: &str,
    now: NaiveDateTime,
    carry_out: bool,
) -> ApiResult<serde_json::Value> {
    let (id, r) = (d.pledge_id, &d.sale);
    let price = price_to_stored(r.unit_price.0)
        .map_err(|e| ApiError::invalid_field("unit_price", e.to_string()))?;
    let lot_id = find(conn, id)?
        .ok_or_else(|| ApiError::not_found("pledge"))?
        .lot_id;
    let lot = rights::lock_lot(conn, lot_id)?;
    let p = find(conn, id)?.ok_or_else(|| ApiError::not_found("pledge"))?;
    require_status(&p, &["enforcing"])?;
    let t = rights::right_type(conn, &lot.right_type)?
        .ok_or_else(|| ApiError::internal("right type vanished"))?;
    let years = lot.years_traded(&t, r.years, now.date())?.unwrap_or(1) as u32;
    let buyer = crate::parties::store::find(conn, r.buyer_party_id)?;
    if buyer
        .as_ref()
        .is_none_or(|b| b.kind == "bank" || b.kind == "regulator" || b.id == p.pledgor_id)
    {
        return Err(ApiError::invalid_field(
            "buyer_party_id",
            "a registered party other than the pledgor that may hold rights",
        ));
    }
    // R4, the same check as every sale of an emission right.
    let settings = crate::market::settings::load(conn)?;
    let standing = crate::market::benchmarks::check_r4(
        conn,
        &settings,
        &lot,
        buyer.as_ref().map(|b| b.region_code.as_str()),
        Some(price),
        now.date(),
    )?;
    let proceeds = trade_amount_fen(p.quantity, price, years)
        .map_err(|e| ApiError::invalid_field("unit_price", e.to_string()))?;
    if !carry_out {
        return Ok(serde_json::Value::Null);
    }
    let (paid, rest) = rules::split_proceeds(proceeds, &[super::disposal::claim_left(conn, &p)?]);
    let to_lender = paid.first().copied().unwrap_or(0);
    unpledge(
        conn,
        &p,
        &lot,
        p.quantity,
        Side::holder(r.buyer_party_id, Bucket::Available),
        "pledge_disposal",
        Some(Acquisition::of_purchase(standing)),
        actor,
        now,
    )?;
    diesel::update(pl::table.find(id))
        .set((
            pl::status.eq("disposed"),
            pl::proceeds.eq(proceeds),
            pl::paid_to_lender.eq(to_lender),
            pl::paid_to_pledgor.eq(rest),
            pl::updated_at.eq(now),
        ))
        .execute(conn)?;
    add_entry(
        conn,
        &p,
        "disposal",
        json!({"buyer": r.buyer_party_id, "unit_price": price, "years": years,
    "proceeds": proceeds, "paid_to_lender": to_lender, "paid_to_pledgor": rest}),
        actor,
        now,
    )?;
    Ok(outcome(conn, id)?.body)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PledgeQuery {
    pub status: Option<String>,
    pub lot_id: Option<i64>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/pledges", tag = "pledges", operation_id = "listPledges",
    summary = "Pledges the caller is party to (all for operators and regulators)",
    params(PledgeQuery), responses((status = 200, description = "A page", body = Page<PledgeView>)))]
#[get("/v1/pledges")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<PledgeQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let (after, limit) = PageParams {
        cursor: q.cursor,
        limit: q.limit,
    }
    .resolve()?;
    let page = state
        .db(move |conn| {
            let mut query = pl::table
                .filter(pl::id.gt(after))
                .order(pl::id)
                .limit(limit + 1)
                .select(PledgeRow::as_select())
                .into_boxed();
            if !who.role.sees_all() {
                let me = who.party_id.unwrap_or(-1);
                query = query.filter(pl::pledgor_id.eq(me).or(pl::lender_id.eq(me)));
            }
            if let Some(s) = q.status {
                query = query.filter(pl::status.eq(s));
            }
            if let Some(l) = q.lot_id {
                query = query.filter(pl::lot_id.eq(l));
            }
            let rows: Vec<PledgeRow> = query.load(conn)?;
            let views = rows
                .into_iter()
                .map(|p| view(conn, p))
                .collect::<ApiResult<Vec<_>>>()?;
            Ok(Page::from_rows(views, limit, |v| v.id))
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(get, path = "/v1/pledges/{id}", tag = "pledges", operation_id = "getPledge", summary = "A pledge, with its entries",
    params(("id" = i64, Path, description = "Pledge id")), responses((status = 200, description = "The pledge", body = PledgeView)))]
#[get("/v1/pledges/{id}")]
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

#[derive(Debug, Serialize, ToSchema)]
pub struct Valuation {
    pub pledge_id: i64,
    /// How the value was obtained (R3): `vwap_<N>d` (settled trades of the lot's market over N
    /// days), `benchmark` (the benchmark price in force), or `appraisal` (the lender's registered
    /// appraisal) when the market shows no price.
    pub method: String,
    /// The reference price per unit (EM: per ton-year), for the market methods.
    pub unit_price: Option<Dec>,
    /// EM: the whole years of the term left on `as_of` that the value counts (R3; a partly
    /// elapsed year does not count, 0 in the last year of the term).
    pub years: Option<i32>,
    pub value: Option<Dec>,
    pub secured_amount: Option<Dec>,
    /// secured ÷ value, in percent with 2 places.
    pub loan_to_value_percent: Option<Dec>,
    pub as_of: DateTime<Utc>,
}

#[utoipa::path(get, path = "/v1/pledges/{id}/valuation", tag = "pledges", operation_id = "pledgeValuation",
    summary = "The collateral's current value with its method (market prices per R3, else the appraisal), and the loan-to-value",
    params(("id" = i64, Path, description = "Pledge id")), responses((status = 200, description = "The valuation", body = Valuation)))]
#[get("/v1/pledges/{id}/valuation")]
async fn valuation(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let (as_of, today) = (state.clock.now(), state.clock.today());
    let v = state
        .db(move |conn| {
            let p = visible(conn, &who, id)?;
            let (method, market, appraisal) = super::monitoring::current_value(conn, &p, today)?;
            let value = market.as_ref().map(|m| m.value).or(appraisal);
            let ltv = match (p.secured_amount, value) {
                (Some(s), Some(v)) => rules::ltv_bp(s, v).map(Dec::money),
                _ => None,
            };
            Ok(Valuation {
                pledge_id: p.id,
                method,
                unit_price: market.as_ref().map(|m| Dec::price(m.unit_price)),
                years: market.as_ref().map(|m| m.years),
                value: value.map(Dec::money),
                secured_amount: p.secured_amount.map(Dec::money),
                loan_to_value_percent: ltv,
                as_of,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SweepResult {
    /// Pledges whose registration period ended unrenewed; their quantity is unfrozen.
    pub lapsed: Vec<i64>,
    /// Pledges whose lender was warned, 90 days ahead, of a coming lapse.
    pub warned: Vec<i64>,
    /// Pledges whose loan-to-value rose above the alert level (at market prices); lender told.
    pub ltv_alerts: Vec<i64>,
    /// Objections (异议登记) whose period passed without withdrawal or resolution.
    pub objections_lapsed: Vec<i64>,
}

/// Lapses pledges whose period ended and records the 90-day warnings. Idempotent; run by the
/// background task in `serve` and on demand by operators.
pub fn run_sweep(
    conn: &mut DbConn,
    today: NaiveDate,
    now: NaiveDateTime,
) -> ApiResult<SweepResult> {
    let due: Vec<PledgeRow> = pl::table
        .filter(pl::status.eq("registered"))
        .filter(pl::period_end.le(today + chrono::Days::new(rules::RENEWAL_WINDOW_DAYS as u64)))
        .select(PledgeRow::as_select())
        .load(conn)?;
    let mut out = SweepResult {
        lapsed: Vec::new(),
        warned: Vec::new(),
        ltv_alerts: Vec::new(),
        objections_lapsed: Vec::new(),
    };
    for candidate in due {
        db::write_tx(conn, |conn| -> ApiResult<()> {
            let lot = rights::lock_lot(conn, candidate.lot_id)?;
            let Some(p) = find(conn, candidate.id)?.filter(|p| p.status == "registered") else {
                return Ok(());
            };
            let Some(end) = p.period_end else {
                return Ok(());
            };
            if end < today {
                // What a judicial freeze rests on stays frozen: the court's hold outlives the pledge.
                super::freezes::unpledge_to_holder(
                    conn,
                    &p,
                    &lot,
                    p.quantity,
                    "pledge_lapse",
                    "registry",
                    now,
                )?;
                set_status(conn, p.id, "lapsed", now)?;
                add_entry(
                    conn,
                    &p,
                    "lapsed",
                    json!({"period_end": end}),
                    "registry",
                    now,
                )?;
                out.lapsed.push(p.id);
            } else if p.lapse_warned_at.is_none() {
                diesel::update(pl::table.find(p.id))
                    .set(pl::lapse_warned_at.eq(now))
                    .execute(conn)?;
                add_entry(
                    conn,
                    &p,
                    "lapse_warning",
                    json!({"period_end": end}),
                    "registry",
                    now,
                )?;
                out.warned.push(p.id);
            }
            Ok(())
        })?;
    }
    out.ltv_alerts = super::monitoring::monitor(conn, now)?;
    out.objections_lapsed = super::objections::lapse_due(conn, now)?;
    Ok(out)
}

#[utoipa::path(post, path = "/v1/collateral/sweep", tag = "pledges", operation_id = "sweepPledges",
    summary = "Lapse pledges whose registration ended and warn lenders 90 days ahead (runs periodically too)",
    responses((status = 200, description = "What changed", body = SweepResult)))]
#[post("/v1/collateral/sweep")]
async fn sweep(state: web::Data<AppState>, who: Principal) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let (today, now) = (state.clock.today(), db::now_micros(state.clock.now()));
    let r = state.db(move |conn| run_sweep(conn, today, now)).await?;
    Ok(HttpResponse::Ok().json(r))
}
