//! What a freeze reaches beyond available and pledged quantity: the holder's own offers, a pledgee's disposal offers, and pending transfers and trades (held where they are).

use super::*;

/// A freeze's hold on quantity of a pending step (`transfer:12`, `trade:5`) of its holding.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = jfh)]
pub struct Hold {
    pub id: i64,
    pub freeze_id: i64,
    pub step: String,
    pub quantity: i64,
    pub created_at: NaiveDateTime,
}

/// The holds of active freezes on one pending step, oldest freeze first.
pub(super) fn holds_on_step(conn: &mut DbConn, step: &str) -> QueryResult<Vec<(Hold, FreezeRow)>> {
    let holds: Vec<Hold> = jfh::table
        .filter(jfh::step.eq(step))
        .order(jfh::freeze_id)
        .select(Hold::as_select())
        .load(conn)?;
    let mut out = Vec::new();
    for h in holds {
        let f: FreezeRow = jf::table
            .find(h.freeze_id)
            .select(FreezeRow::as_select())
            .first(conn)?;
        if f.status == "active" {
            out.push((h, f));
        }
    }
    Ok(out)
}

/// A pending transfer or trade cannot settle while an active freeze holds quantity of it
/// (409 `quantity_frozen`); nothing changes. It may still be cancelled, rejected or expire.
pub fn require_not_held(conn: &mut DbConn, step: &str) -> ApiResult<()> {
    let held = holds_on_step(conn, step)?;
    if held.is_empty() {
        return Ok(());
    }
    let total: i64 = held.iter().map(|(h, _)| h.quantity).sum();
    let nos: Vec<String> = held.iter().map(|(_, f)| f.registration_no()).collect();
    Err(ApiError::conflict(
        "quantity_frozen",
        format!(
            "{} of this {} is under a judicial freeze ({}): it cannot settle until the court lifts \
             the freeze; it may still be cancelled, rejected or left to expire, and the frozen \
             quantity then returns to its holder still frozen",
            Dec::qty(total).0,
            step.split(':').next().unwrap_or("step"),
            nos.join(", ")
        ),
    ))
}

/// An open offer for sale of a holding's quantity: the holder's own (quantity in `listed`), or a
/// pledgee's, disposing of an enforced pledge (the holder's pledged quantity).
pub(super) enum Offer {
    Listing(crate::market::listings::ListingRow),
    Auction(crate::market::auctions::AuctionRow),
}

impl Offer {
    /// What it still offers: nothing of it is sold yet.
    pub(super) fn unsold(&self) -> i64 {
        match self {
            Offer::Listing(l) => l.remaining,
            Offer::Auction(a) => a.quantity,
        }
    }
}

/// The holder's own open offers of a holding, the quantity it has in `listed`: listings first,
/// newest first, then scheduled auctions, newest first. An auction's admitted bidders have paid
/// deposits and bid, so a court's order disturbs it only when the listings do not cover the order.
pub(super) fn own_offers(conn: &mut DbConn, party: i64, lot: i64) -> QueryResult<Vec<Offer>> {
    use crate::schema::auctions as au;
    let mut offers: Vec<Offer> = crate::market::listings::selling_own(conn, party, lot)?
        .into_iter()
        .map(Offer::Listing)
        .collect();
    offers.extend(
        au::table
            .filter(au::seller_id.eq(party))
            .filter(au::lot_id.eq(lot))
            .filter(au::pledge_id.is_null())
            .filter(au::status.eq("scheduled"))
            .order(au::id.desc())
            .select(crate::market::auctions::AuctionRow::as_select())
            .load(conn)?
            .into_iter()
            .map(Offer::Auction),
    );
    Ok(offers)
}

/// A freeze takes `take` off the holder's own offer: a listing's unsold quantity shrinks (withdrawn
/// when left with nothing); an auction's offered quantity shrinks (cancelled when left with
/// nothing: its bids void, every admitted bidder's deposit released). Both are audited naming the
/// freeze; the caller moves the quantity from `listed` to `frozen`.
pub(super) fn take_from_own(
    conn: &mut DbConn,
    f: &FreezeRow,
    offer: &Offer,
    take: i64,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    let no = f.registration_no();
    match offer {
        Offer::Listing(l) => {
            crate::market::listings::shrink_for_freeze(conn, l, take, &no, actor, at)?;
        }
        Offer::Auction(a) => {
            crate::market::auctions::shrink_for_freeze(conn, a, take, &no, actor, at)?;
        }
    }
    Ok(())
}

/// The open disposal offers of a holding: listings first, newest first, then auctions, newest
/// first. An auction's admitted bidders have paid deposits and bid, so a court's order disturbs it
/// only when the listings do not cover the order.
pub(super) fn disposal_offers(conn: &mut DbConn, party: i64, lot: i64) -> QueryResult<Vec<Offer>> {
    let mut offers: Vec<Offer> = crate::market::listings::selling_disposal(conn, party, lot)?
        .into_iter()
        .map(Offer::Listing)
        .collect();
    offers.extend(
        crate::market::auctions::scheduled_disposal(conn, party, lot)?
            .into_iter()
            .map(Offer::Auction),
    );
    Ok(offers)
}

/// A freeze takes `take` off a disposal offer: the offer shrinks (withdrawn or cancelled when left
/// with nothing) and the quantity returns under its pledge, which keeps its claim on it; the freeze
/// rests on it there. The pledge's entry (and so the lender's webhook) and the audit trail name the
/// freeze.
pub(super) fn take_from_disposal(
    conn: &mut DbConn,
    lot: &LotRow,
    f: &FreezeRow,
    offer: &Offer,
    take: i64,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    let no = f.registration_no();
    let (ended, pledge, reference) = match offer {
        Offer::Listing(l) => (
            crate::market::listings::shrink_for_freeze(conn, l, take, &no, actor, at)?,
            l.pledge_id,
            format!("listing:{}", l.id),
        ),
        Offer::Auction(a) => (
            crate::market::auctions::shrink_for_freeze(conn, a, take, &no, actor, at)?,
            a.pledge_id,
            format!("auction:{}", a.id),
        ),
    };
    let pledge = pledge.ok_or_else(|| ApiError::internal("a disposal offer names its pledge"))?;
    let details = json!({"offer": reference, "quantity": Dec::qty(take), "offer_ended": ended,
        "reason": "judicial_freeze", "freeze": no, "court": f.court, "case_no": f.case_no,
        "document_ref": f.document_ref});
    crate::collateral::disposal::take_back_for_freeze(conn, pledge, lot, take, details, actor, at)
}

/// A pending step of a holding: its reference, and what of it no active freeze holds yet.
pub(super) struct PendingStep {
    pub(super) step: String,
    pub(super) free: i64,
}

/// The holder's pending transfers and trades awaiting payment of one lot, newest first, with what
/// of each is not yet held by an active freeze.
pub(super) fn pending_steps(
    conn: &mut DbConn,
    party: i64,
    lot: i64,
) -> QueryResult<Vec<PendingStep>> {
    use crate::schema::{trades as td, transfers as t};
    let mut steps: Vec<(NaiveDateTime, String, i64)> = t::table
        .filter(t::from_party_id.eq(party))
        .filter(t::lot_id.eq(lot))
        .filter(t::status.eq_any(["requested", "confirmed"]))
        .select((t::created_at, t::id, t::quantity))
        .load::<(NaiveDateTime, i64, i64)>(conn)?
        .into_iter()
        .map(|(at, id, q)| (at, format!("transfer:{id}"), q))
        .collect();
    steps.extend(
        td::table
            .filter(td::seller_id.eq(party))
            .filter(td::lot_id.eq(lot))
            .filter(td::status.eq("awaiting_payment"))
            .select((td::created_at, td::id, td::quantity))
            .load::<(NaiveDateTime, i64, i64)>(conn)?
            .into_iter()
            .map(|(at, id, q)| (at, format!("trade:{id}"), q)),
    );
    steps.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    let mut out = Vec::new();
    for (_, step, quantity) in steps {
        let held: i64 = holds_on_step(conn, &step)?
            .iter()
            .map(|(h, _)| h.quantity)
            .sum();
        out.push(PendingStep {
            step,
            free: quantity - held,
        });
    }
    Ok(out)
}

/// A pending step ended without settling (cancelled, rejected, expired) and the caller has
/// returned its quantity to the holder's `returned_to` bucket. What active freezes held of it
/// stays frozen: back in `available` it moves on into `frozen`; back under the pledge being
/// disposed of (`pledged`) the freeze rests on it there. The holds end.
pub fn step_ended(
    conn: &mut DbConn,
    lot: &LotRow,
    step: &str,
    holder: i64,
    returned_to: Bucket,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    for (h, f) in holds_on_step(conn, step)? {
        let pledged = if returned_to == Bucket::Pledged {
            f.pledged + h.quantity
        } else {
            court_move(
                conn,
                lot,
                Side::holder(holder, Bucket::Available),
                Side::holder(holder, Bucket::Frozen),
                h.quantity,
                "judicial_freeze",
                format!("freeze:{}", f.id),
                actor,
                at,
                None,
            )?;
            f.pledged
        };
        diesel::update(jf::table.find(f.id))
            .set((
                jf::pending.eq(f.pending - h.quantity),
                jf::pledged.eq(pledged),
            ))
            .execute(conn)?;
        diesel::delete(jfh::table.find(h.id)).execute(conn)?;
    }
    Ok(())
}
