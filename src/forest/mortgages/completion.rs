//! The lender completes the terms: R12 (appraisal, insurance, consent, loan-to-value) is checked here.

use super::*;

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

pub(super) fn refusal(r: rules::Refusal) -> ApiError {
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
pub(super) async fn complete(
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
            crate::forest::freezes::require_changeable(conn, p)?;
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
            cap_bp: crate::forest::products::forest_cap_bp(conn, m.lender_id, r.product_code.as_deref())?,
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
        encumbrance::recorded(conn, &m, "completed", json!({"registration_no": registration_no, "secured_amount": secured, "transfer_ban": r.transfer_ban}), &actor, now)
    })
    .await
}
