//! Notifications to lenders. A bank registers webhook endpoints; every pledge entry (and every
//! judicial freeze on a holding it has a live pledge on) is written to an outbox in the same
//! transaction as the change, so no event is lost when a server stops. A background worker POSTs
//! each delivery to the endpoint's registered URL, signed with HMAC-SHA256 over
//! `timestamp.body` with the endpoint's secret, retrying with exponential backoff, and delivers
//! the events of one encumbrance in order: a delivery waits while an earlier one of the same
//! encumbrance to the same endpoint is still pending.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::auth::{Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::schema::{webhook_deliveries as wd, webhook_endpoints as we};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create)
        .service(list)
        .service(disable)
        .service(deliveries);
}

/// Queues `event` for every active endpoint of `party`, in the caller's transaction.
pub fn enqueue(
    conn: &mut DbConn,
    party: i64,
    ordering_key: &str,
    event: &str,
    data: Value,
    at: NaiveDateTime,
) -> ApiResult<()> {
    let endpoints: Vec<i64> = we::table
        .filter(we::party_id.eq(party))
        .filter(we::active.eq(true))
        .select(we::id)
        .load(conn)?;
    for endpoint in endpoints {
        let payload = json!({"event": event, "encumbrance": ordering_key, "occurred_at": at.and_utc(), "data": data});
        diesel::insert_into(wd::table)
            .values((
                wd::endpoint_id.eq(endpoint),
                wd::ordering_key.eq(ordering_key),
                wd::event_type.eq(event),
                wd::payload.eq(payload.to_string()),
                wd::status.eq("pending"),
                wd::next_attempt_at.eq(at),
                wd::created_at.eq(at),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The signature header value for a body sent at `timestamp` (seconds since the epoch).
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length; this branch cannot happen.
        Err(_) => return String::new(),
    };
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Retry delays: `base` doubling per attempt, at most five minutes.
fn backoff(base: Duration, attempts: i32) -> TimeDelta {
    let ms = (base.as_millis() as i64).saturating_mul(1i64 << attempts.clamp(0, 20));
    TimeDelta::milliseconds(ms.min(300_000))
}

type Due = (i64, i64, String, String, String, i32, NaiveDateTime);

/// One pass of the worker: claims due deliveries (the head of each encumbrance's queue), sends
/// them, records the outcome. Several processes may run it: a claim is a conditional UPDATE.
pub async fn deliver_due(
    state: &AppState,
    client: &reqwest::Client,
    base: Duration,
) -> ApiResult<usize> {
    let now = db::now_micros(state.clock.now());
    let due: Vec<(Due, String, String)> = state
        .db(move |conn| {
            let rows: Vec<Due> = wd::table
                .filter(wd::status.eq("pending"))
                .filter(wd::next_attempt_at.le(now))
                .order(wd::id)
                .limit(50)
                .select((
                    wd::id,
                    wd::endpoint_id,
                    wd::ordering_key,
                    wd::event_type,
                    wd::payload,
                    wd::attempts,
                    wd::next_attempt_at,
                ))
                .load(conn)?;
            let mut claimed = Vec::new();
            for row in rows {
                let earlier: i64 = wd::table
                    .filter(wd::endpoint_id.eq(row.1))
                    .filter(wd::ordering_key.eq(&row.2))
                    .filter(wd::status.eq("pending"))
                    .filter(wd::id.lt(row.0))
                    .count()
                    .get_result(conn)?;
                if earlier > 0 {
                    continue; // in order per encumbrance: wait for the earlier one
                }
                // Lease the delivery so another process does not send it at the same time.
                let lease = now + TimeDelta::seconds(30);
                let n = diesel::update(
                    wd::table
                        .filter(wd::id.eq(row.0))
                        .filter(wd::next_attempt_at.eq(row.6)),
                )
                .set(wd::next_attempt_at.eq(lease))
                .execute(conn)?;
                if n == 1 {
                    let (url, secret): (String, String) = we::table
                        .find(row.1)
                        .select((we::url, we::secret))
                        .first(conn)?;
                    claimed.push((row, url, secret));
                }
            }
            Ok(claimed)
        })
        .await?;
    let count = due.len();
    for ((id, _, _, event, payload, attempts, _), url, secret) in due {
        let ts = state.clock.now().timestamp();
        let result = client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-registry-event", &event)
            .header("x-registry-delivery", id.to_string())
            .header("x-registry-timestamp", ts.to_string())
            .header("x-registry-signature", signature(&secret, ts, &payload))
            .body(payload)
            .send()
            .await;
        let (ok, status, error) = match result {
            Ok(r) if r.status().is_success() => (true, Some(r.status().as_u16() as i32), None),
            Ok(r) => (
                false,
                Some(r.status().as_u16() as i32),
                Some(format!("HTTP {}", r.status())),
            ),
            Err(e) => (false, None, Some(e.to_string())),
        };
        let at = db::now_micros(state.clock.now());
        let next = at + backoff(base, attempts);
        state
            .db(move |conn| {
                let target = wd::table.find(id);
                if ok {
                    diesel::update(target)
                        .set((
                            wd::status.eq("delivered"),
                            wd::attempts.eq(attempts + 1),
                            wd::last_status.eq(status),
                            wd::delivered_at.eq(at),
                        ))
                        .execute(conn)?;
                } else {
                    diesel::update(target)
                        .set((
                            wd::attempts.eq(attempts + 1),
                            wd::last_status.eq(status),
                            wd::last_error.eq(error),
                            wd::next_attempt_at.eq(next),
                        ))
                        .execute(conn)?;
                }
                Ok(())
            })
            .await?;
    }
    Ok(count)
}

/// Runs the worker in `serve`.
pub fn spawn_worker(
    state: web::Data<AppState>,
    poll: Duration,
    base: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> actix_web::rt::task::JoinHandle<()> {
    actix_web::rt::spawn(async move {
        let client = match reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhook client unavailable; deliveries stay queued");
                return;
            }
        };
        let mut tick = actix_web::rt::time::interval(poll);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped.changed() => return,
            }
            if *stopped.borrow() {
                return;
            }
            // A pass may wait on slow endpoints for minutes; a stop cuts it short. What it had
            // claimed stays leased and is sent again after the lease (deliveries are at least once).
            tokio::select! {
                r = deliver_due(&state, &client, base) => {
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "webhook delivery pass failed");
                    }
                }
                _ = stopped.changed() => return,
            }
        }
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "http://10.8.1.20:8443/registry-events"}))]
pub struct NewEndpoint {
    /// Where events are POSTed. Plain http only in this build (closed networks); deliveries go to this URL and nowhere else.
    pub url: String,
}

/// A registered endpoint with its signing secret, shown this once (a replay answers without it).
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointCreated {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// The HMAC key of the deliveries' signatures. Shown once; absent from a replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    pub id: i64,
    pub party_id: i64,
    pub url: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

type EndpointRow = (i64, i64, String, bool, NaiveDateTime);

fn endpoint_view(r: EndpointRow) -> EndpointView {
    EndpointView {
        id: r.0,
        party_id: r.1,
        url: r.2,
        active: r.3,
        created_at: r.4.and_utc(),
    }
}

#[utoipa::path(post, path = "/v1/webhooks", tag = "lender", operation_id = "createWebhook",
    summary = "Register an endpoint for this bank's encumbrance events",
    description = "The response carries `secret` once: each delivery has `X-Registry-Timestamp` and `X-Registry-Signature: sha256=HEX(HMAC-SHA256(secret, timestamp + \".\" + body))`.",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = NewEndpoint, responses((status = 201, description = "Registered", body = EndpointCreated)))]
#[post("/v1/webhooks")]
async fn create(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    body: ApiJson<NewEndpoint>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank])?;
    let party = who
        .party_id
        .ok_or_else(|| ApiError::forbidden("this user belongs to no party"))?;
    let url = body.value.url.trim().to_string();
    let parsed = url
        .strip_prefix("http://")
        .filter(|rest| !rest.is_empty() && url.len() <= 500);
    if parsed.is_none() {
        return Err(ApiError::invalid_field(
            "url",
            "an http:// URL of at most 500 characters",
        ));
    }
    let secret = crate::auth::password::random_secret(40);
    let now = db::now_micros(state.clock.now());
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Optional,
        StatusCode::CREATED,
        move |conn| {
            diesel::insert_into(we::table)
                .values((
                    we::party_id.eq(party),
                    we::url.eq(&url),
                    we::secret.eq(&secret),
                    we::created_at.eq(now),
                ))
                .execute(conn)?;
            let row: EndpointRow = we::table
                .filter(we::party_id.eq(party))
                .order(we::id.desc())
                .select((we::id, we::party_id, we::url, we::active, we::created_at))
                .first(conn)?;
            let mut out = Outcome::of(&endpoint_view(row))?;
            out.secrets = Some(json!({ "secret": secret }));
            Ok(out)
        },
    )
    .await
}

#[utoipa::path(get, path = "/v1/webhooks", tag = "lender", operation_id = "listWebhooks",
    summary = "This bank's webhook endpoints", responses((status = 200, description = "Endpoints", body = Vec<EndpointView>)))]
#[get("/v1/webhooks")]
async fn list(state: web::Data<AppState>, who: Principal) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank])?;
    let party = who.party_id.unwrap_or(-1);
    let rows: Vec<EndpointRow> = state
        .db(move |conn| {
            Ok(we::table
                .filter(we::party_id.eq(party))
                .order(we::id)
                .select((we::id, we::party_id, we::url, we::active, we::created_at))
                .load(conn)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(endpoint_view).collect::<Vec<_>>()))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/disable", tag = "lender", operation_id = "disableWebhook",
    summary = "Stop queuing events for an endpoint",
    params(("id" = i64, Path, description = "Endpoint id")), responses((status = 200, description = "Disabled", body = EndpointView)))]
#[post("/v1/webhooks/{id}/disable")]
async fn disable(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank])?;
    let (id, party) = (id.into_inner(), who.party_id.unwrap_or(-1));
    let row: EndpointRow = state
        .db(move |conn| {
            let n = diesel::update(
                we::table
                    .filter(we::id.eq(id))
                    .filter(we::party_id.eq(party)),
            )
            .set(we::active.eq(false))
            .execute(conn)?;
            if n == 0 {
                return Err(ApiError::not_found("webhook"));
            }
            Ok(we::table
                .find(id)
                .select((we::id, we::party_id, we::url, we::active, we::created_at))
                .first(conn)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(endpoint_view(row)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub encumbrance: String,
    pub event: String,
    /// pending or delivered.
    pub status: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "lender", operation_id = "webhookDeliveries",
    summary = "The delivery log of an endpoint, oldest first",
    params(("id" = i64, Path, description = "Endpoint id")), responses((status = 200, description = "Deliveries", body = Vec<DeliveryView>)))]
#[get("/v1/webhooks/{id}/deliveries")]
async fn deliveries(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank, Role::Operator, Role::Regulator])?;
    let id = id.into_inner();
    type Row = (
        i64,
        String,
        String,
        String,
        i32,
        Option<i32>,
        Option<String>,
        NaiveDateTime,
        NaiveDateTime,
        Option<NaiveDateTime>,
    );
    let rows: Vec<Row> = state
        .db(move |conn| {
            let owner: i64 = we::table
                .find(id)
                .select(we::party_id)
                .first(conn)
                .optional()?
                .ok_or_else(|| ApiError::not_found("webhook"))?;
            if !who.sees_party(owner) {
                return Err(ApiError::not_found("webhook"));
            }
            Ok(wd::table
                .filter(wd::endpoint_id.eq(id))
                .order(wd::id)
                .select((
                    wd::id,
                    wd::ordering_key,
                    wd::event_type,
                    wd::status,
                    wd::attempts,
                    wd::last_status,
                    wd::last_error,
                    wd::next_attempt_at,
                    wd::created_at,
                    wd::delivered_at,
                ))
                .load(conn)?)
        })
        .await?;
    let out: Vec<DeliveryView> = rows
        .into_iter()
        .map(|r| DeliveryView {
            id: r.0,
            encumbrance: r.1,
            event: r.2,
            status: r.3,
            attempts: r.4,
            last_status: r.5,
            last_error: r.6,
            next_attempt_at: r.7.and_utc(),
            created_at: r.8.and_utc(),
            delivered_at: r.9.map(|t| t.and_utc()),
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
}
