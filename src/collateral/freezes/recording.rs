//! Recording a court's freeze order, and lifting it (proposed, then approved by a second operator).

use super::*;

/// Tells the lenders of live pledges on the frozen holding.
pub(super) fn notify_lenders(
    conn: &mut DbConn,
    f: &FreezeRow,
    event: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    use crate::schema::pledges as pl;
    let live: Vec<(i64, i64, Option<String>)> = pl::table
        .filter(pl::lot_id.eq(f.lot_id))
        .filter(pl::pledgor_id.eq(f.party_id))
        .filter(pl::status.eq_any(crate::collateral::LIVE))
        .select((pl::id, pl::lender_id, pl::registration_no))
        .load(conn)?;
    for (pledge, lender, registration_no) in live {
        let data = json!({"pledge_id": pledge, "registration_no": registration_no, "freeze": f.registration_no(),
            "court": f.court, "case_no": f.case_no, "quantity": Dec::qty(f.quantity)});
        crate::collateral::webhooks::enqueue(
            conn,
            lender,
            &format!("pledge:{pledge}"),
            event,
            data,
            at,
        )?;
    }
    Ok(())
}

pub(super) fn audit(
    conn: &mut DbConn,
    f: &FreezeRow,
    action: &str,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    let event = court::FreezeEvent {
        chain: format!("lot:{}", f.lot_id),
        action,
        object_type: "judicial_freeze",
        id: f.id,
        payload: json!({"party_id": f.party_id, "quantity": f.quantity, "court": f.court, "case_no": f.case_no,
            "document_ref": f.document_ref, "lift_document_ref": f.lift_document_ref}),
    };
    court::audit(conn, event, actor, at)
}

/// A court order freezing quantity of a holding.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lot_id": 1, "party_id": 3, "quantity": "50", "court": "南平市延平区人民法院",
    "case_no": "(2026)闽0702执保123号", "document_ref": "协助执行通知书 2026-118"}))]
pub struct NewFreeze {
    pub lot_id: i64,
    pub party_id: i64,
    pub quantity: Dec,
    pub court: String,
    pub case_no: String,
    pub document_ref: String,
}

#[utoipa::path(post, path = "/v1/judicial-freezes", tag = "pledges", operation_id = "recordJudicialFreeze",
    summary = "Record a court order freezing quantity of a holding: available quantity first, then pledged quantity (which stays pledged and is frozen as well), then the holder's own listed quantity, its listings newest first and then its scheduled auctions newest first (the unsold or offered quantity shrinks; a listing left with nothing is withdrawn, an auction is cancelled with its bids void and deposits released), then quantity in the holder's pending transfers and trades awaiting payment, newest first: it stays where it is, and they cannot settle (409 quantity_frozen) until the freeze is lifted; one cancelled, rejected or expired returns it to the holder still frozen. Last, quantity a pledgee offers in disposing of the holder's pledge, listings then auctions, newest first: the offer shrinks (withdrawn, or for an auction cancelled with its bids void and deposits released, when left with nothing), the quantity returns under the pledge and is frozen there; lifting the freeze offers nothing again. 409 freeze_exceeds_holding if the holding has less than the order",
    params(("Idempotency-Key" = String, Header, description = "Required: this moves quantity")),
    request_body = NewFreeze, responses((status = 201, description = "Frozen", body = FreezeView)))]
#[post("/v1/judicial-freezes")]
pub(super) async fn freeze(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    body: ApiJson<NewFreeze>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let r = body.value;
    court::require_order(&r.court, &r.case_no, &r.document_ref)?;
    let (actor, now) = (who.actor(), db::now_micros(state.clock.now()));
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Required,
        StatusCode::CREATED,
        move |conn| {
            let lot = rights::lock_lot(conn, r.lot_id)?;
            let h = rights::holding(conn, r.party_id, lot.id)?
                .ok_or_else(|| ApiError::not_found("holding"))?;
            let t = rights::right_type(conn, &lot.right_type)?
                .ok_or_else(|| ApiError::internal("right type vanished"))?;
            let quantity = parse_quantity("quantity", r.quantity, &t)?;
            let frozen_pledged: i64 = active_on_holding(conn, r.party_id, lot.id)?
                .iter()
                .map(|f| f.pledged)
                .sum();
            // Available and pledged quantity first; what they do not cover the freeze takes from
            // the holder's own open listings and auctions (newest first): while it stands nothing of it is sold.
            // Then it holds quantity in the holder's pending transfers and trades awaiting payment
            // (newest first) where it is: they cannot settle while the freeze stands.
            // The holder's own offers come before pending transfers and trades: no buyer is bound
            // to them yet (an auction's winner is only named when it closes), whereas a pending
            // step is a deal struck with a named counterparty.
            let own = own_offers(conn, r.party_id, lot.id)?;
            let listed: i64 = own.iter().map(Offer::unsold).sum();
            let steps = pending_steps(conn, r.party_id, lot.id)?;
            let pending: i64 = steps.iter().map(|p| p.free).sum();
            // Last, the pledgee's open disposal offers of the holding's pledged quantity: a court
            // order binds the asset whoever is selling it. They come after everything else because
            // they are a third party's enforcement under way (buyers and bidders rely on them), and
            // what the freeze takes of them stays pledged: it only stops the sale.
            let offers = disposal_offers(conn, r.party_id, lot.id)?;
            let offered: i64 = offers.iter().map(Offer::unsold).sum();
            let from_listed = courts::from_listed(h.available, h.pledged, frozen_pledged, listed, quantity);
            let from_pending = courts::from_pending(
                h.available,
                h.pledged,
                frozen_pledged,
                listed,
                pending,
                quantity,
            );
            let from_disposal = courts::from_disposal(
                h.available,
                h.pledged,
                frozen_pledged,
                listed,
                pending,
                offered,
                quantity,
            );
            let reach = courts::reach(
                h.available,
                h.pledged,
                frozen_pledged,
                quantity - from_listed - from_pending - from_disposal,
            )
            .map_err(|s| {
                ApiError::conflict(
                    "freeze_exceeds_holding",
                    format!(
                        "the order asks for more than the holding has: {} available, pledged, listed \
                         for sale (a pledgee's disposal offers included) or in pending transfers and \
                         trades that no other freeze holds",
                        Dec::qty(s.reachable + listed + pending + offered).0
                    ),
                )
            })?;
            diesel::insert_into(jf::table)
                .values((
                    jf::lot_id.eq(lot.id),
                    jf::party_id.eq(r.party_id),
                    jf::quantity.eq(quantity),
                    jf::court.eq(r.court.trim()),
                    jf::case_no.eq(r.case_no.trim()),
                    jf::document_ref.eq(r.document_ref.trim()),
                    jf::status.eq("active"),
                    jf::ordered_by.eq(&actor),
                    jf::ordered_at.eq(now),
                    // What it takes off disposal offers returns to `pledged` and rests there.
                    jf::pledged.eq(reach.from_pledged + from_disposal),
                    jf::pending.eq(from_pending),
                ))
                .execute(conn)?;
            let f: FreezeRow = jf::table
                .filter(jf::lot_id.eq(lot.id))
                .order(jf::id.desc())
                .select(FreezeRow::as_select())
                .first(conn)?;
            court_move(
                conn,
                &lot,
                Side::holder(r.party_id, Bucket::Available),
                Side::holder(r.party_id, Bucket::Frozen),
                reach.from_available,
                "judicial_freeze",
                format!("freeze:{}", f.id),
                &actor,
                now,
                None,
            )?;
            let takes = courts::oldest_first(
                &own.iter().map(Offer::unsold).collect::<Vec<_>>(),
                from_listed,
            );
            for (o, take) in own.iter().zip(takes).filter(|(_, t)| *t > 0) {
                take_from_own(conn, &f, o, take, &actor, now)?;
            }
            court_move(
                conn,
                &lot,
                Side::holder(r.party_id, Bucket::Listed),
                Side::holder(r.party_id, Bucket::Frozen),
                from_listed,
                "judicial_freeze",
                format!("freeze:{}", f.id),
                &actor,
                now,
                None,
            )?;
            let frees: Vec<i64> = steps.iter().map(|p| p.free).collect();
            for (p, take) in steps.iter().zip(courts::oldest_first(&frees, from_pending)) {
                if take > 0 {
                    diesel::insert_into(jfh::table)
                        .values((
                            jfh::freeze_id.eq(f.id),
                            jfh::step.eq(&p.step),
                            jfh::quantity.eq(take),
                            jfh::created_at.eq(now),
                        ))
                        .execute(conn)?;
                }
            }
            let unsold: Vec<i64> = offers.iter().map(Offer::unsold).collect();
            for (o, take) in offers.iter().zip(courts::oldest_first(&unsold, from_disposal)) {
                if take > 0 {
                    take_from_disposal(conn, &lot, &f, o, take, &actor, now)?;
                }
            }
            audit(conn, &f, "freeze.recorded", &actor, now)?;
            notify_lenders(conn, &f, "judicial_freeze.recorded", now)?;
            Outcome::of(&FreezeView::from(f))
        },
    )
    .await
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiftFreeze {
    /// The later order that lifts the freeze.
    pub document_ref: String,
}

/// What a freeze-lift proposal stores.
#[derive(Debug, Deserialize, Serialize)]
pub struct LiftProposal {
    pub freeze_id: i64,
    pub document_ref: String,
}

#[utoipa::path(post, path = "/v1/judicial-freezes/{id}/lift", tag = "pledges", operation_id = "liftJudicialFreeze",
    summary = "Propose recording the order that lifts a freeze; once a second operator approves, the quantity is available again",
    params(("id" = i64, Path, description = "Freeze id"), ("Idempotency-Key" = String, Header, description = "Required: this moves quantity once approved")),
    request_body = LiftFreeze, responses((status = 202, description = "Proposed", body = crate::proposals::ProposalView),
        (status = 409, description = "freeze_lifted (already lifted) or freeze_executed (a court-ordered transfer took all of it)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/judicial-freezes/{id}/lift")]
pub(super) async fn lift(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<LiftFreeze>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let doc = court::lift_document(&body.value.document_ref)?;
    let (id, kind) = (id.into_inner(), ProposalKind::FreezeLift);
    encumbrance::propose(state, who, idem, &body.body_hash, kind, move |conn, _| {
        let status: String = jf::table
            .find(id)
            .select(jf::status)
            .first(conn)
            .optional()?
            .ok_or_else(|| ApiError::not_found("freeze"))?;
        lift_allowed(&status)?;
        Ok(LiftProposal {
            freeze_id: id,
            document_ref: doc,
        })
    })
    .await
}

/// Only an active freeze is lifted.
pub(super) fn lift_allowed(status: &str) -> ApiResult<()> {
    if status == "executed" {
        // A court's order took all of it: there is nothing left to lift.
        return Err(ApiError::conflict(
            "freeze_executed",
            "this freeze was executed by a court-ordered transfer; nothing is left to lift",
        ));
    }
    if status != "active" {
        return Err(ApiError::conflict(
            "freeze_lifted",
            "this freeze is already lifted",
        ));
    }
    Ok(())
}

/// Carries out an approved lift: what the freeze held in `frozen` is available again.
pub fn execute_lift(
    conn: &mut DbConn,
    r: &LiftProposal,
    actor: &str,
    now: NaiveDateTime,
) -> ApiResult<serde_json::Value> {
    let (id, doc) = (r.freeze_id, &r.document_ref);
    let lot_id: i64 = jf::table
        .find(id)
        .select(jf::lot_id)
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::not_found("freeze"))?;
    let lot = rights::lock_lot(conn, lot_id)?;
    let n = diesel::update(
        jf::table
            .filter(jf::id.eq(id))
            .filter(jf::status.eq("active")),
    )
    .set((
        jf::status.eq("lifted"),
        jf::lift_document_ref.eq(doc),
        jf::lifted_by.eq(actor),
        jf::lifted_at.eq(now),
    ))
    .execute(conn)?;
    if n != 1 {
        // Executed meanwhile by a court-ordered transfer: nothing is left to lift.
        let status: String = jf::table.find(id).select(jf::status).first(conn)?;
        lift_allowed(&status)?;
        return Err(ApiError::conflict(
            "freeze_lifted",
            "this freeze is already lifted",
        ));
    }
    let f: FreezeRow = jf::table
        .find(id)
        .select(FreezeRow::as_select())
        .first(conn)?;
    // What it held in `frozen` is available again; what it rested on stays pledged.
    court_move(
        conn,
        &lot,
        Side::holder(f.party_id, Bucket::Frozen),
        Side::holder(f.party_id, Bucket::Available),
        f.in_frozen(),
        "judicial_unfreeze",
        format!("freeze:{id}"),
        actor,
        now,
        None,
    )?;
    audit(conn, &f, "freeze.lifted", actor, now)?;
    notify_lenders(conn, &f, "judicial_freeze.lifted", now)?;
    serde_json::to_value(FreezeView::from(f)).map_err(|e| ApiError::internal(e.to_string()))
}
