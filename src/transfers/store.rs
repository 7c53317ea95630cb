//! Transfer rows.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::schema::transfers as t;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = t)]
pub struct TransferRow {
    pub id: i64,
    pub lot_id: i64,
    pub from_party_id: i64,
    pub to_party_id: i64,
    pub quantity: i64,
    pub kind: String,
    pub status: String,
    pub requires_approval: bool,
    pub unit_price: Option<i64>,
    pub years: Option<i32>,
    pub amount: Option<i64>,
    pub document_ref: Option<String>,
    pub note: Option<String>,
    pub serials: Option<String>,
    pub requested_by: String,
    pub confirmed_by: Option<String>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = t)]
pub struct NewTransfer {
    pub lot_id: i64,
    pub from_party_id: i64,
    pub to_party_id: i64,
    pub quantity: i64,
    pub kind: String,
    pub status: String,
    pub requires_approval: bool,
    pub unit_price: Option<i64>,
    pub years: Option<i32>,
    pub amount: Option<i64>,
    pub document_ref: Option<String>,
    pub note: Option<String>,
    pub serials: Option<String>,
    pub requested_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<TransferRow>> {
    t::table
        .find(id)
        .select(TransferRow::as_select())
        .first(conn)
        .optional()
}

/// Inserts a transfer and returns it (the newest of its sender on its lot).
pub fn insert(conn: &mut DbConn, new: &NewTransfer) -> QueryResult<TransferRow> {
    diesel::insert_into(t::table).values(new).execute(conn)?;
    t::table
        .filter(t::from_party_id.eq(new.from_party_id))
        .filter(t::lot_id.eq(new.lot_id))
        .order(t::id.desc())
        .select(TransferRow::as_select())
        .first(conn)
}

/// Records the receiver's confirmation (`from` → `to`); 0 when it was no longer in `from`.
pub fn confirm(
    conn: &mut DbConn,
    id: i64,
    from: &str,
    to: &str,
    by: &str,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(t::table.filter(t::id.eq(id)).filter(t::status.eq(from)))
        .set((
            t::status.eq(to),
            t::confirmed_by.eq(by),
            t::updated_at.eq(at),
        ))
        .execute(conn)
}

/// Records a decision (approve, reject, cancel); 0 when it was no longer in `from`.
pub fn decide(
    conn: &mut DbConn,
    id: i64,
    from: &str,
    to: &str,
    by: &str,
    reason: Option<&str>,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(t::table.filter(t::id.eq(id)).filter(t::status.eq(from)))
        .set((
            t::status.eq(to),
            t::decided_by.eq(by),
            t::decision_reason.eq(reason),
            t::updated_at.eq(at),
        ))
        .execute(conn)
}
