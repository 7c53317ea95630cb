//! Disposal of an enforced pledge through the exchange (R13): the market offers the pledged
//! quantity in a listing or an auction, unsold quantity returns under the pledge, and paid sales
//! feed the claims waterfall — the pledgee up to its declared claim, the rest to the pledgor.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::json;

use super::pledges::unpledge;
use super::{add_entry, find, rules, PledgeRow};
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::rights::ledger::{self, Movement, Side};
use crate::rights::serials::{self, Owner, Range};
use crate::rights::store::LotRow;
use crate::rights::Bucket;
use crate::schema::pledges as pl;

/// The pledge being disposed of, checked to be in enforcement on this lot.
pub fn enforcing(conn: &mut DbConn, pledge_id: i64, lot_id: i64) -> ApiResult<PledgeRow> {
    let p = find(conn, pledge_id)?
        .filter(|p| p.lot_id == lot_id)
        .ok_or_else(|| ApiError::invalid_field("pledge_id", "no such pledge on this lot"))?;
    if p.status != "enforcing" {
        return Err(ApiError::conflict(
            "pledge_not_enforcing",
            format!(
                "only a pledge in enforcement is disposed of; this one is {}",
                p.status
            ),
        ));
    }
    Ok(p)
}

/// Puts `quantity` of an enforcing pledge up for sale: the pledgor's pledged → listed.
pub fn offer(
    conn: &mut DbConn,
    p: &PledgeRow,
    lot: &LotRow,
    quantity: i64,
    offer_ref: &str,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    if quantity > p.quantity {
        return Err(ApiError::conflict(
            "insufficient_quantity",
            "more than the pledge still encumbers",
        ));
    }
    unpledge(
        conn,
        p,
        lot,
        quantity,
        Side::holder(p.pledgor_id, Bucket::Listed),
        "pledge_disposal_offer",
        None,
        actor,
        at,
    )?;
    add_entry(
        conn,
        p,
        "disposal_offer",
        json!({"offer": offer_ref, "quantity": quantity}),
        actor,
        at,
    )
}

/// Quantity offered but not sold returns under the pledge: the pledgor's `from` → pledged.
pub fn take_back(
    conn: &mut DbConn,
    pledge_id: i64,
    lot: &LotRow,
    quantity: i64,
    from: Bucket,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    let p = find(conn, pledge_id)?.ok_or_else(|| ApiError::not_found("pledge"))?;
    return_under_pledge(
        conn,
        &p,
        lot,
        quantity,
        from,
        "pledge_disposal_unsold",
        at,
        actor,
    )?;
    add_entry(
        conn,
        &p,
        "disposal_unsold",
        json!({"quantity": quantity}),
        actor,
        at,
    )
}

/// A judicial freeze took `quantity` off a disposal offer (`details` say which offer, which freeze
/// and whether the offer was withdrawn): it returns under the pledge, which keeps its claim on it
/// (the freeze rests on it there). The pledge's entry, the lender's webhook and the audit trail
/// say why.
pub fn take_back_for_freeze(
    conn: &mut DbConn,
    pledge_id: i64,
    lot: &LotRow,
    quantity: i64,
    details: serde_json::Value,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    let p = find(conn, pledge_id)?.ok_or_else(|| ApiError::not_found("pledge"))?;
    return_under_pledge(
        conn,
        &p,
        lot,
        quantity,
        Bucket::Listed,
        "judicial_freeze",
        at,
        actor,
    )?;
    add_entry(conn, &p, "disposal_frozen", details, actor, at)
}

/// Moves `quantity` of the pledgor's `from` bucket back to `pledged` and adds it (and its serials)
/// to the pledge.
#[allow(clippy::too_many_arguments)]
fn return_under_pledge(
    conn: &mut DbConn,
    p: &PledgeRow,
    lot: &LotRow,
    quantity: i64,
    from: Bucket,
    cause: &str,
    at: NaiveDateTime,
    actor: &str,
) -> ApiResult<()> {
    let moved = ledger::move_quantity(
        conn,
        Movement {
            lot,
            from: Side::holder(p.pledgor_id, from),
            to: Side::holder(p.pledgor_id, Bucket::Pledged),
            quantity,
            cause,
            reference: format!("pledge:{}", p.id),
            actor,
            at,
            acquisition: None,
            named_serials: None,
        },
    )?;
    let serials = if moved.is_empty() {
        p.serials.clone()
    } else {
        let mine = Owner {
            party: Some(p.pledgor_id),
            state: "pledged".into(),
        };
        let mut all: Vec<Range> = p
            .serials
            .as_deref()
            .map(serials::parse_text)
            .unwrap_or_default()
            .into_iter()
            .map(|(first, last)| Range {
                first,
                last,
                owner: mine.clone(),
            })
            .chain(moved)
            .collect();
        all.sort_by_key(|r| r.first);
        serials::to_text(&all)
    };
    diesel::update(pl::table.find(p.id))
        .set((
            pl::quantity.eq(pl::quantity + quantity),
            pl::serials.eq(serials),
            pl::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}

/// What the lender may still be paid on `p`'s claim: the claim, and the registration's secured
/// amount that caps it, each less what the lender was already paid on the other parts of the same
/// pledge (a court-ordered split leaves parts that secure one claim under one registration).
pub fn claim_left(conn: &mut DbConn, p: &PledgeRow) -> QueryResult<rules::SecuredClaim> {
    let root = p.claim_root_id.unwrap_or(p.id);
    let paid: Vec<Option<i64>> = pl::table
        .filter(pl::id.eq(root).or(pl::claim_root_id.eq(root)))
        .filter(pl::id.ne(p.id))
        .select(pl::paid_to_lender)
        .load(conn)?;
    let paid: Vec<i64> = paid.into_iter().flatten().collect();
    Ok(rules::SecuredClaim {
        claim: rules::claim_left(p.claim_amount.unwrap_or(0), paid.iter().copied()),
        secured: rules::claim_left(p.secured_amount.unwrap_or(0), paid.iter().copied()),
    })
}

/// A disposal sale was paid: its net proceeds are added; once nothing is encumbered or on offer
/// any more (`outstanding` false), the waterfall pays the pledgee first and the pledgor the rest.
pub fn record_sale(
    conn: &mut DbConn,
    pledge_id: i64,
    net_proceeds: i64,
    trade_id: i64,
    outstanding: bool,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    let p = find(conn, pledge_id)?.ok_or_else(|| ApiError::not_found("pledge"))?;
    let proceeds = p.proceeds.unwrap_or(0) + net_proceeds;
    diesel::update(pl::table.find(p.id))
        .set((pl::proceeds.eq(proceeds), pl::updated_at.eq(at)))
        .execute(conn)?;
    add_entry(
        conn,
        &p,
        "disposal_sale",
        json!({"trade": trade_id, "net_proceeds": net_proceeds}),
        actor,
        at,
    )?;
    if outstanding || p.quantity > 0 {
        return Ok(());
    }
    let (paid, rest) = rules::split_proceeds(proceeds, &[claim_left(conn, &p)?]);
    let to_lender = paid.first().copied().unwrap_or(0);
    diesel::update(pl::table.find(p.id))
        .set((
            pl::status.eq("disposed"),
            pl::paid_to_lender.eq(to_lender),
            pl::paid_to_pledgor.eq(rest),
            pl::updated_at.eq(at),
        ))
        .execute(conn)?;
    add_entry(
        conn,
        &p,
        "disposal",
        json!({"proceeds": proceeds, "paid_to_lender": to_lender, "paid_to_pledgor": rest}),
        actor,
        at,
    )
}
