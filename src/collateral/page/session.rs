//! The page session of a bank user: a random token in an HttpOnly cookie, kept in the database
//! only as a hash; the form token bound to it; and the same-origin check every POST passes.

use actix_web::http::header;
use actix_web::HttpRequest;
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::{Principal, Role};
use crate::db;
use crate::error::ApiResult;
use crate::kernel::state::AppState;
use crate::schema::page_sessions as ps;

/// The session cookie's name; it holds the page session token and is sent only to `/verify`.
pub const SESSION_COOKIE: &str = "registry_session";

/// The logged-in page user: the principal behind a valid session cookie, and its form token.
pub(super) struct Session {
    pub(super) who: Principal,
    pub(super) csrf: String,
}

/// The form token of a session: an HMAC of its session token under the JWT key, so that it is
/// bound to the session, needs no storage and cannot be computed by another site.
fn csrf_token(state: &AppState, token: &str) -> String {
    match Hmac::<Sha256>::new_from_slice(&state.secrets.jwt_secret) {
        Ok(mut mac) => {
            mac.update(b"verify-page-csrf:");
            mac.update(token.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// What the database keeps of a page session token: its SHA-256, so that a copy of the table
/// opens no session.
fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Opens a page session for a bank user: a fresh random token, stored hashed, valid for `ttl`.
pub(super) async fn open_session(
    state: &AppState,
    row: &crate::auth::store::PrincipalRow,
    ttl: i64,
) -> ApiResult<String> {
    let token = format!("pgs_{}", hex::encode(rand::random::<[u8; 32]>()));
    let (hash, principal, version) = (token_hash(&token), row.id, row.token_version);
    let now = db::now_micros(state.clock.now());
    let expires = now + chrono::TimeDelta::seconds(ttl);
    state
        .db(move |conn| {
            diesel::insert_into(ps::table)
                .values((
                    ps::token_hash.eq(hash),
                    ps::principal_id.eq(principal),
                    ps::token_version.eq(version),
                    ps::created_at.eq(now),
                    ps::expires_at.eq(expires),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await?;
    Ok(token)
}

/// The session of the request, if its cookie holds a page session that is still valid: not
/// expired, not logged out, its user a bank user that is not disabled and whose tokens were not
/// revoked since.
pub(super) async fn session(req: &HttpRequest, state: &AppState) -> Option<Session> {
    let token = req.cookie(SESSION_COOKIE)?.value().to_string();
    let (hash, now) = (token_hash(&token), db::now_micros(state.clock.now()));
    let row = state
        .db(move |conn| {
            let Some((principal, version)) = ps::table
                .filter(ps::token_hash.eq(hash))
                .filter(ps::revoked_at.is_null())
                .filter(ps::expires_at.gt(now))
                .select((ps::principal_id, ps::token_version))
                .first::<(i64, i64)>(conn)
                .optional()?
            else {
                return Ok(None);
            };
            Ok(crate::auth::store::find_by_id(conn, principal)?
                .filter(|p| !p.disabled && p.token_version == version))
        })
        .await
        .ok()
        .flatten()?;
    let role: Role = row.role.parse().ok()?;
    if role != Role::Bank {
        return None;
    }
    Some(Session {
        csrf: csrf_token(state, &token),
        who: Principal {
            id: row.id,
            username: row.username,
            role,
            party_id: row.party_id,
            person_id: row.person_id,
        },
    })
}

/// Ends the page session behind `token`, if any.
pub(super) async fn revoke_session(state: &AppState, token: &str) -> ApiResult<()> {
    let (hash, now) = (token_hash(token), db::now_micros(state.clock.now()));
    state
        .db(move |conn| {
            diesel::update(
                ps::table
                    .filter(ps::token_hash.eq(hash))
                    .filter(ps::revoked_at.is_null()),
            )
            .set(ps::revoked_at.eq(Some(now)))
            .execute(conn)?;
            Ok(())
        })
        .await
}

/// Deletes page sessions that ended before `before` (the retention sweep).
pub fn forget_sessions(
    conn: &mut crate::db::DbConn,
    before: chrono::NaiveDateTime,
) -> diesel::QueryResult<usize> {
    diesel::delete(ps::table.filter(ps::expires_at.lt(before))).execute(conn)
}

pub(super) fn https(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// Refuses a POST that does not prove it comes from this site's own form: one without an Origin,
/// with another site's Origin, or with Sec-Fetch-Site cross-site or same-site. Browsers send an
/// Origin on every form POST, so only a request forged outside a browser (or by an old one) lacks
/// it; the SameSite=Strict cookie and the form token back this up.
pub(super) fn same_origin(req: &HttpRequest) -> bool {
    let h = req.headers();
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site == "cross-site" || site == "same-site" {
            return false;
        }
    }
    match h.get(header::ORIGIN) {
        None => false,
        Some(o) => {
            let info = req.connection_info();
            o.to_str().ok() == Some(&format!("{}://{}", info.scheme(), info.host()))
        }
    }
}

/// Constant-time comparison of a submitted form token with the session's.
pub(super) fn csrf_ok(s: &Session, given: Option<&str>) -> bool {
    let given = given.unwrap_or("").as_bytes();
    let want = s.csrf.as_bytes();
    !want.is_empty()
        && given.len() == want.len()
        && given
            .iter()
            .zip(want)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}
