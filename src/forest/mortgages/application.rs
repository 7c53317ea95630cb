//! The holder applies to mortgage parcels (co-held parcels need the co-holders' consent).

use super::*;

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
pub(super) async fn apply(
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
                let row = crate::forest::parcel(conn, *p)?
                    .filter(|row| row.holder_id == holder || crate::forest::holders(conn, row.id).is_ok_and(|hs| hs.iter().any(|(h, _)| *h == holder)))
                    .ok_or_else(|| ApiError::not_found("parcel"))?;
                            crate::forest::freezes::require_changeable(conn, &row)?;
            let hs = crate::forest::holders(conn, row.id)?;
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
            encumbrance::require_applying_parties(conn, holder, r.lender_party_id)?;
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
            encumbrance::recorded(conn, &m, "applied", json!({"parcel_ids": parcels, "lender_id": r.lender_party_id}), &actor, now)
        },
    )
    .await
}
