//! Principals (users and API clients) in the database.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::schema::principals;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = principals)]
pub struct PrincipalRow {
    pub id: i64,
    pub kind: String,
    pub username: String,
    pub secret_hash: String,
    pub role: String,
    pub party_id: Option<i64>,
    pub disabled: bool,
    pub token_version: i64,
    pub created_at: NaiveDateTime,
    pub person_id: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = principals)]
pub struct NewPrincipal<'a> {
    pub kind: &'a str,
    pub username: &'a str,
    pub secret_hash: &'a str,
    pub role: &'a str,
    pub party_id: Option<i64>,
    pub created_at: NaiveDateTime,
    pub person_id: Option<&'a str>,
}

pub fn find_by_id(conn: &mut DbConn, id: i64) -> QueryResult<Option<PrincipalRow>> {
    principals::table
        .find(id)
        .select(PrincipalRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_username(conn: &mut DbConn, username: &str) -> QueryResult<Option<PrincipalRow>> {
    principals::table
        .filter(principals::username.eq(username))
        .select(PrincipalRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut DbConn, new: &NewPrincipal) -> QueryResult<PrincipalRow> {
    diesel::insert_into(principals::table)
        .values(new)
        .execute(conn)?;
    principals::table
        .filter(principals::username.eq(new.username))
        .select(PrincipalRow::as_select())
        .first(conn)
}

pub fn set_disabled(conn: &mut DbConn, id: i64, disabled: bool) -> QueryResult<usize> {
    // Disabling also bumps the token version, so re-enabling does not revive old tokens.
    diesel::update(principals::table.find(id))
        .set((
            principals::disabled.eq(disabled),
            principals::token_version.eq(principals::token_version + 1),
        ))
        .execute(conn)
}

pub fn revoke_tokens(conn: &mut DbConn, id: i64) -> QueryResult<usize> {
    diesel::update(principals::table.find(id))
        .set(principals::token_version.eq(principals::token_version + 1))
        .execute(conn)
}

pub fn count(conn: &mut DbConn) -> QueryResult<i64> {
    principals::table.count().get_result(conn)
}
