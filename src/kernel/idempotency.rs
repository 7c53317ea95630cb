//! Exactly-once POSTs (docs/design.md §3.5, §8). A key is first claimed in its own short
//! transaction (state `in_progress`, a lease and an owner token); the effect and the stored
//! response then commit together, and only if this request still owns the claim. A retry with the
//! same key and body replays the stored response; with another body it is a 422; while the first
//! still runs, a 409. If the first request died, its lease expires and a retry runs the effect
//! once.

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use chrono::TimeDelta;
use diesel::prelude::*;
use futures_util::future::{ready, Ready};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::auth::Principal;
use crate::db::{self, write_tx, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::schema::idempotency_keys as ik;

pub const HEADER: &str = "Idempotency-Key";
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";
/// How long a claim holds before a retry may take it over.
const LEASE: TimeDelta = TimeDelta::seconds(30);

/// The request's `Idempotency-Key` and what identifies the request (method, path, body).
pub struct IdemKey {
    key: Option<String>,
    route: String,
}

impl FromRequest for IdemKey {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let key = match req.headers().get(HEADER) {
            None => Ok(None),
            Some(v) => match v.to_str() {
                // What the spec states: 1 to 255 visible ASCII characters, no spaces.
                Ok(k)
                    if (1..=255).contains(&k.trim().len())
                        && k.trim().bytes().all(|b| b.is_ascii_graphic()) =>
                {
                    Ok(Some(k.trim().to_string()))
                }
                _ => Err(ApiError::bad_request(
                    "idempotency_key_invalid",
                    "Idempotency-Key must be 1 to 255 visible ASCII characters, without spaces",
                )),
            },
        };
        let route = format!("{} {}", req.method(), req.path());
        ready(key.map(|key| IdemKey { key, route }))
    }
}

/// What an effect answers: the stored body, and secrets shown once but never stored or replayed.
pub struct Outcome {
    pub body: Value,
    pub secrets: Option<Value>,
}

impl Outcome {
    pub fn of<T: serde::Serialize>(body: &T) -> ApiResult<Outcome> {
        let body = serde_json::to_value(body).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(Outcome {
            body,
            secrets: None,
        })
    }
}

/// Whether an endpoint demands a key: those that move quantity or money do.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum KeyPolicy {
    Required,
    Optional,
}

/// Runs `effect` in one write transaction, exactly once per (principal, key).
pub async fn run<F>(
    state: &AppState,
    who: &Principal,
    idem: IdemKey,
    body_hash: &str,
    policy: KeyPolicy,
    status: StatusCode,
    effect: F,
) -> ApiResult<HttpResponse>
where
    F: FnOnce(&mut DbConn) -> ApiResult<Outcome> + Send + 'static,
{
    let Some(key) = idem.key else {
        if policy == KeyPolicy::Required {
            return Err(ApiError::bad_request(
                "idempotency_key_required",
                "this request moves quantity or money: send an Idempotency-Key header",
            ));
        }
        let out = state.db(move |conn| write_tx(conn, effect)).await?;
        return Ok(respond(status, merge(out), false));
    };
    let request_hash = hex::encode(Sha256::digest(format!("{}\n{}", idem.route, body_hash)));
    let owner = uuid::Uuid::new_v4().to_string();
    let principal_id = who.id;
    let now = db::now_micros(state.clock.now());

    let claim = {
        let (key, request_hash, owner) = (key.clone(), request_hash.clone(), owner.clone());
        state
            .db(move |conn| {
                write_tx(conn, |conn| {
                    claim(conn, principal_id, &key, &request_hash, &owner, now)
                })
            })
            .await
    };
    match claim {
        Err(e) => return Err(e),
        Ok(Claim::Replay(code, body)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
            return Ok(respond(status, body, true));
        }
        Ok(Claim::Owned) => {}
    }

    let stored_status = i32::from(status.as_u16());
    let result = {
        let (key, owner) = (key.clone(), owner.clone());
        state
            .db(move |conn| {
                write_tx(conn, |conn| {
                    let out = effect(conn)?;
                    let stored = serde_json::to_string(&out.body)
                        .map_err(|e| ApiError::internal(e.to_string()))?;
                    let finished = diesel::update(
                        ik::table
                            .filter(ik::principal_id.eq(principal_id))
                            .filter(ik::idem_key.eq(&key))
                            .filter(ik::owner.eq(&owner))
                            .filter(ik::state.eq("in_progress")),
                    )
                    .set((
                        ik::state.eq("done"),
                        ik::response_status.eq(Some(stored_status)),
                        ik::response_body.eq(Some(stored)),
                    ))
                    .execute(conn)?;
                    if finished != 1 {
                        // Our lease expired and a retry took the key over: undo, let it win.
                        return Err(in_progress());
                    }
                    Ok(out)
                })
            })
            .await
    };
    match result {
        Ok(out) => Ok(respond(status, merge(out), false)),
        Err(e) => {
            // The effect did not happen: free the key so the client may retry with it.
            let _ = state
                .db(move |conn| {
                    diesel::delete(
                        ik::table
                            .filter(ik::principal_id.eq(principal_id))
                            .filter(ik::idem_key.eq(&key))
                            .filter(ik::owner.eq(&owner))
                            .filter(ik::state.eq("in_progress")),
                    )
                    .execute(conn)
                    .map_err(ApiError::from)
                })
                .await;
            Err(e)
        }
    }
}

enum Claim {
    Owned,
    Replay(u16, Value),
}

fn claim(
    conn: &mut DbConn,
    principal_id: i64,
    key: &str,
    request_hash: &str,
    owner: &str,
    now: chrono::NaiveDateTime,
) -> ApiResult<Claim> {
    #[derive(Queryable)]
    struct Row {
        request_hash: String,
        state: String,
        lease_until: chrono::NaiveDateTime,
        response_status: Option<i32>,
        response_body: Option<String>,
    }
    let existing: Option<Row> = ik::table
        .filter(ik::principal_id.eq(principal_id))
        .filter(ik::idem_key.eq(key))
        .select((
            ik::request_hash,
            ik::state,
            ik::lease_until,
            ik::response_status,
            ik::response_body,
        ))
        .first(conn)
        .optional()?;
    let lease_until = now + LEASE;
    let Some(row) = existing else {
        let inserted = diesel::insert_into(ik::table)
            .values((
                ik::principal_id.eq(principal_id),
                ik::idem_key.eq(key),
                ik::request_hash.eq(request_hash),
                ik::state.eq("in_progress"),
                ik::owner.eq(owner),
                ik::lease_until.eq(lease_until),
                ik::created_at.eq(now),
            ))
            .execute(conn);
        return match inserted {
            Ok(_) => Ok(Claim::Owned),
            // Another request with this key claimed it a moment ago.
            Err(e) if db::is_unique_violation(&e) => Err(in_progress()),
            Err(e) => Err(e.into()),
        };
    };
    if row.request_hash != request_hash {
        return Err(ApiError::unprocessable(
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request",
        ));
    }
    if row.state == "done" {
        let body = row
            .response_body
            .and_then(|b| serde_json::from_str(&b).ok())
            .unwrap_or(Value::Null);
        return Ok(Claim::Replay(
            row.response_status.unwrap_or(200) as u16,
            body,
        ));
    }
    if row.lease_until > now {
        return Err(in_progress());
    }
    // The first attempt died before committing its effect: take the key over, but only if it is
    // still unfinished and its lease still expired (a concurrent finish or takeover wins).
    let taken = diesel::update(
        ik::table
            .filter(ik::principal_id.eq(principal_id))
            .filter(ik::idem_key.eq(key))
            .filter(ik::state.eq("in_progress"))
            .filter(ik::lease_until.le(now)),
    )
    .set((ik::owner.eq(owner), ik::lease_until.eq(lease_until)))
    .execute(conn)?;
    if taken != 1 {
        return Err(in_progress());
    }
    Ok(Claim::Owned)
}

fn in_progress() -> ApiError {
    ApiError::conflict(
        "idempotency_request_in_progress",
        "a request with this Idempotency-Key is still being processed; retry later",
    )
}

fn merge(out: Outcome) -> Value {
    match (out.body, out.secrets) {
        (Value::Object(mut body), Some(Value::Object(secrets))) => {
            body.extend(secrets);
            Value::Object(body)
        }
        (body, _) => body,
    }
}

fn respond(status: StatusCode, body: Value, replayed: bool) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    if replayed {
        res.insert_header((REPLAYED_HEADER, "true"));
    }
    res.json(body)
}
