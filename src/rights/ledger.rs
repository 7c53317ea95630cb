//! The one place where quantity moves. Each call, inside the caller's write transaction and after
//! the caller has locked the lot ([`super::store::lock_lot`]): takes quantity out of one bucket with
//! a conditional UPDATE (never below zero: no check-then-act), puts it in another, moves serial
//! ranges for serialized lots, and writes the journal row.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::serials::{self, Owner, Range};
use super::store::LotRow;
use super::{Acquisition, Bucket};
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::schema::{
    acquisitions as aq, holdings as h, lots, movements as mv, serial_ranges as sr,
};

/// One side of a movement: a holder's bucket, or the lot's retired/cancelled/issued totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Side {
    pub party: Option<i64>,
    pub bucket: Bucket,
}

impl Side {
    pub fn holder(party: i64, bucket: Bucket) -> Side {
        Side {
            party: Some(party),
            bucket,
        }
    }
    pub fn lot(bucket: Bucket) -> Side {
        Side {
            party: None,
            bucket,
        }
    }
    fn owner(&self) -> Owner {
        Owner {
            party: self.party,
            state: self.bucket.as_str().to_string(),
        }
    }
}

pub struct Movement<'a> {
    pub lot: &'a LotRow,
    pub from: Side,
    pub to: Side,
    pub quantity: i64,
    /// Why: issuance, transfer_request, transfer_settle, retirement, …
    pub cause: &'a str,
    /// The business object, e.g. `transfer:12`.
    pub reference: String,
    pub actor: &'a str,
    pub at: NaiveDateTime,
    /// Recorded on the receiving holding when quantity arrives in `available` from elsewhere.
    pub acquisition: Option<Acquisition>,
    /// For serialized lots: move exactly these serial ranges instead of the lowest ones.
    pub named_serials: Option<&'a [(i64, i64)]>,
}

/// Moves quantity; answers 409 `insufficient_quantity` when the source bucket holds too little.
/// Returns the serial ranges that moved (empty for lots without serials).
///
/// R6 is enforced here, where every path moves quantity: once the lot has expired (on the date of
/// `m.at`), only the movements [`super::rules::moves_after_expiry`] allows happen; any other
/// (settling a transfer or a trade, a new listing or pledge, …) is a 409 `lot_expired`, however
/// long ago it was requested. So is the rule that an ended party (merged, split, dissolved) takes
/// part in no new act ([`crate::parties::rules::ended_party_may_move`]).
pub fn move_quantity(conn: &mut DbConn, m: Movement) -> ApiResult<Vec<Range>> {
    if m.quantity <= 0 {
        return Err(ApiError::invalid_field(
            "quantity",
            "must be greater than zero",
        ));
    }
    if m.lot.expired(m.at.date())
        && !super::rules::moves_after_expiry(m.from.party, m.from.bucket, m.to.party, m.to.bucket)
    {
        m.lot.require_live(m.at.date())?;
    }
    // A party that merged, split or otherwise ended takes part in no new act, whatever path asks.
    crate::parties::store::check_movement(
        conn,
        m.from.party,
        m.to.party,
        m.from.bucket,
        m.to.bucket,
        m.cause,
    )?;
    check_court_order(&m)?;
    match m.from.party {
        Some(p) => {
            if add(conn, p, m.lot.id, m.from.bucket, -m.quantity, m.at)? != 1 {
                return Err(ApiError::conflict(
                    "insufficient_quantity",
                    format!(
                        "the {} quantity of this holding is less than requested",
                        m.from.bucket.as_str()
                    ),
                ));
            }
            if m.from.bucket == Bucket::Pledged && !COURT_CAUSES.contains(&m.cause) {
                check_court_reach(conn, p, m.lot.id)?;
            }
        }
        None if m.from.bucket == Bucket::Issued => {}
        None => {
            return Err(ApiError::internal(
                "quantity never leaves retired or cancelled",
            ))
        }
    }
    // Quantity leaving its holder takes its acquisition record with it.
    if let Some(p) = m.from.party.filter(|p| m.to.party != Some(*p)) {
        release_acquisition(conn, p, m.lot.id, m.from.bucket, m.quantity)?;
    }
    match m.to.party {
        Some(p) => {
            crate::insert_or_ignore!(
                conn,
                h::table,
                (
                    h::party_id.eq(p),
                    h::lot_id.eq(m.lot.id),
                    h::updated_at.eq(m.at)
                )
            )?;
            add(conn, p, m.lot.id, m.to.bucket, m.quantity, m.at)?;
            if let Some(a) = m.acquisition {
                record_acquisition(conn, p, m.lot.id, a, m.quantity)?;
            }
        }
        None => {
            let lot = lots::table.find(m.lot.id);
            match m.to.bucket {
                Bucket::Retired => diesel::update(lot)
                    .set(lots::retired.eq(lots::retired + m.quantity))
                    .execute(conn)?,
                Bucket::Cancelled => diesel::update(lot)
                    .set(lots::cancelled.eq(lots::cancelled + m.quantity))
                    .execute(conn)?,
                _ => {
                    return Err(ApiError::internal(
                        "quantity may only leave circulation as retired or cancelled",
                    ))
                }
            };
        }
    }
    let moved = if is_serialized(conn, m.lot)? {
        move_serials(conn, &m)?
    } else {
        Vec::new()
    };
    let serial_text = super::serials::to_text(&moved);
    diesel::insert_into(mv::table)
        .values((
            mv::lot_id.eq(m.lot.id),
            mv::from_party_id.eq(m.from.party),
            mv::from_bucket.eq(m.from.bucket.as_str()),
            mv::to_party_id.eq(m.to.party),
            mv::to_bucket.eq(m.to.bucket.as_str()),
            mv::quantity.eq(m.quantity),
            mv::cause.eq(m.cause),
            mv::reference.eq(&m.reference),
            mv::serials.eq(serial_text),
            mv::actor.eq(m.actor),
            mv::at.eq(m.at),
        ))
        .execute(conn)?;
    Ok(moved)
}

/// The causes by which a court's own order moves quantity into or out of `frozen`: the freeze, its
/// lift, a forced transfer by court order, and a pledge that lapses while a freeze holds it.
pub const COURT_CAUSES: [&str; 4] = [
    "judicial_freeze",
    "judicial_unfreeze",
    "court_forced_transfer",
    "judicial_freeze_lapse",
];

fn frozen_by_court(message: String) -> ApiError {
    ApiError::conflict("frozen_by_court", message)
}

/// Courts come first: quantity under a judicial freeze moves only by a court's order, whatever
/// path (sale, transfer, retirement, release, disposal) asks for it.
fn check_court_order(m: &Movement) -> ApiResult<()> {
    let touches = m.from.bucket == Bucket::Frozen || m.to.bucket == Bucket::Frozen;
    if touches && !COURT_CAUSES.contains(&m.cause) {
        return Err(frozen_by_court(
            "this quantity is under a judicial freeze: it moves only by the court's order".into(),
        ));
    }
    Ok(())
}

/// A freeze reaches pledged quantity without moving it (it stays pledged and is frozen as well):
/// the active freezes of a holding never exceed its frozen plus pledged quantity. Called after
/// pledged quantity left the holding's `pledged` bucket, inside the same transaction.
fn check_court_reach(conn: &mut DbConn, party: i64, lot: i64) -> ApiResult<()> {
    use crate::schema::judicial_freezes as jf;
    // What the freezes hold in pending transfers and trades stays there (not in these buckets).
    let freezes: Vec<(i64, i64, i64)> = jf::table
        .filter(jf::party_id.eq(party))
        .filter(jf::lot_id.eq(lot))
        .filter(jf::status.eq("active"))
        .select((jf::quantity, jf::executed, jf::pending))
        .load(conn)?;
    let held: i64 = freezes.iter().map(|(q, e, p)| q - e - p).sum();
    if held == 0 {
        return Ok(());
    }
    let (pledged, frozen): (i64, i64) = h::table
        .filter(h::party_id.eq(party))
        .filter(h::lot_id.eq(lot))
        .select((h::pledged, h::frozen))
        .first(conn)?;
    if pledged + frozen < held {
        return Err(frozen_by_court(format!(
            "{} of this holding's pledged quantity is under a judicial freeze: it is not released, \
             disposed of or transferred until the court lifts the freeze",
            crate::kernel::amount::Dec::qty(held - frozen).0
        )));
    }
    Ok(())
}

/// Adds `delta` to one bucket of a holding, refusing to go below zero. Returns rows changed.
fn add(
    conn: &mut DbConn,
    party: i64,
    lot: i64,
    bucket: Bucket,
    delta: i64,
    at: NaiveDateTime,
) -> ApiResult<usize> {
    let target = h::table
        .filter(h::party_id.eq(party))
        .filter(h::lot_id.eq(lot));
    macro_rules! bump {
        ($col:expr) => {
            diesel::update(target.filter($col.ge(-delta)))
                .set(($col.eq($col + delta), h::updated_at.eq(at)))
                .execute(conn)?
        };
    }
    Ok(match bucket {
        Bucket::Available => bump!(h::available),
        Bucket::Listed => bump!(h::listed),
        Bucket::InTransfer => bump!(h::in_transfer),
        Bucket::Pledged => bump!(h::pledged),
        Bucket::Frozen => bump!(h::frozen),
        Bucket::Reserved => bump!(h::reserved),
        other => {
            return Err(ApiError::internal(format!(
                "{} is not a holding bucket",
                other.as_str()
            )))
        }
    })
}

fn holding_id(conn: &mut DbConn, party: i64, lot: i64) -> ApiResult<i64> {
    Ok(h::table
        .filter(h::party_id.eq(party))
        .filter(h::lot_id.eq(lot))
        .select(h::id)
        .first(conn)?)
}

fn record_acquisition(
    conn: &mut DbConn,
    party: i64,
    lot: i64,
    a: Acquisition,
    q: i64,
) -> ApiResult<()> {
    let holding = holding_id(conn, party, lot)?;
    crate::insert_or_ignore!(
        conn,
        aq::table,
        (
            aq::holding_id.eq(holding),
            aq::kind.eq(a.as_str()),
            aq::quantity.eq(0i64)
        )
    )?;
    diesel::update(
        aq::table
            .filter(aq::holding_id.eq(holding))
            .filter(aq::kind.eq(a.as_str())),
    )
    .set(aq::quantity.eq(aq::quantity + q))
    .execute(conn)?;
    Ok(())
}

fn is_serialized(conn: &mut DbConn, lot: &LotRow) -> ApiResult<bool> {
    Ok(super::store::right_type(conn, &lot.right_type)?.is_some_and(|t| t.serialized))
}

/// Serialized lots count whole units: stored quantity / 10^4 serials.
const UNIT: i64 = 10_000;

/// Loads the lot's ranges, moves serials between owners, and writes the new set back.
fn move_serials(conn: &mut DbConn, m: &Movement) -> ApiResult<Vec<Range>> {
    let current = load_ranges(conn, m.lot.id)?;
    let from = if m.from.bucket == Bucket::Issued {
        Owner {
            party: None,
            state: Bucket::Issued.as_str().into(),
        }
    } else {
        m.from.owner()
    };
    let result = match m.named_serials {
        Some(named) => serials::transfer_named(&current, &from, &m.to.owner(), named),
        None => serials::transfer(&current, &from, &m.to.owner(), m.quantity / UNIT),
    };
    let (next, moved) =
        result.map_err(|e| ApiError::conflict("serials_unavailable", e.to_string()))?;
    let moved_total: i64 = moved.iter().map(Range::len).sum();
    if moved_total * UNIT != m.quantity {
        return Err(ApiError::invalid_field(
            "serials",
            "the named serials do not add up to the quantity",
        ));
    }
    diesel::delete(sr::table.filter(sr::lot_id.eq(m.lot.id))).execute(conn)?;
    for r in &next {
        diesel::insert_into(sr::table)
            .values((
                sr::lot_id.eq(m.lot.id),
                sr::party_id.eq(r.owner.party),
                sr::state.eq(&r.owner.state),
                sr::first_serial.eq(r.first),
                sr::last_serial.eq(r.last),
            ))
            .execute(conn)?;
    }
    Ok(moved)
}

pub fn load_ranges(conn: &mut DbConn, lot_id: i64) -> QueryResult<Vec<Range>> {
    let rows: Vec<(Option<i64>, String, i64, i64)> = sr::table
        .filter(sr::lot_id.eq(lot_id))
        .order(sr::first_serial)
        .select((sr::party_id, sr::state, sr::first_serial, sr::last_serial))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(party, state, first, last)| Range {
            first,
            last,
            owner: Owner { party, state },
        })
        .collect())
}

/// Creates the single range of a new serialized lot, owned by "issued" until issuance moves it.
pub fn seed_serials(conn: &mut DbConn, lot_id: i64, issued: i64) -> QueryResult<()> {
    diesel::insert_into(sr::table)
        .values((
            sr::lot_id.eq(lot_id),
            sr::party_id.eq(None::<i64>),
            sr::state.eq(Bucket::Issued.as_str()),
            sr::first_serial.eq(1i64),
            sr::last_serial.eq(issued / UNIT),
        ))
        .execute(conn)?;
    Ok(())
}

/// Reduces a holder's acquisition records when quantity leaves it, so that they describe what it
/// still holds (R11 reads them). Units of a lot are interchangeable, so the order is chosen to be
/// safe: it can never make free units count as paid.
/// - Quantity leaving the `pledged` bucket (a disposal) was pledged as paid: it uses up market
///   purchases, then paid-use allocations, and only then anything else.
/// - Quantity leaving any other bucket uses up first the paid units that no pledge holds (market,
///   then paid-use), then other acquisitions, then free ones, and the paid units under a pledge
///   last. So selling paid units never leaves free units counted as paid: at worst paid units are
///   counted as other or free, which only makes less pledgeable.
fn release_acquisition(
    conn: &mut DbConn,
    party: i64,
    lot: i64,
    from: Bucket,
    quantity: i64,
) -> ApiResult<()> {
    let holding = holding_id(conn, party, lot)?;
    let pledged: i64 = h::table.find(holding).select(h::pledged).first(conn)?;
    let current = super::store::acquired(conn, holding)?;
    let next = super::rules::release_acquired(current, from == Bucket::Pledged, pledged, quantity);
    for (kind, q) in [
        (Acquisition::Free, next.free),
        (Acquisition::Paid, next.paid),
        (Acquisition::Market, next.market),
        (Acquisition::Other, next.other),
    ] {
        diesel::update(
            aq::table
                .filter(aq::holding_id.eq(holding))
                .filter(aq::kind.eq(kind.as_str())),
        )
        .set(aq::quantity.eq(q))
        .execute(conn)?;
    }
    Ok(())
}
