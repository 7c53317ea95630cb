//! A bilateral transfer: the sender requests it on the registry.

use actix_web::http::StatusCode;
use actix_web::{post, HttpResponse};
use diesel::prelude::*;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{Command, Role};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::Dec;
use crate::kernel::idempotency::{KeyPolicy, Outcome};
use crate::rights::ledger::{self, Movement, Side};
use crate::rights::serials;
use crate::rights::store::{self as rights};
use crate::rights::Bucket;
use crate::schema::transfers as t;
use crate::transfers::rules::Status;
use crate::transfers::store::{self, NewTransfer};

use super::*;

/// Request a transfer of part of one's holding to another party.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lot_id": 1, "to_party_id": 5, "quantity": "20.5", "unit_price": "6300", "years": 4}))]
pub struct RequestTransfer {
    pub lot_id: i64,
    pub to_party_id: i64,
    pub quantity: Dec,
    /// Unit price in CNY when this is a trade (EM: per ton per year, R3).
    pub unit_price: Option<Dec>,
    /// EM trades: whole years of the remaining term traded (R3), 1 to the whole years left from
    /// today to the lot's `valid_to` (a partly elapsed year does not count); more is a 422
    /// `years_beyond_term`.
    pub years: Option<i32>,
    pub note: Option<String>,
    /// Carbon-sink lots: exactly which serial ranges, as [first, last] pairs.
    pub serials: Option<Vec<(i64, i64)>>,
}

#[utoipa::path(post, path = "/v1/transfers", tag = "transfers", operation_id = "requestTransfer",
    summary = "Request a transfer (the quantity is frozen at once)",
    params(("Idempotency-Key" = String, Header, description = "Required: this moves quantity")),
    description = "Emission rights (R3, R4): a priced transfer states the whole years of the term it sells (1 to the whole years left from today to the lot's `valid_to`; a partly elapsed year does not count), at or above the benchmark price in force; no emission-right transfer, priced or not, moves a pollutant's load into a region flagged non-attainment. The market settings switch the two R4 checks.",
    request_body = RequestTransfer,
    responses((status = 201, description = "Requested", body = TransferView),
        (status = 409, description = "insufficient_quantity, lot_expired", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed, years_beyond_term, price_below_benchmark, region_non_attainment", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/transfers")]
pub(super) async fn request(cmd: Command<RequestTransfer>) -> ApiResult<HttpResponse> {
    let Command { body, cx } = cmd;
    let who = &cx.who;
    who.require(&[Role::Enterprise])?;
    let from = who
        .party_id
        .ok_or_else(|| ApiError::forbidden("this user belongs to no party"))?;
    let r = body;
    let note = r
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let (actor, now, today) = (cx.actor(), cx.now, cx.today);
    cx.run(KeyPolicy::Required, StatusCode::CREATED, move |conn| {
        let lot = rights::lock_lot(conn, r.lot_id)?;
        if rights::holding(conn, from, lot.id)?.is_none() {
            return Err(ApiError::not_found("holding"));
        }
        let Terms {
            rt,
            quantity,
            unit_price,
            years,
            amount,
            ..
        } = terms(conn, &lot, from, &r.terms(), today)?;
        let mut tr = store::insert(
            conn,
            &NewTransfer {
                lot_id: lot.id,
                from_party_id: from,
                to_party_id: r.to_party_id,
                quantity,
                kind: "bilateral".into(),
                status: Status::Requested.as_str().into(),
                requires_approval: rt.requires_approval,
                unit_price,
                years,
                amount,
                document_ref: None,
                note,
                serials: None,
                requested_by: actor.clone(),
                created_at: now,
                updated_at: now,
            },
        )?;
        let moved = ledger::move_quantity(
            conn,
            Movement {
                lot: &lot,
                from: Side::holder(from, Bucket::Available),
                to: Side::holder(from, Bucket::InTransfer),
                quantity,
                cause: "transfer_request",
                reference: format!("transfer:{}", tr.id),
                actor: &actor,
                at: now,
                acquisition: None,
                named_serials: r.serials.as_deref(),
            },
        )?;
        if let Some(text) = serials::to_text(&moved) {
            diesel::update(t::table.find(tr.id))
                .set(t::serials.eq(&text))
                .execute(conn)?;
            tr.serials = Some(text);
        }
        transfer_audit(conn, &tr, "transfer.requested", &actor, now)?;
        Outcome::of(&TransferView::from(tr))
    })
    .await
}
