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
        .inspect(|_| super::cache::changed(conn, id))
}

pub fn revoke_tokens(conn: &mut DbConn, id: i64) -> QueryResult<usize> {
    diesel::update(principals::table.find(id))
        .set(principals::token_version.eq(principals::token_version + 1))
        .execute(conn)
        .inspect(|_| super::cache::changed(conn, id))
}

/// Operator accounts ever created (disabled ones included): while there are none, the user
/// administrator may create operators without an operator's approval (a fresh install).
pub fn operator_count(conn: &mut DbConn) -> QueryResult<i64> {
    principals::table
        .filter(principals::role.eq("operator"))
        .count()
        .get_result(conn)
}

/// Requires a new password at the principal's next login (a password someone else chose).
pub fn mark_change_due(conn: &mut DbConn, id: i64, now: NaiveDateTime) -> QueryResult<usize> {
    use crate::schema::password_change_due as d;
    diesel::delete(d::table.find(id)).execute(conn)?;
    diesel::insert_into(d::table)
        .values((d::principal_id.eq(id), d::since.eq(now)))
        .execute(conn)
}

/// Active user administrators (users, not disabled) other than `except`.
pub fn active_user_admins_except(conn: &mut DbConn, except: i64) -> QueryResult<i64> {
    principals::table
        .filter(principals::role.eq("user_admin"))
        .filter(principals::kind.eq("user"))
        .filter(principals::disabled.eq(false))
        .filter(principals::id.ne(except))
        .count()
        .get_result(conn)
}

/// Locks the user administrators' rows until the transaction ends (PostgreSQL; an SQLite write
/// transaction already excludes every other writer).
pub fn lock_user_admins(conn: &mut DbConn) -> QueryResult<()> {
    if matches!(conn, DbConn::Pg(_)) {
        diesel::sql_query(
            "SELECT id FROM principals WHERE role = 'user_admin' ORDER BY id FOR UPDATE",
        )
        .execute(conn)?;
    }
    Ok(())
}

pub fn count(conn: &mut DbConn) -> QueryResult<i64> {
    principals::table.count().get_result(conn)
}

/// A login name's recent failures (see `rules::ACCOUNT`).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::login_failures)]
pub struct LoginFailures {
    pub username: String,
    pub failures: i64,
    pub last_failed_at: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
}

pub fn login_failures(conn: &mut DbConn, username: &str) -> QueryResult<Option<LoginFailures>> {
    use crate::schema::login_failures as lf;
    lf::table
        .find(username)
        .select(LoginFailures::as_select())
        .first(conn)
        .optional()
}

/// Counts a failed login for `username` at `now` (in the caller's transaction) and returns the
/// count with the lock it brings, if any. Failures older than the rule's memory start afresh.
pub fn record_login_failure(
    conn: &mut DbConn,
    username: &str,
    now: NaiveDateTime,
    rule: &super::rules::Throttle,
) -> QueryResult<LoginFailures> {
    use crate::schema::login_failures as lf;
    let inserted = crate::insert_or_ignore!(
        conn,
        lf::table,
        (
            lf::username.eq(username),
            lf::failures.eq(0i64),
            lf::last_failed_at.eq(now),
        )
    )?;
    if inserted > 0 {
        // A new name: drop the rows of names quiet for longer than the rule remembers, so names
        // an attacker invents do not pile up.
        let horizon = now - chrono::TimeDelta::seconds(rule.forget_secs);
        diesel::delete(
            lf::table
                .filter(lf::last_failed_at.lt(horizon))
                .filter(lf::locked_until.is_null().or(lf::locked_until.lt(now))),
        )
        .execute(conn)?;
    }
    // The increment is one statement, so concurrent failures in other processes all count.
    let prior = lf::table
        .find(username)
        .select(LoginFailures::as_select())
        .first(conn)?;
    let carried = rule.carried(prior.failures, prior.last_failed_at, now);
    diesel::update(lf::table.find(username))
        .set((
            lf::failures.eq(lf::failures - prior.failures + carried + 1),
            lf::last_failed_at.eq(now),
        ))
        .execute(conn)?;
    let failures: i64 = lf::table.find(username).select(lf::failures).first(conn)?;
    let locked_until = rule.locked_until(failures, now);
    diesel::update(lf::table.find(username))
        .set(lf::locked_until.eq(locked_until))
        .execute(conn)?;
    Ok(LoginFailures {
        username: username.to_string(),
        failures,
        last_failed_at: now,
        locked_until,
    })
}

/// Forgets a name's failures (a successful login, a password reset).
pub fn clear_login_failures(conn: &mut DbConn, username: &str) -> QueryResult<usize> {
    use crate::schema::login_failures as lf;
    diesel::delete(lf::table.find(username)).execute(conn)
}

/// One client address's recent failures on one login name.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::login_failures_by_address)]
pub struct AddressFailures {
    pub failures: i64,
    pub last_failed_at: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
}

pub fn address_failures(
    conn: &mut DbConn,
    username: &str,
    address: &str,
) -> QueryResult<Option<AddressFailures>> {
    use crate::schema::login_failures_by_address as fa;
    fa::table
        .find((username, address))
        .select(AddressFailures::as_select())
        .first(conn)
        .optional()
}

/// Counts a failed login for `username` from `address` at `now` (in the caller's transaction),
/// as [`record_login_failure`] does for the name alone.
pub fn record_address_failure(
    conn: &mut DbConn,
    username: &str,
    address: &str,
    now: NaiveDateTime,
    rule: &super::rules::Throttle,
) -> QueryResult<AddressFailures> {
    use crate::schema::login_failures_by_address as fa;
    let inserted = crate::insert_or_ignore!(
        conn,
        fa::table,
        (
            fa::username.eq(username),
            fa::client_address.eq(address),
            fa::failures.eq(0i64),
            fa::last_failed_at.eq(now),
        )
    )?;
    if inserted > 0 {
        let horizon = now - chrono::TimeDelta::seconds(rule.forget_secs);
        diesel::delete(
            fa::table
                .filter(fa::last_failed_at.lt(horizon))
                .filter(fa::locked_until.is_null().or(fa::locked_until.lt(now))),
        )
        .execute(conn)?;
    }
    let key = (username, address);
    let prior = fa::table
        .find(key)
        .select(AddressFailures::as_select())
        .first(conn)?;
    let carried = rule.carried(prior.failures, prior.last_failed_at, now);
    diesel::update(fa::table.find(key))
        .set((
            fa::failures.eq(fa::failures - prior.failures + carried + 1),
            fa::last_failed_at.eq(now),
        ))
        .execute(conn)?;
    let failures: i64 = fa::table.find(key).select(fa::failures).first(conn)?;
    let locked_until = rule.locked_until(failures, now);
    diesel::update(fa::table.find(key))
        .set(fa::locked_until.eq(locked_until))
        .execute(conn)?;
    Ok(AddressFailures {
        failures,
        last_failed_at: now,
        locked_until,
    })
}

/// Forgets one address's failures on a name (its successful login).
pub fn clear_address_failures(
    conn: &mut DbConn,
    username: &str,
    address: &str,
) -> QueryResult<usize> {
    use crate::schema::login_failures_by_address as fa;
    diesel::delete(fa::table.find((username, address))).execute(conn)
}

/// True when the user must choose a new password before getting a token.
pub fn password_change_due(conn: &mut DbConn, id: i64) -> QueryResult<bool> {
    use crate::schema::password_change_due as d;
    Ok(d::table.find(id).count().get_result::<i64>(conn)? > 0)
}

/// Replaces a principal's secret and revokes every token issued so far; `due` says whether it
/// must be changed at next login (a reset) or not (the user's own change).
pub fn set_secret(
    conn: &mut DbConn,
    id: i64,
    secret_hash: &str,
    due: bool,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    use crate::schema::password_change_due as d;
    let n = diesel::update(principals::table.find(id))
        .set((
            principals::secret_hash.eq(secret_hash),
            principals::token_version.eq(principals::token_version + 1),
        ))
        .execute(conn)?;
    super::cache::changed(conn, id);
    diesel::delete(d::table.find(id)).execute(conn)?;
    if due && n == 1 {
        diesel::insert_into(d::table)
            .values((d::principal_id.eq(id), d::since.eq(now)))
            .execute(conn)?;
    }
    Ok(n)
}
