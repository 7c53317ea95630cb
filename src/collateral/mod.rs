//! Collateral: pledges of rights (质押) with their append-only entries (R8), judicial freezes
//! (查封/冻结), and the lender API — search, verification and signed search certificates.

pub mod courts;
pub mod disposal;
pub mod encumbrance;
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
    <PledgeRow as encumbrance::Encumbrance>::find(conn, id)
}

pub fn find_by_registration(conn: &mut DbConn, no: &str) -> QueryResult<Option<PledgeRow>> {
    pl::table
        .filter(pl::registration_no.eq(no))
        .select(PledgeRow::as_select())
        .first(conn)
        .optional()
}

pub use encumbrance::add_entry;

impl encumbrance::Encumbrance for PledgeRow {
    const OBJECT: &'static str = "pledge";
    const NOUN: &'static str = "pledge";
    const STATUS_CODE: &'static str = "pledge_status";
    const STATUS_NOUN: &'static str = "pledge";
    type View = pledges::PledgeView;
    /// A lot.
    type Filter = Option<i64>;
    type Locked = crate::rights::store::LotRow;

    fn id(&self) -> i64 {
        self.id
    }
    fn status(&self) -> &str {
        &self.status
    }
    fn holder_id(&self) -> i64 {
        self.pledgor_id
    }
    fn lender_id(&self) -> i64 {
        self.lender_id
    }
    fn registration_no(&self) -> Option<&str> {
        self.registration_no.as_deref()
    }
    /// A pledge's entries join its lot's chain: the lot's history shows what encumbers it.
    fn chain(&self) -> String {
        format!("lot:{}", self.lot_id)
    }
    /// Its lot: pledges, freezes, sales and transfers of a lot all queue on it.
    fn lock_collateral(
        &self,
        conn: &mut DbConn,
        _now: NaiveDateTime,
    ) -> ApiResult<crate::rights::store::LotRow> {
        crate::rights::store::lock_lot(conn, self.lot_id)
    }
    fn view(conn: &mut DbConn, row: Self) -> ApiResult<pledges::PledgeView> {
        pledges::view(conn, row)
    }
    fn view_id(view: &pledges::PledgeView) -> i64 {
        view.id
    }
    crate::encumbrance_table!(table: pl, holder: pledgor_id, lender: lender_id,
        entries: pe.pledge_id, filter: lot_id);
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
