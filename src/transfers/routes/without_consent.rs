//! A transfer without the sender's consent (a court order or a merger): proposed, approved, then
//! carried out.

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
use crate::rights::issuance::parse_quantity;
use crate::rights::ledger::{self, Movement, Side};
use crate::rights::serials;
use crate::rights::store::{self as rights};
use crate::rights::{Acquisition, Bucket};
use crate::schema::transfers as t;
use crate::transfers::rules::Status;
use crate::transfers::store::{self, NewTransfer};

use super::*;

/// A transfer that needs no consent of the sender: a court order or a merger (合并分立).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lot_id": 1, "from_party_id": 3, "to_party_id": 5, "quantity": "10", "kind": "court_order",
    "document_ref": "(2026)闽0702执123号"}))]
pub struct ForcedTransfer {
    pub lot_id: i64,
    pub from_party_id: i64,
    pub to_party_id: i64,
    pub quantity: Dec,
    /// `court_order` or `merger`.
    pub kind: String,
    /// The court order or merger document.
    pub document_ref: String,
    /// For a court order: the registration number (`NPDJ-000001`) of the judicial freeze of its
    /// case that it executes. The order then takes the quantity that freeze holds first (it must be
    /// an active freeze of this holding: else 409 `freeze_not_of_holding` / `freeze_not_active`):
    /// what it holds in `frozen`, then the pledged quantity it rests on (see `pledge_handling`),
    /// then available quantity. Without it the order takes available quantity only and never
    /// touches quantity frozen for any case. Not allowed on a merger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze_no: Option<String>,
    /// For a court order executing pledged frozen quantity: `follows` (the default; the pledge
    /// follows the quantity, Civil Code art. 406: the transferee receives it still pledged to the
    /// same pledgee with the same rank and terms, and a pledge taken in part is split, the part
    /// taken getting its own registration number) or `discharged` (the order discharges the pledge
    /// on the quantity taken, which reaches the transferee free). The pledge's entries name the
    /// order either way. A pledge with quantity on offer in its disposal is not taken until the
    /// offer ends (409 `pledge_on_offer`). Not allowed on a merger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pledge_handling: Option<String>,
}

#[utoipa::path(post, path = "/v1/transfers/forced", tag = "transfers", operation_id = "proposeForcedTransfer",
    summary = "Propose a forced transfer (court order, merger); a second operator approves",
    params(("Idempotency-Key" = String, Header, description = "Required: this moves quantity once approved (a retry without it would propose the same transfer twice)")),
    request_body = ForcedTransfer, responses((status = 202, description = "Proposed", body = ProposalView)))]
#[post("/v1/transfers/forced")]
pub(super) async fn forced(cmd: Command<ForcedTransfer>) -> ApiResult<HttpResponse> {
    let Command { body, cx } = cmd;
    let who = &cx.who;
    who.require(&[Role::Operator])?;
    let r = body;
    if r.kind != "court_order" && r.kind != "merger" {
        return Err(ApiError::invalid_field("kind", "court_order or merger"));
    }
    if r.document_ref.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "document_ref",
            "a forced transfer names its document",
        ));
    }
    if r.kind == "merger" && r.freeze_no.is_some() {
        return Err(ApiError::invalid_field(
            "freeze_no",
            "only a court order executes a judicial freeze",
        ));
    }
    if r.kind == "merger" && r.pledge_handling.is_some() {
        return Err(ApiError::invalid_field(
            "pledge_handling",
            "only a court order disposes of a pledge",
        ));
    }
    crate::collateral::PledgeHandling::parse(r.pledge_handling.as_deref())?;
    let now = cx.now;
    let w = who.clone();
    cx.run(KeyPolicy::Required, StatusCode::ACCEPTED, move |conn| {
        let lot = rights::lot(conn, r.lot_id)?
            .ok_or_else(|| ApiError::invalid_field("lot_id", "no such lot"))?;
        let rt = rights::right_type(conn, &lot.right_type)?
            .ok_or_else(|| ApiError::internal("right type vanished"))?;
        parse_quantity("quantity", r.quantity, &rt)?;
        rights::holding(conn, r.from_party_id, lot.id)?
            .ok_or_else(|| ApiError::invalid_field("from_party_id", "holds nothing of this lot"))?;
        check_receiver(conn, r.from_party_id, r.to_party_id)?;
        if let Some(no) = &r.freeze_no {
            crate::collateral::named_for_holding(conn, no, r.from_party_id, lot.id)?;
        }
        let row = proposals::propose(conn, ProposalKind::ForcedTransfer, &r, None, &w, now)?;
        Outcome::of(&ProposalView::from(row))
    })
    .await
}

/// Runs an approved forced transfer: a court order naming its freeze takes the quantity that
/// freeze holds first, then available quantity; otherwise (and for a merger) available quantity. It moves straight to the receiver.
pub fn execute_forced(
    conn: &mut DbConn,
    r: &ForcedTransfer,
    proposal_id: i64,
    proposed_by: &str,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<serde_json::Value> {
    let lot = rights::lock_lot(conn, r.lot_id)?;
    let rt = rights::right_type(conn, &lot.right_type)?
        .ok_or_else(|| ApiError::internal("right type vanished"))?;
    let quantity = parse_quantity("quantity", r.quantity, &rt)?;
    let mut tr = store::insert(
        conn,
        &NewTransfer {
            lot_id: lot.id,
            from_party_id: r.from_party_id,
            to_party_id: r.to_party_id,
            quantity,
            kind: r.kind.clone(),
            status: Status::Settled.as_str().into(),
            requires_approval: true,
            unit_price: None,
            years: None,
            amount: None,
            document_ref: Some(r.document_ref.clone()),
            note: Some(format!("proposal {proposal_id}")),
            serials: None,
            requested_by: proposed_by.to_string(),
            created_at: at,
            updated_at: at,
        },
    )?;
    // A court's order executes against the quantity its own case froze first (courts come
    // first), never against another case's freeze.
    let moved = if r.kind == "court_order" {
        crate::collateral::court_transfer(
            conn,
            &lot,
            r.from_party_id,
            r.to_party_id,
            quantity,
            crate::collateral::CourtOrder {
                document_ref: &r.document_ref,
                freeze_no: r.freeze_no.as_deref(),
                handling: crate::collateral::PledgeHandling::parse(r.pledge_handling.as_deref())?,
                reference: format!("transfer:{}", tr.id),
            },
            actor,
            at,
        )?
    } else {
        ledger::move_quantity(
            conn,
            Movement {
                lot: &lot,
                from: Side::holder(r.from_party_id, Bucket::Available),
                to: Side::holder(r.to_party_id, Bucket::Available),
                quantity,
                cause: "forced_transfer",
                reference: format!("transfer:{}", tr.id),
                actor,
                at,
                acquisition: Some(Acquisition::Other),
                named_serials: None,
            },
        )?
    };
    diesel::update(t::table.find(tr.id))
        .set((
            t::decided_by.eq(actor),
            t::serials.eq(serials::to_text(&moved)),
        ))
        .execute(conn)?;
    tr = store::find(conn, tr.id)?.ok_or_else(|| ApiError::not_found("transfer"))?;
    transfer_audit(conn, &tr, "transfer.forced", actor, at)?;
    serde_json::to_value(TransferView::from(tr)).map_err(|e| ApiError::internal(e.to_string()))
}
