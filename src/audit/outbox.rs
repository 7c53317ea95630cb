//! The webhook outbox: what a bank's active endpoints are to receive, queued in the transaction
//! of the event itself (so a delivery exists exactly when its event committed). The delivery
//! worker (`collateral::webhooks`) sends them; audit checkpoints and encumbrance events queue
//! them here.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::{json, Value};

use crate::db::DbConn;
use crate::error::ApiResult;
use crate::schema::{webhook_deliveries as wd, webhook_endpoints as we};

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
