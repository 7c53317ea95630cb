//! A pledge comes into being: the pledgor applies, the lender accepts with the loan terms and the
//! quantity is pledged.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpResponse};
use chrono::{Datelike, NaiveDate};
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{lock, outcome, require_lender, require_status, PledgeAccepted, PledgeView};
use crate::auth::{Principal, Role};
use crate::collateral::encumbrance;
use crate::collateral::{add_entry, code_hash, find, random_code, rules, PledgeRow};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::{money_to_fen, Dec};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy};
use crate::kernel::json::ApiJson;
use crate::kernel::state::AppState;
use crate::rights::issuance::parse_quantity;
use crate::rights::ledger::{self, Movement, Side};
use crate::rights::serials::{self};
use crate::rights::store::{self as rights, LotRow};
use crate::rights::Bucket;
use crate::schema::pledges as pl;

/// The pledgor applies, naming its holding (lot), the quantity and the lender.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lot_id": 1, "quantity": "100", "lender_party_id": 2}))]
pub struct ApplyPledge {
    pub lot_id: i64,
    pub quantity: Dec,
    pub lender_party_id: i64,
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
        (status = 409, description = "insufficient_quantity, lot_expired, pledgor_flagged, pledgor_credit_red", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/pledges")]
pub(super) async fn apply(
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
            encumbrance::require_applying_parties(conn, pledgor, r.lender_party_id)?;
            lot.require_live(today)?;
            check_not_flagged(conn, pledgor)?;
            crate::grades::check_may_pledge(conn, pledgor, today)?;
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
            encumbrance::recorded(
                conn,
                &p,
                "applied",
                json!({"quantity": quantity, "lender_id": r.lender_party_id}),
                &actor,
                now,
            )
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

pub(super) fn fen(field: &str, d: Dec) -> ApiResult<i64> {
    money_to_fen(d.0, false).map_err(|e| ApiError::invalid_field(field, e.to_string()))
}

/// R11: the loan may not outlive the right, nor an allowance's compliance deadline (the end of
/// the year after its compliance year).
pub(super) fn maturity_limit(lot: &LotRow) -> NaiveDate {
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
        (status = 409, description = "insufficient_quantity, lot_expired, pledgor_flagged, pledgor_credit_red, pledge_status", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/pledges/{id}/accept")]
pub(super) async fn accept(
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
        // A pledge is registered only between parties that still exist (the pledgor's quantity
        // is refused by the ledger too; a lender that merged registers nothing new either).
        crate::parties::store::require_active(conn, p.lender_id)?;
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
        crate::grades::check_may_pledge(conn, p.pledgor_id, today)?;
        // A pledge opened by a financing request takes the quantity the request reserved.
        crate::lending::release_for_pledge(conn, &p, &lot, secured, &actor, now)?;
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
        crate::collateral::monitoring::check_ltv(conn, &p, secured, now)?;
        let mut out = outcome(conn, id)?;
        if let Some(c) = crate::grades::standing(conn, p.pledgor_id, today)? {
            out.body["pledgor_credit"] = serde_json::to_value(c).unwrap_or_default();
        }
        out.secrets = Some(json!({ "amendment_code": amendment }));
        Ok(out)
    })
    .await
}
