//! The Nanping environmental-rights trading and collateral registry.
//!
//! One module per capability (parties, auth, audit, …), each with its pure rules, its diesel
//! queries and its HTTP routes; a shared kernel (config, db, error, amounts, clock, idempotency).
//!
//! Comments cite the domain rules as R1–R15 (`docs/rules.md`: each rule, its source and its
//! tests) and the design as `docs/design.md §N` (invariants §3, lifecycles §4, lender view §5).

pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod collateral;
pub mod config;
pub mod db;
pub mod enhancement;
pub mod error;
pub mod forest;
pub mod grades;
pub mod import;
pub mod kernel;
pub mod keys;
pub mod lending;
pub mod market;
pub mod openapi;
pub mod ops;
pub mod parties;
pub mod proposals;
pub mod retention;
pub mod rights;
pub mod routes;
pub mod schema;
pub mod seed;
pub mod statistics;
pub mod telemetry;
pub mod transfers;
