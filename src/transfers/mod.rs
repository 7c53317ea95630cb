//! Transfers (转让): bilateral transfers through the lifecycle in [`rules`], and forced transfers
//! (court order, merger) registered by operators under maker-checker.

pub mod routes;
pub mod rules;
pub mod store;
