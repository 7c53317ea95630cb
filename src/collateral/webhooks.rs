//! Notifications to lenders. A bank registers webhook endpoints; every pledge entry (and every
//! judicial freeze on a holding it has a live pledge on) is written to an outbox in the same
//! transaction as the change, so no event is lost when a server stops. A background worker POSTs
//! each delivery to the endpoint's registered URL, signed with HMAC-SHA256 over
//! `timestamp.body` with the endpoint's secret, retrying with exponential backoff up to a maximum
//! number of attempts, and delivers the events of one encumbrance in order: a delivery waits
//! while an earlier one of the same encumbrance to the same endpoint is still pending.
//!
//! Deliveries go over HTTPS to public addresses only, checked when the name is resolved for the
//! connection; plain HTTP and internal addresses only to a HOST:PORT the operator allowlists
//! (`rules`, `delivery`).

pub mod delivery;
pub mod rules;

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::pagination::{Page, PageParams};
use crate::kernel::state::AppState;
use crate::schema::{webhook_deliveries as wd, webhook_endpoints as we};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create)
        .service(list)
        .service(disable)
        .service(deliveries)
        .service(all_deliveries)
        .service(requeue);
}

pub use crate::audit::outbox::enqueue;

pub use rules::signature;

/// Deliveries of one bank claimed in one pass, sent one after another (in order per
/// encumbrance); different banks' batches run side by side.
const PER_BANK_BATCH: i64 = 4;
/// Banks whose deliveries are sent at the same time, at most.
const CONCURRENT_BANKS: usize = 8;

/// A claimed delivery: (id, url, salt, event, payload, attempts).
type Claimed = (i64, String, Option<String>, String, String, i32);
type Due = (i64, i64, String, String, String, i32, NaiveDateTime, i64);

diesel::alias!(crate::schema::webhook_deliveries as earlier: EarlierDeliveries);

/// Claims due deliveries: the head of each encumbrance's queue (a delivery waits while an earlier
/// one of the same encumbrance to the same endpoint is pending), at most `PER_BANK_BATCH` per
/// bank, for up to `banks` banks not `busy`, the bank waiting longest first — so a bank with a
/// long backlog cannot hide the others' deliveries. Several processes may run it: a claim is a
/// conditional UPDATE that leases the delivery for as long as its batch may take.
async fn claim_due(
    state: &AppState,
    busy: Vec<i64>,
    banks: usize,
) -> ApiResult<Vec<(i64, Vec<Claimed>)>> {
    let now = db::now_micros(state.clock.now());
    state
        .db(move |conn| {
            let waits_behind_earlier = diesel::dsl::exists(
                earlier
                    .filter(earlier.field(wd::endpoint_id).eq(wd::endpoint_id))
                    .filter(earlier.field(wd::ordering_key).eq(wd::ordering_key))
                    .filter(earlier.field(wd::status).eq("pending"))
                    .filter(earlier.field(wd::id).lt(wd::id)),
            );
            let parties: Vec<(i64, Option<i64>)> = wd::table
                .inner_join(we::table)
                .filter(wd::status.eq("pending"))
                .filter(wd::next_attempt_at.le(now))
                .filter(we::party_id.ne_all(&busy))
                .filter(diesel::dsl::not(waits_behind_earlier))
                .group_by(we::party_id)
                .select((we::party_id, diesel::dsl::min(wd::id)))
                .order_by(diesel::dsl::min(wd::id))
                .limit(banks as i64)
                .load(conn)?;
            let lease = now
                + TimeDelta::from_std(delivery::ATTEMPT_TIMEOUT * PER_BANK_BATCH as u32)
                    .unwrap_or(TimeDelta::seconds(40))
                + TimeDelta::seconds(20);
            let mut batches: Vec<(i64, Vec<Claimed>)> = Vec::new();
            for (party, _) in parties {
                let heads: Vec<Due> = wd::table
                    .inner_join(we::table)
                    .filter(wd::status.eq("pending"))
                    .filter(wd::next_attempt_at.le(now))
                    .filter(we::party_id.eq(party))
                    .filter(diesel::dsl::not(waits_behind_earlier))
                    .order(wd::id)
                    .limit(PER_BANK_BATCH)
                    .select((
                        wd::id,
                        wd::endpoint_id,
                        wd::ordering_key,
                        wd::event_type,
                        wd::payload,
                        wd::attempts,
                        wd::next_attempt_at,
                        we::party_id,
                    ))
                    .load(conn)?;
                let mut batch = Vec::new();
                for row in heads {
                    let n = diesel::update(
                        wd::table
                            .filter(wd::id.eq(row.0))
                            .filter(wd::status.eq("pending"))
                            .filter(wd::next_attempt_at.eq(row.6)),
                    )
                    .set(wd::next_attempt_at.eq(lease))
                    .execute(conn)?;
                    if n == 1 {
                        let (url, salt): (String, Option<String>) = we::table
                            .find(row.1)
                            .select((we::url, we::secret_salt))
                            .first(conn)?;
                        batch.push((row.0, url, salt, row.3, row.4, row.5));
                    }
                }
                if !batch.is_empty() {
                    batches.push((party, batch));
                }
            }
            Ok(batches)
        })
        .await
}

/// Sends one bank's batch and records each outcome. The bank (and operators) see the coarse
/// result only; after the last allowed attempt the delivery is dead.
async fn send_batch(
    state: &AppState,
    sender: &delivery::Sender,
    base: Duration,
    batch: Vec<Claimed>,
) -> ApiResult<()> {
    let max_attempts = sender.policy().max_attempts;
    for (id, url, salt, event, payload, attempts) in batch {
        let attempt = match salt {
            Some(salt) => {
                let secret = rules::endpoint_secret(&state.secrets.id_hmac_key, &salt);
                let ts = state.clock.now().timestamp();
                let headers = [
                    ("content-type", "application/json".to_string()),
                    ("x-registry-event", event),
                    ("x-registry-delivery", id.to_string()),
                    ("x-registry-timestamp", ts.to_string()),
                    ("x-registry-signature", signature(&secret, ts, &payload)),
                ];
                sender.send(&url, &headers, payload, id).await
            }
            // An endpoint from before secrets were derived cannot sign: nothing is sent.
            None => rules::Attempt::AddressNotAllowed,
        };
        let made = attempts + 1;
        let at = db::now_micros(state.clock.now());
        let next = at + rules::backoff(base.as_millis() as i64, attempts);
        let status = match attempt {
            rules::Attempt::Answered(s) => Some(i32::from(s)),
            _ => None,
        };
        let shown = attempt.shown().to_string();
        let delivered = attempt.delivered();
        let after = rules::status_after_failure(made, max_attempts);
        state
            .db(move |conn| {
                let target = wd::table.find(id);
                if delivered {
                    diesel::update(target)
                        .set((
                            wd::status.eq("delivered"),
                            wd::attempts.eq(made),
                            wd::last_status.eq(status),
                            wd::last_error.eq(shown),
                            wd::delivered_at.eq(at),
                        ))
                        .execute(conn)?;
                } else {
                    // Only while still pending: a delivery cancelled meanwhile stays cancelled.
                    diesel::update(target.filter(wd::status.eq("pending")))
                        .set((
                            wd::status.eq(after),
                            wd::attempts.eq(made),
                            wd::last_status.eq(status),
                            wd::last_error.eq(shown),
                            wd::next_attempt_at.eq(next),
                        ))
                        .execute(conn)?;
                }
                Ok(())
            })
            .await?;
    }
    Ok(())
}

/// Runs the worker in `serve`: each tick claims due deliveries of banks not already being
/// served and sends each bank's batch in a task of its own, so a bank whose receiver hangs
/// holds up only its own deliveries.
pub fn spawn_worker(
    state: web::Data<AppState>,
    policy: delivery::Policy,
    poll: Duration,
    base: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> actix_web::rt::task::JoinHandle<()> {
    actix_web::rt::spawn(async move {
        let sender = match delivery::Sender::new(policy) {
            Ok(c) => std::rc::Rc::new(c),
            Err(e) => {
                tracing::error!(error = %e, "webhook client unavailable; deliveries stay queued");
                return;
            }
        };
        let mut running: tokio::task::JoinSet<i64> = tokio::task::JoinSet::new();
        let mut busy: Vec<i64> = Vec::new();
        let mut tick = actix_web::rt::time::interval(poll);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped.changed() => break,
            }
            if *stopped.borrow() {
                break;
            }
            while let Some(done) = running.try_join_next() {
                if let Ok(party) = done {
                    busy.retain(|p| *p != party);
                }
            }
            let free = CONCURRENT_BANKS.saturating_sub(running.len());
            if free == 0 {
                continue;
            }
            let batches = tokio::select! {
                r = claim_due(&state, busy.clone(), free) => r,
                _ = stopped.changed() => break,
            };
            match batches {
                Ok(batches) => {
                    for (party, batch) in batches {
                        busy.push(party);
                        let (state, sender) = (state.clone(), sender.clone());
                        running.spawn_local(async move {
                            if let Err(e) = send_batch(&state, &sender, base, batch).await {
                                tracing::warn!(error = %e, "webhook delivery batch failed");
                            }
                            party
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "webhook delivery pass failed"),
            }
        }
        // A stop cuts the batches under way short. What they had claimed stays leased and is
        // sent again after the lease (deliveries are at least once).
        running.shutdown().await;
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://hooks.bank.example/registry-events"}))]
pub struct NewEndpoint {
    /// Where events are POSTed: an https:// URL whose host is a public address (plain http, or
    /// an internal address, only to a HOST:PORT the registry operator allowlists). Deliveries go
    /// to this URL and nowhere else: redirects are not followed.
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
    description = "The response carries `secret` once: each delivery has `X-Registry-Timestamp` and `X-Registry-Signature: sha256=HEX(HMAC-SHA256(secret, timestamp + \".\" + body))`. A bank has at most 5 active endpoints (409 `webhook_endpoint_limit`).",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = NewEndpoint, responses((status = 201, description = "Registered", body = EndpointCreated)))]
#[post("/v1/webhooks")]
async fn create(
    state: web::Data<AppState>,
    policy: web::Data<delivery::Policy>,
    who: Principal,
    idem: IdemKey,
    body: ApiJson<NewEndpoint>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank])?;
    let party = who
        .party_id
        .ok_or_else(|| ApiError::forbidden("this user belongs to no party"))?;
    let url = body.value.url.trim().to_string();
    rules::destination(&url, &policy.allow)
        .map_err(|refusal| ApiError::invalid_field("url", refusal.message()))?;
    let salt = crate::auth::password::random_secret(32);
    let secret = rules::endpoint_secret(&state.secrets.id_hmac_key, &salt);
    let now = db::now_micros(state.clock.now());
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Optional,
        StatusCode::CREATED,
        move |conn| {
            // Concurrent registrations of one bank take turns here, so the count below cannot be
            // read by two of them before either inserts.
            lock_bank(conn, party)?;
            let active: i64 = we::table
                .filter(we::party_id.eq(party))
                .filter(we::active.eq(true))
                .count()
                .get_result(conn)?;
            if active >= rules::MAX_ENDPOINTS_PER_BANK {
                return Err(ApiError::conflict(
                    "webhook_endpoint_limit",
                    format!(
                        "a bank has at most {} active endpoints; disable one first",
                        rules::MAX_ENDPOINTS_PER_BANK
                    ),
                ));
            }
            diesel::insert_into(we::table)
                .values((
                    we::party_id.eq(party),
                    we::url.eq(&url),
                    we::secret_salt.eq(&salt),
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
    summary = "Stop queuing events for an endpoint; its pending deliveries become `cancelled`",
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
            db::write_tx(conn, |conn| {
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
                // What was still waiting for this endpoint will never be sent: settle it, visibly.
                diesel::update(
                    wd::table
                        .filter(wd::endpoint_id.eq(id))
                        .filter(wd::status.eq("pending")),
                )
                .set((
                    wd::status.eq(rules::CANCELLED),
                    wd::last_error.eq("endpoint_disabled"),
                ))
                .execute(conn)?;
                Ok(we::table
                    .find(id)
                    .select((we::id, we::party_id, we::url, we::active, we::created_at))
                    .first(conn)?)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(endpoint_view(row)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub endpoint_id: i64,
    pub encumbrance: String,
    pub event: String,
    /// pending, delivered, dead (no more attempts: the maximum was reached; operators see
    /// these in `GET /v1/webhook-deliveries?status=dead`, and they or the bank may requeue
    /// one), or cancelled (its endpoint was disabled before it was delivered).
    pub status: String,
    pub attempts: i32,
    /// The coarse result of the last attempt: delivered, http_3xx, http_4xx, http_5xx,
    /// unreachable or address_not_allowed. The cause of a failure is in the registry's log,
    /// not here.
    pub last_result: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

type DeliveryRow = (
    i64,
    i64,
    String,
    String,
    String,
    i32,
    Option<String>,
    NaiveDateTime,
    NaiveDateTime,
    Option<NaiveDateTime>,
);

fn delivery_view(r: DeliveryRow) -> DeliveryView {
    DeliveryView {
        id: r.0,
        endpoint_id: r.1,
        encumbrance: r.2,
        event: r.3,
        status: r.4,
        attempts: r.5,
        last_result: r.6,
        next_attempt_at: r.7.and_utc(),
        created_at: r.8.and_utc(),
        delivered_at: r.9.map(|t| t.and_utc()),
    }
}

macro_rules! delivery_columns {
    () => {
        (
            wd::id,
            wd::endpoint_id,
            wd::ordering_key,
            wd::event_type,
            wd::status,
            wd::attempts,
            wd::last_error,
            wd::next_attempt_at,
            wd::created_at,
            wd::delivered_at,
        )
    };
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "lender", operation_id = "webhookDeliveries",
    summary = "The delivery log of an endpoint, oldest first, a page at a time",
    params(("id" = i64, Path, description = "Endpoint id"), PageParams),
    responses((status = 200, description = "A page of deliveries", body = Page<DeliveryView>)))]
#[get("/v1/webhooks/{id}/deliveries")]
async fn deliveries(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank, Role::Operator, Role::Regulator])?;
    let id = id.into_inner();
    let (after, limit) = page.resolve()?;
    let rows: Vec<DeliveryRow> = state
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
                .filter(wd::id.gt(after))
                .order(wd::id)
                .limit(limit + 1)
                .select(delivery_columns!())
                .load(conn)?)
        })
        .await?;
    let views = rows.into_iter().map(delivery_view).collect();
    Ok(HttpResponse::Ok().json(Page::from_rows(views, limit, |v: &DeliveryView| v.id)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// pending, delivered, dead or cancelled; all when absent.
    pub status: Option<String>,
    /// Only this bank's deliveries.
    pub party_id: Option<i64>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/webhook-deliveries", tag = "lender", operation_id = "listWebhookDeliveries",
    summary = "Deliveries of every bank, for operators: `status=dead` lists those that ran out of attempts",
    params(DeliveryQuery),
    responses((status = 200, description = "A page of deliveries", body = Page<DeliveryView>)))]
#[get("/v1/webhook-deliveries")]
async fn all_deliveries(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<DeliveryQuery>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator, Role::Regulator])?;
    let q = q.into_inner();
    if let Some(s) = &q.status {
        if !["pending", "delivered", "dead", rules::CANCELLED].contains(&s.as_str()) {
            return Err(ApiError::invalid_field(
                "status",
                "one of pending, delivered, dead, cancelled",
            ));
        }
    }
    let (after, limit) = PageParams {
        cursor: q.cursor,
        limit: q.limit,
    }
    .resolve()?;
    let rows: Vec<DeliveryRow> = state
        .db(move |conn| {
            let mut query = wd::table
                .inner_join(we::table)
                .filter(wd::id.gt(after))
                .order(wd::id)
                .limit(limit + 1)
                .select(delivery_columns!())
                .into_boxed();
            if let Some(s) = q.status {
                query = query.filter(wd::status.eq(s));
            }
            if let Some(p) = q.party_id {
                query = query.filter(we::party_id.eq(p));
            }
            Ok(query.load(conn)?)
        })
        .await?;
    let views = rows.into_iter().map(delivery_view).collect();
    Ok(HttpResponse::Ok().json(Page::from_rows(views, limit, |v: &DeliveryView| v.id)))
}

/// Locks the bank's party row until the transaction ends (PostgreSQL; an SQLite write
/// transaction already excludes every other writer).
fn lock_bank(conn: &mut DbConn, party: i64) -> ApiResult<()> {
    if matches!(conn, DbConn::Pg(_)) {
        // `party` is an integer, so formatting it in is safe.
        diesel::sql_query(format!(
            "SELECT id FROM parties WHERE id = {party} FOR UPDATE"
        ))
        .execute(conn)?;
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/webhook-deliveries/{id}/requeue", tag = "lender", operation_id = "requeueWebhookDelivery",
    summary = "Queue a dead delivery again (an operator, or the bank it is for); audited",
    description = "The delivery is tried again from its first attempt, at once. Only a dead delivery to an active endpoint: otherwise 409 `delivery_not_dead` or `webhook_disabled`.",
    params(("id" = i64, Path, description = "Delivery id")),
    responses((status = 200, description = "Queued again", body = DeliveryView),
        (status = 409, description = "`delivery_not_dead` or `webhook_disabled`", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/webhook-deliveries/{id}/requeue")]
async fn requeue(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator, Role::Bank])?;
    let id = id.into_inner();
    let (actor, now) = (who.actor(), db::now_micros(state.clock.now()));
    let row: DeliveryRow = state
        .db(move |conn| {
            db::write_tx(conn, |conn| {
                let found: Option<(String, i64, i64, bool)> = wd::table
                    .inner_join(we::table)
                    .filter(wd::id.eq(id))
                    .select((wd::status, wd::endpoint_id, we::party_id, we::active))
                    .first(conn)
                    .optional()?;
                let (status, endpoint, owner, active) = found
                    .filter(|f| who.sees_party(f.2))
                    .ok_or_else(|| ApiError::not_found("webhook delivery"))?;
                if let Some((code, reason)) = rules::requeue_refusal(&status, active) {
                    return Err(ApiError::conflict(code, reason));
                }
                diesel::update(wd::table.find(id).filter(wd::status.eq("dead")))
                    .set((
                        wd::status.eq("pending"),
                        wd::attempts.eq(0),
                        wd::next_attempt_at.eq(now),
                    ))
                    .execute(conn)?;
                crate::audit::record(
                    conn,
                    crate::audit::Event {
                        chain: format!("party:{owner}"),
                        actor: &actor,
                        action: "webhook.delivery_requeued",
                        object_type: "webhook_delivery",
                        object_id: id.to_string(),
                        payload: json!({"endpoint_id": endpoint, "party_id": owner}),
                        at: now,
                    },
                )?;
                Ok(wd::table.find(id).select(delivery_columns!()).first(conn)?)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(delivery_view(row)))
}
