//! HTTP: `/v1/forest-rights` — register parcels, search them, and change their holder (the
//! mortgages follow the parcel unless a transfer ban was registered, Civil Code art. 406).

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::{add_entry, mortgages_on, parcel, ParcelRow, LIVE};
use crate::auth::{Principal, Role};
use crate::collateral::lender::PartyRef;
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::{hundredths, Dec};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::pagination::{Page, PageParams};
use crate::kernel::state::AppState;
use crate::kernel::text::document_key;
use crate::parties::uscc::IdNumber;
use crate::schema::{forest_parcels as fp, parcel_holders as ph, parties as pt};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(register)
        .service(search)
        .service(get_one)
        .service(change_holder)
        .service(split);
}

/// Register a forest parcel (林权证 / 不动产权证书).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"certificate_no": "闽(2026)顺昌县不动产权第0001234号", "holder_party_id": 5,
    "rights": ["woodland_use", "tree_ownership", "tree_use"], "county_code": "350721", "township": "埔上镇", "village": "大坪村",
    "compartment": "012", "sub_compartment": "03", "area_mu": "126.50", "forest_category": "commercial", "commercial_kind": "timber",
    "origin": "planted", "dominant_species": "杉木", "age_group": "近熟林", "stock_volume": "1580.00", "woodland_term_end": "2056-12-31",
    "ownership": "collective", "management_form": "household"}))]
pub struct RegisterParcel {
    pub certificate_no: String,
    pub holder_party_id: i64,
    /// woodland_use (林地使用权), tree_ownership (林木所有权), tree_use (林木使用权).
    pub rights: Vec<String>,
    /// County (GB/T 2260), e.g. 350721 顺昌县.
    pub county_code: String,
    pub township: String,
    pub village: String,
    /// 林班.
    pub compartment: String,
    /// 小班.
    pub sub_compartment: String,
    pub place_name: Option<String>,
    /// Area in mu (亩), at most 2 places.
    pub area_mu: Dec,
    /// commercial (商品林) or public_welfare (生态公益林).
    pub forest_category: String,
    /// For commercial forest: timber, economic, fuelwood or bamboo.
    pub commercial_kind: Option<String>,
    /// natural or planted.
    pub origin: String,
    pub dominant_species: String,
    pub age_group: Option<String>,
    /// Stock volume in m³, at most 2 places.
    pub stock_volume: Dec,
    pub woodland_term_end: NaiveDate,
    /// state, collective or individual.
    pub ownership: String,
    /// collective (集体统一经营), household (家庭承包) or company.
    pub management_form: String,
    /// False for forest not (yet) in the real-estate register; it cannot be mortgaged.
    #[serde(default = "yes")]
    pub registered: bool,
    #[serde(default)]
    pub disputed: bool,
    /// A GeoJSON Polygon or MultiPolygon (WGS 84), validated and kept as text.
    pub boundary: Option<serde_json::Value>,
    /// Co-held parcels: every holder with its share in percent (adding up to 100, and including
    /// `holder_party_id`). Without it, `holder_party_id` holds the whole.
    pub co_holders: Option<Vec<CoHolder>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CoHolder {
    pub party_id: i64,
    /// Percent, at most 2 places.
    pub share: Dec,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HolderShare {
    pub party: PartyRef,
    /// Percent of the parcel.
    pub share: Dec,
}

fn yes() -> bool {
    true
}

fn one_of(field: &str, v: &str, allowed: &[&str]) -> ApiResult<()> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            field,
            format!("one of {}", allowed.join(", ")),
        ))
    }
}

fn text(field: &str, v: &str) -> ApiResult<String> {
    let t = v.trim();
    if t.is_empty() || t.chars().count() > 200 {
        return Err(ApiError::invalid_field(
            field,
            "must be 1 to 200 characters",
        ));
    }
    Ok(t.to_string())
}

/// A GeoJSON Polygon/MultiPolygon whose rings are closed lists of [lon, lat] within range.
fn check_boundary(v: &serde_json::Value) -> ApiResult<String> {
    let bad = |m: &str| ApiError::invalid_field("boundary", m.to_string());
    let polygons: Vec<&serde_json::Value> = match (v["type"].as_str(), v["coordinates"].as_array())
    {
        (Some("Polygon"), Some(_)) => vec![&v["coordinates"]],
        (Some("MultiPolygon"), Some(ps)) => ps.iter().collect(),
        _ => return Err(bad("a GeoJSON Polygon or MultiPolygon with coordinates")),
    };
    for polygon in polygons {
        let rings = polygon
            .as_array()
            .ok_or_else(|| bad("a polygon is a list of rings"))?;
        if rings.is_empty() {
            return Err(bad("a polygon has at least one ring"));
        }
        for ring in rings {
            let points = ring
                .as_array()
                .ok_or_else(|| bad("a ring is a list of positions"))?;
            let coords: Option<Vec<(f64, f64)>> = points
                .iter()
                .map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()?)))
                .collect();
            let coords = coords.ok_or_else(|| bad("a position is [longitude, latitude]"))?;
            if coords.len() < 4 || coords.first() != coords.last() {
                return Err(bad("a ring has at least 4 positions and is closed"));
            }
            if coords
                .iter()
                .any(|(lon, lat)| lon.abs() > 180.0 || lat.abs() > 90.0)
            {
                return Err(bad("a position is out of range"));
            }
        }
    }
    Ok(v.to_string())
}

/// A parcel as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParcelView {
    pub id: i64,
    pub certificate_no: String,
    /// The representative holder.
    pub holder: PartyRef,
    /// Every holder with its share.
    pub holders: Vec<HolderShare>,
    pub rights: Vec<String>,
    pub county_code: String,
    pub township: String,
    pub village: String,
    pub compartment: String,
    pub sub_compartment: String,
    pub place_name: Option<String>,
    pub area_mu: Dec,
    /// The same area in hectares (15 mu = 1 ha), 4 places.
    pub area_ha: Dec,
    pub forest_category: String,
    pub commercial_kind: Option<String>,
    pub origin: String,
    pub dominant_species: String,
    pub age_group: Option<String>,
    pub stock_volume: Dec,
    pub woodland_term_end: NaiveDate,
    pub ownership: String,
    pub management_form: String,
    pub registered: bool,
    pub disputed: bool,
    pub boundary: Option<serde_json::Value>,
    /// `active`, or `split` once divided into new parcels.
    pub status: String,
    /// The parcel this one was split from.
    pub split_from: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub fn view(conn: &mut DbConn, p: ParcelRow) -> ApiResult<ParcelView> {
    let holder = crate::parties::store::find(conn, p.holder_id)?
        .ok_or_else(|| ApiError::internal("holder vanished"))?;
    let ha = (Decimal::new(p.area_mu, 2) / Decimal::from(15)).round_dp(4);
    let mut holders = Vec::new();
    for (party, share) in super::holders(conn, p.id)? {
        let row = crate::parties::store::find(conn, party)?
            .ok_or_else(|| ApiError::internal("holder vanished"))?;
        holders.push(HolderShare {
            party: row.into(),
            share: Dec::money(i64::from(share)),
        });
    }
    Ok(ParcelView {
        id: p.id,
        certificate_no: p.certificate_no,
        holder: holder.into(),
        holders,
        rights: p.rights.split(',').map(str::to_string).collect(),
        county_code: p.county_code,
        township: p.township,
        village: p.village,
        compartment: p.compartment,
        sub_compartment: p.sub_compartment,
        place_name: p.place_name,
        area_mu: Dec::money(p.area_mu),
        area_ha: Dec(ha),
        forest_category: p.forest_category,
        commercial_kind: p.commercial_kind,
        origin: p.origin,
        dominant_species: p.dominant_species,
        age_group: p.age_group,
        stock_volume: Dec::money(p.stock_volume),
        woodland_term_end: p.woodland_term_end,
        ownership: p.ownership,
        management_form: p.management_form,
        registered: p.registered,
        disputed: p.disputed,
        boundary: p.boundary.and_then(|b| serde_json::from_str(&b).ok()),
        status: p.status,
        split_from: p.split_from,
        created_at: p.created_at.and_utc(),
        updated_at: p.updated_at.and_utc(),
    })
}

#[utoipa::path(post, path = "/v1/forest-rights", tag = "forest", operation_id = "registerParcel",
    summary = "An operator proposes registering a forest parcel; a second operator approves and it is registered then",
    description = "A registered parcel is collateral a bank lends against, so registering it takes two persons: the request is validated now (202, a `parcel_registration` proposal) and again at approval (`POST /v1/proposals/{id}/approve`, by another person), when the parcel comes into existence; the approval's `result` is the parcel.",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = RegisterParcel,
    responses((status = 202, description = "Proposed", body = crate::proposals::ProposalView),
        (status = 409, description = "parcel_exists: registered or already proposed; party_inactive: a holder has merged, split or otherwise ended", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/forest-rights")]
async fn register(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    body: ApiJson<RegisterParcel>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let asked = registration_plan(body.value)?;
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
            let source = asked.source_document();
            if crate::proposals::pending_source(conn, &document_key(&source))? {
                return Err(parcel_exists(
                    "a registration of this certificate number is awaiting approval",
                ));
            }
            execute_registration(conn, &asked, &w.actor(), now, false)?;
            let row = crate::proposals::propose(
                conn,
                crate::proposals::ProposalKind::ParcelRegistration,
                &asked,
                Some(&source),
                &w,
                now,
            )?;
            Outcome::of(&crate::proposals::ProposalView::from(row))
        },
    )
    .await
}

/// What a parcel-registration proposal stores: the validated request, amounts in hundredths.
#[derive(Debug, Deserialize, Serialize)]
pub struct ParcelRegistration {
    pub certificate_no: String,
    pub holder_party_id: i64,
    pub rights: Vec<String>,
    pub county_code: String,
    pub township: String,
    pub village: String,
    pub compartment: String,
    pub sub_compartment: String,
    pub place_name: Option<String>,
    pub area_mu_hundredths: i64,
    pub forest_category: String,
    pub commercial_kind: Option<String>,
    pub origin: String,
    pub dominant_species: String,
    pub age_group: Option<String>,
    pub stock_volume_hundredths: i64,
    pub woodland_term_end: NaiveDate,
    pub ownership: String,
    pub management_form: String,
    pub registered: bool,
    pub disputed: bool,
    pub boundary: Option<String>,
    /// Every holder with its share in hundredths of a percent, the representative first.
    pub shares: Vec<(i64, i32)>,
}

impl ParcelRegistration {
    /// The key under which a pending registration of one certificate is found: a second
    /// proposal for it is refused while the first waits.
    fn source_document(&self) -> String {
        format!("parcel:{}", self.certificate_no)
    }
}

fn parcel_exists(detail: &str) -> ApiError {
    ApiError::conflict("parcel_exists", detail.to_string())
}

/// Validates a registration request (no database): the fields, the shares, the boundary.
fn registration_plan(r: RegisterParcel) -> ApiResult<ParcelRegistration> {
    let certificate_no = text("certificate_no", &r.certificate_no)?;
    let mut rights = r.rights.clone();
    rights.sort();
    rights.dedup();
    if rights.is_empty() {
        return Err(ApiError::invalid_field(
            "rights",
            "at least one of woodland_use, tree_ownership, tree_use",
        ));
    }
    for right in &rights {
        one_of(
            "rights",
            right,
            &["woodland_use", "tree_ownership", "tree_use"],
        )?;
    }
    if !crate::kernel::regions::fujian_county(&r.county_code) {
        return Err(ApiError::invalid_field(
            "county_code",
            "a county, county-level city or district of Fujian (GB/T 2260)",
        ));
    }
    one_of(
        "forest_category",
        &r.forest_category,
        &["commercial", "public_welfare"],
    )?;
    if let Some(k) = &r.commercial_kind {
        one_of(
            "commercial_kind",
            k,
            &["timber", "economic", "fuelwood", "bamboo"],
        )?;
    }
    one_of("origin", &r.origin, &["natural", "planted"])?;
    one_of(
        "ownership",
        &r.ownership,
        &["state", "collective", "individual"],
    )?;
    one_of(
        "management_form",
        &r.management_form,
        &["collective", "household", "company"],
    )?;
    let area = hundredths(r.area_mu.0, false)
        .map_err(|e| ApiError::invalid_field("area_mu", e.to_string()))?;
    let volume = hundredths(r.stock_volume.0, true)
        .map_err(|e| ApiError::invalid_field("stock_volume", e.to_string()))?;
    let boundary = r.boundary.as_ref().map(check_boundary).transpose()?;
    let shares: Vec<(i64, i32)> = match &r.co_holders {
        None => vec![(r.holder_party_id, 10_000)],
        Some(list) => {
            let mut out = vec![];
            for c in list {
                let bp = hundredths(c.share.0, false)
                    .map_err(|e| ApiError::invalid_field("co_holders.share", e.to_string()))?;
                if bp > 10_000 || out.iter().any(|(p, _)| *p == c.party_id) {
                    return Err(ApiError::invalid_field(
                        "co_holders",
                        "each holder once, with a share of at most 100",
                    ));
                }
                out.push((c.party_id, bp as i32));
            }
            // The representative holder first.
            out.sort_by_key(|(p, _)| *p != r.holder_party_id);
            if out.iter().map(|(_, s)| i64::from(*s)).sum::<i64>() != 10_000
                || out.first().map(|(p, _)| *p) != Some(r.holder_party_id)
            {
                return Err(ApiError::invalid_field(
                    "co_holders",
                    "shares add up to 100 and include holder_party_id",
                ));
            }
            out
        }
    };
    let fields = [
        ("township", text("township", &r.township)?),
        ("village", text("village", &r.village)?),
        ("compartment", text("compartment", &r.compartment)?),
        (
            "sub_compartment",
            text("sub_compartment", &r.sub_compartment)?,
        ),
        (
            "dominant_species",
            text("dominant_species", &r.dominant_species)?,
        ),
    ];
    let [township, village, compartment, sub_compartment, species] = fields.map(|(_, v)| v);
    Ok(ParcelRegistration {
        certificate_no,
        holder_party_id: r.holder_party_id,
        rights,
        county_code: r.county_code,
        township,
        village,
        compartment,
        sub_compartment,
        place_name: r.place_name,
        area_mu_hundredths: area,
        forest_category: r.forest_category,
        commercial_kind: r.commercial_kind,
        origin: r.origin,
        dominant_species: species,
        age_group: r.age_group,
        stock_volume_hundredths: volume,
        woodland_term_end: r.woodland_term_end,
        ownership: r.ownership,
        management_form: r.management_form,
        registered: r.registered,
        disputed: r.disputed,
        boundary,
        shares,
    })
}

/// Checks a registration against the registers (every holder a registered enterprise or
/// individual still in existence, the certificate not yet registered) and, when `carry_out`
/// (at approval), registers the parcel and returns it.
pub fn execute_registration(
    conn: &mut DbConn,
    r: &ParcelRegistration,
    actor: &str,
    now: chrono::NaiveDateTime,
    carry_out: bool,
) -> ApiResult<serde_json::Value> {
    for (party, _) in &r.shares {
        let holder = crate::parties::store::find(conn, *party)?;
        if holder
            .as_ref()
            .is_none_or(|h| h.kind == "bank" || h.kind == "regulator")
        {
            return Err(ApiError::invalid_field(
                "holder_party_id",
                "each holder is a registered enterprise or individual",
            ));
        }
        crate::parties::store::require_active(conn, *party)?;
    }
    let key = super::rules::certificate_key(&r.certificate_no);
    let taken: i64 = fp::table
        .filter(fp::certificate_key.eq(&key))
        .count()
        .get_result(conn)?;
    if taken > 0 {
        return Err(parcel_exists(
            "a parcel with this certificate number is registered",
        ));
    }
    if !carry_out {
        return Ok(serde_json::Value::Null);
    }
    diesel::insert_into(fp::table)
        .values((
            fp::certificate_no.eq(&r.certificate_no),
            fp::certificate_key.eq(&key),
            fp::holder_id.eq(r.holder_party_id),
            fp::rights.eq(r.rights.join(",")),
            fp::county_code.eq(&r.county_code),
            fp::township.eq(&r.township),
            fp::village.eq(&r.village),
            fp::compartment.eq(&r.compartment),
            fp::sub_compartment.eq(&r.sub_compartment),
            fp::place_name.eq(&r.place_name),
            fp::area_mu.eq(r.area_mu_hundredths),
            fp::forest_category.eq(&r.forest_category),
            fp::commercial_kind.eq(&r.commercial_kind),
            fp::origin.eq(&r.origin),
            fp::dominant_species.eq(&r.dominant_species),
            fp::age_group.eq(&r.age_group),
            fp::stock_volume.eq(r.stock_volume_hundredths),
            fp::woodland_term_end.eq(r.woodland_term_end),
            fp::ownership.eq(&r.ownership),
            fp::management_form.eq(&r.management_form),
            fp::registered.eq(r.registered),
            fp::disputed.eq(r.disputed),
            fp::boundary.eq(&r.boundary),
            fp::created_at.eq(now),
            fp::updated_at.eq(now),
        ))
        .execute(conn)
        .map_err(|e| {
            if db::is_unique_violation(&e) {
                parcel_exists("a parcel with this certificate number is registered")
            } else {
                e.into()
            }
        })?;
    let row: ParcelRow = fp::table
        .filter(fp::certificate_no.eq(&r.certificate_no))
        .select(ParcelRow::as_select())
        .first(conn)?;
    super::set_holders(conn, row.id, &r.shares)?;
    crate::audit::record(
        conn,
        crate::audit::Event {
            chain: format!("parcel:{}", row.id),
            actor,
            action: "parcel.registered",
            object_type: "forest_parcel",
            object_id: row.id.to_string(),
            payload: json!({"certificate_no": row.certificate_no, "holder_id": row.holder_id}),
            at: now,
        },
    )?;
    serde_json::to_value(view(conn, row)?).map_err(|e| ApiError::internal(e.to_string()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ParcelQuery {
    pub certificate_no: Option<String>,
    pub holder_uscc: Option<String>,
    /// An individual holder's full ID number (R15); matched by keyed hash, never shown.
    pub holder_id_number: Option<String>,
    pub county_code: Option<String>,
    pub township: Option<String>,
    pub village: Option<String>,
    pub compartment: Option<String>,
    pub sub_compartment: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/forest-rights", tag = "forest", operation_id = "searchParcels",
    summary = "Search parcels by certificate, holder or location (holders see their own, banks those of their mortgages and applications)",
    params(ParcelQuery), responses((status = 200, description = "A page of parcels", body = Page<ParcelView>)))]
#[get("/v1/forest-rights")]
async fn search(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<ParcelQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let (after, limit) = PageParams {
        cursor: q.cursor.clone(),
        limit: q.limit,
    }
    .resolve()?;
    if q.county_code
        .as_deref()
        .is_some_and(|c| !crate::kernel::regions::fujian_county(c))
    {
        return Err(ApiError::invalid_field(
            "county_code",
            "a county, county-level city or district of Fujian (GB/T 2260)",
        ));
    }
    let id_hash = match &q.holder_id_number {
        Some(n) => Some(
            IdNumber::parse(n)
                .map_err(|e| ApiError::invalid_field("holder_id_number", e.to_string()))?
                .keyed_hash(&state.secrets.id_hmac_key),
        ),
        None => None,
    };
    let (quota, now) = (
        state.exposure.id_lookup_daily_quota,
        crate::db::now_micros(state.clock.now()),
    );
    let page = state
        .db(move |conn| {
            // A search by ID number is an ID-number look-up like any other (R15): counted
            // against the bank's daily quota and audited.
            if let Some(h) = &id_hash {
                crate::parties::lookups::charge(
                    conn,
                    &who,
                    h,
                    "GET /v1/forest-rights",
                    quota,
                    now,
                )?;
            }
            let mut query = fp::table
                .filter(fp::id.gt(after))
                .order(fp::id)
                .limit(limit + 1)
                .select(ParcelRow::as_select())
                .into_boxed();
            // Who sees which parcels (as `super::sees_parcel`): a bank only those of its
            // mortgages and of the applications made to it, not the whole register.
            let me = who.party_id.unwrap_or(-1);
            match who.role {
                r if r.sees_all() => {}
                Role::Enterprise => {
                    query = query.filter(fp::id.eq_any(crate::parcels_held_by!(me)));
                }
                Role::Bank => {
                    query = query.filter(fp::id.eq_any(crate::parcels_lent_on_by!(me)));
                }
                _ => query = query.filter(fp::id.eq(-1)),
            }
            if let Some(v) = q.certificate_no {
                query = query.filter(fp::certificate_no.eq(v));
            }
            if let Some(v) = q.holder_uscc.map(|u| u.to_ascii_uppercase()) {
                query = query.filter(
                    fp::id.eq_any(
                        ph::table
                            .filter(
                                ph::party_id
                                    .eq_any(pt::table.filter(pt::uscc.eq(v)).select(pt::id)),
                            )
                            .select(ph::parcel_id),
                    ),
                );
            }
            if let Some(h) = id_hash {
                query =
                    query.filter(
                        fp::id.eq_any(
                            ph::table
                                .filter(ph::party_id.eq_any(
                                    pt::table.filter(pt::id_number_hash.eq(h)).select(pt::id),
                                ))
                                .select(ph::parcel_id),
                        ),
                    );
            }
            for (col, v) in [
                (0, q.county_code),
                (1, q.township),
                (2, q.village),
                (3, q.compartment),
                (4, q.sub_compartment),
            ] {
                if let Some(v) = v {
                    query = match col {
                        0 => query.filter(fp::county_code.eq(v)),
                        1 => query.filter(fp::township.eq(v)),
                        2 => query.filter(fp::village.eq(v)),
                        3 => query.filter(fp::compartment.eq(v)),
                        _ => query.filter(fp::sub_compartment.eq(v)),
                    };
                }
            }
            let rows: Vec<ParcelRow> = query.load(conn)?;
            let views = rows
                .into_iter()
                .map(|r| view(conn, r))
                .collect::<ApiResult<Vec<_>>>()?;
            Ok(Page::from_rows(views, limit, |v| v.id))
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Loads a parcel the caller may see (holders their own, banks those they lend or were asked
/// to lend on, operators and regulators all); any other is a 404, as if it did not exist.
pub fn visible(conn: &mut DbConn, who: &Principal, id: i64) -> ApiResult<ParcelRow> {
    let p = parcel(conn, id)?.ok_or_else(|| ApiError::not_found("parcel"))?;
    if !super::sees_parcel(conn, who, p.id)? {
        return Err(ApiError::not_found("parcel"));
    }
    Ok(p)
}

#[utoipa::path(get, path = "/v1/forest-rights/{id}", tag = "forest", operation_id = "getParcel", summary = "A parcel",
    params(("id" = i64, Path, description = "Parcel id")), responses((status = 200, description = "The parcel", body = ParcelView)))]
#[get("/v1/forest-rights/{id}")]
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"new_holder_party_id": 8, "document_ref": "林权流转合同 2026-031"}))]
pub struct HolderChange {
    pub new_holder_party_id: i64,
    pub document_ref: String,
}

/// What a holder-change proposal stores: the parcel and the change.
#[derive(Debug, Deserialize, Serialize)]
pub struct HolderChangeProposal {
    pub parcel_id: i64,
    pub new_holder_party_id: i64,
    pub document_ref: String,
}

#[utoipa::path(post, path = "/v1/forest-rights/{id}/holder-changes", tag = "forest", operation_id = "changeParcelHolder",
    summary = "An operator proposes a change of holder; a second operator approves and it happens then",
    description = "Moving a parcel (and with it the collateral it carries) takes two persons: the change is checked now and again at approval (`POST /v1/proposals/{id}/approve`, by another person). At approval the holder changes; mortgages follow the parcel and their lenders are notified.",
    params(("id" = i64, Path, description = "Parcel id"), ("Idempotency-Key" = String, Header, description = "Required: this changes the holder")),
    request_body = HolderChange,
    responses((status = 202, description = "Proposed", body = crate::proposals::ProposalView),
        (status = 409, description = "transfer_banned: a mortgage on the parcel registered a transfer ban; parcel_frozen", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/forest-rights/{id}/holder-changes")]
async fn change_holder(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<HolderChange>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let r = body.value;
    let doc = text("document_ref", &r.document_ref)?;
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
            let asked = HolderChangeProposal {
                parcel_id: id,
                new_holder_party_id: r.new_holder_party_id,
                document_ref: doc,
            };
            execute_holder_change(conn, &asked, &actor, now, false)?;
            let row = crate::proposals::propose(
                conn,
                crate::proposals::ProposalKind::ParcelHolderChange,
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

/// Checks a change of holder (parcel not frozen, a fit new holder, no transfer ban) and, when
/// `carry_out`, changes it: the mortgages follow the parcel and their lenders get an entry.
pub fn execute_holder_change(
    conn: &mut DbConn,
    r: &HolderChangeProposal,
    actor: &str,
    now: chrono::NaiveDateTime,
    carry_out: bool,
) -> ApiResult<serde_json::Value> {
    let (id, doc) = (r.parcel_id, r.document_ref.as_str());
    // Lock the parcel first: mortgages on it are completed and registered under the same lock.
    let n = diesel::update(fp::table.find(id))
        .set(fp::updated_at.eq(now))
        .execute(conn)?;
    let p = parcel(conn, id)?
        .filter(|_| n == 1)
        .ok_or_else(|| ApiError::not_found("parcel"))?;
    super::freezes::require_changeable(conn, &p)?;
    let holder = crate::parties::store::find(conn, r.new_holder_party_id)?;
    if holder.is_none_or(|h| h.kind == "bank" || h.kind == "regulator" || h.id == p.holder_id) {
        return Err(ApiError::invalid_field(
            "new_holder_party_id",
            "another registered enterprise or individual",
        ));
    }
    crate::parties::store::require_active(conn, r.new_holder_party_id)?;
    let burdens = mortgages_on(conn, id, &LIVE)?;
    if let Some(m) = burdens.iter().find(|m| m.transfer_ban) {
        return Err(ApiError::conflict(
            "transfer_banned",
            format!(
                "mortgage {} registered a transfer ban on this parcel",
                m.registration_no.clone().unwrap_or_default()
            ),
        ));
    }
    if !carry_out {
        return Ok(serde_json::Value::Null);
    }
    super::set_holders(conn, id, &[(r.new_holder_party_id, 10_000)])?;
    for m in &burdens {
        add_entry(
            conn,
            m,
            "holder_changed",
            json!({"parcel_id": id, "from": p.holder_id, "to": r.new_holder_party_id, "document_ref": doc}),
            actor,
            now,
        )?;
    }
    crate::audit::record(
        conn,
        crate::audit::Event {
            chain: format!("parcel:{id}"),
            actor,
            action: "parcel.holder_changed",
            object_type: "forest_parcel",
            object_id: id.to_string(),
            payload: json!({"from": p.holder_id, "to": r.new_holder_party_id, "document_ref": doc}),
            at: now,
        },
    )?;
    let p = parcel(conn, id)?.ok_or_else(|| ApiError::not_found("parcel"))?;
    serde_json::to_value(view(conn, p)?).map_err(|e| ApiError::internal(e.to_string()))
}

/// One part of a split.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitPart {
    pub certificate_no: String,
    pub sub_compartment: String,
    pub area_mu: Dec,
    pub stock_volume: Dec,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"document_ref": "分割登记 2027-3", "parts": [
    {"certificate_no": "闽(2027)顺昌县不动产权第0002001号", "sub_compartment": "03-1", "area_mu": "60.00", "stock_volume": "750.00"},
    {"certificate_no": "闽(2027)顺昌县不动产权第0002002号", "sub_compartment": "03-2", "area_mu": "66.50", "stock_volume": "830.00"}]}))]
pub struct Split {
    pub document_ref: String,
    /// At least two parts whose areas and stock volumes add up to the parcel's.
    pub parts: Vec<SplitPart>,
}

/// What a split proposal stores: the parcel, the document and the validated parts (amounts in
/// hundredths).
#[derive(Debug, Deserialize, Serialize)]
pub struct SplitProposal {
    pub parcel_id: i64,
    pub document_ref: String,
    pub parts: Vec<SplitPartPlan>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct SplitPartPlan {
    pub certificate_no: String,
    pub sub_compartment: String,
    pub area_mu_hundredths: i64,
    pub stock_volume_hundredths: i64,
}

impl SplitProposal {
    /// The key under which a pending split of one parcel is found: a second proposal to split it
    /// is refused while the first waits.
    fn source_document(&self) -> String {
        format!("parcel_split:{}", self.parcel_id)
    }
}

/// Validates a split request (no database): the document, 2 to 50 parts, each with its own
/// certificate number.
fn split_plan(id: i64, r: Split) -> ApiResult<SplitProposal> {
    let document_ref = text("document_ref", &r.document_ref)?;
    if r.parts.len() < 2 || r.parts.len() > 50 {
        return Err(ApiError::invalid_field("parts", "2 to 50 parts"));
    }
    let mut parts: Vec<SplitPartPlan> = Vec::new();
    for part in &r.parts {
        let area = hundredths(part.area_mu.0, false)
            .map_err(|e| ApiError::invalid_field("parts.area_mu", e.to_string()))?;
        let volume = hundredths(part.stock_volume.0, true)
            .map_err(|e| ApiError::invalid_field("parts.stock_volume", e.to_string()))?;
        let certificate_no = text("parts.certificate_no", &part.certificate_no)?;
        if parts
            .iter()
            .any(|p| super::rules::same_certificate(&p.certificate_no, &certificate_no))
        {
            return Err(ApiError::invalid_field(
                "parts.certificate_no",
                "each part has its own certificate number",
            ));
        }
        parts.push(SplitPartPlan {
            certificate_no,
            sub_compartment: text("parts.sub_compartment", &part.sub_compartment)?,
            area_mu_hundredths: area,
            stock_volume_hundredths: volume,
        });
    }
    Ok(SplitProposal {
        parcel_id: id,
        document_ref,
        parts,
    })
}

#[utoipa::path(post, path = "/v1/forest-rights/{id}/split", tag = "forest", operation_id = "splitParcel",
    summary = "An operator proposes splitting a parcel; a second operator approves and the parts are registered then",
    description = "A split registers new certificates that banks lend against, so it takes two persons: the request is checked now (202, a `parcel_split` proposal) and again at approval (`POST /v1/proposals/{id}/approve`, by another person), when the parcel becomes `split` and its parts come into existence; the parcel's mortgages burden every part, with their ranks. The approval's `result` is the list of parts.",
    params(("id" = i64, Path, description = "Parcel id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = Split,
    responses((status = 202, description = "Proposed", body = crate::proposals::ProposalView),
        (status = 409, description = "parcel_frozen, parcel_split (already split), parcel_exists (a part's certificate is registered, or a split of this parcel or a registration of a part's certificate awaits approval)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/forest-rights/{id}/split")]
async fn split(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<Split>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let asked = split_plan(id.into_inner(), body.value)?;
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
            let source = asked.source_document();
            if crate::proposals::pending_source(conn, &document_key(&source))? {
                return Err(parcel_exists("a split of this parcel is awaiting approval"));
            }
            for part in &asked.parts {
                if crate::proposals::pending_source(
                    conn,
                    &document_key(&format!("parcel:{}", part.certificate_no)),
                )? {
                    return Err(parcel_exists(&format!(
                        "a registration of {} is awaiting approval",
                        part.certificate_no
                    )));
                }
            }
            execute_split(conn, &asked, &w.actor(), now, false)?;
            let row = crate::proposals::propose(
                conn,
                crate::proposals::ProposalKind::ParcelSplit,
                &asked,
                Some(&source),
                &w,
                now,
            )?;
            Outcome::of(&crate::proposals::ProposalView::from(row))
        },
    )
    .await
}

/// Checks a split against the registers (the parcel exists, is active and unfrozen, the parts add
/// up to it, no part's certificate is registered) and, when `carry_out` (at approval), splits
/// it: the parts are registered with the parcel's holders and every live mortgage burdens every
/// part with its rank; the lenders get an entry. Returns the parts.
pub fn execute_split(
    conn: &mut DbConn,
    r: &SplitProposal,
    actor: &str,
    now: chrono::NaiveDateTime,
    carry_out: bool,
) -> ApiResult<serde_json::Value> {
    use crate::schema::forest_mortgage_parcels as fmp;
    let (id, doc) = (r.parcel_id, r.document_ref.as_str());
    // Lock the parcel first: mortgages on it are completed and registered under the same lock.
    let n = diesel::update(fp::table.find(id))
        .set(fp::updated_at.eq(now))
        .execute(conn)?;
    let p = parcel(conn, id)?
        .filter(|_| n == 1)
        .ok_or_else(|| ApiError::not_found("parcel"))?;
    super::freezes::require_changeable(conn, &p)?;
    if r.parts.iter().map(|x| x.area_mu_hundredths).sum::<i64>() != p.area_mu
        || r.parts
            .iter()
            .map(|x| x.stock_volume_hundredths)
            .sum::<i64>()
            != p.stock_volume
    {
        return Err(ApiError::invalid_field(
            "parts",
            "the parts' areas and stock volumes must add up to the parcel's",
        ));
    }
    for part in &r.parts {
        let taken: i64 = fp::table
            .filter(fp::certificate_key.eq(super::rules::certificate_key(&part.certificate_no)))
            .count()
            .get_result(conn)?;
        if taken > 0 {
            return Err(parcel_exists(&format!(
                "{} is registered",
                part.certificate_no
            )));
        }
    }
    if !carry_out {
        return Ok(serde_json::Value::Null);
    }
    let burdens = mortgages_on(conn, id, &LIVE)?;
    let ranks: Vec<(i64, Option<i32>)> = fmp::table
        .filter(fmp::parcel_id.eq(id))
        .select((fmp::mortgage_id, fmp::rank_at_registration))
        .load(conn)?;
    diesel::update(fp::table.find(id))
        .set(fp::status.eq("split"))
        .execute(conn)?;
    let shares = super::holders(conn, id)?;
    let mut created = Vec::new();
    for part in &r.parts {
        let certificate_no = &part.certificate_no;
        diesel::insert_into(fp::table)
            .values((
                fp::certificate_no.eq(certificate_no),
                fp::certificate_key.eq(super::rules::certificate_key(certificate_no)),
                fp::holder_id.eq(p.holder_id),
                fp::rights.eq(&p.rights),
                fp::county_code.eq(&p.county_code),
                fp::township.eq(&p.township),
                fp::village.eq(&p.village),
                fp::compartment.eq(&p.compartment),
                fp::sub_compartment.eq(&part.sub_compartment),
                fp::place_name.eq(&p.place_name),
                fp::area_mu.eq(part.area_mu_hundredths),
                fp::forest_category.eq(&p.forest_category),
                fp::commercial_kind.eq(&p.commercial_kind),
                fp::origin.eq(&p.origin),
                fp::dominant_species.eq(&p.dominant_species),
                fp::age_group.eq(&p.age_group),
                fp::stock_volume.eq(part.stock_volume_hundredths),
                fp::woodland_term_end.eq(p.woodland_term_end),
                fp::ownership.eq(&p.ownership),
                fp::management_form.eq(&p.management_form),
                fp::registered.eq(p.registered),
                fp::disputed.eq(p.disputed),
                fp::split_from.eq(Some(id)),
                fp::created_at.eq(now),
                fp::updated_at.eq(now),
            ))
            .execute(conn)
            .map_err(|e| {
                if db::is_unique_violation(&e) {
                    parcel_exists(&format!("{certificate_no} is registered"))
                } else {
                    e.into()
                }
            })?;
        let row: ParcelRow = fp::table
            .filter(fp::certificate_no.eq(certificate_no))
            .select(ParcelRow::as_select())
            .first(conn)?;
        super::set_holders(conn, row.id, &shares)?;
        // Every live mortgage burdens every part, keeping its rank.
        for m in &burdens {
            let rank = ranks
                .iter()
                .find(|(mid, _)| *mid == m.id)
                .and_then(|(_, r)| *r);
            diesel::insert_into(fmp::table)
                .values((
                    fmp::mortgage_id.eq(m.id),
                    fmp::parcel_id.eq(row.id),
                    fmp::rank_at_registration.eq(rank),
                ))
                .execute(conn)?;
        }
        created.push(row);
    }
    let part_ids: Vec<i64> = created.iter().map(|c| c.id).collect();
    for m in &burdens {
        add_entry(
            conn,
            m,
            "parcel_split",
            json!({"parcel_id": id, "parts": part_ids, "document_ref": doc}),
            actor,
            now,
        )?;
    }
    crate::audit::record(
        conn,
        crate::audit::Event {
            chain: format!("parcel:{id}"),
            actor,
            action: "parcel.split",
            object_type: "forest_parcel",
            object_id: id.to_string(),
            payload: json!({"parts": part_ids, "document_ref": doc}),
            at: now,
        },
    )?;
    let views = created
        .into_iter()
        .map(|c| view(conn, c))
        .collect::<ApiResult<Vec<_>>>()?;
    serde_json::to_value(views).map_err(|e| ApiError::internal(e.to_string()))
}

/// Fills the comparison form of the certificate number of parcels registered before it was kept
/// (at start, after the migrations). Of two older parcels whose numbers turn out to be one, the
/// second keeps no key (the unique index allows that) and is reported, for an operator to look
/// into.
pub fn backfill_certificate_keys(conn: &mut DbConn) -> ApiResult<usize> {
    let missing: Vec<(i64, String)> = fp::table
        .filter(fp::certificate_key.is_null())
        .order(fp::id)
        .select((fp::id, fp::certificate_no))
        .load(conn)?;
    let mut filled = 0;
    for (id, certificate_no) in missing {
        let key = super::rules::certificate_key(&certificate_no);
        let taken: i64 = fp::table
            .filter(fp::certificate_key.eq(&key))
            .count()
            .get_result(conn)?;
        if taken > 0 {
            tracing::warn!(parcel_id = id, certificate_no = %certificate_no, "an older parcel's certificate number is one already registered");
            continue;
        }
        match diesel::update(fp::table.find(id))
            .set(fp::certificate_key.eq(&key))
            .execute(conn)
        {
            Ok(_) => filled += 1,
            // Another instance starting at the same time filled an equal key first.
            Err(e) if db::is_unique_violation(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(filled)
}
