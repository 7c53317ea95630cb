//! The Nanping environmental-rights trading and collateral registry.
//!
//! One module per capability (parties, auth, audit, …), each with its pure rules, its diesel
//! queries and its HTTP routes; a shared kernel (config, db, error, amounts, clock, idempotency).

pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod collateral;
pub mod config;
pub mod db;
pub mod error;
pub mod forest;
pub mod import;
pub mod kernel;
pub mod market;
pub mod openapi;
pub mod ops;
pub mod parties;
pub mod proposals;
pub mod rights;
pub mod schema;
pub mod seed;
pub mod telemetry;
pub mod transfers;
