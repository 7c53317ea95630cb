//! The route table: every module's routes, mounted in one place (by `serve`, the seed's in-process
//! server and the OpenAPI test).

use actix_web::web;

/// Mounts every route; used by `serve`, the seed and the OpenAPI test.
pub fn routes(cfg: &mut web::ServiceConfig) {
    crate::ops::configure(cfg);
    crate::auth::routes::configure(cfg);
    crate::parties::routes::configure(cfg);
    crate::audit::routes::configure(cfg);
    crate::rights::routes::configure(cfg);
    crate::rights::retirements::configure(cfg);
    crate::transfers::routes::configure(cfg);
    crate::proposals::routes::configure(cfg);
    crate::collateral::pledges::configure(cfg);
    crate::collateral::freezes::configure(cfg);
    crate::collateral::lender::configure(cfg);
    crate::collateral::objections::configure(cfg);
    crate::collateral::webhooks::configure(cfg);
    crate::collateral::page::configure(cfg);
    crate::forest::parcels::configure(cfg);
    crate::forest::mortgages::configure(cfg);
    crate::forest::freezes::configure(cfg);
    crate::forest::products::configure(cfg);
    crate::market::settings::configure(cfg);
    crate::market::benchmarks::configure(cfg);
    crate::market::listings::configure(cfg);
    crate::market::auctions::configure(cfg);
    crate::market::trades::configure(cfg);
    crate::market::prices::configure(cfg);
    crate::market::sweep::configure(cfg);
    crate::import::routes::configure(cfg);
    crate::lending::configure(cfg);
    crate::grades::routes::configure(cfg);
    crate::enhancement::routes::configure(cfg);
    crate::statistics::routes::configure(cfg);
}
