//! The official registration (R14): entered, confirmed or rejected by another person; and the release (注销登记).

use super::*;

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
pub(super) async fn official(
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
        encumbrance::recorded(conn, &m, "official_registration_entered", json!({"official_certificate_no": certificate_no, "registered_at": r.registered_at, "entered_by": actor}), &actor, now)
    })
    .await
}

pub(super) fn certificate_taken(certificate_no: &str, other: Option<String>) -> ApiError {
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
pub(super) async fn confirm_official(
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
pub(super) async fn reject_official(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<ConfirmOfficial>,
) -> ApiResult<HttpResponse> {
    decide_official(state, who, idem, id.into_inner(), body, false).await
}

pub(super) async fn decide_official(
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
            return encumbrance::recorded(conn, &m, "official_registration_rejected", json!({"official_certificate_no": m.official_certificate_no, "note": note}), &actor, now);
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
        encumbrance::recorded(conn, &m, "registered", json!({"official_certificate_no": m.official_certificate_no, "registered_at": m.official_registered_at.map(|t| t.and_utc()),
            "entered_by": m.official_entered_by, "confirmed_by": actor, "note": note}), &actor, now)
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
pub(super) async fn release(
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
            let from = [
                "pending_official_registration",
                "pending_confirmation",
                "registered",
            ];
            let entry = ("released", json!({"document_ref": doc}));
            encumbrance::transition(conn, &m, &from, "released", entry, &actor, now)
        },
    )
    .await
}
