//! Judicial freezes (查封/冻结): an operator records a court order freezing quantity of a holding.
//! Courts come first ([`super::courts`]): the freeze reaches available quantity (moved to `frozen`),
//! pledged quantity (it stays pledged and is frozen as well), the holder's own listed quantity
//! (its listings, then its scheduled auctions),
//! quantity in its pending transfers and trades awaiting payment (held where it is: they cannot
//! settle), and last the quantity a pledgee offers for sale in disposing of the holder's pledge
//! (taken off the listing or auction, back under the pledge, frozen there); nothing of it moves until a later order lifts it, except by a forced transfer by court
//! order, which executes against it (a pledge on it follows it, or the order discharges it).

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::courts;
use crate::auth::{Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::Dec;
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::state::AppState;
use crate::rights::issuance::parse_quantity;
use crate::rights::ledger::{self, Movement, Side};
use crate::rights::serials::Range;
use crate::rights::store::{self as rights, LotRow};
use crate::rights::{Acquisition, Bucket};
use crate::schema::judicial_freeze_holds as jfh;
use crate::schema::judicial_freezes as jf;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(freeze).service(lift).service(list);
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = jf)]
pub struct FreezeRow {
    pub id: i64,
    pub lot_id: i64,
    pub party_id: i64,
    pub quantity: i64,
    pub court: String,
    pub case_no: String,
    pub document_ref: String,
    pub status: String,
    pub ordered_by: String,
    pub ordered_at: NaiveDateTime,
    pub lift_document_ref: Option<String>,
    pub lifted_by: Option<String>,
    pub lifted_at: Option<NaiveDateTime>,
    /// The part resting on the holding's pledged quantity (the rest sits in `frozen`).
    pub pledged: i64,
    /// The part a forced transfer by court order has taken.
    pub executed: i64,
    /// The part resting on quantity in pending transfers and trades awaiting payment (held where
    /// it is, see [`Hold`]).
    pub pending: i64,
}

impl FreezeRow {
    /// Freezes are listed among encumbrances under this number.
    pub fn registration_no(&self) -> String {
        format!("NPDJ-{:06}", self.id)
    }
    /// What the freeze still holds.
    pub fn holds(&self) -> i64 {
        self.quantity - self.executed
    }
    /// The part it holds in the holding's `frozen` bucket.
    pub fn in_frozen(&self) -> i64 {
        self.holds() - self.pledged - self.pending
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FreezeView {
    pub id: i64,
    pub registration_no: String,
    pub lot_id: i64,
    pub party_id: i64,
    /// The quantity ordered frozen.
    pub quantity: Dec,
    /// Of it, the part that is pledged quantity: it stays pledged and is frozen as well, so no
    /// disposal or transfer of the pledge moves it; what a release or a lapse of a pledge frees
    /// goes to the frozen part first (the lender's claim ends, the court's does not). Quantity the freeze took off a
    /// pledgee's disposal offer returned under the pledge and is counted here.
    pub pledged_quantity: Dec,
    /// Of it, the part a forced transfer by court order has executed (taken).
    pub executed_quantity: Dec,
    /// Of it, the part held in the holder's pending transfers and trades awaiting payment: it stays
    /// there, and they cannot settle (409 `quantity_frozen`) while the freeze stands; a transfer or
    /// trade that ends otherwise returns it to the holder still frozen.
    pub pending_quantity: Dec,
    pub court: String,
    pub case_no: String,
    pub document_ref: String,
    /// `active`, `lifted`, or `executed` (a forced transfer by court order took all of it).
    pub status: String,
    pub ordered_at: DateTime<Utc>,
    pub lift_document_ref: Option<String>,
    pub lifted_at: Option<DateTime<Utc>>,
}

impl From<FreezeRow> for FreezeView {
    fn from(f: FreezeRow) -> Self {
        FreezeView {
            registration_no: f.registration_no(),
            id: f.id,
            lot_id: f.lot_id,
            party_id: f.party_id,
            quantity: Dec::qty(f.quantity),
            pledged_quantity: Dec::qty(f.pledged),
            executed_quantity: Dec::qty(f.executed),
            pending_quantity: Dec::qty(f.pending),
            court: f.court,
            case_no: f.case_no,
            document_ref: f.document_ref,
            status: f.status,
            ordered_at: f.ordered_at.and_utc(),
            lift_document_ref: f.lift_document_ref,
            lifted_at: f.lifted_at.map(|t| t.and_utc()),
        }
    }
}

pub fn active_for_party(conn: &mut DbConn, party: i64) -> QueryResult<Vec<FreezeRow>> {
    jf::table
        .filter(jf::party_id.eq(party))
        .filter(jf::status.eq("active"))
        .order(jf::id)
        .select(FreezeRow::as_select())
        .load(conn)
}

pub fn active_for_lot(conn: &mut DbConn, lot: i64) -> QueryResult<Vec<FreezeRow>> {
    jf::table
        .filter(jf::lot_id.eq(lot))
        .filter(jf::status.eq("active"))
        .order(jf::id)
        .select(FreezeRow::as_select())
        .load(conn)
}

/// The active freezes of one holding, oldest first.
pub fn active_on_holding(conn: &mut DbConn, party: i64, lot: i64) -> QueryResult<Vec<FreezeRow>> {
    jf::table
        .filter(jf::party_id.eq(party))
        .filter(jf::lot_id.eq(lot))
        .filter(jf::status.eq("active"))
        .order(jf::id)
        .select(FreezeRow::as_select())
        .load(conn)
}

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
fn holds_on_step(conn: &mut DbConn, step: &str) -> QueryResult<Vec<(Hold, FreezeRow)>> {
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
enum Offer {
    Listing(crate::market::listings::ListingRow),
    Auction(crate::market::auctions::AuctionRow),
}

impl Offer {
    /// What it still offers: nothing of it is sold yet.
    fn unsold(&self) -> i64 {
        match self {
            Offer::Listing(l) => l.remaining,
            Offer::Auction(a) => a.quantity,
        }
    }
}

/// The holder's own open offers of a holding, the quantity it has in `listed`: listings first,
/// newest first, then scheduled auctions, newest first. An auction's admitted bidders have paid
/// deposits and bid, so a court's order disturbs it only when the listings do not cover the order.
fn own_offers(conn: &mut DbConn, party: i64, lot: i64) -> QueryResult<Vec<Offer>> {
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
fn take_from_own(
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
fn disposal_offers(conn: &mut DbConn, party: i64, lot: i64) -> QueryResult<Vec<Offer>> {
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
fn take_from_disposal(
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
    super::disposal::take_back_for_freeze(conn, pledge, lot, take, details, actor, at)
}

/// A pending step of a holding: its reference, and what of it no active freeze holds yet.
struct PendingStep {
    step: String,
    free: i64,
}

/// The holder's pending transfers and trades awaiting payment of one lot, newest first, with what
/// of each is not yet held by an active freeze.
fn pending_steps(conn: &mut DbConn, party: i64, lot: i64) -> QueryResult<Vec<PendingStep>> {
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

/// Moves quantity of a holding into or out of `frozen` on a court's order.
#[allow(clippy::too_many_arguments)]
fn court_move(
    conn: &mut DbConn,
    lot: &LotRow,
    from: Side,
    to: Side,
    quantity: i64,
    cause: &str,
    reference: String,
    actor: &str,
    at: NaiveDateTime,
    acquisition: Option<Acquisition>,
) -> ApiResult<Vec<Range>> {
    if quantity == 0 {
        return Ok(Vec::new());
    }
    ledger::move_quantity(
        conn,
        Movement {
            lot,
            from,
            to,
            quantity,
            cause,
            reference,
            actor,
            at,
            acquisition,
            named_serials: None,
        },
    )
}

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
fn take_pledged(
    conn: &mut DbConn,
    lot: &LotRow,
    from: i64,
    to: i64,
    quantity: i64,
    order: &CourtOrder,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<Vec<Range>> {
    use super::PledgeRow;
    use crate::schema::pledges as pl;
    let pledges: Vec<PledgeRow> = pl::table
        .filter(pl::lot_id.eq(lot.id))
        .filter(pl::pledgor_id.eq(from))
        .filter(pl::status.eq_any(super::LIVE))
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
                super::pledges::unpledge(
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
                super::add_entry(conn, p, "court_discharge", details, actor, at)?;
            }
            PledgeHandling::Follows => {
                let (named, rest) = super::pledges::split_serials(p, take)?;
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
                    super::add_entry(conn, p, "court_transfer", details, actor, at)?;
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
                    super::add_entry(conn, p, "court_transfer", details.clone(), actor, at)?;
                    details["split_from"] = json!(p.registration_no);
                    super::add_entry(conn, &part, "court_transfer", details, actor, at)?;
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
fn split_off(
    conn: &mut DbConn,
    p: &super::PledgeRow,
    holder: i64,
    quantity: i64,
    serials: Option<String>,
    at: NaiveDateTime,
) -> ApiResult<super::PledgeRow> {
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
    super::find(conn, id)?.ok_or_else(|| ApiError::internal("the split pledge vanished"))
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
    p: &super::PledgeRow,
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
        super::pledges::unpledge(
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
        let p = super::find(conn, p.id)?.ok_or_else(|| ApiError::not_found("pledge"))?;
        super::pledges::unpledge(
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

/// Tells the lenders of live pledges on the frozen holding.
fn notify_lenders(
    conn: &mut DbConn,
    f: &FreezeRow,
    event: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    use crate::schema::pledges as pl;
    let live: Vec<(i64, i64, Option<String>)> = pl::table
        .filter(pl::lot_id.eq(f.lot_id))
        .filter(pl::pledgor_id.eq(f.party_id))
        .filter(pl::status.eq_any(super::LIVE))
        .select((pl::id, pl::lender_id, pl::registration_no))
        .load(conn)?;
    for (pledge, lender, registration_no) in live {
        let data = json!({"pledge_id": pledge, "registration_no": registration_no, "freeze": f.registration_no(),
            "court": f.court, "case_no": f.case_no, "quantity": Dec::qty(f.quantity)});
        super::webhooks::enqueue(conn, lender, &format!("pledge:{pledge}"), event, data, at)?;
    }
    Ok(())
}

fn audit(
    conn: &mut DbConn,
    f: &FreezeRow,
    action: &str,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    crate::audit::record(
        conn,
        crate::audit::Event {
            chain: format!("lot:{}", f.lot_id),
            actor,
            action,
            object_type: "judicial_freeze",
            object_id: f.id.to_string(),
            payload: json!({"party_id": f.party_id, "quantity": f.quantity, "court": f.court, "case_no": f.case_no,
                "document_ref": f.document_ref, "lift_document_ref": f.lift_document_ref}),
            at,
        },
    )?;
    Ok(())
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
async fn freeze(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    body: ApiJson<NewFreeze>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let r = body.value;
    for (field, v) in [
        ("court", &r.court),
        ("case_no", &r.case_no),
        ("document_ref", &r.document_ref),
    ] {
        if v.trim().is_empty() {
            return Err(ApiError::invalid_field(field, "required"));
        }
    }
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
async fn lift(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<LiftFreeze>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let doc = body.value.document_ref.trim().to_string();
    if doc.is_empty() {
        return Err(ApiError::invalid_field("document_ref", "required"));
    }
    let (id, now) = (id.into_inner(), db::now_micros(state.clock.now()));
    let w = who.clone();
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Required,
        StatusCode::ACCEPTED,
        move |conn| {
            let status: String = jf::table
                .find(id)
                .select(jf::status)
                .first(conn)
                .optional()?
                .ok_or_else(|| ApiError::not_found("freeze"))?;
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
            let asked = LiftProposal {
                freeze_id: id,
                document_ref: doc,
            };
            let row = crate::proposals::propose(
                conn,
                crate::proposals::ProposalKind::FreezeLift,
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
        if status == "executed" {
            return Err(ApiError::conflict(
                "freeze_executed",
                "this freeze was executed by a court-ordered transfer; nothing is left to lift",
            ));
        }
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FreezeQuery {
    pub party_id: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page (1–500, default 50).
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/judicial-freezes", tag = "pledges", operation_id = "listJudicialFreezes",
    summary = "Judicial freezes (own for enterprises; all for operators and regulators)",
    params(FreezeQuery), responses((status = 200, description = "A page of freezes, oldest first", body = crate::kernel::pagination::Page<FreezeView>)))]
#[get("/v1/judicial-freezes")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<FreezeQuery>,
) -> ApiResult<HttpResponse> {
    let (after, limit) = crate::kernel::pagination::PageParams {
        cursor: q.cursor.clone(),
        limit: q.limit,
    }
    .resolve()?;
    let party = if who.role.sees_all() {
        q.party_id
    } else {
        Some(who.party_id.unwrap_or(-1))
    };
    let rows = state
        .db(move |conn| {
            let mut query = jf::table
                .filter(jf::id.gt(after))
                .order(jf::id)
                .limit(limit + 1)
                .select(FreezeRow::as_select())
                .into_boxed();
            if let Some(p) = party {
                query = query.filter(jf::party_id.eq(p));
            }
            Ok(query.load(conn)?)
        })
        .await?;
    Ok(
        HttpResponse::Ok().json(crate::kernel::pagination::Page::from_rows(
            rows.into_iter().map(FreezeView::from).collect(),
            limit,
            |f| f.id,
        )),
    )
}
