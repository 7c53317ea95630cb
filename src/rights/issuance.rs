//! Issuance and cancellation of lots, both under maker-checker: the request is validated into a
//! plan when proposed, and the plan runs when a second operator approves.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::ledger::{self, Movement, Side};
use super::store::{self, LotRow, RightTypeRow};
use super::{Bucket, Origin};
use crate::audit;
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::{qty_to_stored, Dec};
use crate::kernel::text::document_key;
use crate::schema::lots;

/// Issue a lot (批次) to its first holder.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"right_type": "EM", "sub_kind": "SO2", "vintage": 2026, "valid_from": "2026-01-01",
    "valid_to": "2030-12-31", "region_code": "350702", "origin": "paid_use", "quantity": "485.2",
    "holder_party_id": 3, "source_document": "南环有偿〔2026〕15号"}))]
pub struct IssueLot {
    /// EM, EU, CA or CS (`GET /v1/right-types`).
    pub right_type: String,
    /// Pollutant for EM (COD, NH3N, SO2, NOX); standard for CS (FFCER, CCER).
    pub sub_kind: Option<String>,
    /// Vintage or issuance year.
    pub vintage: i32,
    /// Required for carbon allowances (CA).
    pub compliance_year: Option<i32>,
    pub valid_from: NaiveDate,
    pub valid_to: NaiveDate,
    /// GB/T 2260 division code of the lot's region.
    pub region_code: String,
    pub origin: Origin,
    /// Offset project (required for CS).
    pub project: Option<String>,
    /// Monitoring period of a CS credit, e.g. "2021-01-01/2025-12-31".
    pub monitoring_period: Option<String>,
    pub quantity: Dec,
    pub holder_party_id: i64,
    /// The allocation decision, paid-use contract or project approval number: one lot per source (R2).
    pub source_document: String,
}

/// A validated issuance, as stored in its proposal.
#[derive(Debug, Serialize, Deserialize)]
pub struct IssuancePlan {
    pub right_type: String,
    pub sub_kind: Option<String>,
    pub vintage: i32,
    pub compliance_year: Option<i32>,
    pub valid_from: NaiveDate,
    pub valid_to: NaiveDate,
    pub region_code: String,
    pub origin: Origin,
    pub project: Option<String>,
    pub monitoring_period: Option<String>,
    pub quantity: Dec,
    pub holder_party_id: i64,
    pub source_document: String,
}

fn text(field: &str, v: &str) -> ApiResult<String> {
    let t = v.trim();
    if t.is_empty() || t.chars().count() > 200 {
        return Err(ApiError::invalid_field(
            field,
            "must be 1 to 200 characters",
        ));
    }
    Ok(t.to_string())
}

/// Parses a quantity of a right type: positive, at most the type's places (never rounded).
pub fn parse_quantity(field: &str, q: Dec, t: &RightTypeRow) -> ApiResult<i64> {
    qty_to_stored(q.0, t.max_places as u32)
        .map_err(|e| ApiError::invalid_field(field, e.to_string()))
}

/// Checks an issuance request against the registry; R2 duplicate sources are a 409.
pub fn plan(conn: &mut DbConn, r: IssueLot) -> ApiResult<IssuancePlan> {
    let t = store::right_type(conn, &r.right_type)?
        .ok_or_else(|| ApiError::invalid_field("right_type", "unknown right type"))?;
    let kinds = t.sub_kinds();
    match (&t.sub_kind_label, &r.sub_kind) {
        (Some(label), Some(k)) if kinds.contains(k) => {}
        (Some(label), _) => {
            return Err(ApiError::invalid_field(
                "sub_kind",
                format!("the {label}: one of {}", kinds.join(", ")),
            ))
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid_field(
                "sub_kind",
                "this right type has no sub-kind",
            ))
        }
        (None, None) => {}
    }
    parse_quantity("quantity", r.quantity, &t)?;
    if !crate::kernel::regions::fujian_exists(&r.region_code) {
        return Err(ApiError::invalid_field(
            "region_code",
            crate::kernel::regions::refusal(&r.region_code),
        ));
    }
    if r.valid_from > r.valid_to {
        return Err(ApiError::invalid_field(
            "valid_to",
            "must not be before valid_from",
        ));
    }
    if !(1990..=2100).contains(&r.vintage) {
        return Err(ApiError::invalid_field(
            "vintage",
            "a year between 1990 and 2100",
        ));
    }
    if r.compliance_year
        .is_some_and(|y| !(1990..=2100).contains(&y))
    {
        return Err(ApiError::invalid_field(
            "compliance_year",
            "a year between 1990 and 2100",
        ));
    }
    if t.code == "CA" && r.compliance_year.is_none() {
        return Err(ApiError::invalid_field(
            "compliance_year",
            "required for carbon allowances",
        ));
    }
    if t.serialized && r.project.as_deref().is_none_or(|p| p.trim().is_empty()) {
        return Err(ApiError::invalid_field(
            "project",
            "required for carbon-sink credits",
        ));
    }
    let source = text("source_document", &r.source_document)?;
    let holder = crate::parties::store::find(conn, r.holder_party_id)?
        .ok_or_else(|| ApiError::invalid_field("holder_party_id", "no such party"))?;
    if holder.kind().is_some_and(|k| !k.holds_rights()) {
        return Err(ApiError::invalid_field(
            "holder_party_id",
            "banks and regulators do not hold rights",
        ));
    }
    crate::parties::store::require_active(conn, holder.id)?;
    if source_taken(conn, &source)? {
        return Err(duplicate_source(&source));
    }
    Ok(IssuancePlan {
        right_type: t.code,
        sub_kind: r.sub_kind,
        vintage: r.vintage,
        compliance_year: r.compliance_year,
        valid_from: r.valid_from,
        valid_to: r.valid_to,
        region_code: r.region_code,
        origin: r.origin,
        project: r.project.map(|p| p.trim().to_string()),
        monitoring_period: r.monitoring_period,
        quantity: r.quantity,
        holder_party_id: r.holder_party_id,
        source_document: source,
    })
}

/// R2 compares source documents in their [`document_key`] form: `南环有偿[2026]15号` with
/// full-width digits or a zero-width space inside is the document already issued.
fn source_taken(conn: &mut DbConn, source: &str) -> ApiResult<bool> {
    let key = document_key(source);
    let issued: i64 = lots::table
        .filter(lots::source_key.eq(&key))
        .count()
        .get_result(conn)?;
    Ok(issued > 0 || crate::proposals::pending_source(conn, &key)?)
}

/// Fills the comparison form of the source document of lots issued before it was kept (at
/// start, after the migrations). Two older lots whose documents turn out to be one keep no key
/// (the unique index allows that) and are reported, for an operator to look into.
pub fn backfill_source_keys(conn: &mut DbConn) -> ApiResult<usize> {
    let missing: Vec<(i64, String)> = lots::table
        .filter(lots::source_key.is_null())
        .select((lots::id, lots::source_document))
        .load(conn)?;
    let mut filled = 0;
    for (id, source) in missing {
        let key = document_key(&source);
        let taken: i64 = lots::table
            .filter(lots::source_key.eq(&key))
            .count()
            .get_result(conn)?;
        if taken > 0 {
            tracing::warn!(lot_id = id, source_document = %source, "an older lot's source document is one already issued (R2)");
            continue;
        }
        match diesel::update(lots::table.find(id))
            .set(lots::source_key.eq(&key))
            .execute(conn)
        {
            Ok(_) => filled += 1,
            // Another instance starting at the same time filled an equal key first.
            Err(e) if db::is_unique_violation(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(filled)
}

fn duplicate_source(source: &str) -> ApiError {
    ApiError::conflict(
        "duplicate_source",
        format!("the source document {source} has already been issued or proposed (R2)"),
    )
}

/// Runs an approved issuance: the lot, its certificate number, the first holding, the serials.
pub fn execute(
    conn: &mut DbConn,
    p: &IssuancePlan,
    proposed_by: &str,
    approved_by: &str,
    at: NaiveDateTime,
) -> ApiResult<LotRow> {
    let (lot, certificate) = execute_unaudited(conn, p, proposed_by, approved_by, at)?;
    audit::record(
        conn,
        audit::Event {
            chain: format!("lot:{}", lot.id),
            actor: approved_by,
            action: "lot.issued",
            object_type: "lot",
            object_id: lot.id.to_string(),
            payload: json!({"certificate_no": certificate, "source_document": p.source_document,
                "quantity": lot.issued, "holder_party_id": p.holder_party_id, "proposed_by": proposed_by}),
            at,
        },
    )?;
    Ok(lot)
}

/// The issuance itself without its audit event, for callers that audit in bulk (the CSV
/// importer records one event per batch). Returns the lot and its certificate number.
pub fn execute_unaudited(
    conn: &mut DbConn,
    p: &IssuancePlan,
    proposed_by: &str,
    approved_by: &str,
    at: NaiveDateTime,
) -> ApiResult<(LotRow, String)> {
    let t = store::right_type(conn, &p.right_type)?
        .ok_or_else(|| ApiError::internal("right type vanished"))?;
    let quantity = parse_quantity("quantity", p.quantity, &t)?;
    let placeholder = format!("pending-{}", uuid::Uuid::new_v4());
    diesel::insert_into(lots::table)
        .values((
            lots::right_type.eq(&p.right_type),
            lots::sub_kind.eq(&p.sub_kind),
            lots::certificate_no.eq(&placeholder),
            lots::source_document.eq(&p.source_document),
            lots::source_key.eq(document_key(&p.source_document)),
            lots::vintage.eq(p.vintage),
            lots::compliance_year.eq(p.compliance_year),
            lots::valid_from.eq(p.valid_from),
            lots::valid_to.eq(p.valid_to),
            lots::region_code.eq(&p.region_code),
            lots::origin.eq(p.origin.as_str()),
            lots::project.eq(&p.project),
            lots::monitoring_period.eq(&p.monitoring_period),
            lots::issued.eq(quantity),
            lots::first_holder_id.eq(p.holder_party_id),
            lots::proposed_by.eq(proposed_by),
            lots::approved_by.eq(approved_by),
            lots::created_at.eq(at),
        ))
        .execute(conn)
        .map_err(|e| {
            if db::is_unique_violation(&e) {
                duplicate_source(&p.source_document)
            } else {
                e.into()
            }
        })?;
    let id: i64 = lots::table
        .filter(lots::certificate_no.eq(&placeholder))
        .select(lots::id)
        .first(conn)?;
    // Readable and unique: type, sub-kind, region, vintage, sequence.
    let certificate = match &p.sub_kind {
        Some(k) => format!(
            "{}-{}-{}-{}-{:06}",
            p.right_type, k, p.region_code, p.vintage, id
        ),
        None => format!("{}-{}-{}-{:06}", p.right_type, p.region_code, p.vintage, id),
    };
    diesel::update(lots::table.find(id))
        .set(lots::certificate_no.eq(&certificate))
        .execute(conn)?;
    if t.serialized {
        ledger::seed_serials(conn, id, quantity)?;
    }
    let lot = store::lock_lot(conn, id)?;
    ledger::move_quantity(
        conn,
        Movement {
            lot: &lot,
            from: Side::lot(Bucket::Issued),
            to: Side::holder(p.holder_party_id, Bucket::Available),
            quantity,
            cause: "issuance",
            reference: format!("lot:{id}"),
            actor: approved_by,
            at,
            acquisition: Some(p.origin.acquisition()),
            named_serials: None,
        },
    )?;
    Ok((lot, certificate))
}

/// Cancel quantity of a holding (注销 by the registry).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"holder_party_id": 3, "quantity": "10", "reason": "排污许可证注销，南环〔2026〕40号"}))]
pub struct CancelQuantity {
    pub holder_party_id: i64,
    pub quantity: Dec,
    /// Why (R5), with the document.
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CancellationPlan {
    pub lot_id: i64,
    pub holder_party_id: i64,
    pub quantity: Dec,
    pub reason: String,
}

pub fn plan_cancellation(
    conn: &mut DbConn,
    lot_id: i64,
    r: CancelQuantity,
) -> ApiResult<CancellationPlan> {
    let lot = store::lot(conn, lot_id)?.ok_or_else(|| ApiError::not_found("lot"))?;
    let t = store::right_type(conn, &lot.right_type)?
        .ok_or_else(|| ApiError::internal("right type vanished"))?;
    parse_quantity("quantity", r.quantity, &t)?;
    let reason = text("reason", &r.reason)?;
    store::holding(conn, r.holder_party_id, lot_id)?
        .ok_or_else(|| ApiError::invalid_field("holder_party_id", "holds nothing of this lot"))?;
    Ok(CancellationPlan {
        lot_id,
        holder_party_id: r.holder_party_id,
        quantity: r.quantity,
        reason,
    })
}

/// Runs an approved cancellation: available quantity leaves circulation. Allowed on expired lots.
pub fn execute_cancellation(
    conn: &mut DbConn,
    p: &CancellationPlan,
    proposal_id: i64,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<serde_json::Value> {
    let lot = store::lock_lot(conn, p.lot_id)?;
    let t = store::right_type(conn, &lot.right_type)?
        .ok_or_else(|| ApiError::internal("right type vanished"))?;
    let quantity = parse_quantity("quantity", p.quantity, &t)?;
    let moved = ledger::move_quantity(
        conn,
        Movement {
            lot: &lot,
            from: Side::holder(p.holder_party_id, Bucket::Available),
            to: Side::lot(Bucket::Cancelled),
            quantity,
            cause: "cancellation",
            reference: format!("proposal:{proposal_id}"),
            actor,
            at,
            acquisition: None,
            named_serials: None,
        },
    )?;
    super::retirements::record(
        conn,
        &lot,
        p.holder_party_id,
        "cancellation",
        quantity,
        &p.reason,
        None,
        None,
        &moved,
        actor,
        at,
    )
}

/// A lot as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LotView {
    pub id: i64,
    pub right_type: String,
    pub sub_kind: Option<String>,
    pub certificate_no: String,
    pub source_document: String,
    pub vintage: i32,
    pub compliance_year: Option<i32>,
    pub valid_from: NaiveDate,
    pub valid_to: NaiveDate,
    /// `active`, or `expired` once `valid_to` has passed (R6).
    pub status: String,
    pub region_code: String,
    pub origin: String,
    pub project: Option<String>,
    pub monitoring_period: Option<String>,
    pub issued: Dec,
    pub retired: Dec,
    pub cancelled: Dec,
    pub first_holder_id: i64,
    pub proposed_by: String,
    pub approved_by: String,
    pub created_at: DateTime<Utc>,
}

impl LotView {
    pub fn of(l: LotRow, today: NaiveDate) -> LotView {
        LotView {
            status: if l.expired(today) {
                "expired"
            } else {
                "active"
            }
            .to_string(),
            id: l.id,
            right_type: l.right_type,
            sub_kind: l.sub_kind,
            certificate_no: l.certificate_no,
            source_document: l.source_document,
            vintage: l.vintage,
            compliance_year: l.compliance_year,
            valid_from: l.valid_from,
            valid_to: l.valid_to,
            region_code: l.region_code,
            origin: l.origin,
            project: l.project,
            monitoring_period: l.monitoring_period,
            issued: Dec::qty(l.issued),
            retired: Dec::qty(l.retired),
            cancelled: Dec::qty(l.cancelled),
            first_holder_id: l.first_holder_id,
            proposed_by: l.proposed_by,
            approved_by: l.approved_by,
            created_at: l.created_at.and_utc(),
        }
    }
}
