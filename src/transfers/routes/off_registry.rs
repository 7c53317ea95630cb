//! A transfer agreed off-registry and registered by an operator: proposed by one, approved by
//! another, settled then.

use actix_web::http::StatusCode;
use actix_web::{post, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Command, Role};
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::Dec;
use crate::kernel::idempotency::{KeyPolicy, Outcome};
use crate::proposals::{self, ProposalKind, ProposalView};
use crate::rights::ledger::{self, Movement, Side};
use crate::rights::serials;
use crate::rights::store::{self as rights, LotRow};
use crate::rights::{Acquisition, Bucket};
use crate::schema::transfers as t;
use crate::transfers::rules::Status;
use crate::transfers::store::{self, NewTransfer};

use super::*;

/// A transfer the parties agreed off-registry (a contract signed at the exchange's counter),
/// registered by an operator. It moves another party's quantity without that party acting on the
/// registry, so one operator only proposes it; a second operator (another person) approves, and it
/// settles then, in the approval's transaction. A sender that instructs on the registry itself
/// uses a bilateral transfer (`POST /v1/transfers`).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lot_id": 1, "from_party_id": 3, "to_party_id": 5, "quantity": "20.5",
    "unit_price": "6300", "years": 4, "document_ref": "南平转让合同〔2026〕88号"}))]
pub struct RegisteredTransfer {
    pub lot_id: i64,
    pub from_party_id: i64,
    pub to_party_id: i64,
    pub quantity: Dec,
    /// Unit price in CNY when this is a trade (EM: per ton per year, R3).
    pub unit_price: Option<Dec>,
    /// EM trades: whole years of the remaining term traded (R3), 1 to the whole years left from
    /// today to the lot's `valid_to` (a partly elapsed year does not count); more is a 422
    /// `years_beyond_term`.
    pub years: Option<i32>,
    /// The agreement the operator registers.
    pub document_ref: Option<String>,
    pub note: Option<String>,
    /// Carbon-sink lots: exactly which serial ranges, as [first, last] pairs.
    pub serials: Option<Vec<(i64, i64)>>,
}

macro_rules! asked {
    ($t:ty) => {
        impl $t {
            pub(super) fn terms(&self) -> Asked {
                Asked {
                    to_party_id: self.to_party_id,
                    quantity: self.quantity,
                    unit_price: self.unit_price,
                    years: self.years,
                    serials: self.serials.is_some(),
                }
            }
        }
    };
}
asked!(RequestTransfer);
asked!(RegisteredTransfer);

pub(super) fn trimmed(s: Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

#[utoipa::path(post, path = "/v1/transfers/registered", tag = "transfers", operation_id = "registerTransfer",
    summary = "An operator proposes a transfer agreed off-registry; a second operator approves and it settles then",
    description = "The same checks as a bilateral transfer (holding, quantity, receiver, pricing, live lot, whole years of the term and R4) run now and again at approval; the approval (`POST /v1/proposals/{id}/approve`, by another person) moves the available quantity straight to the receiver in one transaction.",
    params(("Idempotency-Key" = String, Header, description = "Required: this moves quantity once approved")),
    request_body = RegisteredTransfer,
    responses((status = 202, description = "Proposed", body = ProposalView),
        (status = 409, description = "insufficient_quantity, lot_expired", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed, years_beyond_term, price_below_benchmark, region_non_attainment", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/transfers/registered")]
pub(super) async fn registered(cmd: Command<RegisteredTransfer>) -> ApiResult<HttpResponse> {
    let Command { body, cx } = cmd;
    let who = &cx.who;
    who.require(&[Role::Operator])?;
    let mut r = body;
    r.note = trimmed(r.note.take());
    r.document_ref = trimmed(r.document_ref.take());
    let (now, today) = (cx.now, cx.today);
    let w = who.clone();
    cx.run(KeyPolicy::Required, StatusCode::ACCEPTED, move |conn| {
        let lot = rights::lock_lot(conn, r.lot_id)?;
        let asked = registered_terms(conn, &lot, &r, today)?;
        if asked.quantity > available(conn, r.from_party_id, lot.id)? {
            return Err(ApiError::conflict(
                "insufficient_quantity",
                "the sender does not hold this much available quantity",
            ));
        }
        let row = proposals::propose(conn, ProposalKind::RegisteredTransfer, &r, None, &w, now)?;
        Outcome::of(&ProposalView::from(row))
    })
    .await
}

/// The sender's available quantity of a lot (0 when it holds none).
pub(super) fn available(conn: &mut DbConn, party: i64, lot: i64) -> ApiResult<i64> {
    Ok(rights::holding(conn, party, lot)?.map_or(0, |h| h.available))
}

/// The checks a registered transfer passes when proposed and again when approved.
pub(super) fn registered_terms(
    conn: &mut DbConn,
    lot: &LotRow,
    r: &RegisteredTransfer,
    today: chrono::NaiveDate,
) -> ApiResult<Terms> {
    if rights::holding(conn, r.from_party_id, lot.id)?.is_none() {
        return Err(ApiError::invalid_field(
            "from_party_id",
            "holds nothing of this lot",
        ));
    }
    // An operator acts on the sender's instruction: a sender that has ended gives none.
    crate::parties::store::require_active(conn, r.from_party_id)?;
    terms(conn, lot, r.from_party_id, &r.terms(), today)
}

/// Settles an approved registered transfer: the available quantity moves straight to the receiver.
pub fn execute_registered(
    conn: &mut DbConn,
    r: &RegisteredTransfer,
    proposed_by: &str,
    actor: &str,
    now: NaiveDateTime,
    today: chrono::NaiveDate,
) -> ApiResult<serde_json::Value> {
    let from = r.from_party_id;
    let lot = rights::lock_lot(conn, r.lot_id)?;
    let Terms {
        rt: _,
        quantity,
        unit_price,
        years,
        amount,
        standing,
    } = registered_terms(conn, &lot, r, today)?;
    let mut tr = store::insert(
        conn,
        &NewTransfer {
            lot_id: lot.id,
            from_party_id: from,
            to_party_id: r.to_party_id,
            quantity,
            kind: "registered".into(),
            status: Status::Settled.as_str().into(),
            requires_approval: true,
            unit_price,
            years,
            amount,
            document_ref: r.document_ref.clone(),
            note: r.note.clone(),
            serials: None,
            requested_by: proposed_by.to_string(),
            created_at: now,
            updated_at: now,
        },
    )?;
    let moved = ledger::move_quantity(
        conn,
        Movement {
            lot: &lot,
            from: Side::holder(from, Bucket::Available),
            to: Side::holder(r.to_party_id, Bucket::Available),
            quantity,
            cause: "transfer_registered",
            reference: format!("transfer:{}", tr.id),
            actor,
            at: now,
            acquisition: Some(Acquisition::of_purchase(standing)),
            named_serials: r.serials.as_deref(),
        },
    )?;
    let text = serials::to_text(&moved);
    diesel::update(t::table.find(tr.id))
        .set((t::decided_by.eq(actor), t::serials.eq(&text)))
        .execute(conn)?;
    tr.decided_by = Some(actor.to_string());
    tr.serials = text;
    transfer_audit(conn, &tr, "transfer.registered", actor, now)?;
    serde_json::to_value(TransferView::from(tr)).map_err(|e| ApiError::internal(e.to_string()))
}
