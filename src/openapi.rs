//! The OpenAPI 3.1 description, generated from the handlers' annotations. The committed copy in
//! `openapi/openapi.json` is checked against this by a test (`registry openapi` prints it).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::error::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Nanping environmental-rights and green-collateral registry",
        description = "Registers, prices, transfers and pledges emission, energy-use and carbon rights, records forest-rights mortgages, and shows lenders every encumbrance. Amounts are decimal strings; errors are RFC 9457 problem documents with a stable `code`.",
        version = "0.1.0",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    servers((url = "/", description = "This registry")),
    paths(
        crate::ops::healthz, crate::ops::readyz,
        crate::auth::routes::token, crate::auth::routes::create_user, crate::auth::routes::create_client,
        crate::auth::routes::list_users, crate::auth::routes::disable, crate::auth::routes::enable,
        crate::auth::routes::revoke,
        crate::auth::routes::change_password, crate::auth::routes::reset_password,
        crate::parties::routes::create_party, crate::parties::routes::list_parties,
        crate::parties::routes::get_party, crate::parties::routes::change_party,
        crate::parties::routes::party_history, crate::parties::routes::add_flag,
        crate::parties::routes::clear_flag, crate::parties::routes::list_flags,
        crate::audit::routes::verify, crate::audit::routes::checkpoint, crate::audit::routes::list,
        crate::rights::routes::right_types, crate::rights::routes::propose_issuance,
        crate::rights::routes::list_lots, crate::rights::routes::get_lot, crate::rights::routes::lot_history,
        crate::rights::routes::lot_serials, crate::rights::routes::propose_cancellation,
        crate::rights::routes::list_holdings, crate::rights::routes::party_holdings,
        crate::rights::retirements::retire, crate::rights::retirements::list,
        crate::transfers::routes::request, crate::transfers::routes::registered, crate::transfers::routes::forced, crate::transfers::routes::list,
        crate::transfers::routes::get_one, crate::transfers::routes::confirm, crate::transfers::routes::approve,
        crate::transfers::routes::reject, crate::transfers::routes::cancel,
        crate::proposals::routes::list, crate::proposals::routes::get_one,
        crate::proposals::routes::approve, crate::proposals::routes::reject,
        crate::collateral::pledges::apply, crate::collateral::pledges::list, crate::collateral::pledges::get_one,
        crate::collateral::pledges::accept, crate::collateral::pledges::withdraw, crate::collateral::pledges::release,
        crate::collateral::pledges::renew, crate::collateral::pledges::amend, crate::collateral::pledges::rotate_code, crate::collateral::pledges::reset_code,
        crate::collateral::pledges::enforce, crate::collateral::pledges::dispose, crate::collateral::pledges::valuation,
        crate::collateral::pledges::sweep,
        crate::collateral::freezes::freeze, crate::collateral::freezes::lift, crate::collateral::freezes::list,
        crate::collateral::objections::file, crate::collateral::objections::withdraw, crate::collateral::objections::resolve,
        crate::collateral::lender::search, crate::collateral::lender::verify, crate::collateral::lender::certify,
        crate::collateral::lender::get_certificate, crate::collateral::lender::registry_keys,
        crate::collateral::webhooks::create, crate::collateral::webhooks::list,
        crate::collateral::webhooks::disable, crate::collateral::webhooks::deliveries,
        crate::collateral::webhooks::all_deliveries, crate::collateral::webhooks::requeue,
        crate::forest::parcels::register, crate::forest::parcels::search, crate::forest::parcels::get_one,
        crate::forest::parcels::change_holder, crate::forest::parcels::split,
        crate::forest::freezes::freeze, crate::forest::freezes::lift,
        crate::forest::products::create, crate::forest::products::list,
        crate::forest::mortgages::apply, crate::forest::mortgages::list, crate::forest::mortgages::get_one,
        crate::forest::mortgages::complete, crate::forest::mortgages::official, crate::forest::mortgages::confirm_official, crate::forest::mortgages::reject_official, crate::forest::mortgages::release,
        crate::forest::mortgages::enforce, crate::forest::mortgages::dispose,
        crate::market::settings::get_settings, crate::market::settings::put_settings,
        crate::market::benchmarks::propose, crate::market::benchmarks::list,
        crate::market::benchmarks::set_flag, crate::market::benchmarks::list_flags,
        crate::market::listings::create, crate::market::listings::list, crate::market::listings::get_one,
        crate::market::listings::purchase, crate::market::listings::withdraw,
        crate::market::auctions::create, crate::market::auctions::list, crate::market::auctions::get_one,
        crate::market::auctions::register_bidder, crate::market::auctions::place_bid,
        crate::market::auctions::list_bids, crate::market::auctions::close_now,
        crate::market::auctions::cancel,
        crate::market::trades::list, crate::market::trades::get_one, crate::market::trades::confirm_payment,
        crate::market::prices::ohlc, crate::market::prices::summary, crate::market::prices::chart,
        crate::market::prices::valuation, crate::market::sweep::sweep_now,
        crate::import::routes::import,
        crate::lending::routes::post_request, crate::lending::routes::list, crate::lending::routes::get_one,
        crate::lending::routes::withdraw, crate::lending::routes::take, crate::lending::routes::decline,
        crate::lending::routes::feed, crate::lending::routes::get_settings, crate::lending::routes::put_settings,
        crate::lending::routes::sweep,
        crate::grades::routes::record, crate::grades::routes::show,
        crate::enhancement::routes::record_on_pledge, crate::enhancement::routes::list_on_pledge,
        crate::enhancement::routes::record_on_mortgage, crate::enhancement::routes::list_on_mortgage,
        crate::statistics::routes::green_finance, crate::statistics::routes::green_finance_chart,
    ),
    components(schemas(Problem, crate::error::FieldError)),
    modifiers(&Conventions),
    tags(
        (name = "auth", description = "Tokens, users and API clients"),
        (name = "parties", description = "Enterprises, banks, the exchange, regulators and individuals"),
        (name = "rights", description = "Right types, lots, holdings, retirements"),
        (name = "transfers", description = "Transfers between holders, and forced transfers"),
        (name = "proposals", description = "Maker-checker: what one operator proposes, another approves"),
        (name = "pledges", description = "Pledges of rights, their lifecycle, and judicial freezes"),
        (name = "lender", description = "What banks integrate against: search, verification, signed certificates"),
        (name = "market", description = "Benchmark prices, listings, auctions, trades and settlement, price data and valuation"),
        (name = "forest", description = "Forest parcels (林权) and their mortgages (林权抵押)"),
        (name = "audit", description = "The tamper-evident audit trail"),
        (name = "imports", description = "Bulk import of registers from CSV"),
        (name = "financing", description = "Financing requests (融资需求) banks take online (抢单), and their feed for the 金服云 platform"),
        (name = "statistics", description = "Monthly green-finance statistics (绿色融资统计)"),
        (name = "ops", description = "Health and readiness"),
    )
)]
pub struct ApiDoc;

/// Adds what every operation shares: bearer security and the standard problem responses.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        let problem = |desc: &str| -> RefOr<utoipa::openapi::Response> {
            RefOr::T(
                ResponseBuilder::new()
                    .description(desc)
                    .content(
                        "application/problem+json",
                        ContentBuilder::new()
                            .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                            .build(),
                    )
                    .build(),
            )
        };
        for (path, item) in api.paths.paths.iter_mut() {
            let public = matches!(
                path.as_str(),
                "/healthz"
                    | "/readyz"
                    | "/v1/auth/token"
                    | "/v1/auth/password"
                    | "/v1/registry-keys"
                    | "/v1/encumbrances/{registration_no}"
            );
            for op in operations(item) {
                let r = &mut op.responses.responses;
                if !public {
                    r.entry("401".into())
                        .or_insert_with(|| problem("Missing, invalid, expired or revoked token"));
                    r.entry("403".into())
                        .or_insert_with(|| problem("The caller's role may not do this"));
                    op.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
                        "bearer",
                        Vec::<String>::new(),
                    )]);
                }
                let has_query = op.parameters.iter().flatten().any(|p| {
                    matches!(p, RefOr::T(p) if matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query))
                });
                // An object named in the path, the body or a filter may not exist (or be hidden).
                if path.contains('{') || op.request_body.is_some() || has_query {
                    r.entry("404".into())
                        .or_insert_with(|| problem("No such object, or not visible to the caller"));
                }
                if has_query {
                    r.entry("422".into()).or_insert_with(|| {
                        problem("Invalid query parameter (or cursor); `errors` names it")
                    });
                }
                if path.contains('{') {
                    r.entry("422".into()).or_insert_with(|| {
                        problem("Invalid path parameter (`invalid_text`: it holds NUL)")
                    });
                }
                // What the server accepts as a key: 1 to 255 visible ASCII characters. Any
                // request with a key may meet its earlier use (docs/design.md §3.5).
                let mut keyed = false;
                for p in op.parameters.iter_mut().flatten() {
                    let RefOr::T(p) = p else { continue };
                    if p.name == crate::kernel::idempotency::HEADER {
                        keyed = true;
                        p.schema = Some(RefOr::T(utoipa::openapi::schema::Schema::Object(
                            utoipa::openapi::schema::ObjectBuilder::new()
                                .schema_type(utoipa::openapi::schema::Type::String)
                                .min_length(Some(1))
                                .max_length(Some(255))
                                .pattern(Some("^[!-~]+$"))
                                .build(),
                        )));
                    }
                }
                if keyed {
                    r.entry("409".into()).or_insert_with(|| {
                        problem("Conflicts with the object's state (`code` says how)")
                    });
                    r.entry("422".into()).or_insert_with(|| {
                        problem("Invalid request, or this Idempotency-Key was used for a different request (`idempotency_key_reused`)")
                    });
                }
                if op.request_body.is_some() {
                    r.entry("413".into())
                        .or_insert_with(|| problem("Body larger than 1 MiB"));
                    r.entry("415".into())
                        .or_insert_with(|| problem("Body is not application/json"));
                    r.entry("422".into())
                        .or_insert_with(|| problem("Invalid body; `errors` names each field"));
                }
                r.entry("400".into()).or_insert_with(|| {
                    problem("Bad request (e.g. a missing or invalid Idempotency-Key)")
                });
                r.entry("503".into())
                    .or_insert_with(|| problem("Database unavailable; retry"));
            }
        }
    }
}

fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .filter_map(|o| o.as_mut())
}

pub fn spec() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The spec as committed: pretty JSON with a trailing newline.
pub fn spec_json() -> String {
    let mut s = spec().to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}

/// Swagger UI at `/docs`, its assets compiled into the binary; the spec at `/openapi.json`.
pub fn docs(spec: utoipa::openapi::OpenApi) -> SwaggerUi {
    SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", spec)
}
