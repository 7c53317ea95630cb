//! Maker-checker (docs/design.md §4): issuance, cancellation, forced transfers and benchmark prices
//! take two different operators. One proposes (the request is validated and stored); another
//! approves, and the effect runs in the approval's transaction. The proposer approving is a 403.

pub mod routes;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::schema::proposals as p;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProposalKind {
    Issuance,
    Cancellation,
    ForcedTransfer,
    BenchmarkPrice,
}

impl ProposalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalKind::Issuance => "issuance",
            ProposalKind::Cancellation => "cancellation",
            ProposalKind::ForcedTransfer => "forced_transfer",
            ProposalKind::BenchmarkPrice => "benchmark_price",
        }
    }
    pub fn parse(s: &str) -> ProposalKind {
        match s {
            "cancellation" => ProposalKind::Cancellation,
            "forced_transfer" => ProposalKind::ForcedTransfer,
            "benchmark_price" => ProposalKind::BenchmarkPrice,
            _ => ProposalKind::Issuance,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = p)]
pub struct ProposalRow {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    pub status: String,
    pub source_document: Option<String>,
    pub proposed_by: i64,
    pub proposed_by_name: String,
    pub decided_by: Option<i64>,
    pub decided_by_name: Option<String>,
    pub decided_at: Option<NaiveDateTime>,
    pub decision_reason: Option<String>,
    pub result: Option<String>,
    pub created_at: NaiveDateTime,
}

/// A proposal as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProposalView {
    pub id: i64,
    pub kind: ProposalKind,
    /// pending, approved or rejected.
    pub status: String,
    /// The validated request awaiting approval.
    pub request: Value,
    pub proposed_by: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_reason: Option<String>,
    /// What the approval did (the lot issued, the transfer settled, …).
    pub result: Option<Value>,
    pub created_at: DateTime<Utc>,
}

impl From<ProposalRow> for ProposalView {
    fn from(r: ProposalRow) -> Self {
        ProposalView {
            id: r.id,
            kind: ProposalKind::parse(&r.kind),
            status: r.status,
            request: serde_json::from_str(&r.payload).unwrap_or_default(),
            proposed_by: r.proposed_by_name,
            decided_by: r.decided_by_name,
            decided_at: r.decided_at.map(|t| t.and_utc()),
            decision_reason: r.decision_reason,
            result: r.result.and_then(|s| serde_json::from_str(&s).ok()),
            created_at: r.created_at.and_utc(),
        }
    }
}

pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<ProposalRow>> {
    p::table
        .find(id)
        .select(ProposalRow::as_select())
        .first(conn)
        .optional()
}

/// Stores a validated request for a second operator's approval.
pub fn propose<T: Serialize>(
    conn: &mut DbConn,
    kind: ProposalKind,
    request: &T,
    source_document: Option<&str>,
    who: &Principal,
    at: NaiveDateTime,
) -> ApiResult<ProposalRow> {
    let payload = serde_json::to_string(request).map_err(|e| ApiError::internal(e.to_string()))?;
    diesel::insert_into(p::table)
        .values((
            p::kind.eq(kind.as_str()),
            p::payload.eq(&payload),
            p::status.eq("pending"),
            p::source_document.eq(source_document),
            p::proposed_by.eq(who.id),
            p::proposed_by_name.eq(who.actor()),
            p::created_at.eq(at),
        ))
        .execute(conn)?;
    let row = p::table
        .filter(p::proposed_by.eq(who.id))
        .filter(p::payload.eq(&payload))
        .order(p::id.desc())
        .select(ProposalRow::as_select())
        .first(conn)?;
    crate::audit::record(
        conn,
        crate::audit::Event {
            chain: format!("proposal:{}", row.id),
            actor: &who.actor(),
            action: &format!("{}.proposed", kind.as_str()),
            object_type: "proposal",
            object_id: row.id.to_string(),
            payload: serde_json::from_str(&payload).unwrap_or_default(),
            at,
        },
    )?;
    Ok(row)
}

/// True when a pending proposal already names this source document (R2).
pub fn pending_source(conn: &mut DbConn, source: &str) -> QueryResult<bool> {
    let n: i64 = p::table
        .filter(p::status.eq("pending"))
        .filter(p::source_document.eq(source))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Claims a pending proposal for a decision by `who`, inside the caller's transaction: the
/// conditional UPDATE makes two concurrent approvals of one proposal impossible.
pub fn decide(
    conn: &mut DbConn,
    id: i64,
    who: &Principal,
    status: &str,
    reason: Option<&str>,
    at: NaiveDateTime,
) -> ApiResult<ProposalRow> {
    let n = diesel::update(
        p::table
            .filter(p::id.eq(id))
            .filter(p::status.eq("pending"))
            .filter(p::proposed_by.ne(who.id)),
    )
    .set((
        p::status.eq(status),
        p::decided_by.eq(who.id),
        p::decided_by_name.eq(who.actor()),
        p::decided_at.eq(at),
        p::decision_reason.eq(reason),
    ))
    .execute(conn)?;
    let row = find(conn, id)?.ok_or_else(|| ApiError::not_found("proposal"))?;
    if n == 0 {
        return Err(if row.status != "pending" {
            ApiError::conflict(
                "proposal_decided",
                format!("this proposal is already {}", row.status),
            )
        } else {
            let mut e =
                ApiError::forbidden("maker-checker: the operator who proposed cannot also decide");
            e.code = "maker_checker";
            e
        });
    }
    Ok(row)
}

pub fn set_result(conn: &mut DbConn, id: i64, result: &Value) -> QueryResult<usize> {
    diesel::update(p::table.find(id))
        .set(p::result.eq(result.to_string()))
        .execute(conn)
}
