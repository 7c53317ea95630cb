//! Builds the application: shared state, middleware and routes, for `main` and for tests alike.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Service;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, App, HttpMessage, HttpServer};
use tracing_actix_web::{RequestId, TracingLogger};

use crate::auth::bootstrap::{self, Secrets};
use crate::auth::jwt::Keys;
use crate::config::{CommonArgs, HashCost, ServeArgs};
use crate::db::{self, DbConn, DbPool};
use crate::error::{self, ApiError, ApiResult};
use crate::kernel::clock::Clock;
use crate::kernel::json::JSON_LIMIT;

/// What every handler shares. Cheap to clone.
pub struct AppState {
    pub pool: DbPool,
    pub keys: Arc<Keys>,
    pub secrets: Arc<Secrets>,
    pub clock: Clock,
    pub token_ttl: i64,
    pub hash_cost: HashCost,
    pub test_clock: bool,
}

impl AppState {
    /// Runs blocking database work on the blocking pool with a pooled connection.
    pub async fn db<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> ApiResult<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        web::block(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await?
    }
}

/// Opens the database, applies migrations and bootstraps first-start state.
pub fn prepare(
    common: &CommonArgs,
    pool_size: u32,
) -> Result<(DbPool, Secrets), bootstrap::BootError> {
    let url = common.database_url();
    if db::Backend::of_url(&url) == db::Backend::Sqlite {
        if let Some(parent) = std::path::Path::new(url.trim_start_matches("sqlite://")).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)?;
            }
        }
    }
    let pool = db::build_pool(&url, pool_size, Duration::from_secs(5))
        .map_err(|e| format!("cannot open the database {}: {e}", redact(&url)))?;
    let mut conn = pool.get()?;
    db::migrate(&mut conn)?;
    let now = db::now_micros(chrono::Utc::now());
    let (secrets, generated) = bootstrap::run(&mut conn, common, now)?;
    if let Some(password) = generated {
        println!("First start: created operator `admin` with password {password}");
        println!("(shown once; set REGISTRY_ADMIN_PASSWORD to choose it)");
    }
    Ok((pool, secrets))
}

/// Hides a password in a database URL for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// Mounts every route; used by `serve` and by the OpenAPI test.
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
}

pub async fn serve(common: CommonArgs, args: ServeArgs) -> Result<(), bootstrap::BootError> {
    let (pool, secrets) = prepare(&common, args.db_pool_size)?;
    let demo = first_start_demo(&common, &pool, &secrets).await?;
    let state = web::Data::new(AppState {
        pool,
        keys: Arc::new(Keys::from_secret(&secrets.jwt_secret)),
        secrets: Arc::new(secrets),
        clock: Clock::default(),
        token_ttl: args.token_ttl,
        hash_cost: common.password_hash_cost,
        test_clock: args.test_clock,
    });
    let prometheus = actix_web_prom::PrometheusMetricsBuilder::new("registry")
        .endpoint("/metrics")
        .mask_unmatched_patterns("UNMATCHED")
        .build()
        .map_err(|e| format!("metrics: {e}"))?;
    let spec = crate::openapi::spec();
    let known = Arc::new(crate::ops::KnownRoutes::from_spec(&spec));
    let app_state = state.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .app_data(web::Data::from(known.clone()))
            .app_data(web::PayloadConfig::new(JSON_LIMIT))
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .wrap_fn(|req, srv| {
                let id = req.extensions().get::<RequestId>().map(|id| id.to_string());
                let fut = srv.call(req);
                async move {
                    let mut res = fut.await?;
                    if let Some(v) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                        res.headers_mut()
                            .insert(HeaderName::from_static("x-request-id"), v);
                    }
                    Ok(res)
                }
            })
            .wrap(TracingLogger::<crate::telemetry::RequestSpan>::new())
            .wrap(prometheus.clone())
            .configure(routes)
            .service(crate::openapi::docs(spec.clone()))
            .default_service(web::to(crate::ops::unmatched))
    })
    .bind(&args.bind)
    .map_err(|e| format!("cannot listen on {}: {e}", args.bind))?;
    if let Some(w) = args.workers {
        server = server.workers(w);
    }
    for addr in server.addrs() {
        // Tests and operators read this line to find the port when binding port 0.
        println!("registry listening on http://{addr}");
        println!("  API docs: http://{addr}/docs   log in: POST http://{addr}/v1/auth/token");
    }
    if let (Some(demo), Some(addr)) = (&demo, server.addrs().first()) {
        demo.print(&format!("http://{addr}"));
    }
    if args.checkpoint_interval > 0 {
        spawn_checkpoints(state.clone(), Duration::from_secs(args.checkpoint_interval));
    }
    spawn_pledge_sweeper(state.clone(), Duration::from_secs(60));
    spawn_market_clock(
        state.clone(),
        Duration::from_millis(args.market_poll_ms.max(50)),
    );
    crate::collateral::webhooks::spawn_worker(
        state.clone(),
        Duration::from_millis(args.webhook_poll_ms.max(10)),
        Duration::from_millis(args.webhook_backoff_ms.max(10)),
    );
    server.run().await?;
    Ok(())
}

/// On the default embedded SQLite database only (never PostgreSQL or a database named
/// explicitly), an empty registry gets the Nanping demo data set on first start.
async fn first_start_demo(
    common: &CommonArgs,
    pool: &DbPool,
    secrets: &Secrets,
) -> Result<Option<crate::seed::Seeded>, bootstrap::BootError> {
    if common.database_url.is_some() {
        return Ok(None);
    }
    let mut conn = pool.get()?;
    if !crate::seed::empty(&mut conn)? || crate::seed::seeded(&mut conn)? {
        return Ok(None);
    }
    drop(conn);
    println!("First start on an empty database: loading the Nanping demo data set…");
    let seeded = crate::seed::run(pool, secrets, common.password_hash_cost, None)
        .await
        .map_err(|e| format!("demo data: {e}"))?;
    Ok(Some(seeded))
}

/// Signs the audit chain heads periodically, so truncation is detected up to the last one.
fn spawn_checkpoints(state: web::Data<AppState>, every: Duration) {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let key = state.secrets.signing_key.clone();
            let now = db::now_micros(state.clock.now());
            let r: ApiResult<i64> = state
                .db(move |conn| {
                    db::write_tx(conn, |conn| crate::audit::checkpoint(conn, &key, now))
                        .map_err(ApiError::from)
                })
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "audit checkpoint failed");
            }
        }
    });
}

/// Lapses pledges whose registration period ended and warns lenders 90 days ahead. Safe with
/// several processes: each pledge is handled under its lot's lock and re-checked there.
fn spawn_pledge_sweeper(state: web::Data<AppState>, every: Duration) {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(every);
        loop {
            tick.tick().await;
            let (today, now) = (state.clock.today(), db::now_micros(state.clock.now()));
            let r = state
                .db(move |conn| crate::collateral::pledges::run_sweep(conn, today, now))
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "pledge sweep failed");
            }
        }
    });
}

/// Closes due auctions and expires ended listings and unpaid trades on the clock. Every process
/// runs it; each item is claimed by a conditional UPDATE, so it happens exactly once.
fn spawn_market_clock(state: web::Data<AppState>, every: Duration) {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(every);
        loop {
            tick.tick().await;
            let (today, now) = (state.clock.today(), db::now_micros(state.clock.now()));
            let r = state
                .db(move |conn| crate::market::sweep::run(conn, today, now))
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "market sweep failed");
            }
        }
    });
}
