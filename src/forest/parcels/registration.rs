//! Registering a parcel: the request checked without the database, then against the registers at approval by a second operator.

use super::*;

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

pub(super) fn yes() -> bool {
    true
}

pub(super) fn one_of(field: &str, v: &str, allowed: &[&str]) -> ApiResult<()> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            field,
            format!("one of {}", allowed.join(", ")),
        ))
    }
}

pub(super) fn text(field: &str, v: &str) -> ApiResult<String> {
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
pub(super) fn check_boundary(v: &serde_json::Value) -> ApiResult<String> {
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

#[utoipa::path(post, path = "/v1/forest-rights", tag = "forest", operation_id = "registerParcel",
    summary = "An operator proposes registering a forest parcel; a second operator approves and it is registered then",
    description = "A registered parcel is collateral a bank lends against, so registering it takes two persons: the request is validated now (202, a `parcel_registration` proposal) and again at approval (`POST /v1/proposals/{id}/approve`, by another person), when the parcel comes into existence; the approval's `result` is the parcel.",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = RegisterParcel,
    responses((status = 202, description = "Proposed", body = crate::proposals::ProposalView),
        (status = 409, description = "parcel_exists: registered or already proposed; party_inactive: a holder has merged, split or otherwise ended", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/forest-rights")]
pub(super) async fn register(
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

pub(super) fn parcel_exists(detail: &str) -> ApiError {
    ApiError::conflict("parcel_exists", detail.to_string())
}

/// Validates a registration request (no database): the fields, the shares, the boundary.
pub(super) fn registration_plan(r: RegisterParcel) -> ApiResult<ParcelRegistration> {
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
    let key = crate::forest::rules::certificate_key(&r.certificate_no);
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
    crate::forest::set_holders(conn, row.id, &r.shares)?;
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
        let key = crate::forest::rules::certificate_key(&certificate_no);
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
