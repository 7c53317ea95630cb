//! Checking a login: limits per client address (this process), per login name and per (name,
//! address) (the database, all processes), one bounded hash per attempt whatever the failure, and an audit event for each
//! failed attempt.

use std::net::IpAddr;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use super::limiter::addresses;
use super::rules::{self, Candidate, Failure, ACCOUNT};
use super::store::{self, PrincipalRow};
use super::{hashing, password};
use crate::audit;
use crate::db;
use crate::error::ApiError;
use crate::kernel::state::AppState;

/// A refused login: the problem, and for a 429 or 503 how many seconds to wait (`Retry-After`).
/// Derefs to the problem, so callers can look at `status` and `code` as on any error.
#[derive(Debug)]
pub struct LoginRefused {
    pub error: ApiError,
    pub retry_after: Option<u64>,
}

impl std::ops::Deref for LoginRefused {
    type Target = ApiError;
    fn deref(&self) -> &ApiError {
        &self.error
    }
}

impl std::fmt::Display for LoginRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl From<ApiError> for LoginRefused {
    fn from(error: ApiError) -> Self {
        let retry_after = (error.code == "login_busy").then_some(hashing::BUSY_RETRY_AFTER_SECS);
        LoginRefused { error, retry_after }
    }
}

impl ResponseError for LoginRefused {
    fn status_code(&self) -> StatusCode {
        self.error.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut res = self.error.error_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}

/// The 429 for a caller that must wait until `until`.
fn throttled(until: chrono::NaiveDateTime, now: chrono::NaiveDateTime) -> LoginRefused {
    let secs = rules::retry_after_secs(until, now);
    LoginRefused {
        error: ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("too many failed logins; retry in {secs} s"),
        ),
        retry_after: Some(secs),
    }
}

fn invalid_credentials() -> LoginRefused {
    let mut e = ApiError::unauthorized("wrong credentials, or the account is disabled");
    e.code = "invalid_credentials";
    e.into()
}

/// The answer to a correct password that an operator reset: change it first.
pub fn change_required() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "password_change_required",
        "this password was set by an operator and must be changed first: POST /v1/auth/password",
    )
}

/// The address a request's login attempts are counted under: the TCP peer, or, when the peer is
/// a configured trusted proxy, the client its `X-Forwarded-For` names (see
/// [`rules::client_address`]).
pub fn client_address(req: &actix_web::HttpRequest, state: &AppState) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let trusted = &state.exposure.trusted_proxies;
    if trusted.is_empty() {
        return Some(peer);
    }
    let values: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    Some(rules::client_address(peer, &values, trusted))
}

/// The name failures are counted under (bounded, so an attacker's long names stay small).
fn failure_key(name: &str) -> String {
    name.chars().take(128).collect()
}

/// Checks a password (or an API client's secret; `kind` is `user` or `client`) from `peer`.
/// A user whose password was reset by an operator is refused with `password_change_required`
/// unless `change_due_ok` (the password change itself).
pub async fn check(
    state: &AppState,
    name: String,
    secret: String,
    kind: &'static str,
    peer: Option<IpAddr>,
    change_due_ok: bool,
) -> Result<PrincipalRow, LoginRefused> {
    let now = || db::now_micros(state.clock.now());
    let address_lock = |at| peer.and_then(|a| addresses().locked_until(a, at));
    if let Some(until) = address_lock(now()) {
        return Err(throttled(until, now()));
    }
    // One turn on a hashing thread per attempt, held until its failure is recorded, so that the
    // attempts in flight on one name never exceed the threads.
    let turn = hashing::turn().await?;
    let at = now();
    if let Some(until) = address_lock(at) {
        return Err(throttled(until, at));
    }
    let key = failure_key(&name);
    // Failures are also counted per (name, address); an unknown address counts as one address.
    let addr_key = peer.map(|a| a.to_string()).unwrap_or_default();
    let lookup = (name.clone(), key.clone(), addr_key.clone());
    let (row, failures, own, change_due) = state
        .db(move |conn| {
            let row = store::find_by_username(conn, &lookup.0)?;
            let failures = store::login_failures(conn, &lookup.1)?;
            let own = store::address_failures(conn, &lookup.1, &lookup.2)?;
            // Asked for an unknown name too, so both take the same queries.
            let due = store::password_change_due(conn, row.as_ref().map_or(-1, |r| r.id))?;
            Ok((row, failures, own, due))
        })
        .await?;
    // The name's own lock holds only against addresses that keep failing on it, so a stranger
    // elsewhere cannot lock the real user out; each address's count on the name holds strictly.
    if let Some(until) = rules::login_wait(
        failures.as_ref().and_then(|f| f.locked_until),
        own.as_ref()
            .map(|f| (f.failures, f.last_failed_at, f.locked_until)),
        at,
    ) {
        return Err(throttled(until, at));
    }
    let cost = state.hash_cost;
    let candidate = row
        .as_ref()
        .map(|r| (r.kind.clone(), r.secret_hash.clone(), r.disabled));
    let outcome = turn
        .run(move || {
            let candidate = candidate.as_ref().map(|(kind, hash, disabled)| Candidate {
                kind,
                secret_hash: hash,
                disabled: *disabled,
            });
            rules::check_secret(
                candidate,
                kind,
                &secret,
                password::dummy_hash(cost),
                password::verify,
            )
        })
        .await?;
    match (outcome, row) {
        (Ok(()), Some(row)) => {
            drop(turn);
            if failures.is_some() || own.is_some() {
                let key = key.clone();
                state
                    .db(move |conn| {
                        store::clear_login_failures(conn, &key)?;
                        store::clear_address_failures(conn, &key, &addr_key)?;
                        Ok(())
                    })
                    .await?;
            }
            if change_due && !change_due_ok {
                return Err(change_required().into());
            }
            Ok(row)
        }
        (outcome, row) => {
            let reason = outcome.err().unwrap_or(Failure::UnknownName);
            if let Some(addr) = peer {
                addresses().record_failure(addr, at);
            }
            let principal = row.map(|r| r.id);
            let addr = peer.map(|a| a.to_string());
            let record = move || {
                let (key, addr, addr_key) = (key.clone(), addr.clone(), addr_key.clone());
                state.db(move |conn| {
                    db::write_tx(conn, |conn| {
                        let counted = store::record_login_failure(conn, &key, at, &ACCOUNT)?;
                        let own =
                            store::record_address_failure(conn, &key, &addr_key, at, &ACCOUNT)?;
                        audit::record(
                            conn,
                            audit::Event {
                                chain: match principal {
                                    Some(id) => format!("principal:{id}"),
                                    None => "login:unknown".to_string(),
                                },
                                actor: "anonymous",
                                action: "login.failed",
                                object_type: "principal",
                                object_id: principal.map(|id| id.to_string()).unwrap_or_default(),
                                payload: json!({
                                    "username": key,
                                    "kind": kind,
                                    "client_address": addr,
                                    "reason": reason.as_str(),
                                    "failures": counted.failures,
                                    "locked_until": counted.locked_until,
                                    "address_failures": own.failures,
                                    "address_locked_until": own.locked_until,
                                }),
                                at,
                            },
                        )?;
                        Ok(())
                    })
                })
            };
            // A failure that is not counted would be a free guess: retry a busy database, and
            // answer 401 whatever happens (a different answer would tell a wrong password apart).
            let mut recorded = record().await;
            for _ in 0..2 {
                if recorded.is_ok() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                recorded = record().await;
            }
            if let Err(e) = recorded {
                tracing::error!(error = %e, "a failed login could not be recorded");
            }
            drop(turn);
            Err(invalid_credentials())
        }
    }
}
