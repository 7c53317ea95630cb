//! The `registry` command: serve (default), migrate, user add, token, audit verify, openapi, seed,
//! import, market sweep.

use crate::auth::bootstrap::Secrets;
use crate::auth::{password, routes as auth_routes, Role};
use crate::config::{
    AuditCommand, Cli, Command, CommonArgs, ImportArgs, MarketCommand, ServeArgs, TokenArgs,
    UserCommand,
};
use crate::db::DbConn;
use crate::{app, auth, db};

pub type CliError = Box<dyn std::error::Error + Send + Sync>;

/// Runs a command's database work on a one-connection pool and closes the pool before returning,
/// whatever the outcome: no pool thread may be inside libpq when the process exits (it crashed
/// in OpenSSL's exit-time cleanup otherwise).
fn with_db<T>(
    common: &CommonArgs,
    work: impl FnOnce(&mut DbConn, &Secrets) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let (pool, secrets) = app::prepare(common, 1)?;
    let result = match pool.get() {
        Ok(mut conn) => work(&mut conn, &secrets),
        Err(e) => Err(e.into()),
    };
    pool.close(app::POOL_CLOSE_WAIT);
    result
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    let common = cli.common;
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => actix_web::rt::System::new().block_on(app::serve(common, args)),
        Command::Migrate => with_db(&common, |conn, _| {
            println!("migrations current: {}", db::migrations_current(conn)?);
            Ok(())
        }),
        Command::User(UserCommand::Add {
            username,
            role,
            party_id,
            person_id,
        }) => user_add(&common, &username, &role, party_id, person_id),
        Command::Token(args) => token(&common, &args),
        Command::Audit(AuditCommand::Verify) => audit_verify(&common),
        Command::Openapi => {
            print!("{}", crate::openapi::spec_json());
            Ok(())
        }
        Command::Seed(args) => actix_web::rt::System::new().block_on(async move {
            let (pool, secrets) = app::prepare(&common, 4)?;
            let seeded =
                crate::seed::run(&pool, &secrets, common.password_hash_cost, args.dir).await;
            pool.close(app::POOL_CLOSE_WAIT);
            seeded?.print("http://127.0.0.1:8080");
            Ok(())
        }),
        Command::Import(args) => import(&common, &args),
        Command::Market(MarketCommand::Sweep) => with_db(&common, |conn, _| {
            let now = chrono::Utc::now();
            let r = crate::market::sweep::run(conn, now.date_naive(), db::now_micros(now))
                .map_err(|e| e.detail)?;
            println!(
                "auctions closed: {:?}; listings expired: {:?}; trades expired: {:?}",
                r.closed_auctions, r.expired_listings, r.expired_trades
            );
            Ok(())
        }),
    }
}

fn import(common: &CommonArgs, args: &ImportArgs) -> Result<(), CliError> {
    let kind = crate::import::Kind::parse(&args.kind)
        .ok_or("KIND is one of parties, lots, forest-parcels")?;
    with_db(common, |conn, secrets| {
        import_file(conn, secrets, kind, args)
    })
}

fn import_file(
    conn: &mut DbConn,
    secrets: &Secrets,
    kind: crate::import::Kind,
    args: &ImportArgs,
) -> Result<(), CliError> {
    let opts = crate::import::options(
        "cli:import".into(),
        args.file.display().to_string(),
        secrets.id_hmac_key.clone(),
        args.skip_invalid,
    );
    let started = std::time::Instant::now();
    let mut progress = crate::import::Console::new();
    let r = crate::import::run(conn, kind, &args.file, &opts, &mut progress)?;
    for b in &r.bad_rows {
        println!("line {}, column {}: {}", b.line, b.column, b.reason);
    }
    if r.bad_rows_truncated {
        println!("(more bad rows than listed: {} rows in all)", r.invalid);
    }
    println!(
        "{}: {} rows read ({}), {} invalid, {} imported in {:.1}s",
        r.kind,
        r.rows,
        r.encoding,
        r.invalid,
        r.imported,
        started.elapsed().as_secs_f64()
    );
    if r.invalid > 0 && r.imported == 0 {
        return Err(format!(
            "nothing imported: {} bad rows (fix them, or pass --skip-invalid to load the rest)",
            r.invalid
        )
        .into());
    }
    Ok(())
}

fn user_add(
    common: &CommonArgs,
    username: &str,
    role: &str,
    party_id: Option<i64>,
    person_id: Option<String>,
) -> Result<(), CliError> {
    let role: Role = role.parse()?;
    let person = person_id.map(|p| auth_routes::person_form(&p).unwrap_or_default());
    with_db(common, |conn, _| {
        add_user(conn, common, username, role, party_id, person.clone())
    })
}

fn add_user(
    conn: &mut DbConn,
    common: &CommonArgs,
    username: &str,
    role: Role,
    party_id: Option<i64>,
    person: Option<String>,
) -> Result<(), CliError> {
    let (secret, generated) = match std::env::var("REGISTRY_USER_PASSWORD") {
        Ok(p) if p.chars().count() >= 12 => (p, false),
        Ok(_) => return Err("REGISTRY_USER_PASSWORD must be at least 12 characters".into()),
        Err(_) => (password::random_secret(20), true),
    };
    let hash = password::hash(&secret, common.password_hash_cost)?;
    let now = db::now_micros(chrono::Utc::now());
    let new = auth::store::NewPrincipal {
        kind: "user",
        username,
        secret_hash: &hash,
        role: role.as_str(),
        party_id,
        created_at: now,
        person_id: person.as_deref(),
    };
    let row = db::write_tx(conn, |conn| {
        auth_routes::add_principal(conn, &new, "cli:user-add")
    })
    .map_err(|e| e.detail)?;
    println!(
        "created user {} (id {}, role {})",
        row.username, row.id, row.role
    );
    if generated {
        println!("password: {secret}");
    }
    Ok(())
}

fn token(common: &CommonArgs, args: &TokenArgs) -> Result<(), CliError> {
    with_db(common, |conn, secrets| {
        let row = auth::store::find_by_username(conn, &args.username)?
            .filter(|r| !r.disabled)
            .ok_or_else(|| format!("no enabled user or API client named {}", args.username))?;
        let keys = auth::jwt::Keys::from_secret(&secrets.jwt_secret);
        let token = auth_routes::mint(&keys, &row, args.ttl).map_err(|e| e.detail)?;
        println!("{token}");
        Ok(())
    })
}

fn audit_verify(common: &CommonArgs) -> Result<(), CliError> {
    let v = with_db(common, |conn, secrets| {
        Ok(crate::audit::verify(
            conn,
            &secrets.signing_key.verifying_key(),
        )?)
    })?;
    println!(
        "chains: {}, events: {}, checkpoints: {}",
        v.chains, v.events, v.checkpoints
    );
    if v.ok {
        println!("audit trail verified: OK");
        Ok(())
    } else {
        for p in &v.problems {
            println!("PROBLEM: {p}");
        }
        Err(format!(
            "audit trail verification failed: {} problem(s)",
            v.problems.len()
        )
        .into())
    }
}
