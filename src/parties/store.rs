//! Party rows and queries.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::schema::{compliance_flags as cf, parties, party_events as pe};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = parties)]
pub struct PartyRow {
    pub id: i64,
    pub kind: String,
    pub uscc: Option<String>,
    pub id_number_hash: Option<String>,
    pub id_number_masked: Option<String>,
    pub name_zh: String,
    pub name_en: Option<String>,
    pub region_code: String,
    pub address: Option<String>,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl PartyRow {
    /// The party's kind; `None` only for a stored text no release wrote.
    pub fn kind(&self) -> Option<super::PartyKind> {
        super::PartyKind::parse(&self.kind)
    }
}

#[derive(Insertable)]
#[diesel(table_name = parties)]
pub struct NewParty {
    pub kind: String,
    pub uscc: Option<String>,
    pub id_number_hash: Option<String>,
    pub id_number_masked: Option<String>,
    pub name_zh: String,
    pub name_en: Option<String>,
    pub region_code: String,
    pub address: Option<String>,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = pe)]
pub struct PartyEventRow {
    pub id: i64,
    pub party_id: i64,
    pub kind: String,
    pub changes: String,
    pub document_ref: Option<String>,
    pub related_party_id: Option<i64>,
    pub actor: String,
    pub at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = pe)]
pub struct NewPartyEvent {
    pub party_id: i64,
    pub kind: String,
    pub changes: String,
    pub document_ref: Option<String>,
    pub related_party_id: Option<i64>,
    pub actor: String,
    pub at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = cf)]
pub struct FlagRow {
    pub id: i64,
    pub party_id: i64,
    pub flag: String,
    pub reason: String,
    pub set_by: String,
    pub set_at: NaiveDateTime,
    pub cleared_by: Option<String>,
    pub cleared_at: Option<NaiveDateTime>,
    pub clear_reason: Option<String>,
}

pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<PartyRow>> {
    parties::table
        .find(id)
        .select(PartyRow::as_select())
        .first(conn)
        .optional()
}

/// The party, when it may take part in a new act; a 409 `party_inactive` when its registration
/// recorded a merger, split or other end (see [`super::rules`]), a 404 when there is none.
pub fn require_active(conn: &mut DbConn, id: i64) -> ApiResult<PartyRow> {
    let p = find(conn, id)?.ok_or_else(|| ApiError::not_found("party"))?;
    if !super::rules::takes_part(&p.status) {
        return Err(party_inactive(&p));
    }
    Ok(p)
}

/// Refuses a movement of quantity that would make an ended party take part in a new act (the
/// ledger calls this for every movement; see [`super::rules::ended_party_may_move`]). One query
/// for both sides, and none at all when neither side names a party.
pub fn check_movement(
    conn: &mut DbConn,
    from: Option<i64>,
    to: Option<i64>,
    from_bucket: crate::rights::Bucket,
    to_bucket: crate::rights::Bucket,
    cause: &str,
) -> ApiResult<()> {
    let ids: Vec<i64> = from.into_iter().chain(to).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let ended: Vec<PartyRow> = parties::table
        .filter(parties::id.eq_any(&ids))
        .filter(parties::status.ne(super::rules::ACTIVE))
        .select(PartyRow::as_select())
        .load(conn)?;
    for p in &ended {
        let (sends, receives) = (from == Some(p.id), to == Some(p.id));
        if !super::rules::ended_party_may_move(sends, receives, from_bucket, to_bucket, cause) {
            return Err(party_inactive(p));
        }
    }
    Ok(())
}

fn party_inactive(p: &PartyRow) -> ApiError {
    ApiError::conflict(
        "party_inactive",
        format!(
            "party {} is {}: it takes part in no new act (what it holds stays as it is)",
            p.id, p.status
        ),
    )
}

pub fn find_by_uscc(conn: &mut DbConn, uscc: &str) -> QueryResult<Option<PartyRow>> {
    parties::table
        .filter(parties::uscc.eq(uscc))
        .select(PartyRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut DbConn, new: &NewParty) -> QueryResult<PartyRow> {
    diesel::insert_into(parties::table)
        .values(new)
        .execute(conn)?;
    // The newest row with this identity: uscc or id-number hash is unique.
    let q = parties::table.select(PartyRow::as_select()).into_boxed();
    let q = match (&new.uscc, &new.id_number_hash) {
        (Some(u), _) => q.filter(parties::uscc.eq(u.clone())),
        (None, Some(h)) => q.filter(parties::id_number_hash.eq(h.clone())),
        (None, None) => q.order(parties::id.desc()),
    };
    q.first(conn)
}

/// Filters for listing parties.
#[derive(Default)]
pub struct PartyFilter {
    pub uscc: Option<String>,
    pub id_number_hash: Option<String>,
    pub kind: Option<String>,
    pub region_code: Option<String>,
    /// Restrict to one party (callers who see only themselves).
    pub only: Option<i64>,
}

pub fn list(
    conn: &mut DbConn,
    f: &PartyFilter,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<PartyRow>> {
    let mut q = parties::table
        .filter(parties::id.gt(after))
        .select(PartyRow::as_select())
        .order(parties::id)
        .limit(limit + 1)
        .into_boxed();
    if let Some(v) = &f.uscc {
        q = q.filter(parties::uscc.eq(v.clone()));
    }
    if let Some(v) = &f.id_number_hash {
        q = q.filter(parties::id_number_hash.eq(v.clone()));
    }
    if let Some(v) = &f.kind {
        q = q.filter(parties::kind.eq(v.clone()));
    }
    if let Some(v) = &f.region_code {
        q = q.filter(parties::region_code.eq(v.clone()));
    }
    if let Some(v) = f.only {
        q = q.filter(parties::id.eq(v));
    }
    q.load(conn)
}

pub fn add_event(conn: &mut DbConn, e: &NewPartyEvent) -> QueryResult<usize> {
    diesel::insert_into(pe::table).values(e).execute(conn)
}

pub fn history(conn: &mut DbConn, party_id: i64) -> QueryResult<Vec<PartyEventRow>> {
    pe::table
        .filter(pe::party_id.eq(party_id))
        .order(pe::id)
        .select(PartyEventRow::as_select())
        .load(conn)
}

pub fn flags(conn: &mut DbConn, party_id: i64) -> QueryResult<Vec<FlagRow>> {
    cf::table
        .filter(cf::party_id.eq(party_id))
        .order(cf::id)
        .select(FlagRow::as_select())
        .load(conn)
}

/// Flags currently in force on a party (read by pledge eligibility).
pub fn active_flags(conn: &mut DbConn, party_id: i64) -> QueryResult<Vec<FlagRow>> {
    cf::table
        .filter(cf::party_id.eq(party_id))
        .filter(cf::cleared_at.is_null())
        .order(cf::id)
        .select(FlagRow::as_select())
        .load(conn)
}

pub fn add_flag(
    conn: &mut DbConn,
    party_id: i64,
    flag: &str,
    reason: &str,
    actor: &str,
    at: NaiveDateTime,
) -> QueryResult<FlagRow> {
    diesel::insert_into(cf::table)
        .values((
            cf::party_id.eq(party_id),
            cf::flag.eq(flag),
            cf::reason.eq(reason),
            cf::set_by.eq(actor),
            cf::set_at.eq(at),
        ))
        .execute(conn)?;
    cf::table
        .filter(cf::party_id.eq(party_id))
        .order(cf::id.desc())
        .select(FlagRow::as_select())
        .first(conn)
}

/// Clears a flag still in force; returns None when there is no such active flag.
pub fn clear_flag(
    conn: &mut DbConn,
    party_id: i64,
    flag_id: i64,
    reason: &str,
    actor: &str,
    at: NaiveDateTime,
) -> QueryResult<Option<FlagRow>> {
    let n = diesel::update(
        cf::table
            .filter(cf::id.eq(flag_id))
            .filter(cf::party_id.eq(party_id))
            .filter(cf::cleared_at.is_null()),
    )
    .set((
        cf::cleared_by.eq(actor),
        cf::cleared_at.eq(at),
        cf::clear_reason.eq(reason),
    ))
    .execute(conn)?;
    if n == 0 {
        return Ok(None);
    }
    cf::table
        .find(flag_id)
        .select(FlagRow::as_select())
        .first(conn)
        .optional()
}
