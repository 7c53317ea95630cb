//! The shared kernel: exact amounts, the clock, JSON bodies, idempotency, pagination, region codes,
//! document identifiers.

pub mod amount;
pub mod clock;
pub mod idempotency;
pub mod json;
pub mod pagination;
pub mod regions;
pub mod state;
pub mod text;
