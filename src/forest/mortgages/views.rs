//! What a forest mortgage looks like to its parties, and the endpoints that only read: list, one mortgage.

use super::*;

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
    let entries = entry_views::<MortgageRow>(conn, m.id)?;
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
pub(super) async fn list(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<MortgageQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let page = PageParams {
        cursor: q.cursor,
        limit: q.limit,
    };
    listing::list::<MortgageRow>(state, who, page, q.status, ()).await
}

#[utoipa::path(get, path = "/v1/forest-mortgages/{id}", tag = "forest", operation_id = "getForestMortgage", summary = "A forest mortgage with its entries",
    params(("id" = i64, Path, description = "Mortgage id")), responses((status = 200, description = "The mortgage", body = MortgageView)))]
#[get("/v1/forest-mortgages/{id}")]
pub(super) async fn get_one(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    listing::get_one::<MortgageRow>(state, who, id.into_inner()).await
}
