//! The rights ledger: right types, lots, holdings by bucket, serial ranges and the movement
//! journal. Every change of a bucket goes through [`ledger::move_quantity`].

pub mod issuance;
pub mod ledger;
pub mod retirements;
pub mod routes;
pub mod rules;
pub mod serials;
pub mod store;

// The rights' domain API that lives beside handlers.
pub use retirements::execute_on_behalf as execute_retirement_on_behalf;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where quantity sits. A holder's buckets, or the lot's retired and cancelled totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Available,
    /// Frozen for sale (挂牌).
    Listed,
    /// Frozen from a transfer request until it ends.
    InTransfer,
    /// Encumbered by a registered pledge.
    Pledged,
    /// Under a judicial freeze (查封/冻结).
    Frozen,
    /// Offered as collateral by a financing request (融资需求) until it is withdrawn or funded.
    Reserved,
    /// 注销/履约清缴: left circulation.
    Retired,
    /// Cancelled by the registry: left circulation.
    Cancelled,
    /// The source of an issuance.
    Issued,
}

impl Bucket {
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Available => "available",
            Bucket::Listed => "listed",
            Bucket::InTransfer => "in_transfer",
            Bucket::Pledged => "pledged",
            Bucket::Frozen => "frozen",
            Bucket::Reserved => "reserved",
            Bucket::Retired => "retired",
            Bucket::Cancelled => "cancelled",
            Bucket::Issued => "issued",
        }
    }
}

/// How a holder acquired quantity; pledge eligibility (R11) reads it. Each holding keeps one
/// record per way (table `acquisitions`); see [`ledger`] for the order in which outgoing
/// quantity uses them up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Acquisition {
    /// Initial allocation free of charge, reserve or offset issuance.
    Free,
    /// Paid-use allocation (有偿使用).
    Paid,
    /// Bought at or above the benchmark price in force (a listing, an auction, a priced bilateral
    /// or registered transfer, a disposal).
    Market,
    /// Anything else: a court order, a merger, a gift, a sale below the benchmark or of a market
    /// without one. Never pledgeable.
    Other,
}

impl Acquisition {
    pub fn as_str(self) -> &'static str {
        match self {
            Acquisition::Free => "free",
            Acquisition::Paid => "paid",
            Acquisition::Market => "market",
            Acquisition::Other => "other",
        }
    }

    /// R11: a purchase is a market acquisition only at or above the benchmark price.
    pub fn of_purchase(standing: impl MarketPurchase) -> Acquisition {
        if standing.is_market_purchase() {
            Acquisition::Market
        } else {
            Acquisition::Other
        }
    }
}

/// How a purchase price stands against the benchmark (R11), as the market judges it; the market
/// implements this, so the rights module needs nothing of the market's.
pub trait MarketPurchase {
    /// At or above the benchmark price: a market acquisition.
    fn is_market_purchase(&self) -> bool;
}

/// Where a lot came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// 初始分配 (free).
    InitialAllocation,
    /// 有偿使用 (paid-use purchase from the government).
    PaidUse,
    Reserve,
    OffsetProject,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::InitialAllocation => "initial_allocation",
            Origin::PaidUse => "paid_use",
            Origin::Reserve => "reserve",
            Origin::OffsetProject => "offset_project",
        }
    }
    pub fn acquisition(self) -> Acquisition {
        match self {
            Origin::PaidUse => Acquisition::Paid,
            _ => Acquisition::Free,
        }
    }
}
