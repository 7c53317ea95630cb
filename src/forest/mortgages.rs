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
    add_entry, current_rank, entries, mortgage, mortgage_parcels, mortgages_on, MortgageRow, RANKED,
};
use crate::app::AppState;
use crate::auth::{Principal, Role};
use crate::collateral::pledges::EntryView;
use crate::collateral::random_code;
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::{money_to_fen, Dec};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::pagination::{Page, PageParams};
use crate::schema::{forest_mortgage_parcels as fmp, forest_mortgages as fm, forest_parcels as fp};

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

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MortgagedParcel {
    pub parcel_id: i64,
    pub certificate_no: String,
    /// Rank now, among the registered mortgages still on the parcel (R9, R14).
    pub rank: Option<i32>,
    /// Rank when this mortgage was registered (history keeps it).
    pub rank_at_registration: Option<i32>,
}

/// A forest mortgage as its parties (and operators, regulators) see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MortgageView {
    pub id: i64,
    pub registration_no: Option<String>,
    pub mortgagor_id: i64,
    pub lender_id: i64,
    /// applied, pending_official_registration, pending_confirmation (the official registration is
    /// entered and awaits an operator's confirmation: no rank yet), registered, released,
    /// enforcing, disposed, withdrawn.
    pub status: String,
    pub parcels: Vec<MortgagedParcel>,
    pub secured_amount: Option<Dec>,
    pub loan_start: Option<NaiveDate>,
    pub loan_end: Option<NaiveDate>,
    pub appraisal_value: Option<Dec>,
    pub appraiser: Option<String>,
    pub appraisal_kind: Option<String>,
    pub appraisal_date: Option<NaiveDate>,
    pub appraisal_report_no: Option<String>,
    pub insurance_policy_no: Option<String>,
    pub insurer: Option<String>,
    pub insured_amount: Option<Dec>,
    pub insurance_beneficiary_id: Option<i64>,
    pub consent: Option<serde_json::Value>,
    pub transfer_ban: bool,
    /// 不动产登记证明号 and time (R14).
    pub official_certificate_no: Option<String>,
    pub official_registered_at: Option<DateTime<Utc>>,
    /// Who entered the official registration (R14), and who confirmed it (another person).
    pub official_entered_by: Option<String>,
    pub official_confirmed_by: Option<String>,
    pub verification_code: Option<String>,
    pub claim_amount: Option<Dec>,
    pub proceeds: Option<Dec>,
    pub paid_to_lender: Option<Dec>,
    pub paid_to_mortgagor: Option<Dec>,
    pub entries: Vec<EntryView>,
    pub created_at: DateTime<Utc>,
    /// Guarantees and insurance on the loan and, once enforcement began, who owes what of the
    /// shortfall; absent when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_enhancement: Option<crate::enhancement::CreditEnhancement>,
}

pub fn parcel_ranks(conn: &mut DbConn, m: &MortgageRow) -> ApiResult<Vec<MortgagedParcel>> {
    let mut out = Vec::new();
    for (p, at_registration) in mortgage_parcels(conn, m.id)? {
        let rank = current_rank(conn, p.id, m.id)?;
        out.push(MortgagedParcel {
            parcel_id: p.id,
            certificate_no: p.certificate_no,
            rank,
            rank_at_registration: at_registration,
        });
    }
    Ok(out)
}

pub fn view(conn: &mut DbConn, m: MortgageRow) -> ApiResult<MortgageView> {
    let credit_enhancement = crate::enhancement::for_mortgage(conn, &m)?;
    let parcels = parcel_ranks(conn, &m)?;
    let entries = entries(conn, m.id)?
        .into_iter()
        .map(|e| EntryView {
            seq: e.seq,
            kind: e.kind,
            details: serde_json::from_str(&e.details).ok(),
            actor: Some(e.actor),
            at: e.at.and_utc(),
        })
        .collect();
    Ok(MortgageView {
        id: m.id,
        registration_no: m.registration_no,
        mortgagor_id: m.mortgagor_id,
        lender_id: m.lender_id,
        status: m.status,
        parcels,
        secured_amount: m.secured_amount.map(Dec::money),
        loan_start: m.loan_start,
        loan_end: m.loan_end,
        appraisal_value: m.appraisal_value.map(Dec::money),
        appraiser: m.appraiser,
        appraisal_kind: m.appraisal_kind,
        appraisal_date: m.appraisal_date,
        appraisal_report_no: m.appraisal_report_no,
        insurance_policy_no: m.insurance_policy_no,
        insurer: m.insurer,
        insured_amount: m.insured_amount.map(Dec::money),
        insurance_beneficiary_id: m.insurance_beneficiary_id,
        consent: m.consent.and_then(|c| serde_json::from_str(&c).ok()),
        transfer_ban: m.transfer_ban,
        official_certificate_no: m.official_certificate_no,
        official_registered_at: m.official_registered_at.map(|t| t.and_utc()),
        official_entered_by: m.official_entered_by,
        official_confirmed_by: m.official_confirmed_by,
        verification_code: m.verification_code,
        claim_amount: m.claim_amount.map(Dec::money),
        proceeds: m.proceeds.map(Dec::money),
        paid_to_lender: m.paid_to_lender.map(Dec::money),
        paid_to_mortgagor: m.paid_to_mortgagor.map(Dec::money),
        entries,
        created_at: m.created_at.and_utc(),
        credit_enhancement,
    })
}

fn outcome(conn: &mut DbConn, id: i64) -> ApiResult<Outcome> {
    let m = mortgage(conn, id)?.ok_or_else(|| ApiError::not_found("forest mortgage"))?;
    Outcome::of(&view(conn, m)?)
}

fn visible(conn: &mut DbConn, who: &Principal, id: i64) -> ApiResult<MortgageRow> {
    let m = mortgage(conn, id)?.ok_or_else(|| ApiError::not_found("forest mortgage"))?;
    if who.sees_party(m.mortgagor_id) || who.sees_party(m.lender_id) {
        Ok(m)
    } else {
        Err(ApiError::not_found("forest mortgage"))
    }
}

/// Locks every parcel of the mortgage (in id order, so two mortgages never deadlock), then
/// re-reads the mortgage: changes of mortgages and holders on a parcel queue here.
fn lock(conn: &mut DbConn, who: &Principal, id: i64, now: NaiveDateTime) -> ApiResult<MortgageRow> {
    visible(conn, who, id)?;
    lock_parcels(conn, id, now)
}

/// [`lock`] without a caller to check (an approved proposal's effect).
fn lock_parcels(conn: &mut DbConn, id: i64, now: NaiveDateTime) -> ApiResult<MortgageRow> {
    let mut parcel_ids: Vec<i64> = fmp::table
        .filter(fmp::mortgage_id.eq(id))
        .select(fmp::parcel_id)
        .load(conn)?;
    parcel_ids.sort_unstable();
    for p in parcel_ids {
        diesel::update(fp::table.find(p))
            .set(fp::updated_at.eq(now))
            .execute(conn)?;
    }
    mortgage(conn, id)?.ok_or_else(|| ApiError::not_found("forest mortgage"))
}

/// A mortgage is granted only between parties that still exist: neither a mortgagor nor a lender
/// that merged, split or otherwise ended takes part in completing or registering one.
fn require_parties_active(conn: &mut DbConn, m: &MortgageRow) -> ApiResult<()> {
    crate::parties::store::require_active(conn, m.mortgagor_id)?;
    crate::parties::store::require_active(conn, m.lender_id)?;
    Ok(())
}

fn require_status(m: &MortgageRow, allowed: &[&str]) -> ApiResult<()> {
    if allowed.contains(&m.status.as_str()) {
        Ok(())
    } else {
        Err(ApiError::conflict(
            "mortgage_status",
            format!("the mortgage is {}", m.status),
        ))
    }
}

fn require_lender(who: &Principal, m: &MortgageRow) -> ApiResult<()> {
    if who.role == Role::Bank && who.party_id == Some(m.lender_id) {
        Ok(())
    } else {
        Err(ApiError::forbidden("only the lender may do this"))
    }
}

fn fen(field: &str, d: Dec, allow_zero: bool) -> ApiResult<i64> {
    money_to_fen(d.0, allow_zero).map_err(|e| ApiError::invalid_field(field, e.to_string()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"parcel_ids": [1, 2], "lender_party_id": 3}))]
pub struct ApplyMortgage {
    pub parcel_ids: Vec<i64>,
    pub lender_party_id: i64,
    /// For co-held parcels: the co-holders who consent (the applicant counts), holding at least
    /// two thirds of the shares (Civil Code art. 301), and the document recording it.
    pub co_holder_consent: Option<CoHolderConsent>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CoHolderConsent {
    pub party_ids: Vec<i64>,
    pub document_ref: String,
}

#[utoipa::path(post, path = "/v1/forest-mortgages", tag = "forest", operation_id = "applyForestMortgage",
    summary = "The holder applies to mortgage one or more parcels to a lender",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = ApplyMortgage, responses((status = 201, description = "Applied", body = MortgageView)))]
#[post("/v1/forest-mortgages")]
async fn apply(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    body: ApiJson<ApplyMortgage>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Enterprise])?;
    let holder = who
        .party_id
        .ok_or_else(|| ApiError::forbidden("this user belongs to no party"))?;
    let r = body.value;
    let mut parcels = r.parcel_ids.clone();
    parcels.sort_unstable();
    parcels.dedup();
    if parcels.is_empty() || parcels.len() > 100 {
        return Err(ApiError::invalid_field("parcel_ids", "1 to 100 parcels"));
    }
    let (actor, now) = (who.actor(), db::now_micros(state.clock.now()));
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Optional,
        StatusCode::CREATED,
        move |conn| {
            for p in &parcels {
                let row = super::parcel(conn, *p)?
                    .filter(|row| row.holder_id == holder || super::holders(conn, row.id).is_ok_and(|hs| hs.iter().any(|(h, _)| *h == holder)))
                    .ok_or_else(|| ApiError::not_found("parcel"))?;
                            super::freezes::require_changeable(conn, &row)?;
            let hs = super::holders(conn, row.id)?;
            if hs.len() > 1 {
                let consenting: i64 = hs
                    .iter()
                    .filter(|(h, _)| *h == holder || r.co_holder_consent.as_ref().is_some_and(|c| c.party_ids.contains(h)))
                    .map(|(_, share)| i64::from(*share))
                    .sum();
                let documented = r.co_holder_consent.as_ref().is_some_and(|c| !c.document_ref.trim().is_empty());
                if consenting * 3 < 20_000 || !documented {
                    return Err(ApiError::unprocessable(
                        "co_holder_consent_missing",
                        format!("{} is co-held: co-holders with two thirds of the shares must consent, with the document", row.certificate_no),
                    ));
                }
            }
            }
            let lender =
                crate::parties::store::find(conn, r.lender_party_id)?.filter(|p| p.kind == "bank");
            if lender.is_none() {
                return Err(ApiError::invalid_field(
                    "lender_party_id",
                    "not a registered bank",
                ));
            }
            crate::parties::store::require_active(conn, holder)?;
            crate::parties::store::require_active(conn, r.lender_party_id)?;
            diesel::insert_into(fm::table)
                .values((
                    fm::mortgagor_id.eq(holder),
                    fm::lender_id.eq(r.lender_party_id),
                    fm::status.eq("applied"),
                    fm::created_at.eq(now),
                    fm::updated_at.eq(now),
                ))
                .execute(conn)?;
            let m: MortgageRow = fm::table
                .filter(fm::mortgagor_id.eq(holder))
                .filter(fm::created_at.eq(now))
                .order(fm::id.desc())
                .select(MortgageRow::as_select())
                .first(conn)?;
            for p in &parcels {
                diesel::insert_into(fmp::table)
                    .values((fmp::mortgage_id.eq(m.id), fmp::parcel_id.eq(p)))
                    .execute(conn)?;
            }
            add_entry(
                conn,
                &m,
                "applied",
                json!({"parcel_ids": parcels, "lender_id": r.lender_party_id}),
                &actor,
                now,
            )?;
            outcome(conn, m.id)
        },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Appraisal {
    pub value: Dec,
    pub appraiser: String,
    /// professional (a licensed appraiser) or bank_internal.
    pub kind: String,
    pub date: NaiveDate,
    pub report_no: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Insurance {
    pub policy_no: String,
    pub insurer: String,
    pub insured_amount: Dec,
    /// Must be the lender (R12).
    pub beneficiary_party_id: i64,
}

/// The lender completes the mortgage with the loan terms (R12 is checked here).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"secured_amount": "200000.00", "loan_start": "2026-12-01", "loan_end": "2029-11-30",
    "appraisal": {"value": "520000.00", "appraiser": "南平林业资产评估有限公司", "kind": "professional", "date": "2026-11-20", "report_no": "南林评〔2026〕88号"},
    "insurance": {"policy_no": "PICC-NP-2026-7781", "insurer": "中国人民财产保险南平分公司", "insured_amount": "520000.00", "beneficiary_party_id": 3},
    "transfer_ban": false}))]
pub struct CompleteMortgage {
    pub secured_amount: Dec,
    pub loan_start: NaiveDate,
    /// The mortgage's end; not after any parcel's woodland-use term.
    pub loan_end: NaiveDate,
    pub appraisal: Appraisal,
    pub insurance: Insurance,
    /// Required for collectively managed or company forest.
    pub consent: Option<Consent>,
    /// Bars a change of holder while the mortgage lives.
    #[serde(default)]
    pub transfer_ban: bool,
    /// The lender product whose LTV cap applies (`/v1/lender-products`); the R12 default of 50 % without one.
    pub product_code: Option<String>,
}

fn refusal(r: rules::Refusal) -> ApiError {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    ApiError::new(status, r.code, r.message)
}

#[utoipa::path(post, path = "/v1/forest-mortgages/{id}/complete", tag = "forest", operation_id = "completeForestMortgage",
    summary = "The lender completes the terms; the mortgage then awaits its official registration (R14)",
    params(("id" = i64, Path, description = "Mortgage id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = CompleteMortgage,
    responses((status = 200, description = "pending_official_registration", body = MortgageView),
        (status = 409, description = "disputed_forest, mortgage_status", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/forest-mortgages/{id}/complete")]
async fn complete(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<CompleteMortgage>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank])?;
    let r = body.value;
    let secured = fen("secured_amount", r.secured_amount, false)?;
    let appraisal = fen("appraisal.value", r.appraisal.value, false)?;
    let insured = fen(
        "insurance.insured_amount",
        r.insurance.insured_amount,
        false,
    )?;
    if r.appraisal.kind != "professional" && r.appraisal.kind != "bank_internal" {
        return Err(ApiError::invalid_field(
            "appraisal.kind",
            "professional or bank_internal",
        ));
    }
    if r.loan_end <= r.loan_start {
        return Err(ApiError::invalid_field("loan_end", "after loan_start"));
    }
    let (id, actor, now, today) = (
        id.into_inner(),
        who.actor(),
        db::now_micros(state.clock.now()),
        state.clock.today(),
    );
    let w = who.clone();
    idempotency::run(&state, &who, idem, &body.body_hash, KeyPolicy::Optional, StatusCode::OK, move |conn| {
        let m = lock(conn, &w, id, now)?;
        require_lender(&w, &m)?;
        require_status(&m, &["applied"])?;
        require_parties_active(conn, &m)?;
                let parcels: Vec<_> = mortgage_parcels(conn, id)?.into_iter().map(|(p, _)| p).collect();
        for p in &parcels {
            super::freezes::require_changeable(conn, p)?;
        }
        let facts: Vec<ParcelFacts> = parcels
            .iter()
            .map(|p| ParcelFacts {
                certificate_no: &p.certificate_no,
                public_welfare: p.forest_category == "public_welfare",
                registered: p.registered,
                disputed: p.disputed,
                management_form: &p.management_form,
                has_woodland_use: p.rights.split(',').any(|r| r == "woodland_use"),
                woodland_term_end: p.woodland_term_end,
            })
            .collect();
        let terms = Terms {
            loan_end: r.loan_end,
            secured_fen: secured,
            appraisal_fen: appraisal,
            cap_bp: super::products::forest_cap_bp(conn, m.lender_id, r.product_code.as_deref())?,
            professional_appraisal: r.appraisal.kind == "professional",
            insurance_names_lender: r.insurance.beneficiary_party_id == m.lender_id,
            consent: r.consent.as_ref(),
        };
        rules::check(&facts, &terms).map_err(refusal)?;
        let registration_no = format!("NPLQ-{}-{:06}", today.year(), id);
        diesel::update(fm::table.find(id))
            .set((
                fm::status.eq("pending_official_registration"),
                fm::registration_no.eq(&registration_no),
                fm::secured_amount.eq(secured),
                fm::loan_start.eq(r.loan_start),
                fm::loan_end.eq(r.loan_end),
                fm::appraisal_value.eq(appraisal),
                fm::appraiser.eq(&r.appraisal.appraiser),
                fm::appraisal_kind.eq(&r.appraisal.kind),
                fm::appraisal_date.eq(r.appraisal.date),
                fm::appraisal_report_no.eq(&r.appraisal.report_no),
                fm::insurance_policy_no.eq(&r.insurance.policy_no),
                fm::insurer.eq(&r.insurance.insurer),
                fm::insured_amount.eq(insured),
                fm::insurance_beneficiary_id.eq(r.insurance.beneficiary_party_id),
                fm::consent.eq(r.consent.as_ref().map(|c| json!(c).to_string())),
                fm::transfer_ban.eq(r.transfer_ban),
                fm::verification_code.eq(random_code(10)),
                fm::completed_at.eq(now),
                fm::updated_at.eq(now),
            ))
            .execute(conn)?;
        let m = mortgage(conn, id)?.ok_or_else(|| ApiError::not_found("forest mortgage"))?;
        add_entry(conn, &m, "completed", json!({"registration_no": registration_no, "secured_amount": secured, "transfer_ban": r.transfer_ban}), &actor, now)?;
        outcome(conn, id)
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"certificate_no": "闽(2026)顺昌县不动产证明第0004567号", "registered_at": "2026-11-20T10:15:00Z"}))]
pub struct OfficialRegistration {
    /// 不动产登记证明号 issued by the real-estate registration authority. Stored in one form: full-width
    /// ASCII characters (brackets, digits) become half-width and spaces are removed, so "闽（2026）…"
    /// and "闽(2026)…" are the same number.
    pub certificate_no: String,
    /// The official registration time; rank follows it (R14).
    pub registered_at: DateTime<Utc>,
}

#[utoipa::path(post, path = "/v1/forest-mortgages/{id}/official-registration", tag = "forest", operation_id = "recordOfficialRegistration",
    summary = "Enter the real-estate registration certificate (R14); the mortgage ranks once another person, an operator, confirms it",
    params(("id" = i64, Path, description = "Mortgage id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = OfficialRegistration, responses((status = 200, description = "pending_confirmation: entered, no rank yet", body = MortgageView),
        (status = 409, description = "official_certificate_taken: another mortgage carries this certificate number", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "official_time_in_future, official_time_before_completion", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/forest-mortgages/{id}/official-registration")]
async fn official(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<OfficialRegistration>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank, Role::Operator])?;
    let r = body.value;
    // Stored and compared in one form, so full-width brackets or a space cannot register the
    // same certificate twice.
    let certificate_no = rules::certificate_number(&r.certificate_no);
    if certificate_no.is_empty() {
        return Err(ApiError::invalid_field("certificate_no", "required"));
    }
    let at = db::now_micros(r.registered_at);
    let (id, actor, now) = (
        id.into_inner(),
        who.actor(),
        db::now_micros(state.clock.now()),
    );
    if at > now {
        return Err(ApiError::unprocessable(
            "official_time_in_future",
            "the official registration time lies in the future",
        ));
    }
    let w = who.clone();
    idempotency::run(&state, &who, idem, &body.body_hash, KeyPolicy::Optional, StatusCode::OK, move |conn| {
        let m = lock(conn, &w, id, now)?;
        if w.role == Role::Bank {
            require_lender(&w, &m)?;
        }
        require_status(&m, &["pending_official_registration"])?;
        require_parties_active(conn, &m)?;
        if m.completed_at.is_some_and(|c| at < c) {
            return Err(ApiError::unprocessable(
                "official_time_before_completion",
                "the official registration time lies before the mortgage was completed",
            ));
        }
        // Compared in Rust, not by the unique index alone: `第2871号` and the official padded
        // `第0002871号` are one certificate. Certificates are few (one per forest mortgage).
        let entered: Vec<(Option<String>, Option<String>)> = fm::table
            .filter(fm::official_certificate_no.is_not_null())
            .filter(fm::id.ne(id))
            .select((fm::registration_no, fm::official_certificate_no))
            .load(conn)?;
        let taken = entered.into_iter().find_map(|(other, no)| {
            no.is_some_and(|no| rules::same_certificate(&no, &certificate_no))
                .then_some(other)
        });
        if let Some(other) = taken {
            return Err(certificate_taken(&certificate_no, other));
        }
        diesel::update(fm::table.find(id))
            .set((
                fm::status.eq("pending_confirmation"),
                fm::official_certificate_no.eq(&certificate_no),
                fm::official_registered_at.eq(at),
                fm::official_entered_by.eq(&actor),
                fm::updated_at.eq(now),
            ))
            .execute(conn)
            .map_err(|e| match e {
                diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
                    certificate_taken(&certificate_no, None)
                }
                e => e.into(),
            })?;
        let m = mortgage(conn, id)?.ok_or_else(|| ApiError::not_found("forest mortgage"))?;
        add_entry(conn, &m, "official_registration_entered", json!({"official_certificate_no": certificate_no, "registered_at": r.registered_at, "entered_by": actor}), &actor, now)?;
        outcome(conn, id)
    })
    .await
}

fn certificate_taken(certificate_no: &str, other: Option<String>) -> ApiError {
    ApiError::conflict(
        "official_certificate_taken",
        format!(
            "{certificate_no} already registered another mortgage{}",
            other.map(|o| format!(" ({o})")).unwrap_or_default()
        ),
    )
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmOfficial {
    /// What the operator checked it against (e.g. the certificate itself, the authority's register).
    pub note: Option<String>,
}

#[utoipa::path(post, path = "/v1/forest-mortgages/{id}/official-registration/confirm", tag = "forest", operation_id = "confirmOfficialRegistration",
    summary = "An operator other than the person who entered it confirms the official registration; the mortgage now ranks by its official time (R14)",
    params(("id" = i64, Path, description = "Mortgage id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = ConfirmOfficial, responses((status = 200, description = "Registered, with its rank", body = MortgageView),
        (status = 403, description = "maker_checker: the person who entered it cannot confirm it", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/forest-mortgages/{id}/official-registration/confirm")]
async fn confirm_official(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<ConfirmOfficial>,
) -> ApiResult<HttpResponse> {
    decide_official(state, who, idem, id.into_inner(), body, true).await
}

#[utoipa::path(post, path = "/v1/forest-mortgages/{id}/official-registration/reject", tag = "forest", operation_id = "rejectOfficialRegistration",
    summary = "An operator other than the person who entered it rejects the entered official registration; it may be entered again",
    params(("id" = i64, Path, description = "Mortgage id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = ConfirmOfficial, responses((status = 200, description = "Back to pending_official_registration", body = MortgageView)))]
#[post("/v1/forest-mortgages/{id}/official-registration/reject")]
async fn reject_official(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<ConfirmOfficial>,
) -> ApiResult<HttpResponse> {
    decide_official(state, who, idem, id.into_inner(), body, false).await
}

async fn decide_official(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: i64,
    body: ApiJson<ConfirmOfficial>,
    confirm: bool,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let note = body.value.note;
    let (actor, now) = (who.actor(), db::now_micros(state.clock.now()));
    let w = who.clone();
    idempotency::run(&state, &who, idem, &body.body_hash, KeyPolicy::Optional, StatusCode::OK, move |conn| {
        let m = lock(conn, &w, id, now)?;
        require_status(&m, &["pending_confirmation"])?;
        if confirm {
            require_parties_active(conn, &m)?;
        }
        let entered_by = m.official_entered_by.clone().unwrap_or_default();
        if crate::proposals::same_person_as(conn, &entered_by, &w)? {
            let mut e = ApiError::forbidden("maker-checker: the person who entered the official registration cannot also confirm or reject it");
            e.code = "maker_checker";
            return Err(e);
        }
        if !confirm {
            diesel::update(fm::table.find(id))
                .set((
                    fm::status.eq("pending_official_registration"),
                    fm::official_certificate_no.eq(None::<String>),
                    fm::official_registered_at.eq(None::<NaiveDateTime>),
                    fm::official_entered_by.eq(None::<String>),
                    fm::updated_at.eq(now),
                ))
                .execute(conn)?;
            add_entry(conn, &m, "official_registration_rejected", json!({"official_certificate_no": m.official_certificate_no, "note": note}), &actor, now)?;
            return outcome(conn, id);
        }
        diesel::update(fm::table.find(id))
            .set((
                fm::status.eq("registered"),
                fm::official_confirmed_by.eq(&actor),
                fm::updated_at.eq(now),
            ))
            .execute(conn)?;
        // Keep each parcel's rank at registration for the history.
        let parcels: Vec<i64> = fmp::table.filter(fmp::mortgage_id.eq(id)).select(fmp::parcel_id).load(conn)?;
        for p in parcels {
            let rank = current_rank(conn, p, id)?;
            diesel::update(fmp::table.filter(fmp::mortgage_id.eq(id)).filter(fmp::parcel_id.eq(p)))
                .set(fmp::rank_at_registration.eq(rank))
                .execute(conn)?;
        }
        let m = mortgage(conn, id)?.ok_or_else(|| ApiError::not_found("forest mortgage"))?;
        add_entry(conn, &m, "registered", json!({"official_certificate_no": m.official_certificate_no, "registered_at": m.official_registered_at.map(|t| t.and_utc()),
            "entered_by": m.official_entered_by, "confirmed_by": actor, "note": note}), &actor, now)?;
        outcome(conn, id)
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseMortgage {
    /// The official deregistration document (注销登记).
    pub document_ref: String,
}

#[utoipa::path(post, path = "/v1/forest-mortgages/{id}/release", tag = "forest", operation_id = "releaseForestMortgage",
    summary = "The lender releases the mortgage; later mortgages move up in rank",
    params(("id" = i64, Path, description = "Mortgage id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = ReleaseMortgage, responses((status = 200, description = "Released", body = MortgageView)))]
#[post("/v1/forest-mortgages/{id}/release")]
async fn release(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<ReleaseMortgage>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank])?;
    let doc = body.value.document_ref.trim().to_string();
    if doc.is_empty() {
        return Err(ApiError::invalid_field("document_ref", "required"));
    }
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
            let m = lock(conn, &w, id, now)?;
            require_lender(&w, &m)?;
            require_status(
                &m,
                &[
                    "pending_official_registration",
                    "pending_confirmation",
                    "registered",
                ],
            )?;
            diesel::update(fm::table.find(id))
                .set((fm::status.eq("released"), fm::updated_at.eq(now)))
                .execute(conn)?;
            add_entry(
                conn,
                &m,
                "released",
                json!({"document_ref": doc}),
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
#[schema(example = json!({"principal": "200000.00", "interest": "9100.50", "costs": "1200.00"}))]
pub struct EnforceMortgage {
    pub principal: Dec,
    pub interest: Dec,
    pub costs: Dec,
}

#[utoipa::path(post, path = "/v1/forest-mortgages/{id}/enforce", tag = "forest", operation_id = "enforceForestMortgage",
    summary = "The lender declares default and its outstanding claim",
    params(("id" = i64, Path, description = "Mortgage id"), ("Idempotency-Key" = String, Header, description = "Required")),
    request_body = EnforceMortgage, responses((status = 200, description = "Enforcing", body = MortgageView)))]
#[post("/v1/forest-mortgages/{id}/enforce")]
async fn enforce(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<EnforceMortgage>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank])?;
    let r = body.value;
    let claim = [
        fen("principal", r.principal, true)?,
        fen("interest", r.interest, true)?,
        fen("costs", r.costs, true)?,
    ]
    .into_iter()
    .try_fold(0i64, |a, b| a.checked_add(b))
    .ok_or_else(|| ApiError::invalid_field("principal", "is too large"))?;
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
            let m = lock(conn, &w, id, now)?;
            require_lender(&w, &m)?;
            require_status(&m, &["registered"])?;
            diesel::update(fm::table.find(id))
                .set((
                    fm::status.eq("enforcing"),
                    fm::claim_amount.eq(claim),
                    fm::claim_detail.eq(&detail),
                    fm::updated_at.eq(now),
                ))
                .execute(conn)?;
            add_entry(
                conn,
                &m,
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

/// The exchange's sale of the mortgaged parcels (until the market module runs disposal).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"proceeds": "500000.00", "buyer_party_id": 9,
    "parcel_proceeds": [{"parcel_id": 1, "proceeds": "400000.00"}, {"parcel_id": 2, "proceeds": "100000.00"}]}))]
pub struct DisposeMortgage {
    /// The whole sale.
    pub proceeds: Dec,
    pub buyer_party_id: i64,
    /// What each parcel sold for; required when the mortgage burdens more than one parcel, and
    /// adding up to `proceeds`. Each parcel's proceeds pay the mortgages on that parcel only.
    pub parcel_proceeds: Option<Vec<ParcelProceeds>>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParcelProceeds {
    pub parcel_id: i64,
    pub proceeds: Dec,
}

/// Each parcel's proceeds in fen, in parcel id order, checked against the parcels sold.
fn proceeds_by_parcel(
    parcels: &[i64],
    total: i64,
    given: Option<&[ParcelProceeds]>,
) -> ApiResult<Vec<(i64, i64)>> {
    let Some(given) = given else {
        return match parcels {
            [one] => Ok(vec![(*one, total)]),
            _ => Err(ApiError::unprocessable(
                "parcel_proceeds_required",
                "the mortgage burdens several parcels: state what each sold for (parcel_proceeds), \
                 since each parcel's proceeds pay only the mortgages on that parcel",
            )),
        };
    };
    let mut out = Vec::new();
    for p in parcels {
        let mut of_p = given.iter().filter(|g| g.parcel_id == *p);
        let (Some(g), None) = (of_p.next(), of_p.next()) else {
            return Err(ApiError::invalid_field(
                "parcel_proceeds",
                format!("name parcel {p} exactly once"),
            ));
        };
        out.push((*p, fen("parcel_proceeds.proceeds", g.proceeds, true)?));
    }
    if given.len() != parcels.len() {
        return Err(ApiError::invalid_field(
            "parcel_proceeds",
            "names a parcel the mortgage does not burden",
        ));
    }
    if out.iter().map(|(_, f)| *f).sum::<i64>() != total {
        return Err(ApiError::invalid_field(
            "parcel_proceeds",
            "the parcels' proceeds do not add up to proceeds",
        ));
    }
    Ok(out)
}

#[utoipa::path(post, path = "/v1/forest-mortgages/{id}/dispose", tag = "forest", operation_id = "disposeForestMortgage",
    summary = "An operator proposes the sale; once a second operator approves, each parcel's proceeds pay the registered mortgages on that parcel by their ranks there, each up to its claim; the rest of each parcel to its holder",
    description = "Checked now and again at approval (`POST /v1/proposals/{id}/approve`, by another person); the sale happens at approval.",
    params(("id" = i64, Path, description = "Mortgage id"), ("Idempotency-Key" = String, Header, description = "Required")),
    request_body = DisposeMortgage, responses((status = 202, description = "Proposed", body = crate::proposals::ProposalView),
        (status = 409, description = "parcel_frozen: a sold parcel is under a judicial freeze", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "parcel_proceeds_required", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/forest-mortgages/{id}/dispose")]
async fn dispose(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<DisposeMortgage>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let r = body.value;
    fen("proceeds", r.proceeds, true)?;
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
            let asked = ForestDisposal {
                mortgage_id: id,
                sale: r,
            };
            execute_disposal(conn, &asked, &actor, now, false)?;
            let row = crate::proposals::propose(
                conn,
                crate::proposals::ProposalKind::ForestDisposal,
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

/// What a forest-mortgage disposal proposal stores.
#[derive(Debug, Deserialize, Serialize)]
pub struct ForestDisposal {
    pub mortgage_id: i64,
    pub sale: DisposeMortgage,
}

/// Checks a disposal (buyer, parcels' proceeds, no frozen parcel) and, when `carry_out`, sells.
pub fn execute_disposal(
    conn: &mut DbConn,
    d: &ForestDisposal,
    actor: &str,
    now: NaiveDateTime,
    carry_out: bool,
) -> ApiResult<serde_json::Value> {
    let (id, r) = (d.mortgage_id, &d.sale);
    let proceeds = fen("proceeds", r.proceeds, true)?;
    let m = lock_parcels(conn, id, now)?;
    require_status(&m, &["enforcing"])?;
    let buyer = crate::parties::store::find(conn, r.buyer_party_id)?;
    if buyer.is_none_or(|b| b.kind == "bank" || b.kind == "regulator") {
        return Err(ApiError::invalid_field(
            "buyer_party_id",
            "a registered enterprise or individual",
        ));
    }
    // The mortgagor may have ended (its lender still enforces); the buyer takes part anew.
    crate::parties::store::require_active(conn, r.buyer_party_id)?;
    let parcels: Vec<i64> = fmp::table
        .filter(fmp::mortgage_id.eq(id))
        .select(fmp::parcel_id)
        .order(fmp::parcel_id)
        .load(conn)?;
    let by_parcel = proceeds_by_parcel(&parcels, proceeds, r.parcel_proceeds.as_deref())?;
    // Courts come first: no frozen parcel is sold until the freeze is lifted.
    for (p, _) in mortgage_parcels(conn, id)? {
        super::freezes::require_unfrozen(conn, &p)?;
    }
    if !carry_out {
        return Ok(serde_json::Value::Null);
    }
    // Each parcel with its own registered mortgages in its own rank order (R9, R14).
    let mut sales = Vec::new();
    let mut burdens: Vec<MortgageRow> = Vec::new();
    for (p, parcel_proceeds) in &by_parcel {
        let ranked = mortgages_on(conn, *p, &RANKED)?;
        sales.push(rules::ParcelSale {
            parcel_id: *p,
            proceeds: *parcel_proceeds,
            ranked: ranked.iter().map(|b| b.id).collect(),
        });
        for b in ranked {
            if !burdens.iter().any(|x| x.id == b.id) {
                burdens.push(b);
            }
        }
    }
    let claims: Vec<(i64, rules::SecuredClaim)> = burdens
        .iter()
        .map(|b| {
            let secured = b.secured_amount.unwrap_or(0);
            let claim = b.claim_amount.unwrap_or(secured);
            (b.id, rules::SecuredClaim { claim, secured })
        })
        .collect();
    let paid = rules::waterfall(&sales, &claims);
    let mut to_holders = Vec::new();
    for (p, rest) in &paid.to_holders {
        to_holders
            .push(json!({"parcel_id": p, "holders": super::holders(conn, *p)?, "amount": rest}));
    }
    let rest: i64 = paid.to_holders.iter().map(|(_, r)| *r).sum();
    for b in &burdens {
        let amount = paid.paid_to(b.id);
        let from_parcels: Vec<_> = paid
            .payments
            .iter()
            .filter(|x| x.mortgage_id == b.id)
            .map(|x| json!({"parcel_id": x.parcel_id, "amount": x.amount}))
            .collect();
        let remainder = (b.id == id).then_some(rest);
        let sold_of_b: Vec<i64> = sales
            .iter()
            .filter(|s| s.ranked.contains(&b.id))
            .map(|s| s.parcel_id)
            .collect();
        let kept: Vec<i64> = fmp::table
            .filter(fmp::mortgage_id.eq(b.id))
            .filter(fmp::parcel_id.ne_all(&sold_of_b))
            .select(fmp::parcel_id)
            .order(fmp::parcel_id)
            .load(conn)?;
        let claim = claims
            .iter()
            .find(|(c, _)| *c == b.id)
            .map_or(0, |(_, c)| c.payable());
        let paid_before = b.paid_to_lender.unwrap_or(0);
        match rules::after_sale(kept.len(), claim, amount) {
            rules::AfterSale::Ends => {
                diesel::update(fm::table.find(b.id))
                    .set((
                        fm::status.eq("disposed"),
                        fm::proceeds.eq(b.proceeds.unwrap_or(0) + proceeds),
                        fm::paid_to_lender.eq(paid_before + amount),
                        fm::paid_to_mortgagor.eq(remainder),
                        fm::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                add_entry(
                    conn,
                    b,
                    "disposal",
                    json!({"proceeds": proceeds, "parcel_proceeds": by_parcel, "paid_to_lender": amount,
                    "paid_from_parcels": from_parcels, "to_holders": to_holders, "buyer": r.buyer_party_id}),
                    actor,
                    now,
                )?;
            }
            rules::AfterSale::Remains => {
                // The sold parcels pass to the buyer free of this mortgage; on its other parcels
                // it stays registered, at its rank there, securing what is still unpaid.
                let ranks_at_sale = sold_of_b
                    .iter()
                    .map(|p| Ok(json!({"parcel_id": p, "rank": current_rank(conn, *p, b.id)?})))
                    .collect::<ApiResult<Vec<_>>>()?;
                diesel::delete(
                    fmp::table
                        .filter(fmp::mortgage_id.eq(b.id))
                        .filter(fmp::parcel_id.eq_any(&sold_of_b)),
                )
                .execute(conn)?;
                let less = |v: Option<i64>| v.map(|v| (v - amount).max(0));
                let (secured_left, claim_left) = (less(b.secured_amount), less(b.claim_amount));
                diesel::update(fm::table.find(b.id))
                    .set((
                        fm::secured_amount.eq(secured_left),
                        fm::claim_amount.eq(claim_left),
                        fm::paid_to_lender.eq(paid_before + amount),
                        fm::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                add_entry(
                    conn,
                    b,
                    "parcels_sold",
                    json!({"sold_parcels": ranks_at_sale, "proceeds": proceeds, "parcel_proceeds": by_parcel,
                    "paid_to_lender": amount, "paid_from_parcels": from_parcels, "buyer": r.buyer_party_id,
                    "secured_amount": secured_left, "claim_amount": claim_left, "remaining_parcels": kept,
                    "sold_by": d.mortgage_id}),
                    actor,
                    now,
                )?;
            }
        }
    }
    for p in &parcels {
        super::set_holders(conn, *p, &[(r.buyer_party_id, 10_000)])?;
    }
    Ok(outcome(conn, id)?.body)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MortgageQuery {
    pub status: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/forest-mortgages", tag = "forest", operation_id = "listForestMortgages",
    summary = "Forest mortgages the caller is party to (all for operators and regulators)",
    params(MortgageQuery), responses((status = 200, description = "A page", body = Page<MortgageView>)))]
#[get("/v1/forest-mortgages")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<MortgageQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let (after, limit) = PageParams {
        cursor: q.cursor,
        limit: q.limit,
    }
    .resolve()?;
    let page = state
        .db(move |conn| {
            let mut query = fm::table
                .filter(fm::id.gt(after))
                .order(fm::id)
                .limit(limit + 1)
                .select(MortgageRow::as_select())
                .into_boxed();
            if !who.role.sees_all() {
                let me = who.party_id.unwrap_or(-1);
                query = query.filter(fm::mortgagor_id.eq(me).or(fm::lender_id.eq(me)));
            }
            if let Some(s) = q.status {
                query = query.filter(fm::status.eq(s));
            }
            let rows: Vec<MortgageRow> = query.load(conn)?;
            let views = rows
                .into_iter()
                .map(|m| view(conn, m))
                .collect::<ApiResult<Vec<_>>>()?;
            Ok(Page::from_rows(views, limit, |v| v.id))
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(get, path = "/v1/forest-mortgages/{id}", tag = "forest", operation_id = "getForestMortgage", summary = "A forest mortgage with its entries",
    params(("id" = i64, Path, description = "Mortgage id")), responses((status = 200, description = "The mortgage", body = MortgageView)))]
#[get("/v1/forest-mortgages/{id}")]
async fn get_one(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let v = state
        .db(move |conn| {
            let m = visible(conn, &who, id)?;
            view(conn, m)
        })
        .await?;
    Ok(HttpResponse::Ok().json(v))
}
