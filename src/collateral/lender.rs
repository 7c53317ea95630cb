//! The lender API (docs/design.md §5): search every live encumbrance of a grantor or an asset,
//! verify one by registration number (with a verification code, without login), and signed search
//! certificates that anyone can verify offline with the published registry keys.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use ed25519_dalek::Signer;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use super::freezes::{self, FreezeRow};
use super::pledges::{self, EntryView};
use super::{PledgeRow, LIVE};
use crate::audit::{canonical, key_id};
use crate::auth::{MaybePrincipal, Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::forest::mortgages::MortgagedParcel;
use crate::forest::MortgageRow;
use crate::kernel::amount::Dec;
use crate::kernel::json::ApiJson;
use crate::kernel::state::AppState;
use crate::parties::routes::parse_uscc;
use crate::parties::store::{self as parties, PartyRow};
use crate::parties::uscc::{IdNumber, IdNumberError};
use crate::rights::store as rights;
use crate::schema::{parties as pt, pledges as pl, search_certificates as sc};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(search)
        .service(verify)
        .service(certify)
        .service(get_certificate)
        .service(registry_keys);
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartyRef {
    pub party_id: i64,
    pub name_zh: String,
    pub uscc: Option<String>,
    /// Individuals: the ID number, masked to its province (R15).
    pub id_number_masked: Option<String>,
}

impl From<PartyRow> for PartyRef {
    fn from(p: PartyRow) -> Self {
        PartyRef {
            party_id: p.id,
            name_zh: p.name_zh,
            uscc: p.uscc,
            id_number_masked: p.id_number_masked,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AssetRef {
    pub lot_id: i64,
    pub certificate_no: String,
    pub right_type: String,
    pub sub_kind: Option<String>,
    /// The quantity encumbered. For a pledge in enforcement it includes what is on offer for its
    /// disposal (`on_offer`), which stays under the pledge until it is sold.
    pub quantity: Dec,
    /// Of `quantity`, what is on offer for the pledge's disposal (open listings, scheduled
    /// auctions, sales awaiting payment); absent when nothing is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_offer: Option<Dec>,
}

/// What every authenticated bank may see of an encumbrance (docs/design.md §5).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Notice {
    /// `pledge` or `judicial_freeze`.
    pub kind: String,
    pub registration_no: String,
    /// registered, enforcing, released, lapsed, disposed (pledges); active, lifted (freezes).
    pub status: String,
    /// The encumbered quantity of a lot (pledges, freezes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset: Option<AssetRef>,
    /// The mortgaged parcels with their ranks (forest mortgages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parcels: Option<Vec<MortgagedParcel>>,
    pub grantor: PartyRef,
    /// The pledgee; absent for judicial freezes.
    pub lender: Option<PartyRef>,
    /// Priority among encumbrances on the asset (R9).
    pub rank: Option<i32>,
    pub secured_amount: Option<Dec>,
    pub registered_at: Option<DateTime<Utc>>,
    pub period_end: Option<NaiveDate>,
    pub loan_maturity: Option<NaiveDate>,
    pub pboc_registration_no: Option<String>,
    /// Objections (异议登记) standing against this registration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objections: Vec<super::objections::ObjectionView>,
    /// Judicial freezes: the court, case and order.
    pub court: Option<String>,
    pub case_no: Option<String>,
    pub document_ref: Option<String>,
}

fn party_ref(conn: &mut DbConn, id: i64) -> ApiResult<PartyRef> {
    Ok(parties::find(conn, id)?
        .ok_or_else(|| ApiError::internal("party vanished"))?
        .into())
}

fn asset(conn: &mut DbConn, lot_id: i64, quantity: i64) -> ApiResult<AssetRef> {
    let lot = rights::lot(conn, lot_id)?.ok_or_else(|| ApiError::internal("lot vanished"))?;
    Ok(AssetRef {
        lot_id,
        certificate_no: lot.certificate_no,
        right_type: lot.right_type,
        sub_kind: lot.sub_kind,
        quantity: Dec::qty(quantity),
        on_offer: None,
    })
}

pub fn pledge_notice(conn: &mut DbConn, p: &PledgeRow) -> ApiResult<Notice> {
    let encumbered = asset(conn, p.lot_id, 0)?;
    let grantor = party_ref(conn, p.pledgor_id)?;
    let lender = party_ref(conn, p.lender_id)?;
    pledge_notice_of(conn, p, encumbered, grantor, lender)
}

/// A pledge with its lot, grantor and lender, read in one statement.
type PledgeWithRefs = (
    PledgeRow,
    (String, String, Option<String>),
    (i64, String, Option<String>, Option<String>),
    (i64, String, Option<String>, Option<String>),
);

/// The pledge registered as `no` with what its notice names (lot, grantor, lender), in one
/// statement.
fn pledge_by_registration(
    conn: &mut DbConn,
    no: &str,
) -> QueryResult<Option<(PledgeRow, AssetRef, PartyRef, PartyRef)>> {
    use crate::schema::lots as lt;
    let (grantor, lender) = diesel::alias!(pt as grantor, pt as lender);
    let row: Option<PledgeWithRefs> = pl::table
        .inner_join(lt::table)
        .inner_join(grantor.on(grantor.field(pt::id).eq(pl::pledgor_id)))
        .inner_join(lender.on(lender.field(pt::id).eq(pl::lender_id)))
        .filter(pl::registration_no.eq(no))
        .select((
            PledgeRow::as_select(),
            (lt::certificate_no, lt::right_type, lt::sub_kind),
            grantor.fields((pt::id, pt::name_zh, pt::uscc, pt::id_number_masked)),
            lender.fields((pt::id, pt::name_zh, pt::uscc, pt::id_number_masked)),
        ))
        .first(conn)
        .optional()?;
    let party = |(party_id, name_zh, uscc, id_number_masked)| PartyRef {
        party_id,
        name_zh,
        uscc,
        id_number_masked,
    };
    Ok(
        row.map(|(p, (certificate_no, right_type, sub_kind), g, l)| {
            let asset = AssetRef {
                lot_id: p.lot_id,
                certificate_no,
                right_type,
                sub_kind,
                quantity: Dec::qty(0),
                on_offer: None,
            };
            (p, asset, party(g), party(l))
        }),
    )
}

/// A pledge's notice from what was already read of its lot and parties.
fn pledge_notice_of(
    conn: &mut DbConn,
    p: &PledgeRow,
    mut encumbered: AssetRef,
    grantor: PartyRef,
    lender: PartyRef,
) -> ApiResult<Notice> {
    // Quantity offered for the pledge's disposal has left its pledged bucket but not the pledge:
    // the notice states both, so an offer never reads as an empty pledge.
    let on_offer = if p.status == "enforcing" {
        crate::market::trades::pledge_quantity_on_offer(conn, p.id)?
    } else {
        0
    };
    encumbered.quantity = Dec::qty(p.quantity + on_offer);
    encumbered.on_offer = (on_offer > 0).then(|| Dec::qty(on_offer));
    Ok(Notice {
        kind: "pledge".into(),
        registration_no: p.registration_no.clone().unwrap_or_default(),
        status: p.status.clone(),
        asset: Some(encumbered),
        parcels: None,
        grantor,
        lender: Some(lender),
        rank: p.rank,
        secured_amount: p.secured_amount.map(Dec::money),
        registered_at: p.registered_at.map(|t| t.and_utc()),
        period_end: p.period_end,
        loan_maturity: p.loan_maturity,
        pboc_registration_no: p.pboc_registration_no.clone(),
        objections: super::objections::active_for(
            conn,
            p.registration_no.as_deref().unwrap_or(""),
        )?,
        court: None,
        case_no: None,
        document_ref: None,
    })
}

fn freeze_notice(conn: &mut DbConn, f: &FreezeRow) -> ApiResult<Notice> {
    Ok(Notice {
        kind: "judicial_freeze".into(),
        registration_no: f.registration_no(),
        status: f.status.clone(),
        asset: Some(asset(conn, f.lot_id, f.quantity)?),
        parcels: None,
        grantor: party_ref(conn, f.party_id)?,
        lender: None,
        rank: None,
        secured_amount: None,
        registered_at: Some(f.ordered_at.and_utc()),
        period_end: None,
        loan_maturity: None,
        pboc_registration_no: None,
        objections: Vec::new(),
        court: Some(f.court.clone()),
        case_no: Some(f.case_no.clone()),
        document_ref: Some(f.document_ref.clone()),
    })
}

/// Whom or what to search: one of the four. An enterprise or individual user may give none, to
/// search its own encumbrances.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
#[schema(example = json!({"grantor_uscc": "91350702MA2XYZ1234"}))]
pub struct SearchQuery {
    /// The grantor's unified social credit code.
    pub grantor_uscc: Option<String>,
    /// An individual grantor's full ID number (R15); never echoed back.
    #[serde(skip_serializing)]
    pub grantor_id_number: Option<String>,
    /// One asset: a lot.
    pub lot_id: Option<i64>,
    /// One asset: a forest parcel.
    pub parcel_id: Option<i64>,
}

/// A forest mortgage's notice: parcels and ranks instead of a quantity.
pub fn forest_notice(conn: &mut DbConn, m: &MortgageRow) -> ApiResult<Notice> {
    let parcels = crate::forest::mortgages::parcel_ranks(conn, m)?;
    Ok(Notice {
        kind: "forest_mortgage".into(),
        registration_no: m.registration_no.clone().unwrap_or_default(),
        status: m.status.clone(),
        asset: None,
        rank: parcels.first().and_then(|p| p.rank),
        parcels: Some(parcels),
        grantor: party_ref(conn, m.mortgagor_id)?,
        lender: Some(party_ref(conn, m.lender_id)?),
        secured_amount: m.secured_amount.map(Dec::money),
        // An entered but unconfirmed official registration has no time (nor rank) yet (R14).
        registered_at: m
            .official_registered_at
            .filter(|_| m.status != "pending_confirmation")
            .map(|t| t.and_utc()),
        period_end: None,
        loan_maturity: m.loan_end,
        pboc_registration_no: None,
        objections: super::objections::active_for(
            conn,
            m.registration_no.as_deref().unwrap_or(""),
        )?,
        court: None,
        case_no: None,
        document_ref: m.official_certificate_no.clone(),
    })
}

/// Live forest mortgages of a grantor: those it gave, and those on parcels it now holds.
fn forest_of_party(conn: &mut DbConn, party: i64) -> ApiResult<Vec<MortgageRow>> {
    use crate::schema::{forest_mortgage_parcels as fmp, forest_mortgages as fm};
    let held = fmp::table
        .filter(fmp::parcel_id.eq_any(crate::parcels_held_by!(party)))
        .select(fmp::mortgage_id);
    Ok(fm::table
        .filter(fm::mortgagor_id.eq(party).or(fm::id.eq_any(held)))
        .filter(fm::status.eq_any(crate::forest::LIVE))
        .order(fm::id)
        .select(MortgageRow::as_select())
        .load(conn)?)
}

/// What a search found, and whom it was about.
#[derive(Debug, Clone)]
pub struct Found {
    /// The query as the registry read it: a credit code in capitals.
    pub query: SearchQuery,
    /// For a search by grantor, whether the registry knows a party of that identity.
    pub grantor_registered: Option<bool>,
    /// The grantor searched, when registered.
    pub grantor: Option<PartyRef>,
    pub encumbrances: Vec<Notice>,
}

/// An ID number as a query names it, or a 422 that says what is wrong with it (R15).
fn parse_id_number(field: &str, raw: &str) -> ApiResult<IdNumber> {
    IdNumber::parse(raw).map_err(|e| {
        let mut err = ApiError::invalid_field(field, e.to_string());
        err.code = match e {
            IdNumberError::CheckDigit { .. } => "id_number_check_digit",
            _ => "id_number_invalid",
        };
        err
    })
}

/// Every live encumbrance (registered or enforcing pledges, active freezes) matching the query.
///
/// A grantor's identity is checked before anything is looked up: a mistyped credit code or ID
/// number is a 422 naming the mistake, and a well-formed one that no party has answers
/// `grantor_registered: false`, so that an empty list never reads as "no encumbrances" for a
/// grantor the registry does not know.
///
/// `own`: the caller's own party, searched as the grantor when the query names nothing (an
/// enterprise or individual user looking at itself).
fn run_search(
    conn: &mut DbConn,
    who: &Principal,
    q: &SearchQuery,
    own: Option<PartyRow>,
    ctx: &SearchCtx,
) -> ApiResult<Found> {
    let assets = usize::from(q.lot_id.is_some()) + usize::from(q.parcel_id.is_some());
    if assets > 1 || (assets == 1 && (q.grantor_uscc.is_some() || q.grantor_id_number.is_some())) {
        return Err(ApiError::invalid_field(
            "query",
            "give exactly one of grantor_uscc, grantor_id_number, lot_id, parcel_id",
        ));
    }
    let asset_query = if assets == 1 { Some(0) } else { None };
    let mut query = q.clone();
    let grantor_row: Option<Option<PartyRow>> =
        match (&q.grantor_uscc, &q.grantor_id_number, asset_query) {
            (Some(u), None, None) => {
                let code = parse_uscc("grantor_uscc", u)?;
                query.grantor_uscc = Some(code.as_str().to_string());
                Some(parties::find_by_uscc(conn, code.as_str())?)
            }
            (None, Some(n), None) => {
                let hash = parse_id_number("grantor_id_number", n)?.keyed_hash(&ctx.id_key);
                // Audited and, for banks, counted against the daily quota before anything is
                // looked up: the answer says whether such a person is registered.
                crate::parties::lookups::charge(conn, who, &hash, ctx.route, ctx.quota, ctx.now)?;
                Some(
                    pt::table
                        .filter(pt::id_number_hash.eq(hash))
                        .select(PartyRow::as_select())
                        .first(conn)
                        .optional()?,
                )
            }
            (None, None, Some(_)) => None,
            (None, None, None) if own.is_some() => Some(own),
            _ => {
                return Err(ApiError::invalid_field(
                    "query",
                    "give exactly one of grantor_uscc, grantor_id_number, lot_id, parcel_id",
                ))
            }
        };
    let grantor: Option<Option<i64>> = grantor_row.as_ref().map(|row| row.as_ref().map(|p| p.id));
    // An asset the registry does not hold has no encumbrances to show, and saying so with an
    // empty list would read as "unencumbered".
    if let Some(lot) = q.lot_id {
        if rights::lot(conn, lot)?.is_none() {
            return Err(ApiError::not_found("lot"));
        }
    }
    if let Some(parcel) = q.parcel_id {
        if crate::forest::parcel(conn, parcel)?.is_none() {
            return Err(ApiError::not_found("forest parcel"));
        }
    }
    let mut found = Found {
        query,
        grantor_registered: grantor.map(|g| g.is_some()),
        grantor: grantor_row.flatten().map(PartyRef::from),
        encumbrances: Vec::new(),
    };
    let forest_rows = match (grantor, q.parcel_id) {
        (Some(Some(party)), _) => forest_of_party(conn, party)?,
        (None, Some(parcel)) => crate::forest::mortgages_on(conn, parcel, &crate::forest::LIVE)?,
        _ => Vec::new(),
    };
    let (pledge_rows, freeze_rows): (Vec<PledgeRow>, Vec<FreezeRow>) = match grantor {
        Some(None) => return Ok(found),
        Some(Some(party)) => (
            pl::table
                .filter(pl::pledgor_id.eq(party))
                .filter(pl::status.eq_any(LIVE))
                .order(pl::id)
                .select(PledgeRow::as_select())
                .load(conn)?,
            freezes::active_for_party(conn, party)?,
        ),
        None => {
            let lot = q.lot_id.unwrap_or(-1);
            (
                pl::table
                    .filter(pl::lot_id.eq(lot))
                    .filter(pl::status.eq_any(LIVE))
                    .order(pl::id)
                    .select(PledgeRow::as_select())
                    .load(conn)?,
                freezes::active_for_lot(conn, lot)?,
            )
        }
    };
    let mut out = Vec::new();
    for p in &pledge_rows {
        out.push(pledge_notice(conn, p)?);
    }
    for f in &freeze_rows {
        out.push(freeze_notice(conn, f)?);
    }
    for m in &forest_rows {
        out.push(forest_notice(conn, m)?);
    }
    let parcel_freezes = match (grantor, q.parcel_id) {
        (Some(Some(party)), _) => crate::forest::freezes::active_for_holder(conn, party)?,
        (None, Some(parcel)) => crate::forest::freezes::active(conn, parcel)?,
        _ => Vec::new(),
    };
    for f in &parcel_freezes {
        out.push(parcel_freeze_notice(conn, f)?);
    }
    found.encumbrances = out;
    Ok(found)
}

/// Banks, operators and regulators search anyone; an enterprise or individual only itself: with
/// no query at all (its own party, which serves an individual who has no credit code and whose ID
/// number the registry keeps only as a keyed hash, R15), or by its own credit code or ID number.
/// Returns the caller's own party when the search is of it without naming it.
fn may_search(
    conn: &mut DbConn,
    who: &Principal,
    q: &SearchQuery,
    id_key: &[u8],
) -> ApiResult<Option<PartyRow>> {
    match who.role {
        Role::Bank | Role::Operator | Role::Regulator => Ok(None),
        Role::UserAdmin => Err(ApiError::forbidden("the user_admin role may not do this")),
        Role::Enterprise => {
            let own = who
                .party_id
                .map(|p| parties::find(conn, p))
                .transpose()?
                .flatten();
            let refused =
                || ApiError::forbidden("enterprises may search only their own encumbrances");
            let Some(own) = own else {
                return Err(refused());
            };
            match (&q.grantor_uscc, &q.grantor_id_number, q.lot_id, q.parcel_id) {
                (None, None, None, None) => Ok(Some(own)),
                (Some(u), None, None, None) => {
                    let code = parse_uscc("grantor_uscc", u)?;
                    match own.uscc.as_deref() == Some(code.as_str()) {
                        true => Ok(None),
                        false => Err(refused()),
                    }
                }
                (None, Some(n), None, None) => {
                    let hash = parse_id_number("grantor_id_number", n)?.keyed_hash(id_key);
                    match own.id_number_hash.as_deref() == Some(hash.as_str()) {
                        true => Ok(None),
                        false => Err(refused()),
                    }
                }
                _ => Err(refused()),
            }
        }
    }
}

/// What a search needs besides the query: the ID-number key, the look-up quota and the time, and
/// the route it came through (recorded with each look-up by ID number).
#[derive(Clone)]
pub struct SearchCtx {
    pub id_key: Vec<u8>,
    pub quota: i64,
    pub now: chrono::NaiveDateTime,
    pub route: &'static str,
}

impl SearchCtx {
    pub fn of(state: &AppState, route: &'static str) -> SearchCtx {
        SearchCtx {
            id_key: state.secrets.id_hmac_key.clone(),
            quota: state.exposure.id_lookup_daily_quota,
            now: db::now_micros(state.clock.now()),
            route,
        }
    }
}

/// The search `who` may run, as `GET /v1/encumbrances` answers it. Shared with the /verify page.
pub fn search_as(
    conn: &mut DbConn,
    who: &Principal,
    q: &SearchQuery,
    ctx: &SearchCtx,
) -> ApiResult<Found> {
    let own = may_search(conn, who, q, &ctx.id_key)?;
    run_search(conn, who, q, own, ctx)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    pub as_of: DateTime<Utc>,
    /// For a search by grantor: whether a party with that credit code or ID number is registered.
    /// `false` means the registry knows no such grantor, which is not the same as a grantor
    /// without encumbrances. Absent for a search by asset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grantor_registered: Option<bool>,
    /// The grantor searched, when registered (an individual's ID number masked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grantor: Option<PartyRef>,
    pub encumbrances: Vec<Notice>,
}

#[utoipa::path(get, path = "/v1/encumbrances", tag = "lender", operation_id = "searchEncumbrances",
    summary = "Every live encumbrance and judicial freeze of a grantor or on an asset",
    description = "Banks, operators and regulators name one grantor (credit code or ID number) or one asset. An enterprise or individual user searches only itself, and may name nothing: the search is then of its own party (an individual needs no credit code).",
    params(SearchQuery), responses((status = 200, description = "The live encumbrances, with rank", body = SearchResult),
        (status = 429, description = "The bank's look-ups by ID number for today are used up (`id_lookup_quota_exceeded`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/v1/encumbrances")]
async fn search(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<SearchQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let ctx = SearchCtx::of(&state, "GET /v1/encumbrances");
    let as_of = state.clock.now();
    let found = state
        .db(move |conn| search_as(conn, &who, &q, &ctx))
        .await?;
    Ok(HttpResponse::Ok().json(SearchResult {
        as_of,
        grantor_registered: found.grantor_registered,
        grantor: found.grantor,
        encumbrances: found.encumbrances,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// With the registration's verification code, the notice is answered without login.
    pub verification_code: Option<String>,
}

/// One encumbrance: the notice, its numbered entries, and the private terms for its parties.
#[derive(Debug, Serialize, ToSchema)]
pub struct EncumbranceView {
    pub as_of: DateTime<Utc>,
    pub notice: Notice,
    /// Judicial freezes on the same holding, which block it too.
    pub freezes: Vec<Notice>,
    pub entries: Vec<EntryView>,
    /// Loan reference, appraisal, claim and disposal: only for the parties, operators and regulators.
    pub private_terms: Option<Value>,
}

#[utoipa::path(get, path = "/v1/encumbrances/{registration_no}", tag = "lender", operation_id = "verifyEncumbrance",
    summary = "Verify one encumbrance by registration number (with a verification code, no login is needed)",
    security((), ("bearer" = [])),
    params(("registration_no" = String, Path, description = "Registration number"), VerifyQuery),
    responses((status = 200, description = "The notice", body = EncumbranceView)))]
#[get("/v1/encumbrances/{registration_no}")]
async fn verify(
    state: web::Data<AppState>,
    who: MaybePrincipal,
    no: web::Path<String>,
    q: web::Query<VerifyQuery>,
) -> ApiResult<HttpResponse> {
    let (no, code, as_of) = (
        no.into_inner(),
        q.into_inner().verification_code,
        state.clock.now(),
    );
    let view = state
        .db(move |conn| lookup(conn, &no, code.as_deref(), who.0.as_ref(), as_of))
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// One encumbrance by registration number, as `who` (or anyone with the verification code) may
/// see it; a 404 for everyone else. Shared by the API and the /verify page.
pub fn lookup(
    conn: &mut DbConn,
    no: &str,
    code: Option<&str>,
    who: Option<&Principal>,
    as_of: DateTime<Utc>,
) -> ApiResult<EncumbranceView> {
    let Some((p, asset, grantor, lender)) = pledge_by_registration(conn, no)? else {
        return verify_forest(conn, no, code, who, as_of);
    };
    let by_code = code.is_some_and(|c| p.verification_code.as_deref() == Some(c));
    let party = who.is_some_and(|w| w.sees_party(p.pledgor_id) || w.sees_party(p.lender_id));
    let bank = who.is_some_and(|w| w.role == Role::Bank);
    if !(by_code || party || bank) {
        return Err(ApiError::not_found("encumbrance"));
    }
    let freezes = freezes::active_for_party(conn, p.pledgor_id)?
        .into_iter()
        .filter(|f| f.lot_id == p.lot_id)
        .map(|f| freeze_notice(conn, &f))
        .collect::<ApiResult<Vec<_>>>()?;
    let notice = pledge_notice_of(conn, &p, asset, grantor, lender)?;
    let full = pledges::view(conn, p)?;
    let entries = if party {
        full.entries.clone()
    } else {
        full.entries
            .iter()
            .cloned()
            .map(EntryView::public)
            .collect()
    };
    let private_terms = party.then(|| {
        json!({"loan_reference": full.loan_reference, "appraisal": full.appraisal, "claim_amount": full.claim_amount,
            "claim_detail": full.claim_detail, "proceeds": full.proceeds, "paid_to_lender": full.paid_to_lender,
            "paid_to_pledgor": full.paid_to_pledgor})
    });
    Ok(EncumbranceView {
        as_of,
        notice,
        freezes,
        entries,
        private_terms,
    })
}

/// A search certificate: the statement and the registry's Ed25519 signature over its RFC 8785
/// canonical JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct Certificate {
    pub statement: Statement,
    pub algorithm: String,
    pub key_id: String,
    /// Base64 of the 64-byte Ed25519 signature over the canonical JSON of `statement`.
    pub signature: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Statement {
    pub certificate_no: String,
    pub issuer: String,
    pub as_of: DateTime<Utc>,
    /// The query as the registry read it (a credit code in capitals; an ID number never shown).
    pub query: SearchQuery,
    /// For a search by grantor: whether a party with that credit code or ID number is registered.
    /// `false` certifies that the registry knows no such grantor, not that it has no
    /// encumbrances. Absent for a search by asset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grantor_registered: Option<bool>,
    /// The grantor searched, when registered (an individual's ID number masked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grantor: Option<PartyRef>,
    pub encumbrances: Vec<Notice>,
}

#[utoipa::path(post, path = "/v1/search-certificates", tag = "lender", operation_id = "createSearchCertificate",
    summary = "Run a search and get a signed certificate of its result",
    request_body = SearchQuery,
    responses((status = 201, description = "The certificate; verify it offline with GET /v1/registry-keys", body = Certificate),
        (status = 429, description = "The bank's look-ups by ID number for today are used up (`id_lookup_quota_exceeded`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/search-certificates")]
async fn certify(
    state: web::Data<AppState>,
    who: Principal,
    body: ApiJson<SearchQuery>,
) -> ApiResult<HttpResponse> {
    let q = body.value;
    let key = state.secrets.signing_key.clone();
    let ctx = SearchCtx::of(&state, "POST /v1/search-certificates");
    let as_of = state.clock.now();
    let cert = state
        .db(move |conn| issue_certificate(conn, &who, q, &key, &ctx, as_of))
        .await?;
    Ok(HttpResponse::build(StatusCode::CREATED).json(cert))
}

/// Runs the search `who` may run and stores its signed certificate. Shared with the /verify page.
pub fn issue_certificate(
    conn: &mut DbConn,
    who: &Principal,
    q: SearchQuery,
    key: &ed25519_dalek::SigningKey,
    ctx: &SearchCtx,
    as_of: DateTime<Utc>,
) -> ApiResult<Certificate> {
    let now = db::now_micros(as_of);
    db::write_tx(conn, |conn| {
        let found = search_as(conn, who, &q, ctx)?;
        let certificate_no = format!("NPCX-{}-{}", as_of.format("%Y%m%d"), super::random_code(8));
        let statement = Statement {
            certificate_no,
            issuer: crate::auth::jwt::ISSUER.into(),
            as_of,
            query: found.query,
            grantor_registered: found.grantor_registered,
            grantor: found.grantor,
            encumbrances: found.encumbrances,
        };
        let cert = sign(statement, key)?;
        diesel::insert_into(sc::table)
            .values((
                sc::certificate_no.eq(&cert.statement.certificate_no),
                sc::requested_by.eq(who.id),
                sc::body
                    .eq(serde_json::to_string(&cert)
                        .map_err(|e| ApiError::internal(e.to_string()))?),
                sc::key_id.eq(&cert.key_id),
                sc::signature.eq(&cert.signature),
                sc::created_at.eq(now),
            ))
            .execute(conn)?;
        Ok(cert)
    })
}

/// A stored certificate's JSON, exactly as issued; a 404 when there is none.
pub fn stored_certificate(conn: &mut DbConn, no: &str) -> ApiResult<String> {
    sc::table
        .filter(sc::certificate_no.eq(no))
        .select(sc::body)
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::not_found("certificate"))
}

fn sign(statement: Statement, key: &ed25519_dalek::SigningKey) -> ApiResult<Certificate> {
    let value = serde_json::to_value(&statement).map_err(|e| ApiError::internal(e.to_string()))?;
    let signature = key.sign(canonical(&value).as_bytes());
    Ok(Certificate {
        statement,
        algorithm: "Ed25519".into(),
        key_id: key_id(&key.verifying_key()),
        signature: B64.encode(signature.to_bytes()),
    })
}

#[utoipa::path(get, path = "/v1/search-certificates/{no}", tag = "lender", operation_id = "getSearchCertificate",
    summary = "A search certificate again, by number (any authenticated caller, R10)",
    params(("no" = String, Path, description = "Certificate number")),
    responses((status = 200, description = "The certificate as issued", body = Certificate)))]
#[get("/v1/search-certificates/{no}")]
async fn get_certificate(
    state: web::Data<AppState>,
    _who: Principal,
    no: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let no = no.into_inner();
    let body = state.db(move |conn| stored_certificate(conn, &no)).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegistryKey {
    pub key_id: String,
    pub algorithm: String,
    /// Base64 of the 32-byte Ed25519 public key.
    pub public_key: String,
    /// `active` signs new certificates; retired keys stay listed so old certificates verify.
    pub status: String,
}

#[utoipa::path(get, path = "/v1/registry-keys", tag = "lender", operation_id = "registryKeys",
    summary = "The registry's public signing keys, for verifying certificates offline", security(()),
    responses((status = 200, description = "Every key the registry has signed with", body = Vec<RegistryKey>)))]
#[get("/v1/registry-keys")]
async fn registry_keys(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    // What the key files hold (read at start), never what a database writer could insert.
    let ring = &state.secrets.ring;
    let keys: Vec<RegistryKey> = ring
        .keys
        .iter()
        .rev()
        .map(|(key_id, public)| RegistryKey {
            status: if *key_id == ring.active {
                "active"
            } else {
                "retired"
            }
            .into(),
            key_id: key_id.clone(),
            algorithm: "Ed25519".into(),
            public_key: B64.encode(public.as_bytes()),
        })
        .collect();
    Ok(HttpResponse::Ok().json(keys))
}

/// `GET /v1/encumbrances/{no}` for a forest mortgage.
fn verify_forest(
    conn: &mut DbConn,
    no: &str,
    code: Option<&str>,
    who: Option<&Principal>,
    as_of: DateTime<Utc>,
) -> ApiResult<EncumbranceView> {
    let m = crate::forest::mortgage_by_registration(conn, no)?
        .ok_or_else(|| ApiError::not_found("encumbrance"))?;
    let by_code = code.is_some_and(|c| m.verification_code.as_deref() == Some(c));
    let party = who.is_some_and(|w| w.sees_party(m.mortgagor_id) || w.sees_party(m.lender_id));
    let bank = who.is_some_and(|w| w.role == Role::Bank);
    if !(by_code || party || bank) {
        return Err(ApiError::not_found("encumbrance"));
    }
    let freezes = crate::forest::freezes::active_on_mortgage(conn, m.id)?
        .iter()
        .map(|f| parcel_freeze_notice(conn, f))
        .collect::<ApiResult<Vec<_>>>()?;
    let notice = forest_notice(conn, &m)?;
    let full = crate::forest::mortgages::view(conn, m)?;
    let entries = if party {
        full.entries.clone()
    } else {
        full.entries
            .iter()
            .cloned()
            .map(EntryView::public)
            .collect()
    };
    let private_terms = party.then(|| {
        json!({"loan_start": full.loan_start, "appraisal_value": full.appraisal_value, "appraiser": full.appraiser,
            "appraisal_kind": full.appraisal_kind, "insurance_policy_no": full.insurance_policy_no, "insurer": full.insurer,
            "consent": full.consent, "transfer_ban": full.transfer_ban, "claim_amount": full.claim_amount,
            "proceeds": full.proceeds, "paid_to_lender": full.paid_to_lender, "paid_to_mortgagor": full.paid_to_mortgagor})
    });
    Ok(EncumbranceView {
        as_of,
        notice,
        freezes,
        entries,
        private_terms,
    })
}

fn parcel_freeze_notice(
    conn: &mut DbConn,
    f: &crate::forest::freezes::ParcelFreezeRow,
) -> ApiResult<Notice> {
    let p = crate::forest::parcel(conn, f.parcel_id)?
        .ok_or_else(|| ApiError::internal("parcel vanished"))?;
    Ok(Notice {
        kind: "judicial_freeze".into(),
        registration_no: f.registration_no(),
        status: f.status.clone(),
        asset: None,
        parcels: Some(vec![MortgagedParcel {
            parcel_id: p.id,
            certificate_no: p.certificate_no,
            rank: None,
            rank_at_registration: None,
        }]),
        grantor: party_ref(conn, p.holder_id)?,
        lender: None,
        rank: None,
        secured_amount: None,
        registered_at: Some(f.ordered_at.and_utc()),
        period_end: None,
        loan_maturity: None,
        pboc_registration_no: None,
        objections: Vec::new(),
        court: Some(f.court.clone()),
        case_no: Some(f.case_no.clone()),
        document_ref: Some(f.document_ref.clone()),
    })
}
