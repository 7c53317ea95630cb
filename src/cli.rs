//! The `registry` command: serve (default), migrate, user add, token, audit verify, openapi.

use crate::auth::{password, routes as auth_routes, Role};
use crate::config::{AuditCommand, Cli, Command, CommonArgs, ServeArgs, TokenArgs, UserCommand};
use crate::{app, auth, db};

pub type CliError = Box<dyn std::error::Error + Send + Sync>;

pub fn run(cli: Cli) -> Result<(), CliError> {
    let common = cli.common;
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => actix_web::rt::System::new().block_on(app::serve(common, args)),
        Command::Migrate => {
            let (pool, _) = app::prepare(&common, 1)?;
            let mut conn = pool.get()?;
            println!("migrations current: {}", db::migrations_current(&mut conn)?);
            Ok(())
        }
        Command::User(UserCommand::Add {
            username,
            role,
            party_id,
        }) => user_add(&common, &username, &role, party_id),
        Command::Token(args) => token(&common, &args),
        Command::Audit(AuditCommand::Verify) => audit_verify(&common),
        Command::Openapi => {
            print!("{}", crate::openapi::spec_json());
            Ok(())
        }
    }
}

fn user_add(
    common: &CommonArgs,
    username: &str,
    role: &str,
    party_id: Option<i64>,
) -> Result<(), CliError> {
    let role: Role = role.parse()?;
    let (pool, _) = app::prepare(common, 1)?;
    let mut conn = pool.get()?;
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
    };
    let row = db::write_tx(&mut conn, |conn| {
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
    let (pool, secrets) = app::prepare(common, 1)?;
    let mut conn = pool.get()?;
    let row = auth::store::find_by_username(&mut conn, &args.username)?
        .filter(|r| !r.disabled)
        .ok_or_else(|| format!("no enabled user or API client named {}", args.username))?;
    let keys = auth::jwt::Keys::from_secret(&secrets.jwt_secret);
    let token = auth_routes::mint(&keys, &row, args.ttl).map_err(|e| e.detail)?;
    println!("{token}");
    Ok(())
}

fn audit_verify(common: &CommonArgs) -> Result<(), CliError> {
    let (pool, secrets) = app::prepare(common, 1)?;
    let mut conn = pool.get()?;
    let v = crate::audit::verify(&mut conn, &secrets.signing_key.verifying_key())?;
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
