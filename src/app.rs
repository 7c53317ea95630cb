//! Builds the application: opens the database, wires the shared state, the middleware, the route
//! table and the background tasks, for `main` and for tests alike.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Service;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, App, HttpMessage, HttpServer};
use tracing_actix_web::{RequestId, TracingLogger};

use crate::auth::bootstrap::{self, Secrets};
use crate::config::{CommonArgs, ServeArgs};
use crate::db::{self, DbConn, DbPool};
use crate::error::{self, ApiError, ApiResult};
use crate::kernel::clock::Clock;
use crate::kernel::json::JSON_LIMIT;
use crate::kernel::state::AppState;
use crate::keys::jwt::Keys;

/// Opens the database, applies migrations and bootstraps first-start state.
pub fn prepare(
    common: &CommonArgs,
    pool_size: u32,
) -> Result<(DbPool, Secrets), bootstrap::BootError> {
    let url = common.database_url();
    if db::Backend::of_url(&url) == db::Backend::Sqlite {
        crate::keys::private_sqlite_file(std::path::Path::new(
            url.trim_start_matches("sqlite://"),
        ))?;
    }
    let pool = db::build_pool(&url, pool_size, Duration::from_secs(5));
    match migrate_and_bootstrap(&pool, common, &url) {
        Ok(secrets) => Ok((pool, secrets)),
        Err(e) => {
            pool.close(POOL_CLOSE_WAIT);
            Err(e)
        }
    }
}

/// How long closing a pool waits for a connect under way (libpq's own connect timeout is longer
/// only on a network that drops packets; then the exit is still clean of our threads' work).
pub const POOL_CLOSE_WAIT: Duration = Duration::from_secs(15);

fn migrate_and_bootstrap(
    pool: &DbPool,
    common: &CommonArgs,
    url: &str,
) -> Result<Secrets, bootstrap::BootError> {
    let mut conn = pool
        .get()
        .map_err(|e| format!("cannot open the database {}: {e}", redact(url)))?;
    db::migrate(&mut conn)?;
    crate::rights::issuance::backfill_source_keys(&mut conn)
        .map_err(|e| format!("cannot fill the source documents' keys: {}", e.detail))?;
    crate::forest::parcels::backfill_certificate_keys(&mut conn)
        .map_err(|e| format!("cannot fill the parcels' certificate keys: {}", e.detail))?;
    let now = db::now_micros(chrono::Utc::now());
    let (secrets, generated) = bootstrap::run(&mut conn, common, now)?;
    if let Some(password) = generated {
        println!("First start: created the user administrator `admin` with password {password}");
        println!("(shown once; set REGISTRY_ADMIN_PASSWORD to choose it)");
    }
    Ok(secrets)
}

/// Hides a password in a database URL for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// `/metrics` is for operators: with the configured metrics bearer secret or an operator's token;
/// anyone else gets a 401. Wraps the metrics middleware, which answers `/metrics` itself.
fn guard_metrics<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> futures_util::future::LocalBoxFuture<
    'static,
    Result<actix_web::dev::ServiceResponse<actix_web::body::EitherBody<B>>, actix_web::Error>,
>
where
    S: Service<
        actix_web::dev::ServiceRequest,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    S::Future: 'static,
    B: 'static,
{
    if req.path() != "/metrics" {
        let fut = srv.call(req);
        return Box::pin(async move { Ok(fut.await?.map_into_left_body()) });
    }
    let token = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let allowed_by_secret = match (
        &token,
        state
            .as_ref()
            .and_then(|s| s.exposure.metrics_token.as_ref()),
    ) {
        (Some(t), Some(secret)) => {
            use sha2::Digest;
            // Compared as hashes: equal length, so the time does not tell how much matched.
            sha2::Sha256::digest(t.as_bytes()) == sha2::Sha256::digest(secret.as_bytes())
        }
        _ => false,
    };
    // The metrics are rendered first (the middleware holds them; this service cannot be called
    // after an await), then shown only to an operator.
    let fut = srv.call(req);
    Box::pin(async move {
        let res = fut.await?;
        let allowed = allowed_by_secret
            || match (state, token) {
                (Some(state), Some(token)) => crate::auth::principal_from_token(&state, &token)
                    .await
                    .is_ok_and(|p| p.role == crate::auth::Role::Operator),
                _ => false,
            };
        if allowed {
            return Ok(res.map_into_left_body());
        }
        let refused = actix_web::ResponseError::error_response(&ApiError::unauthorized(
            "the metrics need an operator's token or the metrics bearer secret",
        ));
        let (http_req, _) = res.into_parts();
        Ok(actix_web::dev::ServiceResponse::new(http_req, refused).map_into_right_body())
    })
}

/// Serves until SIGINT or SIGTERM, then finishes the requests in flight, stops the background
/// tasks and closes the pool before returning, so the process exits cleanly (status 0).
pub async fn serve(common: CommonArgs, args: ServeArgs) -> Result<(), bootstrap::BootError> {
    // The signals are ours from the first moment (migrations and first-start seeding included):
    // a stop asked for at any time ends in a clean exit with status 0, never death by the signal.
    let signals = StopSignals::install()?;
    let (pool, secrets) = prepare(&common, args.db_pool_size)?;
    db::set_after_write(crate::auth::cache::after_write);
    let principals = crate::auth::cache::start(&common.database_url());
    let result = serve_on(&common, args, pool.clone(), secrets, signals).await;
    principals.close(POOL_CLOSE_WAIT);
    pool.close(POOL_CLOSE_WAIT);
    result
}

/// SIGTERM and SIGINT. The first asks for a graceful stop (requests in flight finish, up to
/// actix-web's shutdown timeout); a second one stops at once.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }

    /// Stops `server` on the first signal, gracefully, and at once on a second.
    fn stop_on_signal(mut self, server: actix_web::dev::ServerHandle) {
        actix_web::rt::spawn(async move {
            self.next().await;
            tracing::info!("stop requested: finishing the requests in flight");
            let graceful = server.stop(true);
            tokio::select! {
                _ = graceful => {}
                _ = self.next() => {
                    tracing::warn!("second stop signal: stopping at once");
                    server.stop(false).await;
                }
            }
        });
    }
}

async fn serve_on(
    common: &CommonArgs,
    args: ServeArgs,
    pool: DbPool,
    secrets: Secrets,
    signals: StopSignals,
) -> Result<(), bootstrap::BootError> {
    let demo = first_start_demo(common, &pool, &secrets).await?;
    let state = web::Data::new(AppState {
        pool,
        keys: Arc::new(Keys::from_secret(&secrets.jwt_secret)),
        secrets: Arc::new(secrets),
        clock: Clock::default(),
        token_ttl: args.token_ttl,
        hash_cost: common.password_hash_cost,
        test_clock: args.test_clock,
        exposure: crate::config::ExposureLimits::from(&args),
    });
    let prometheus = actix_web_prom::PrometheusMetricsBuilder::new("registry")
        .endpoint("/metrics")
        .mask_unmatched_patterns("UNMATCHED")
        .build()
        .map_err(|e| format!("metrics: {e}"))?;
    let spec = crate::openapi::spec();
    let known = Arc::new(
        crate::error::known_routes::KnownRoutes::from_spec(&spec)
            .with("/openapi.json", &[actix_web::http::Method::GET])
            .with("/metrics", &[actix_web::http::Method::GET]),
    );
    let app_state = state.clone();
    let test_clock = args.test_clock;
    let webhook_policy = crate::collateral::webhooks::delivery::Policy::from_args(&args)?;
    let webhook_data = web::Data::new(webhook_policy.clone());
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .app_data(web::Data::from(known.clone()))
            .app_data(webhook_data.clone())
            .app_data(web::PayloadConfig::new(JSON_LIMIT))
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .wrap_fn(move |req, srv| {
                // A test server (test clock) reports the SQL statements each request issued.
                let fut = srv.call(req);
                async move {
                    let (res, statements) = db::counting(fut).await;
                    let mut res = res?;
                    if test_clock {
                        res.headers_mut().insert(
                            HeaderName::from_static("x-sql-statements"),
                            HeaderValue::from(statements),
                        );
                    }
                    Ok(res)
                }
            })
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
            .wrap_fn(guard_metrics)
            .configure(crate::routes::routes)
            .service(crate::openapi::docs(spec.clone()))
            .default_service(web::to(crate::ops::unmatched))
    })
    .disable_signals()
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
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    if args.checkpoint_interval > 0 {
        // Signs the audit chain heads periodically, so truncation is detected up to the last one.
        tasks.push(periodic_task(
            "audit checkpoint",
            Duration::from_secs(args.checkpoint_interval),
            true,
            stopped.clone(),
            &state,
            |state| async move {
                let key = state.secrets.signing_key.clone();
                let now = db::now_micros(state.clock.now());
                state
                    .db(move |conn| crate::audit::checkpoint(conn, &key, now, true))
                    .await
                    .map(drop)
            },
        ));
    }
    tasks.push(sweep_task(
        "pledge sweep",
        Duration::from_secs(60),
        stopped.clone(),
        &state,
        crate::collateral::pledges::run_sweep,
    ));
    tasks.push(sweep_task(
        "financing request sweep",
        Duration::from_secs(60),
        stopped.clone(),
        &state,
        crate::lending::run_sweep,
    ));
    tasks.push(sweep_task(
        "market sweep",
        Duration::from_millis(args.market_poll_ms.max(50)),
        stopped.clone(),
        &state,
        crate::market::sweep::run,
    ));
    // Deletes what is kept only for a while (idempotency records, search certificates, ended page
    // sessions, past look-up counts), by the configured retention.
    tasks.push(periodic_task(
        "retention sweep",
        Duration::from_secs(args.retention_sweep_secs.max(1)),
        false,
        stopped.clone(),
        &state,
        |state| async move {
            let (now, limits) = (db::now_micros(state.clock.now()), state.exposure.clone());
            let swept = state
                .db(move |conn| Ok(crate::retention::sweep(conn, now, &limits)?))
                .await?;
            if swept != Default::default() {
                tracing::info!(?swept, "retention sweep");
            }
            Ok(())
        },
    ));
    tasks.push(crate::collateral::webhooks::spawn_worker(
        state.clone(),
        webhook_policy,
        Duration::from_millis(args.webhook_poll_ms.max(10)),
        Duration::from_millis(args.webhook_backoff_ms.max(10)),
        stopped,
    ));
    // On a stop signal: no new connections, requests in flight finish (up to the shutdown
    // timeout), then `running` resolves.
    let running = server.run();
    signals.stop_on_signal(running.handle());
    let served = running.await;
    tracing::info!("stopping: waiting for the background tasks");
    let _ = stop.send(true);
    for task in tasks {
        if let Err(e) = task.await {
            tracing::warn!(error = %e, "background task ended abnormally");
        }
    }
    served?;
    Ok(())
}

/// A background job started at boot: runs `job` every `every` (after a first wait of `every` when
/// `skip_first`) until `stopped` says so, finishing a pass under way first. A pass that fails is
/// logged under the job's `name` and the next one runs as planned.
fn periodic_task<F, Fut>(
    name: &'static str,
    every: Duration,
    skip_first: bool,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    state: &web::Data<AppState>,
    job: F,
) -> actix_web::rt::task::JoinHandle<()>
where
    F: Fn(web::Data<AppState>) -> Fut + 'static,
    Fut: std::future::Future<Output = ApiResult<()>> + 'static,
{
    let state = state.clone();
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(every);
        if skip_first {
            tick.tick().await;
        }
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = job(state.clone()).await {
                        tracing::warn!(task = name, error = %e, "{name} failed");
                    }
                }
                _ = stopped.changed() => return,
            }
            if *stopped.borrow() {
                return;
            }
        }
    })
}

/// A clock-driven sweep as a periodic task: the pledge sweeper (lapses pledges whose registration
/// period ended, warns lenders 90 days ahead) and the market clock (closes due auctions, expires
/// ended listings and unpaid trades). Every process runs them; each item is claimed under its
/// lot's lock or by a conditional UPDATE, so it happens exactly once.
fn sweep_task<T: Send + 'static>(
    name: &'static str,
    every: Duration,
    stopped: tokio::sync::watch::Receiver<bool>,
    state: &web::Data<AppState>,
    sweep: fn(&mut DbConn, chrono::NaiveDate, chrono::NaiveDateTime) -> ApiResult<T>,
) -> actix_web::rt::task::JoinHandle<()> {
    periodic_task(
        name,
        every,
        false,
        stopped,
        state,
        move |state| async move {
            let (today, now) = (state.clock.today(), db::now_micros(state.clock.now()));
            state
                .db(move |conn| sweep(conn, today, now))
                .await
                .map(drop)
        },
    )
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
