//! Rows and queries of right types, lots and holdings.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::schema::{holdings as h, lots, right_types as rt};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = rt)]
pub struct RightTypeRow {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub unit: String,
    pub max_places: i32,
    pub requires_approval: bool,
    pub sub_kind_label: Option<String>,
    pub sub_kinds: String,
    pub serialized: bool,
    pub priced_per_year: bool,
}

impl RightTypeRow {
    pub fn sub_kinds(&self) -> Vec<String> {
        serde_json::from_str(&self.sub_kinds).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = lots)]
pub struct LotRow {
    pub id: i64,
    pub right_type: String,
    pub sub_kind: Option<String>,
    pub certificate_no: String,
    pub source_document: String,
    pub vintage: i32,
    pub compliance_year: Option<i32>,
    pub valid_from: NaiveDate,
    pub valid_to: NaiveDate,
    pub region_code: String,
    pub origin: String,
    pub project: Option<String>,
    pub monitoring_period: Option<String>,
    pub issued: i64,
    pub retired: i64,
    pub cancelled: i64,
    pub first_holder_id: i64,
    pub proposed_by: String,
    pub approved_by: String,
    pub version: i64,
    pub created_at: NaiveDateTime,
}

impl LotRow {
    /// R6: a lot is expired once its validity has ended.
    pub fn expired(&self, today: NaiveDate) -> bool {
        today > self.valid_to
    }

    /// Refuses a new obligation on an expired lot (R6).
    pub fn require_live(&self, today: NaiveDate) -> ApiResult<()> {
        if self.expired(today) {
            Err(ApiError::conflict(
                "lot_expired",
                format!("lot {} expired on {}", self.certificate_no, self.valid_to),
            ))
        } else {
            Ok(())
        }
    }

    /// R3: whole years of the term left on `on` ([`super::rules::years_left`]).
    pub fn years_left(&self, on: NaiveDate) -> i32 {
        super::rules::years_left(self.valid_from, self.valid_to, on)
    }

    /// R3: the years a priced sale of this lot on `on` covers ([`super::rules::years_traded`]).
    pub fn years_traded(
        &self,
        rt: &RightTypeRow,
        asked: Option<i32>,
        on: NaiveDate,
    ) -> ApiResult<Option<i32>> {
        super::rules::years_traded(
            rt.priced_per_year,
            self.valid_from,
            self.valid_to,
            asked,
            on,
        )
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = h)]
pub struct HoldingRow {
    pub id: i64,
    pub party_id: i64,
    pub lot_id: i64,
    pub available: i64,
    pub listed: i64,
    pub in_transfer: i64,
    pub pledged: i64,
    pub frozen: i64,
    pub updated_at: NaiveDateTime,
    /// Offered as collateral by an open or taken financing request.
    pub reserved: i64,
}

pub fn right_types(conn: &mut DbConn) -> QueryResult<Vec<RightTypeRow>> {
    rt::table
        .order(rt::code)
        .select(RightTypeRow::as_select())
        .load(conn)
}

pub fn right_type(conn: &mut DbConn, code: &str) -> QueryResult<Option<RightTypeRow>> {
    rt::table
        .find(code)
        .select(RightTypeRow::as_select())
        .first(conn)
        .optional()
}

pub fn lot(conn: &mut DbConn, id: i64) -> QueryResult<Option<LotRow>> {
    lots::table
        .find(id)
        .select(LotRow::as_select())
        .first(conn)
        .optional()
}

/// Takes the lot's row lock (PostgreSQL) before any of its holdings: every movement locks in
/// the same order, lot first, so two opposite transfers cannot deadlock.
pub fn lock_lot(conn: &mut DbConn, id: i64) -> ApiResult<LotRow> {
    let n = diesel::update(lots::table.find(id))
        .set(lots::version.eq(lots::version + 1))
        .execute(conn)?;
    if n == 0 {
        return Err(ApiError::not_found("lot"));
    }
    lot(conn, id)?.ok_or_else(|| ApiError::not_found("lot"))
}

pub fn holding(conn: &mut DbConn, party_id: i64, lot_id: i64) -> QueryResult<Option<HoldingRow>> {
    h::table
        .filter(h::party_id.eq(party_id))
        .filter(h::lot_id.eq(lot_id))
        .select(HoldingRow::as_select())
        .first(conn)
        .optional()
}

/// Filters for listing holdings.
#[derive(Default)]
pub struct HoldingFilter {
    pub party_id: Option<i64>,
    pub lot_id: Option<i64>,
    /// Restrict to holdings whose ids are in this set (a lender's view).
    pub only_ids: Option<Vec<i64>>,
}

pub fn holdings(
    conn: &mut DbConn,
    f: &HoldingFilter,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<HoldingRow>> {
    let mut q = h::table
        .filter(h::id.gt(after))
        .order(h::id)
        .limit(limit + 1)
        .select(HoldingRow::as_select())
        .into_boxed();
    if let Some(p) = f.party_id {
        q = q.filter(h::party_id.eq(p));
    }
    if let Some(l) = f.lot_id {
        q = q.filter(h::lot_id.eq(l));
    }
    if let Some(ids) = &f.only_ids {
        q = q.filter(h::id.eq_any(ids.clone()));
    }
    q.load(conn)
}

/// Whether `party_id` holds or ever held part of a lot (what makes a lot visible to it).
pub fn party_has_holding(conn: &mut DbConn, party_id: i64, lot_id: i64) -> QueryResult<bool> {
    Ok(holding(conn, party_id, lot_id)?.is_some())
}

/// Ids of the holdings whose holder applied to pledge them to `lender`.
pub fn holdings_applied_to(conn: &mut DbConn, lender: i64) -> QueryResult<Vec<i64>> {
    use crate::schema::pledges as pl;
    let pairs: Vec<(i64, i64)> = pl::table
        .filter(pl::lender_id.eq(lender))
        .filter(pl::status.eq_any(["applied", "registered", "enforcing"]))
        .select((pl::pledgor_id, pl::lot_id))
        .distinct()
        .load(conn)?;
    let mut ids = Vec::new();
    for (party, lot) in pairs {
        if let Some(h) = holding(conn, party, lot)? {
            ids.push(h.id);
        }
    }
    Ok(ids)
}

/// A holding's acquisition records (R11): quantity by way of acquisition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Acquired {
    pub free: i64,
    pub paid: i64,
    pub market: i64,
    pub other: i64,
}

impl Acquired {
    /// Quantity obtained for payment (有偿取得): paid-use allocations and market purchases.
    pub fn for_payment(&self) -> i64 {
        self.paid + self.market
    }
}

/// The acquisition records of the holding `holding_id`.
pub fn acquired(conn: &mut DbConn, holding_id: i64) -> QueryResult<Acquired> {
    use crate::schema::acquisitions as aq;
    let rows: Vec<(String, i64)> = aq::table
        .filter(aq::holding_id.eq(holding_id))
        .select((aq::kind, aq::quantity))
        .load(conn)?;
    let mut a = Acquired::default();
    for (kind, q) in rows {
        match kind.as_str() {
            "free" => a.free += q,
            "paid" => a.paid += q,
            "market" => a.market += q,
            _ => a.other += q,
        }
    }
    Ok(a)
}
