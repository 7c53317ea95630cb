//! Forced transfers by court order, and quantity leaving a pledge with freezes resting on it.

use super::*;

/// The freeze a court-ordered forced transfer names by its registration number (`NPDJ-000001`),
/// checked to be an active freeze of the holding the order takes from. An order executes only
/// against the freeze of its own case: another court's freeze on the same holding is that court's.
pub fn named_for_holding(
    conn: &mut DbConn,
    freeze_no: &str,
    party: i64,
    lot: i64,
) -> ApiResult<FreezeRow> {
    let id = freeze_no
        .trim()
        .strip_prefix("NPDJ-")
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            ApiError::invalid_field(
                "freeze_no",
                "a freeze registration number, e.g. NPDJ-000001",
            )
        })?;
    let f: FreezeRow = jf::table
        .find(id)
        .select(FreezeRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::invalid_field("freeze_no", "no such freeze"))?;
    if f.party_id != party || f.lot_id != lot {
        return Err(ApiError::conflict(
            "freeze_not_of_holding",
            format!(
                "{} freezes another holding: an order executes only against a freeze of the holding it takes from",
                f.registration_no()
            ),
        ));
    }
    if f.status != "active" {
        return Err(ApiError::conflict(
            "freeze_not_active",
            format!(
                "{} is {}: there is nothing of it left to execute",
                f.registration_no(),
                f.status
            ),
        ));
    }
    Ok(f)
}

/// How a forced transfer by court order treats the pledges on the pledged frozen quantity it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PledgeHandling {
    /// The pledge follows the quantity (Civil Code art. 406: the security right follows the
    /// property): the transferee receives it still pledged to the same pledgee, who keeps its rank.
    Follows,
    /// The court's order discharges the pledge on it: the quantity reaches the transferee free.
    Discharged,
}

impl PledgeHandling {
    /// `follows` (the default: a pledge follows its property unless the court says otherwise) or
    /// `discharged`.
    pub fn parse(s: Option<&str>) -> ApiResult<PledgeHandling> {
        match s.map(str::trim) {
            None | Some("follows") => Ok(PledgeHandling::Follows),
            Some("discharged") => Ok(PledgeHandling::Discharged),
            Some(_) => Err(ApiError::invalid_field(
                "pledge_handling",
                "follows or discharged",
            )),
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            PledgeHandling::Follows => "follows",
            PledgeHandling::Discharged => "discharged",
        }
    }
}

/// What a court order is, for the entries it leaves on a pledge.
pub struct CourtOrder<'a> {
    pub document_ref: &'a str,
    pub freeze_no: Option<&'a str>,
    pub handling: PledgeHandling,
    /// The forced transfer's own reference (`transfer:12`).
    pub reference: String,
}

/// A forced transfer by court order (R13's court counterpart). Naming its freeze (`freeze_no`), it
/// executes against the quantity that freeze holds: first what it holds in `frozen`, then the
/// pledged quantity it rests on, then available quantity; without one it takes available quantity
/// only, so an order never spends the frozen quantity of another court's case. Pledged quantity
/// is taken from the holding's live pledges, the latest registered first, and by default the
/// pledge follows it to the transferee (still pledged to the same pledgee, same rank and terms; a
/// pledge taken in part is split and the part taken gets its own registration number); an order
/// that discharges the pledge releases it on the quantity taken. Either way the pledge's entries
/// name the order. What a freeze holds in pending transfers and trades is not taken. Returns the
/// serial ranges that moved.
#[allow(clippy::too_many_arguments)]
pub fn court_transfer(
    conn: &mut DbConn,
    lot: &LotRow,
    from: i64,
    to: i64,
    quantity: i64,
    order: CourtOrder,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<Vec<Range>> {
    let named = match order.freeze_no {
        Some(no) => Some(named_for_holding(conn, no, from, lot.id)?),
        None => None,
    };
    let from_frozen = named.as_ref().map_or(0, |f| f.in_frozen().min(quantity));
    let from_pledged = named
        .as_ref()
        .map_or(0, |f| f.pledged.min(quantity - from_frozen));
    if let Some(f) = named.as_ref().filter(|_| from_frozen + from_pledged > 0) {
        let executed = f.executed + from_frozen + from_pledged;
        let status = if executed == f.quantity {
            "executed"
        } else {
            "active"
        };
        diesel::update(jf::table.find(f.id))
            .set((
                jf::executed.eq(executed),
                jf::pledged.eq(f.pledged - from_pledged),
                jf::status.eq(status),
            ))
            .execute(conn)?;
        let f = FreezeRow {
            executed,
            pledged: f.pledged - from_pledged,
            status: status.into(),
            ..f.clone()
        };
        audit(conn, &f, "freeze.executed", actor, at)?;
        notify_lenders(conn, &f, "judicial_freeze.executed", at)?;
    }
    let mut moved = court_move(
        conn,
        lot,
        Side::holder(from, Bucket::Frozen),
        Side::holder(to, Bucket::Available),
        from_frozen,
        "court_forced_transfer",
        order.reference.clone(),
        actor,
        at,
        Some(Acquisition::Other),
    )?;
    if from_pledged > 0 {
        moved.extend(take_pledged(
            conn,
            lot,
            from,
            to,
            from_pledged,
            &order,
            actor,
            at,
        )?);
    }
    moved.extend(court_move(
        conn,
        lot,
        Side::holder(from, Bucket::Available),
        Side::holder(to, Bucket::Available),
        quantity - from_frozen - from_pledged,
        "forced_transfer",
        order.reference,
        actor,
        at,
        Some(Acquisition::Other),
    )?);
    Ok(moved)
}

/// Takes `quantity` of the holding's pledged quantity for a court order, from its live pledges,
/// the latest registered first (the earlier ones keep their quantity longest).
#[allow(clippy::too_many_arguments)]
pub(super) fn take_pledged(
    conn: &mut DbConn,
    lot: &LotRow,
    from: i64,
    to: i64,
    quantity: i64,
    order: &CourtOrder,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<Vec<Range>> {
    use crate::collateral::PledgeRow;
    use crate::schema::pledges as pl;
    let pledges: Vec<PledgeRow> = pl::table
        .filter(pl::lot_id.eq(lot.id))
        .filter(pl::pledgor_id.eq(from))
        .filter(pl::status.eq_any(crate::collateral::LIVE))
        .filter(pl::quantity.gt(0))
        .order((pl::registered_at.desc(), pl::id.desc()))
        .select(PledgeRow::as_select())
        .load(conn)?;
    let parts: Vec<i64> = pledges.iter().map(|p| p.quantity).collect();
    let takes = courts::oldest_first(&parts, quantity);
    if takes.iter().sum::<i64>() < quantity {
        return Err(ApiError::conflict(
            "insufficient_quantity",
            "the pledged quantity of this holding is less than the order takes",
        ));
    }
    let mut moved = Vec::new();
    for (p, take) in pledges.iter().zip(takes).filter(|(_, t)| *t > 0) {
        // A pledge being disposed of with quantity on offer (a listing, an auction, an unpaid
        // trade) would have that quantity come back to a holder it no longer names.
        if crate::market::trades::pledge_on_offer(conn, p.id)? {
            return Err(ApiError::conflict(
                "pledge_on_offer",
                format!(
                    "{} has quantity on offer in its disposal: the order can take its pledged \
                     quantity once the offer has ended",
                    p.registration_no.as_deref().unwrap_or("the pledge")
                ),
            ));
        }
        let details = json!({"document_ref": order.document_ref, "freeze": order.freeze_no,
            "transfer": order.reference, "pledge_handling": order.handling.as_str(),
            "from_party_id": from, "to_party_id": to, "quantity": Dec::qty(take)});
        match order.handling {
            PledgeHandling::Discharged => {
                crate::collateral::pledges::unpledge(
                    conn,
                    p,
                    lot,
                    take,
                    Side::holder(to, Bucket::Available),
                    "court_forced_transfer",
                    Some(Acquisition::Other),
                    actor,
                    at,
                )?;
                if take == p.quantity {
                    diesel::update(pl::table.find(p.id))
                        .set((pl::status.eq("released"), pl::updated_at.eq(at)))
                        .execute(conn)?;
                }
                crate::collateral::add_entry(conn, p, "court_discharge", details, actor, at)?;
            }
            PledgeHandling::Follows => {
                let (named, rest) = crate::collateral::pledges::split_serials(p, take)?;
                let here = ledger::move_quantity(
                    conn,
                    Movement {
                        lot,
                        from: Side::holder(from, Bucket::Pledged),
                        to: Side::holder(to, Bucket::Pledged),
                        quantity: take,
                        cause: "court_forced_transfer",
                        reference: order.reference.clone(),
                        actor,
                        at,
                        acquisition: Some(Acquisition::Other),
                        named_serials: named.as_deref(),
                    },
                )?;
                let serials = crate::rights::serials::to_text(&here);
                if take == p.quantity {
                    diesel::update(pl::table.find(p.id))
                        .set((pl::pledgor_id.eq(to), pl::updated_at.eq(at)))
                        .execute(conn)?;
                    crate::collateral::add_entry(conn, p, "court_transfer", details, actor, at)?;
                } else {
                    diesel::update(pl::table.find(p.id))
                        .set((
                            pl::quantity.eq(p.quantity - take),
                            pl::serials.eq(rest),
                            pl::updated_at.eq(at),
                        ))
                        .execute(conn)?;
                    let part = split_off(conn, p, to, take, serials, at)?;
                    let mut details = details;
                    details["split_to"] = json!(part.registration_no);
                    crate::collateral::add_entry(
                        conn,
                        p,
                        "court_transfer",
                        details.clone(),
                        actor,
                        at,
                    )?;
                    details["split_from"] = json!(p.registration_no);
                    crate::collateral::add_entry(
                        conn,
                        &part,
                        "court_transfer",
                        details,
                        actor,
                        at,
                    )?;
                }
                moved.extend(here);
            }
        }
    }
    Ok(moved)
}

/// The part of a pledge a court order moved to another holder, as a pledge of its own: same
/// pledgee, loan, rank, registration time, period, codes and claim (the whole claim stays secured
/// by every part), its own registration number.
pub(super) fn split_off(
    conn: &mut DbConn,
    p: &crate::collateral::PledgeRow,
    holder: i64,
    quantity: i64,
    serials: Option<String>,
    at: NaiveDateTime,
) -> ApiResult<crate::collateral::PledgeRow> {
    use crate::schema::pledges as pl;
    use chrono::Datelike;
    let provisional = format!(
        "{}/court/{}",
        p.registration_no.clone().unwrap_or_default(),
        p.id
    );
    diesel::insert_into(pl::table)
        .values((
            pl::registration_no.eq(&provisional),
            pl::lot_id.eq(p.lot_id),
            pl::pledgor_id.eq(holder),
            pl::lender_id.eq(p.lender_id),
            pl::quantity.eq(quantity),
            pl::applied_quantity.eq(quantity),
            pl::serials.eq(serials),
            pl::status.eq(&p.status),
            pl::rank.eq(p.rank),
            pl::secured_amount.eq(p.secured_amount),
            pl::loan_reference.eq(&p.loan_reference),
            pl::loan_maturity.eq(p.loan_maturity),
            pl::period_end.eq(p.period_end),
            pl::registered_at.eq(p.registered_at),
            pl::created_at.eq(at),
            pl::updated_at.eq(at),
        ))
        .execute(conn)?;
    let id: i64 = pl::table
        .filter(pl::registration_no.eq(&provisional))
        .select(pl::id)
        .first(conn)?;
    diesel::update(pl::table.find(id))
        .set((
            pl::registration_no.eq(format!("NPZY-{}-{:06}", at.year(), id)),
            pl::appraisal_value.eq(p.appraisal_value),
            pl::appraiser.eq(&p.appraiser),
            pl::appraisal_date.eq(p.appraisal_date),
            pl::pboc_registration_no.eq(&p.pboc_registration_no),
            pl::verification_code.eq(&p.verification_code),
            pl::amendment_code_hash.eq(&p.amendment_code_hash),
            pl::claim_amount.eq(p.claim_amount),
            pl::claim_detail.eq(&p.claim_detail),
            pl::lapse_warned_at.eq(p.lapse_warned_at),
            pl::claim_root_id.eq(p.claim_root_id.unwrap_or(p.id)),
        ))
        .execute(conn)?;
    crate::collateral::find(conn, id)?
        .ok_or_else(|| ApiError::internal("the split pledge vanished"))
}

/// `quantity` of pledge `p` leaves its pledge other than by a sale: the lender releases it
/// (`pledge_release`) or the registration lapses (`pledge_lapse`). Courts come first: while active
/// freezes rest on the holding's pledged quantity, the leaving quantity goes to `frozen` up to what
/// they rest on (their pledged parts shrink by as much, oldest freeze first, and their frozen parts
/// grow), so it cannot be transferred and no other pledge of the holding stays blocked by it; only
/// the rest returns to `available`. Every freeze that moved is audited with the pledge. Returns the
/// part that went to `frozen`.
#[allow(clippy::too_many_arguments)]
pub fn unpledge_to_holder(
    conn: &mut DbConn,
    p: &crate::collateral::PledgeRow,
    lot: &LotRow,
    quantity: i64,
    cause: &str,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<i64> {
    let freezes = active_on_holding(conn, p.pledgor_id, lot.id)?;
    let frozen_pledged: i64 = freezes.iter().map(|f| f.pledged).sum();
    let to_frozen = courts::leaving_to_frozen(frozen_pledged, quantity);
    if to_frozen > 0 {
        let parts: Vec<i64> = freezes.iter().map(|f| f.pledged).collect();
        for (f, take) in freezes.iter().zip(courts::oldest_first(&parts, to_frozen)) {
            if take > 0 {
                diesel::update(jf::table.find(f.id))
                    .set(jf::pledged.eq(f.pledged - take))
                    .execute(conn)?;
                crate::audit::record(
                    conn,
                    crate::audit::Event {
                        chain: format!("lot:{}", f.lot_id),
                        actor,
                        action: "freeze.pledge_ended",
                        object_type: "judicial_freeze",
                        object_id: f.id.to_string(),
                        payload: json!({"party_id": f.party_id, "pledge": p.id,
                            "registration_no": p.registration_no, "cause": cause,
                            "quantity_to_frozen": take, "court": f.court, "case_no": f.case_no}),
                        at,
                    },
                )?;
            }
        }
        crate::collateral::pledges::unpledge(
            conn,
            p,
            lot,
            to_frozen,
            Side::holder(p.pledgor_id, Bucket::Frozen),
            "judicial_freeze_lapse",
            None,
            actor,
            at,
        )?;
    }
    let rest = quantity - to_frozen;
    if rest > 0 {
        let p =
            crate::collateral::find(conn, p.id)?.ok_or_else(|| ApiError::not_found("pledge"))?;
        crate::collateral::pledges::unpledge(
            conn,
            &p,
            lot,
            rest,
            Side::holder(p.pledgor_id, Bucket::Available),
            cause,
            None,
            actor,
            at,
        )?;
    }
    Ok(to_frozen)
}
