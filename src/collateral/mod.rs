//! Collateral: pledges of rights (质押) with their append-only entries (R8), judicial freezes
//! (查封/冻结), and the lender API — search, verification and signed search certificates.

pub mod courts;
pub mod disposal;
pub mod freezes;
pub mod lender;
pub mod monitoring;
pub mod objections;
pub mod page;
pub mod pledges;
pub mod rules;
pub mod webhooks;

// Court freezes as other modules use them (transfers, the market, approvals).
pub use freezes::{
    court_transfer, execute_lift as execute_freeze_lift, named_for_holding, require_not_held,
    step_ended, CourtOrder, PledgeHandling,
};

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::db::DbConn;
use crate::error::ApiResult;
use crate::schema::{pledge_entries as pe, pledges as pl};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = pl)]
pub struct PledgeRow {
    pub id: i64,
    pub registration_no: Option<String>,
    pub lot_id: i64,
    pub pledgor_id: i64,
    pub lender_id: i64,
    pub quantity: i64,
    pub applied_quantity: i64,
    pub serials: Option<String>,
    pub status: String,
    pub rank: Option<i32>,
    pub secured_amount: Option<i64>,
    pub loan_reference: Option<String>,
    pub loan_maturity: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    pub registered_at: Option<NaiveDateTime>,
    pub appraisal_value: Option<i64>,
    pub appraiser: Option<String>,
    pub appraisal_date: Option<NaiveDate>,
    pub pboc_registration_no: Option<String>,
    pub verification_code: Option<String>,
    pub amendment_code_hash: Option<String>,
    pub claim_amount: Option<i64>,
    pub claim_detail: Option<String>,
    pub proceeds: Option<i64>,
    pub paid_to_lender: Option<i64>,
    pub paid_to_pledgor: Option<i64>,
    pub lapse_warned_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The pledge a court-ordered split started from (both parts secure its one claim).
    pub claim_root_id: Option<i64>,
}

/// Statuses in which a pledge encumbers its quantity.
pub const LIVE: [&str; 2] = ["registered", "enforcing"];

pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<PledgeRow>> {
    pl::table
        .find(id)
        .select(PledgeRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_registration(conn: &mut DbConn, no: &str) -> QueryResult<Option<PledgeRow>> {
    pl::table
        .filter(pl::registration_no.eq(no))
        .select(PledgeRow::as_select())
        .first(conn)
        .optional()
}

/// Appends a numbered, timestamped entry to a pledge's history (R8) and its audit event.
pub fn add_entry(
    conn: &mut DbConn,
    p: &PledgeRow,
    kind: &str,
    details: serde_json::Value,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    let last: Option<i32> = pe::table
        .filter(pe::pledge_id.eq(p.id))
        .select(diesel::dsl::max(pe::seq))
        .first(conn)?;
    diesel::insert_into(pe::table)
        .values((
            pe::pledge_id.eq(p.id),
            pe::seq.eq(last.unwrap_or(0) + 1),
            pe::kind.eq(kind),
            pe::details.eq(details.to_string()),
            pe::actor.eq(actor),
            pe::at.eq(at),
        ))
        .execute(conn)?;
    let event = json!({"pledge_id": p.id, "registration_no": p.registration_no, "entry": kind, "details": details});
    webhooks::enqueue(
        conn,
        p.lender_id,
        &format!("pledge:{}", p.id),
        &format!("pledge.{kind}"),
        event,
        at,
    )?;
    crate::audit::record(
        conn,
        crate::audit::Event {
            chain: format!("lot:{}", p.lot_id),
            actor,
            action: &format!("pledge.{kind}"),
            object_type: "pledge",
            object_id: p.id.to_string(),
            payload: details,
            at,
        },
    )?;
    Ok(())
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = pe)]
pub struct EntryRow {
    pub id: i64,
    pub pledge_id: i64,
    pub seq: i32,
    pub kind: String,
    pub details: String,
    pub actor: String,
    pub at: NaiveDateTime,
}

pub fn entries(conn: &mut DbConn, pledge_id: i64) -> QueryResult<Vec<EntryRow>> {
    pe::table
        .filter(pe::pledge_id.eq(pledge_id))
        .order(pe::seq)
        .select(EntryRow::as_select())
        .load(conn)
}

/// The registry keeps only a hash of an amendment code (R7).
pub fn code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

/// A random code of uppercase letters and digits, without look-alikes.
pub fn random_code(len: usize) -> String {
    use rand::Rng;
    const SET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| SET[rng.random_range(0..SET.len())] as char)
        .collect()
}
