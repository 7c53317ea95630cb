//! Exactly-once POSTs. The key's record is inserted by the effect's own write transaction, first
//! thing, and the effect's response is stored in it before the transaction commits: the effect and
//! its record commit together or not at all. A retry with the same key and body replays the stored
//! response; with another body it is a 422. A duplicate sent while the first is still running
//! waits on the record's unique key (PostgreSQL) or for the write lock (SQLite) until the first
//! ends, then replays its response if it committed or runs itself if it rolled back. A request
//! cut off anywhere (connection dropped, process killed) leaves nothing behind, so a retry never
//! has to wait for anything to expire.

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use diesel::prelude::*;
use futures_util::future::{ready, Ready};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::state::AppState;
use crate::db::{self, write_tx, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::schema::idempotency_keys as ik;

pub const HEADER: &str = "Idempotency-Key";
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

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

/// Whoever sends a keyed request: keys are scoped to the principal that sent them. The kernel
/// knows the principal only by its id (it sits below `auth`, which implements this).
pub trait Caller {
    fn principal_id(&self) -> i64;
}

/// Runs `effect` in one write transaction, exactly once per (principal, key).
pub async fn run<F>(
    state: &AppState,
    who: &impl Caller,
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
    let principal_id = who.principal_id();
    let now = db::now_micros(state.clock.now());
    let stored_status = i32::from(status.as_u16());
    let done = state
        .db(move |conn| {
            write_tx(conn, |conn| {
                if let Some(replay) = claim(conn, principal_id, &key, &request_hash, now)? {
                    return Ok(replay);
                }
                let out = effect(conn)?;
                let stored = serde_json::to_string(&out.body)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                diesel::update(
                    ik::table
                        .filter(ik::principal_id.eq(principal_id))
                        .filter(ik::idem_key.eq(&key)),
                )
                .set((
                    ik::response_status.eq(Some(stored_status)),
                    ik::response_body.eq(Some(stored)),
                ))
                .execute(conn)?;
                Ok(Done::Ran(out))
            })
        })
        .await?;
    Ok(match done {
        Done::Ran(out) => respond(status, merge(out), false),
        Done::Replay(code, body) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
            respond(status, body, true)
        }
    })
}

/// What the key's transaction did: ran the effect, or found it done before.
enum Done {
    Ran(Outcome),
    Replay(u16, Value),
}

/// Inserts the key's record in the current write transaction. `None`: the key is new (or its
/// earlier use rolled back), run the effect. `Some`: the key's effect committed before, replay it.
/// On PostgreSQL the insert waits while another transaction holds an uncommitted record with the
/// same key, and then either inserts (that one rolled back) or finds the committed record.
fn claim(
    conn: &mut DbConn,
    principal_id: i64,
    key: &str,
    request_hash: &str,
    now: chrono::NaiveDateTime,
) -> ApiResult<Option<Done>> {
    let inserted = crate::insert_or_ignore!(
        conn,
        ik::table,
        (
            ik::principal_id.eq(principal_id),
            ik::idem_key.eq(key),
            ik::request_hash.eq(request_hash),
            ik::created_at.eq(now),
        )
    )?;
    if inserted == 1 {
        return Ok(None);
    }
    let (hash, code, body): (String, Option<i32>, Option<String>) = ik::table
        .filter(ik::principal_id.eq(principal_id))
        .filter(ik::idem_key.eq(key))
        .select((ik::request_hash, ik::response_status, ik::response_body))
        .first(conn)?;
    if hash != request_hash {
        return Err(ApiError::unprocessable(
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request",
        ));
    }
    let body = body
        .and_then(|b| serde_json::from_str(&b).ok())
        .unwrap_or(Value::Null);
    let code = code.and_then(|c| u16::try_from(c).ok()).unwrap_or(200);
    Ok(Some(Done::Replay(code, body)))
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
