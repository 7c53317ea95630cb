//! Parties: enterprises, banks, the exchange, regulators and individuals (forest farmers), their
//! change history and compliance flags.

pub mod lookups;
pub mod routes;
pub mod rules;
pub mod store;
pub mod uscc;

// The parties' domain API that lives beside handlers.
pub use routes::parse_uscc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What kind of party this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartyKind {
    Enterprise,
    Bank,
    Exchange,
    Regulator,
    /// A natural person (e.g. a forest farmer), identified by ID number.
    Individual,
}

/// Compliance flags that bar a party from pledging (R11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    /// Emitted more than its allowance last year.
    OverEmission,
    /// Has unpaid paid-use fees.
    UnpaidFees,
    /// Poor environmental credit rating: no longer set (422 `flag_kind_retired`); the
    /// environmental credit grade (red) stands for it. Older flags stay readable.
    PoorCreditRating,
}

/// A change recorded in a party's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Registered,
    /// 变更: name changed.
    Rename,
    Address,
    Status,
    /// 合并: this party merged with `related_party_id`.
    Merger,
    /// 分立: this party split; `related_party_id` is a successor.
    Split,
}

macro_rules! text_enum {
    ($t:ty) => {
        impl $t {
            pub fn as_str(self) -> String {
                serde_json::to_value(self)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            }
            pub fn parse(s: &str) -> Option<Self> {
                serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
            }
        }
    };
}
text_enum!(PartyKind);

impl PartyKind {
    /// Banks and regulators hold no rights: they neither receive an issuance nor buy.
    pub fn holds_rights(self) -> bool {
        !matches!(self, PartyKind::Bank | PartyKind::Regulator)
    }
}
text_enum!(FlagKind);
text_enum!(ChangeKind);
