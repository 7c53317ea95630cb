//! Maker-checker (docs/design.md §4): issuance, cancellation, forced and registered transfers,
//! benchmark prices, pledge disposal (directly or by a disposal listing or auction), lifting a
//! judicial freeze, retirement on a holder's behalf, lot imports, amendment-code resets, the
//! registration (singly or by import), splits and changes of holder of forest parcels, an operator's
//! auction of a seller's quantity or its cancellation, changes of the market settings, an
//! operator's confirmation of a trade's payment and a lender product (its LTV cap) take two
//! different operators; a region's non-attainment flag (or its lifting), proposed by an operator or
//! a regulator, takes an operator of another person; a user administrator's creation, re-enabling
//! or password reset of an operator account, or of an account bound to a party, takes an
//! operator's approval. Only operators approve (never a regulator). One proposes (the request
//! is validated and stored); another approves, and the effect runs in the approval's transaction.
//! "Different" means different natural persons: every operator account names its person, and an
//! approval by any account of the proposer's person is a 403, as is the proposer's own.

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
    RegisteredTransfer,
    Disposal,
    ForestDisposal,
    FreezeLift,
    ParcelFreezeLift,
    Retirement,
    LotImport,
    AmendmentCodeReset,
    /// A user administrator's creation, re-enabling or password reset of an operator account.
    OperatorAccount,
    ParcelHolderChange,
    DisposalListing,
    DisposalAuction,
    /// Registering a forest parcel (collateral a bank lends against).
    ParcelRegistration,
    /// A CSV file of forest parcels, approved by a second upload of the same file.
    ParcelImport,
    /// Splitting a forest parcel into parts with new certificates.
    ParcelSplit,
    /// An operator's auction of a seller's quantity (the seller did not list it itself).
    Auction,
    /// An operator's cancellation of an auction that awarded nothing yet.
    AuctionCancellation,
    /// A change of the market's fees, windows or R4 switches.
    MarketSettings,
    /// A user administrator's creation, re-enabling or password reset of an account bound to a
    /// party (enterprise or bank users and API clients).
    PartyAccount,
    /// Flagging a region as not meeting (or again meeting) a pollutant's standard (R4: a flag
    /// blocks trades into the region). An operator or a regulator proposes; an operator of
    /// another person approves.
    RegionFlag,
    /// An operator's confirmation of a buyer's payment, which settles a trade (delivery versus
    /// payment); the seller's own acknowledgement of receipt settles without one.
    TradePayment,
    /// A lender's forest-mortgage product (its LTV cap).
    LenderProduct,
}

impl ProposalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalKind::Issuance => "issuance",
            ProposalKind::Cancellation => "cancellation",
            ProposalKind::ForcedTransfer => "forced_transfer",
            ProposalKind::BenchmarkPrice => "benchmark_price",
            ProposalKind::RegisteredTransfer => "registered_transfer",
            ProposalKind::Disposal => "disposal",
            ProposalKind::ForestDisposal => "forest_disposal",
            ProposalKind::FreezeLift => "freeze_lift",
            ProposalKind::ParcelFreezeLift => "parcel_freeze_lift",
            ProposalKind::Retirement => "retirement",
            ProposalKind::LotImport => "lot_import",
            ProposalKind::AmendmentCodeReset => "amendment_code_reset",
            ProposalKind::OperatorAccount => "operator_account",
            ProposalKind::ParcelHolderChange => "parcel_holder_change",
            ProposalKind::DisposalListing => "disposal_listing",
            ProposalKind::DisposalAuction => "disposal_auction",
            ProposalKind::ParcelRegistration => "parcel_registration",
            ProposalKind::ParcelImport => "parcel_import",
            ProposalKind::ParcelSplit => "parcel_split",
            ProposalKind::Auction => "auction",
            ProposalKind::AuctionCancellation => "auction_cancellation",
            ProposalKind::MarketSettings => "market_settings",
            ProposalKind::PartyAccount => "party_account",
            ProposalKind::RegionFlag => "region_flag",
            ProposalKind::TradePayment => "trade_payment",
            ProposalKind::LenderProduct => "lender_product",
        }
    }
    pub fn parse(s: &str) -> ProposalKind {
        match s {
            "cancellation" => ProposalKind::Cancellation,
            "forced_transfer" => ProposalKind::ForcedTransfer,
            "benchmark_price" => ProposalKind::BenchmarkPrice,
            "registered_transfer" => ProposalKind::RegisteredTransfer,
            "disposal" => ProposalKind::Disposal,
            "forest_disposal" => ProposalKind::ForestDisposal,
            "freeze_lift" => ProposalKind::FreezeLift,
            "parcel_freeze_lift" => ProposalKind::ParcelFreezeLift,
            "retirement" => ProposalKind::Retirement,
            "lot_import" => ProposalKind::LotImport,
            "amendment_code_reset" => ProposalKind::AmendmentCodeReset,
            "operator_account" => ProposalKind::OperatorAccount,
            "parcel_holder_change" => ProposalKind::ParcelHolderChange,
            "disposal_listing" => ProposalKind::DisposalListing,
            "disposal_auction" => ProposalKind::DisposalAuction,
            "parcel_registration" => ProposalKind::ParcelRegistration,
            "parcel_import" => ProposalKind::ParcelImport,
            "parcel_split" => ProposalKind::ParcelSplit,
            "auction" => ProposalKind::Auction,
            "auction_cancellation" => ProposalKind::AuctionCancellation,
            "market_settings" => ProposalKind::MarketSettings,
            "party_account" => ProposalKind::PartyAccount,
            "region_flag" => ProposalKind::RegionFlag,
            "trade_payment" => ProposalKind::TradePayment,
            "lender_product" => ProposalKind::LenderProduct,
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
    pub proposed_by_person: Option<String>,
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
            request: shown_request(&r.payload),
            proposed_by: r.proposed_by_name,
            decided_by: r.decided_by_name,
            decided_at: r.decided_at.map(|t| t.and_utc()),
            decision_reason: r.decision_reason,
            result: r.result.and_then(|s| serde_json::from_str(&s).ok()),
            created_at: r.created_at.and_utc(),
        }
    }
}

/// The stored request as shown: a password hash (an operator password reset) never leaves.
fn shown_request(payload: &str) -> Value {
    let mut v: Value = serde_json::from_str(payload).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("secret_hash");
    }
    v
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
            p::proposed_by_person.eq(&who.person_id),
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

/// True when a pending proposal already names the source document whose comparison form
/// (`kernel::text::document_key`) is `source_key` (R2).
pub fn pending_source(conn: &mut DbConn, source_key: &str) -> QueryResult<bool> {
    // Compared in their comparison form (R2), so a pending proposal of `〔2026〕15号` also holds
    // `[2026]１５号`; pending proposals are few.
    let pending: Vec<Option<String>> = p::table
        .filter(p::status.eq("pending"))
        .filter(p::source_document.is_not_null())
        .select(p::source_document)
        .load(conn)?;
    Ok(pending
        .iter()
        .flatten()
        .any(|s| crate::kernel::text::document_key(s) == source_key))
}

/// True when `who` may decide a proposal made by account `proposer` of person `proposer_person`:
/// another account, and (when both name their person) another person. An operator account always
/// names its person (older proposals were given their proposer's person by a migration).
pub fn second_person(
    proposer: i64,
    proposer_person: Option<&str>,
    checker: i64,
    checker_person: Option<&str>,
) -> bool {
    proposer != checker
        && match (proposer_person, checker_person) {
            (Some(a), Some(b)) => a != b,
            _ => true,
        }
}

/// True when the principal recorded as `actor` (`role:username`, as [`Principal::actor`] writes
/// it) is `who` or another operator account of `who`'s person: for maker-checker steps that
/// record the maker by name rather than as a proposal.
pub fn same_person_as(conn: &mut DbConn, actor: &str, who: &Principal) -> QueryResult<bool> {
    if actor == who.actor() {
        return Ok(true);
    }
    let (Some(name), Some(person)) = (actor.strip_prefix("operator:"), who.person_id.as_deref())
    else {
        return Ok(false);
    };
    let maker = crate::auth::store::find_by_username(conn, name)?;
    Ok(maker.is_some_and(|m| m.role == "operator" && m.person_id.as_deref() == Some(person)))
}

pub fn maker_checker_refusal() -> ApiError {
    let mut e = ApiError::forbidden(
        "maker-checker: the person who proposed (under any of their accounts) cannot also decide",
    );
    e.code = "maker_checker";
    e
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
    let before = find(conn, id)?.ok_or_else(|| ApiError::not_found("proposal"))?;
    if before.status == "pending"
        && !second_person(
            before.proposed_by,
            before.proposed_by_person.as_deref(),
            who.id,
            who.person_id.as_deref(),
        )
    {
        return Err(maker_checker_refusal());
    }
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
            maker_checker_refusal()
        });
    }
    Ok(row)
}

pub fn set_result(conn: &mut DbConn, id: i64, result: &Value) -> QueryResult<usize> {
    diesel::update(p::table.find(id))
        .set(p::result.eq(result.to_string()))
        .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::second_person;

    #[test]
    fn two_accounts_of_one_person_are_one_person() {
        assert!(!second_person(1, Some("E1001"), 1, Some("E1001")));
        assert!(!second_person(1, Some("E1001"), 2, Some("E1001")));
        assert!(second_person(1, Some("E1001"), 2, Some("E1002")));
        assert!(!second_person(1, None, 1, None));
        assert!(second_person(1, None, 2, Some("E1002")));
    }
}
