//! The shared kernel: exact amounts, the clock, JSON bodies, idempotency, pagination.

pub mod amount;
pub mod clock;
pub mod idempotency;
pub mod json;
pub mod pagination;
