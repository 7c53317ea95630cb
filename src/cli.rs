//! The `registry` command: serve (default), migrate, user add, token, audit verify, openapi, seed,
//! import, market sweep, keys.

use crate::auth::bootstrap::Secrets;
use crate::auth::{password, routes as auth_routes, Role};
use crate::config::{
    AuditCommand, Cli, Command, CommonArgs, ImportArgs, KeysCommand, MarketCommand, ReportArgs,
    ServeArgs, TokenArgs, UserCommand,
};
use crate::db::DbConn;
use crate::keys::KeyPaths;
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
        Command::Audit(AuditCommand::Verify { witness }) => audit_verify(&common, &witness),
        Command::Keys(cmd) => keys(&common, cmd),
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
        Command::Report(args) => report(&common, &args),
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

/// `registry report --month YYYY-MM --out DIR`: the month's green-finance statistics as
/// `green-finance-YYYY-MM.csv` and `.json`, and one SVG chart per breakdown.
fn report(common: &CommonArgs, args: &ReportArgs) -> Result<(), CliError> {
    let (first, last) = crate::statistics::rules::month_bounds(&args.month)
        .ok_or("--month is a month as YYYY-MM")?;
    let r = with_db(common, |conn, _| {
        crate::statistics::report(conn, &args.month, first, last).map_err(|e| e.detail.into())
    })?;
    std::fs::create_dir_all(&args.out)?;
    let stem = format!("green-finance-{}", args.month);
    let mut written = vec![args.out.join(format!("{stem}.csv"))];
    std::fs::write(&written[0], crate::statistics::csv(&r))?;
    let json = args.out.join(format!("{stem}.json"));
    std::fs::write(&json, serde_json::to_string_pretty(&r)?)?;
    written.push(json);
    for which in crate::statistics::CHARTS {
        if let Some(svg) = crate::statistics::chart(&r, which) {
            let path = args.out.join(format!("{stem}-{which}.svg"));
            std::fs::write(&path, svg?)?;
            written.push(path);
        }
    }
    for p in written {
        println!("{}", p.display());
    }
    Ok(())
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
    let two_person = match kind {
        crate::import::Kind::Lots => Some(crate::proposals::ProposalKind::LotImport),
        crate::import::Kind::ForestParcels => Some(crate::proposals::ProposalKind::ParcelImport),
        crate::import::Kind::Parties => None,
    };
    if let Some(proposal) = two_person {
        if auth::store::operator_count(conn)? > 0 {
            return propose_import(conn, secrets, args, kind, proposal);
        }
    }
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

/// Lots issue quantity and forest parcels are collateral banks lend against: once a registry has
/// operators, the command line validates the file and proposes it as the API does (a `lot_import`
/// or `parcel_import` proposal naming its SHA-256); an operator loads it by uploading the same
/// file (POST /v1/imports/KIND?proposal=ID). Only a registry without any operator yet (its
/// initial load) takes them from the command line directly.
fn propose_import(
    conn: &mut DbConn,
    secrets: &Secrets,
    args: &ImportArgs,
    kind: crate::import::Kind,
    proposal: crate::proposals::ProposalKind,
) -> Result<(), CliError> {
    use sha2::Digest;
    let bytes = std::fs::read(&args.file)
        .map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
    let asked = crate::import::routes::LotImportProposal {
        sha256: hex::encode(sha2::Sha256::digest(&bytes)),
        bytes: bytes.len() as u64,
        skip_invalid: args.skip_invalid,
    };
    let mut opts = crate::import::options(
        "cli:import".into(),
        args.file.display().to_string(),
        secrets.id_hmac_key.clone(),
        args.skip_invalid,
    );
    opts.validate_only = true;
    let r = crate::import::run(conn, kind, &args.file, &opts, &mut crate::import::Silent)?;
    for b in &r.bad_rows {
        println!("line {}, column {}: {}", b.line, b.column, b.reason);
    }
    if r.invalid > 0 && (!args.skip_invalid || r.invalid >= r.rows) {
        return Err(format!(
            "nothing proposed: {} bad rows (fix them, or pass --skip-invalid to propose the rest)",
            r.invalid
        )
        .into());
    }
    let now = db::now_micros(chrono::Utc::now());
    let cli = cli_principal("import");
    let row = db::write_tx(conn, |conn| {
        crate::proposals::propose(conn, proposal, &asked, None, &cli, now)
    })
    .map_err(|e| e.detail)?;
    println!(
        "{kind}: {} rows read ({}), {} invalid; nothing imported yet: proposed as proposal {id}. \
         An operator loads it by uploading the same file: POST /v1/imports/{kind}?proposal={id}",
        r.rows,
        r.encoding,
        r.invalid,
        id = row.id,
        kind = kind.as_str()
    );
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
    let cli = cli_principal("user-add");
    let (row, pending) = db::write_tx(conn, |conn| {
        // The command line may bootstrap a registry's first operator; afterwards an account it
        // creates is held exactly as the API holds it (see `hold_for_approval`).
        let first_operator = auth::store::operator_count(conn)? == 0;
        let row = auth_routes::add_principal(conn, &new, "cli:user-add")?;
        // Whoever runs this chose (or saw) the password: the account replaces it before acting.
        auth::store::mark_change_due(conn, row.id, now)?;
        let pending = auth_routes::hold_for_approval(conn, &cli, &row, first_operator, now)?;
        Ok((row, pending))
    })
    .map_err(|e: crate::error::ApiError| e.detail)?;
    println!(
        "created user {} (id {}, role {})",
        row.username, row.id, row.role
    );
    if let Some(id) = pending {
        println!(
            "it cannot log in yet: an operator (another person than the account's) approves \
             proposal {id} (POST /v1/proposals/{id}/approve)"
        );
    }
    println!("the password must be changed at first login (POST /v1/auth/password)");
    if generated {
        println!("password: {secret}");
    }
    Ok(())
}

/// The command line as the maker of what it proposes (`cli:NAME` in proposals and the audit
/// trail); it is no account, so any operator can be its checker.
fn cli_principal(name: &str) -> auth::Principal {
    auth::Principal {
        id: 0,
        username: format!("cli-{name}"),
        role: Role::UserAdmin,
        party_id: None,
        person_id: None,
    }
}

fn token(common: &CommonArgs, args: &TokenArgs) -> Result<(), CliError> {
    with_db(common, |conn, secrets| {
        let row = auth::store::find_by_username(conn, &args.username)?
            .filter(|r| !r.disabled)
            .ok_or_else(|| format!("no enabled user or API client named {}", args.username))?;
        if row.role == "operator" || row.role == "user_admin" {
            return Err(format!(
                "{} is a{} {}: `registry token` serves API clients and enterprise, bank and \
                 regulator accounts only. An operator or user administrator logs in with its own \
                 password (POST /v1/auth/token), so that maker-checker knows who acted",
                args.username,
                if row.role == "operator" { "n" } else { "" },
                row.role
            )
            .into());
        }
        let keys = auth::jwt::Keys::from_secret(&secrets.jwt_secret);
        let token = auth_routes::mint(&keys, &row, args.ttl).map_err(|e| e.detail)?;
        println!("{token}");
        Ok(())
    })
}

fn audit_verify(common: &CommonArgs, witness_files: &[std::path::PathBuf]) -> Result<(), CliError> {
    let mut witness = Vec::new();
    for file in witness_files {
        witness.extend(read_witness(file)?);
    }
    let v = with_db(common, |conn, secrets| {
        Ok(crate::audit::verify(conn, &secrets.ring, &witness)?)
    })?;
    println!(
        "chains: {}, events: {}, checkpoints: {}, witnessed checkpoints: {}",
        v.chains,
        v.events,
        v.checkpoints,
        witness.len()
    );
    for w in &v.warnings {
        println!("WARNING: {w}");
    }
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

/// Checkpoints a lender kept: a page as `GET /v1/audit/checkpoints` serves it, an array of
/// checkpoints or of such pages, or one checkpoint.
fn read_witness(file: &std::path::Path) -> Result<Vec<crate::audit::Checkpoint>, CliError> {
    fn collect(v: serde_json::Value, out: &mut Vec<serde_json::Value>) {
        match v {
            serde_json::Value::Array(items) => items.into_iter().for_each(|i| collect(i, out)),
            serde_json::Value::Object(mut o) if o.contains_key("items") => {
                collect(o.remove("items").unwrap_or_default(), out)
            }
            other => out.push(other),
        }
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read the witness {}: {e}", file.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("the witness {} is not JSON: {e}", file.display()))?;
    let mut items = Vec::new();
    collect(value, &mut items);
    items
        .into_iter()
        .map(|i| {
            serde_json::from_value(i).map_err(|e| {
                format!(
                    "the witness {} holds something that is not a checkpoint: {e}",
                    file.display()
                )
                .into()
            })
        })
        .collect()
}

fn keys(common: &CommonArgs, cmd: KeysCommand) -> Result<(), CliError> {
    let paths = KeyPaths::of(common);
    match cmd {
        KeysCommand::Init { dir } => {
            let paths = match dir {
                Some(d) => KeyPaths::in_dir(&d),
                None => paths,
            };
            let written = crate::keys::init(&paths)?;
            for f in &written {
                println!("wrote {}", f.display());
            }
            if written.is_empty() {
                println!(
                    "every key file already exists in {}; nothing written",
                    paths.dir.display()
                );
            }
            println!(
                "give every registry process these files: --keys-dir {} (REGISTRY_KEYS_DIR)",
                paths.dir.display()
            );
            Ok(())
        }
        KeysCommand::Rotate => {
            let (old, new) = crate::keys::rotate(&paths)?;
            println!(
                "signing key rotated: {old} → {new}; {old} is kept in {} for verification",
                paths.retired().display()
            );
            println!("restart every registry process (each reads its keys at start)");
            Ok(())
        }
        KeysCommand::Export => keys_export(common, &paths),
    }
}

/// Moves the keys a registry kept in `settings` rows into the key files, then deletes the rows.
/// A file that already holds a different key stops it: keys are never replaced.
fn keys_export(common: &CommonArgs, paths: &KeyPaths) -> Result<(), CliError> {
    use crate::schema::{settings as st, signing_keys as sk};
    use base64::Engine;
    use diesel::prelude::*;
    let url = common.database_url();
    let mut conn = db::establish(&url)
        .map_err(|e| format!("cannot open the database {}: {e}", app::redact(&url)))?;
    let rows: Vec<(String, String)> = st::table
        .filter(st::name.eq_any(auth::bootstrap::KEY_SETTINGS))
        .select((st::name, st::value))
        .load(&mut conn)?;
    if rows.is_empty() {
        println!("the database holds no keys; nothing to export");
        return Ok(());
    }
    for (name, value) in &rows {
        let path = match name.as_str() {
            "jwt_secret" => &paths.jwt,
            "signing_key" => &paths.signing,
            _ => &paths.id_hmac,
        };
        let bytes = hex::decode(value.trim())
            .map_err(|_| format!("settings row {name} is not a hex key"))?;
        if path.exists() {
            if crate::keys::read_key(path, 1)? != bytes {
                return Err(format!(
                    "{} already holds a different key than settings row {name}; move that file \
                     away or point the option at another path (nothing was changed)",
                    path.display()
                )
                .into());
            }
            println!("{} already holds settings row {name}", path.display());
        } else {
            crate::keys::write_new(path, value.trim())?;
            println!("wrote settings row {name} to {}", path.display());
        }
    }
    // Keys the registry signed with before: their public halves, so old certificates verify.
    if paths.signing.exists() {
        let active = crate::keys::load(paths, false).map(|s| s.ring.active).ok();
        let published: Vec<(String, String)> = sk::table
            .select((sk::key_id, sk::public_key))
            .load(&mut conn)
            .unwrap_or_default();
        for (id, public) in published {
            if Some(&id) == active.as_ref() {
                continue;
            }
            let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(&public) else {
                continue;
            };
            let file = paths.retired().join(format!("{id}.pub"));
            if crate::keys::write_new(&file, &hex::encode(raw))? {
                println!("wrote retired public key {id} to {}", file.display());
            }
        }
    }
    let names: Vec<&String> = rows.iter().map(|(n, _)| n).collect();
    diesel::delete(st::table.filter(st::name.eq_any(names))).execute(&mut conn)?;
    println!(
        "the keys are removed from the database; start every process with --keys-dir {} \
         (or the single-file options)",
        paths.dir.display()
    );
    Ok(())
}
