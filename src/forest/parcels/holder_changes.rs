//! A change of a parcel's holder: the mortgages follow the parcel unless a transfer ban was registered (Civil Code art. 406).

use super::*;

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
pub(super) async fn change_holder(
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
    crate::forest::freezes::require_changeable(conn, &p)?;
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
    crate::forest::set_holders(conn, id, &[(r.new_holder_party_id, 10_000)])?;
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
