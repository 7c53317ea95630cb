//! A parcel divided into new parcels: every live mortgage burdens each part with its rank.

use super::*;

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
pub(super) fn split_plan(id: i64, r: Split) -> ApiResult<SplitProposal> {
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
            .any(|p| crate::forest::rules::same_certificate(&p.certificate_no, &certificate_no))
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
pub(super) async fn split(
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
    crate::forest::freezes::require_changeable(conn, &p)?;
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
            .filter(
                fp::certificate_key.eq(crate::forest::rules::certificate_key(&part.certificate_no)),
            )
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
    let shares = crate::forest::holders(conn, id)?;
    let mut created = Vec::new();
    for part in &r.parts {
        let certificate_no = &part.certificate_no;
        diesel::insert_into(fp::table)
            .values((
                fp::certificate_no.eq(certificate_no),
                fp::certificate_key.eq(crate::forest::rules::certificate_key(certificate_no)),
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
        crate::forest::set_holders(conn, row.id, &shares)?;
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
