//! Searching parcels: by holder, place, certificate, category; each caller sees only the parcels it may.

use super::*;

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
pub(super) async fn search(
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
            // Who sees which parcels (as `crate::forest::sees_parcel`): a bank only those of its
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
