//! Benchmark prices (有偿使用基准价) set by two operators, region non-attainment flags set by two
//! persons, and the two R4 checks that read them: the floor and the non-attainment refusal.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::rules;
use super::settings::MarketSettings;
use crate::auth::{Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::{price_to_stored, Dec};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::state::AppState;
use crate::proposals::{self, ProposalKind, ProposalRow, ProposalView};
use crate::rights::store::{self as rights, LotRow};
use crate::schema::{benchmark_prices as bp, region_flags as rf};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(propose)
        .service(list)
        .service(set_flag)
        .service(list_flags);
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = bp)]
pub struct BenchmarkRow {
    pub id: i64,
    pub right_type: String,
    pub sub_kind: Option<String>,
    pub region_code: String,
    pub unit_price: i64,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub document_ref: String,
    pub proposal_id: i64,
    pub proposed_by: String,
    pub approved_by: String,
    pub created_at: NaiveDateTime,
}

/// A benchmark price to set: per unit (EM: yuan per ton-year) for a right type, pollutant and
/// region, from a date.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"right_type": "EM", "sub_kind": "SO2", "region_code": "350700", "unit_price": "6300",
    "valid_from": "2026-01-01", "document_ref": "闽发改规〔2025〕3号"}))]
pub struct SetBenchmark {
    pub right_type: String,
    /// The pollutant, for emission rights.
    pub sub_kind: Option<String>,
    /// A county, or an aggregate (350700 Nanping, 350000 Fujian) that applies to its counties.
    pub region_code: String,
    pub unit_price: Dec,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    /// The price decision it comes from.
    pub document_ref: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BenchmarkView {
    pub id: i64,
    pub right_type: String,
    pub sub_kind: Option<String>,
    pub region_code: String,
    pub unit_price: Dec,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub document_ref: String,
    pub proposal_id: i64,
    pub proposed_by: String,
    pub approved_by: String,
    pub created_at: DateTime<Utc>,
}

impl From<BenchmarkRow> for BenchmarkView {
    fn from(r: BenchmarkRow) -> Self {
        BenchmarkView {
            id: r.id,
            right_type: r.right_type,
            sub_kind: r.sub_kind,
            region_code: r.region_code,
            unit_price: Dec::price(r.unit_price),
            valid_from: r.valid_from,
            valid_to: r.valid_to,
            document_ref: r.document_ref,
            proposal_id: r.proposal_id,
            proposed_by: r.proposed_by,
            approved_by: r.approved_by,
            created_at: r.created_at.and_utc(),
        }
    }
}

/// Benchmarks and non-attainment flags are set for divisions of Fujian that exist.
fn region_ok(code: &str) -> bool {
    crate::kernel::regions::fujian_exists(code)
}

fn validate(conn: &mut DbConn, r: &SetBenchmark) -> ApiResult<i64> {
    let t = rights::right_type(conn, &r.right_type)?
        .ok_or_else(|| ApiError::invalid_field("right_type", "unknown right type"))?;
    match (&t.sub_kind_label, &r.sub_kind) {
        (Some(_), Some(k)) if t.sub_kinds().contains(k) => {}
        (Some(label), _) => {
            return Err(ApiError::invalid_field(
                "sub_kind",
                format!("one of the {label}s {:?}", t.sub_kinds()),
            ))
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid_field(
                "sub_kind",
                "this right type has no sub-kinds",
            ))
        }
        (None, None) => {}
    }
    if !region_ok(&r.region_code) {
        return Err(ApiError::invalid_field(
            "region_code",
            "an administrative division of Fujian that exists (GB/T 2260)",
        ));
    }
    if r.valid_to.is_some_and(|to| to < r.valid_from) {
        return Err(ApiError::invalid_field(
            "valid_to",
            "on or after valid_from",
        ));
    }
    if r.document_ref.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "document_ref",
            "names the price decision",
        ));
    }
    price_to_stored(r.unit_price.0)
        .map_err(|e| ApiError::invalid_field("unit_price", e.to_string()))
}

#[utoipa::path(post, path = "/v1/benchmark-prices", tag = "market", operation_id = "proposeBenchmarkPrice",
    summary = "Propose a benchmark price; a second operator approves it (maker-checker)",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = SetBenchmark, responses((status = 202, description = "Proposed", body = ProposalView)))]
#[post("/v1/benchmark-prices")]
async fn propose(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    body: ApiJson<SetBenchmark>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let r = body.value;
    let now = db::now_micros(state.clock.now());
    let w = who.clone();
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Optional,
        StatusCode::ACCEPTED,
        move |conn| {
            validate(conn, &r)?;
            let row = proposals::propose(conn, ProposalKind::BenchmarkPrice, &r, None, &w, now)?;
            Outcome::of(&ProposalView::from(row))
        },
    )
    .await
}

/// Runs an approved benchmark proposal: the price is recorded and in force from its date.
pub fn execute(
    conn: &mut DbConn,
    r: &SetBenchmark,
    proposal: &ProposalRow,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<serde_json::Value> {
    let price = validate(conn, r)?;
    diesel::insert_into(bp::table)
        .values((
            bp::right_type.eq(&r.right_type),
            bp::sub_kind.eq(&r.sub_kind),
            bp::region_code.eq(&r.region_code),
            bp::unit_price.eq(price),
            bp::valid_from.eq(r.valid_from),
            bp::valid_to.eq(r.valid_to),
            bp::document_ref.eq(r.document_ref.trim()),
            bp::proposal_id.eq(proposal.id),
            bp::proposed_by.eq(&proposal.proposed_by_name),
            bp::approved_by.eq(actor),
            bp::created_at.eq(at),
        ))
        .execute(conn)?;
    let row: BenchmarkRow = bp::table
        .filter(bp::proposal_id.eq(proposal.id))
        .select(BenchmarkRow::as_select())
        .first(conn)?;
    crate::audit::record(
        conn,
        crate::audit::Event {
            chain: format!("benchmark:{}:{}", r.right_type, r.region_code),
            actor,
            action: "benchmark_price.set",
            object_type: "benchmark_price",
            object_id: row.id.to_string(),
            payload: json!({"right_type": r.right_type, "sub_kind": r.sub_kind, "region_code": r.region_code,
                "unit_price": price, "valid_from": r.valid_from, "valid_to": r.valid_to}),
            at,
        },
    )?;
    serde_json::to_value(BenchmarkView::from(row)).map_err(|e| ApiError::internal(e.to_string()))
}

/// The benchmark in force on `date` for a right type, sub-kind and region: the most specific
/// region first (county, prefecture, province), then the latest start.
pub fn in_force(
    conn: &mut DbConn,
    right_type: &str,
    sub_kind: Option<&str>,
    region: &str,
    date: NaiveDate,
) -> ApiResult<Option<BenchmarkRow>> {
    for code in rules::benchmark_regions(region) {
        let mut q = bp::table
            .filter(bp::right_type.eq(right_type))
            .filter(bp::region_code.eq(&code))
            .filter(bp::valid_from.le(date))
            .filter(bp::valid_to.is_null().or(bp::valid_to.ge(date)))
            .order((bp::valid_from.desc(), bp::id.desc()))
            .select(BenchmarkRow::as_select())
            .into_boxed();
        q = match sub_kind {
            Some(s) => q.filter(bp::sub_kind.eq(s)),
            None => q.filter(bp::sub_kind.is_null()),
        };
        if let Some(row) = q.first(conn).optional()? {
            return Ok(Some(row));
        }
    }
    Ok(None)
}

/// Where a price stands against the benchmark paid-use price (有偿使用基准价) in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceStanding {
    /// No price: a gift, a court order, a merger.
    Unpriced,
    /// Priced, but no benchmark is in force for the lot's pollutant and region (or the right is
    /// not an emission right).
    NoBenchmark,
    /// At or above the benchmark in force.
    AtOrAboveFloor,
    /// Below the benchmark in force (possible only with the floor switched off).
    BelowFloor,
}

impl PriceStanding {
    /// R11: only a purchase at or above the benchmark price is a market acquisition (有偿取得); a
    /// transfer without a price, below the floor, or without a benchmark to compare against
    /// carries no proof of payment.
    pub fn is_market_purchase(self) -> bool {
        self == PriceStanding::AtOrAboveFloor
    }
}

/// R4, the one check every transfer of an emission right between holders passes, whatever its
/// path: listing (at the offer and at each purchase), auction (at the offer, the bidder's
/// admission and the award), bilateral and registered transfer, pledge disposal. Two refusals,
/// each switched by the market settings (`/v1/market/settings`):
/// - `benchmark_floor`: a price below the benchmark in force on `today` is a 422
///   `price_below_benchmark`;
/// - `non_attainment_check`: moving a pollutant's load into another region flagged as not meeting
///   its standard (the receiver's county, prefecture or province) is a 422 `region_non_attainment`.
///
/// `receiver_region` is absent when the offer is made before a buyer is known, `unit_price` when
/// the transfer has no price. Returns where the price stands against the benchmark, whatever the
/// switches say, so that the receiver's acquisition is recorded truthfully (R11).
pub fn check_r4(
    conn: &mut DbConn,
    settings: &MarketSettings,
    lot: &LotRow,
    receiver_region: Option<&str>,
    unit_price: Option<i64>,
    today: NaiveDate,
) -> ApiResult<PriceStanding> {
    if let Some(region) = receiver_region {
        check_attainment(conn, settings, lot, region)?;
    }
    let standing = price_standing(conn, lot, unit_price, today)?;
    if standing == PriceStanding::BelowFloor && settings.benchmark_floor {
        let b = in_force(
            conn,
            &lot.right_type,
            lot.sub_kind.as_deref(),
            &lot.region_code,
            today,
        )?
        .ok_or_else(|| ApiError::internal("the benchmark vanished"))?;
        return Err(ApiError::unprocessable(
            "price_below_benchmark",
            format!(
                "{} is below the benchmark price {} in force ({})",
                Dec::price(unit_price.unwrap_or(0)).0,
                Dec::price(b.unit_price).0,
                b.document_ref
            ),
        ));
    }
    Ok(standing)
}

/// Where `unit_price` of `lot` stands against the benchmark in force on `date` (R4, R11).
pub fn price_standing(
    conn: &mut DbConn,
    lot: &LotRow,
    unit_price: Option<i64>,
    date: NaiveDate,
) -> ApiResult<PriceStanding> {
    let Some(price) = unit_price else {
        return Ok(PriceStanding::Unpriced);
    };
    let rt = rights::right_type(conn, &lot.right_type)?
        .ok_or_else(|| ApiError::internal("right type vanished"))?;
    if !rt.priced_per_year {
        return Ok(PriceStanding::NoBenchmark);
    }
    let Some(b) = in_force(
        conn,
        &lot.right_type,
        lot.sub_kind.as_deref(),
        &lot.region_code,
        date,
    )?
    else {
        return Ok(PriceStanding::NoBenchmark);
    };
    Ok(if price >= b.unit_price {
        PriceStanding::AtOrAboveFloor
    } else {
        PriceStanding::BelowFloor
    })
}

/// R4: no trade moves a pollutant's load into another region flagged as not meeting its standard.
fn check_attainment(
    conn: &mut DbConn,
    settings: &MarketSettings,
    lot: &LotRow,
    buyer_region: &str,
) -> ApiResult<()> {
    let Some(pollutant) = lot.sub_kind.as_deref() else {
        return Ok(());
    };
    if lot.right_type != "EM" || buyer_region == lot.region_code {
        return Ok(());
    }
    if !settings.non_attainment_check {
        return Ok(());
    }
    for code in rules::benchmark_regions(buyer_region) {
        let latest: Option<bool> = rf::table
            .filter(rf::region_code.eq(&code))
            .filter(rf::pollutant.eq(pollutant))
            .order(rf::id.desc())
            .select(rf::non_attainment)
            .first(conn)
            .optional()?;
        if latest == Some(true) {
            return Err(ApiError::unprocessable(
                "region_non_attainment",
                format!("region {code} does not meet its {pollutant} standard: no load may move into it"),
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BenchmarkQuery {
    pub right_type: Option<String>,
    pub sub_kind: Option<String>,
    pub region_code: Option<String>,
    /// Only the price in force on this date for the given right type, sub-kind and region.
    pub on: Option<NaiveDate>,
}

#[utoipa::path(get, path = "/v1/benchmark-prices", tag = "market", operation_id = "listBenchmarkPrices",
    summary = "Benchmark prices with their history; with `on`, the one in force that day",
    params(BenchmarkQuery), responses((status = 200, description = "Benchmark prices, newest first", body = Vec<BenchmarkView>)))]
#[get("/v1/benchmark-prices")]
async fn list(
    state: web::Data<AppState>,
    _who: Principal,
    q: web::Query<BenchmarkQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    if q.region_code.as_deref().is_some_and(|r| !region_ok(r)) {
        return Err(ApiError::invalid_field(
            "region_code",
            "an administrative division of Fujian that exists (GB/T 2260)",
        ));
    }
    let rows = state
        .db(move |conn| {
            if let Some(on) = q.on {
                let (Some(rt), Some(region)) = (q.right_type.as_deref(), q.region_code.as_deref())
                else {
                    return Err(ApiError::invalid_field(
                        "on",
                        "goes with right_type and region_code",
                    ));
                };
                return Ok(in_force(conn, rt, q.sub_kind.as_deref(), region, on)?
                    .into_iter()
                    .collect());
            }
            let mut query = bp::table
                .order((bp::valid_from.desc(), bp::id.desc()))
                .limit(500)
                .select(BenchmarkRow::as_select())
                .into_boxed();
            if let Some(t) = q.right_type {
                query = query.filter(bp::right_type.eq(t));
            }
            if let Some(s) = q.sub_kind {
                query = query.filter(bp::sub_kind.eq(s));
            }
            if let Some(r) = q.region_code {
                query = query.filter(bp::region_code.eq(r));
            }
            Ok(query.load(conn)?)
        })
        .await?;
    let views: Vec<BenchmarkView> = rows.into_iter().map(BenchmarkView::from).collect();
    Ok(HttpResponse::Ok().json(views))
}

/// A region's standing for one pollutant (达标 / 未达标), set on an environmental authority's notice.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"region_code": "350781", "pollutant": "NOX", "non_attainment": true, "document_ref": "南环〔2026〕12号"}))]
pub struct SetRegionFlag {
    pub region_code: String,
    pub pollutant: String,
    pub non_attainment: bool,
    pub document_ref: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegionFlagView {
    pub id: i64,
    pub region_code: String,
    pub pollutant: String,
    pub non_attainment: bool,
    pub document_ref: String,
    /// Who proposed it (an operator or a regulator).
    pub set_by: String,
    /// The operator (another person) whose approval put it in force; absent on flags set before
    /// flags took two persons.
    pub approved_by: Option<String>,
    /// The proposal it was approved as.
    pub proposal_id: Option<i64>,
    /// When it took effect.
    pub at: DateTime<Utc>,
}

type RegionFlagRow = (
    i64,
    String,
    String,
    bool,
    String,
    String,
    NaiveDateTime,
    Option<String>,
    Option<i64>,
);

fn region_flag_view(r: RegionFlagRow) -> RegionFlagView {
    RegionFlagView {
        id: r.0,
        region_code: r.1,
        pollutant: r.2,
        non_attainment: r.3,
        document_ref: r.4,
        set_by: r.5,
        at: r.6.and_utc(),
        approved_by: r.7,
        proposal_id: r.8,
    }
}

const FLAG_COLUMNS: (
    rf::id,
    rf::region_code,
    rf::pollutant,
    rf::non_attainment,
    rf::document_ref,
    rf::set_by,
    rf::at,
    rf::approved_by,
    rf::proposal_id,
) = (
    rf::id,
    rf::region_code,
    rf::pollutant,
    rf::non_attainment,
    rf::document_ref,
    rf::set_by,
    rf::at,
    rf::approved_by,
    rf::proposal_id,
);

/// A region flag names a division of Fujian that exists, a known pollutant and the authority's
/// notice; checked when it is proposed and again when it is approved.
fn validate_flag(conn: &mut DbConn, r: &SetRegionFlag) -> ApiResult<()> {
    if !region_ok(&r.region_code) {
        return Err(ApiError::invalid_field(
            "region_code",
            "an administrative division of Fujian that exists (GB/T 2260)",
        ));
    }
    if r.document_ref.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "document_ref",
            "names the authority's notice",
        ));
    }
    let em = rights::right_type(conn, "EM")?;
    if !em.is_some_and(|t| t.sub_kinds().contains(&r.pollutant)) {
        return Err(ApiError::invalid_field("pollutant", "a known pollutant"));
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/region-flags", tag = "market", operation_id = "setRegionFlag",
    summary = "Propose flagging a region as not meeting (or again meeting) a pollutant's standard (R4); an operator of another person approves",
    description = "A flag blocks every trade moving the pollutant's load into the region (R4), so one person never sets or lifts it: \
        an operator or a regulator proposes (202, kind `region_flag`), and the flag takes effect, audited, when an operator of another \
        person approves it (`POST /v1/proposals/{id}/approve`). Lifting a flag (`non_attainment: false`) goes the same way. \
        The history is kept.",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = SetRegionFlag,
    responses((status = 202, description = "Proposed", body = ProposalView),
        (status = 422, description = "An unknown region, pollutant or an empty `document_ref`; nothing is stored", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/region-flags")]
async fn set_flag(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    body: ApiJson<SetRegionFlag>,
) -> ApiResult<HttpResponse> {
    // A regulator may propose (it reads the authorities' notices) but, as for every kind, only an
    // operator approves (`POST /v1/proposals/{id}/approve`), and never the proposer's person.
    who.require(&[Role::Operator, Role::Regulator])?;
    let r = body.value;
    let now = db::now_micros(state.clock.now());
    let w = who.clone();
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Optional,
        StatusCode::ACCEPTED,
        move |conn| {
            validate_flag(conn, &r)?;
            let row = proposals::propose(conn, ProposalKind::RegionFlag, &r, None, &w, now)?;
            Outcome::of(&ProposalView::from(row))
        },
    )
    .await
}

/// Runs an approved region-flag proposal: the flag is recorded and in force from now (the newest
/// flag per region and pollutant is the one in force).
pub fn execute_flag(
    conn: &mut DbConn,
    r: &SetRegionFlag,
    proposal: &ProposalRow,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<serde_json::Value> {
    validate_flag(conn, r)?;
    diesel::insert_into(rf::table)
        .values((
            rf::region_code.eq(&r.region_code),
            rf::pollutant.eq(&r.pollutant),
            rf::non_attainment.eq(r.non_attainment),
            rf::document_ref.eq(r.document_ref.trim()),
            rf::set_by.eq(&proposal.proposed_by_name),
            rf::at.eq(at),
            rf::proposal_id.eq(proposal.id),
            rf::approved_by.eq(actor),
        ))
        .execute(conn)?;
    let row: RegionFlagRow = rf::table
        .filter(rf::proposal_id.eq(proposal.id))
        .select(FLAG_COLUMNS)
        .first(conn)?;
    crate::audit::record(
        conn,
        crate::audit::Event {
            chain: format!("region:{}", r.region_code),
            actor,
            action: "region.flag_set",
            object_type: "region_flag",
            object_id: row.0.to_string(),
            payload: json!({"pollutant": r.pollutant, "non_attainment": r.non_attainment,
                "document_ref": r.document_ref, "proposal_id": proposal.id,
                "proposed_by": proposal.proposed_by_name}),
            at,
        },
    )?;
    serde_json::to_value(region_flag_view(row)).map_err(|e| ApiError::internal(e.to_string()))
}

#[utoipa::path(get, path = "/v1/region-flags", tag = "market", operation_id = "listRegionFlags",
    summary = "Every region flag ever set, newest first (the newest per region and pollutant is in force)",
    responses((status = 200, description = "Flags", body = Vec<RegionFlagView>)))]
#[get("/v1/region-flags")]
async fn list_flags(state: web::Data<AppState>, _who: Principal) -> ApiResult<HttpResponse> {
    let rows = state
        .db(|conn| {
            Ok(rf::table
                .order(rf::id.desc())
                .limit(500)
                .select(FLAG_COLUMNS)
                .load::<RegionFlagRow>(conn)?)
        })
        .await?;
    let views: Vec<RegionFlagView> = rows.into_iter().map(region_flag_view).collect();
    Ok(HttpResponse::Ok().json(views))
}
