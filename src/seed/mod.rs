//! `registry seed`: the Nanping demo data set (seeds/ in the repository, embedded in the binary).
//!
//! Parties, lots and forest parcels load through the CSV importer; pledges and mortgages are
//! created by calling the real API endpoints in-process (the same `app::routes` and `AppState`
//! the server uses), so every rule, audit event and invariant applies to them. Re-running changes
//! nothing: a `seed.loaded` audit event marks a completed seed. Any other database that holds an
//! account besides the bootstrap admin, or a party, lot or parcel, is refused before anything is
//! written. Enterprise and bank demo accounts go through an operator's approval, as the API's do.

mod history;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
use actix_web::{test, web, App};
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::bootstrap::Secrets;
use crate::auth::jwt::Keys;
use crate::auth::{password, routes as auth_routes, store as auth_store};
use crate::config::HashCost;
use crate::db::{self, DbConn, DbPool};
use crate::import::{self, Kind, Silent};
use crate::kernel::clock::Clock;
use crate::kernel::state::AppState;
use crate::schema::{
    audit_events as ev, forest_mortgages as fm, forest_parcels as fp, lots, parties as pt,
    pledges as pl,
};

pub type SeedError = Box<dyn std::error::Error + Send + Sync>;

/// The files of the data set, as committed under seeds/.
const FILES: [(&str, &str); 5] = [
    ("parties.csv", include_str!("../../seeds/parties.csv")),
    ("lots.csv", include_str!("../../seeds/lots.csv")),
    (
        "forest_parcels.csv",
        include_str!("../../seeds/forest_parcels.csv"),
    ),
    ("demo.json", include_str!("../../seeds/demo.json")),
    ("trades.csv", include_str!("../../seeds/trades.csv")),
];

const ACTOR: &str = "seed";

#[derive(Debug, Deserialize)]
struct Demo {
    users: Vec<DemoUserSpec>,
    pledges: Vec<PledgeSpec>,
    mortgages: Vec<MortgageSpec>,
    #[serde(default)]
    financing_requests: Vec<FinancingSpec>,
}

/// A financing request (融资需求) posted by a demo applicant; taken by a bank when `taken_by`
/// names one, and funded when that bank also accepts the pledge with `accept`'s terms.
#[derive(Debug, Deserialize)]
struct FinancingSpec {
    applicant: String,
    lot_source_document: String,
    quantity: String,
    amount: String,
    term_months: i32,
    purpose: String,
    green_tag: String,
    taken_by: Option<String>,
    accept: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct DemoUserSpec {
    username: String,
    role: String,
    party_uscc: Option<String>,
    party_id_number: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PledgeSpec {
    pledgor: String,
    lender: String,
    lot_source_document: String,
    quantity: String,
    accept: Value,
    enforce: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct MortgageSpec {
    mortgagor: String,
    lender: String,
    parcels: Vec<String>,
    complete: Value,
    official_certificate_no: String,
}

/// A demo user; the password only when this run created it.
#[derive(Debug)]
pub struct DemoUser {
    pub username: String,
    pub role: String,
    pub password: Option<String>,
}

/// What a seed run did.
#[derive(Debug, Default)]
pub struct Seeded {
    /// True when the data set was already loaded and nothing changed.
    pub already: bool,
    pub lines: Vec<String>,
    pub users: Vec<DemoUser>,
    /// A registered seeded pledge: (registration number, verification code).
    pub example: Option<(String, String)>,
}

impl Seeded {
    /// Prints the outcome; `base` is the server's URL when known.
    pub fn print(&self, base: &str) {
        for l in &self.lines {
            println!("{l}");
        }
        if self.users.iter().any(|u| u.password.is_some()) {
            println!("Demo users (passwords shown once):");
            for u in &self.users {
                if let Some(p) = &u.password {
                    println!("  {:<18} {:<10} {p}", u.username, u.role);
                }
            }
        }
        if let Some((no, code)) = &self.example {
            println!("Verify a seeded pledge: {base}/verify?registration_no={no}&verification_code={code}");
        }
    }
}

fn read(dir: Option<&Path>, name: &str) -> Result<String, SeedError> {
    match dir {
        Some(d) => Ok(std::fs::read_to_string(d.join(name))
            .map_err(|e| format!("{}: {e}", d.join(name).display()))?),
        None => Ok(FILES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s.to_string())
            .unwrap_or_default()),
    }
}

/// Whether a completed seed is recorded.
pub fn seeded(conn: &mut DbConn) -> QueryResult<bool> {
    let n: i64 = ev::table
        .filter(ev::chain.eq("seed"))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Whether the registry is brand new: no account but the bootstrap user administrator, no party,
/// lot or forest parcel. Only such a registry takes the demo data set.
pub fn empty(conn: &mut DbConn) -> QueryResult<bool> {
    Ok(in_use(conn)?.is_none())
}

/// What a registry already holds that the demo data set must not be mixed into, or None.
fn in_use(conn: &mut DbConn) -> QueryResult<Option<String>> {
    use crate::schema::principals as pr;
    let accounts: i64 = pr::table
        .filter(pr::username.ne("admin").or(pr::role.ne("user_admin")))
        .count()
        .get_result(conn)?;
    let parties: i64 = pt::table.count().get_result(conn)?;
    let lots: i64 = lots::table.count().get_result(conn)?;
    let parcels: i64 = fp::table.count().get_result(conn)?;
    Ok((accounts + parties + lots + parcels > 0).then(|| {
        format!(
            "{accounts} accounts besides the bootstrap admin, {parties} parties, {lots} lots, \
             {parcels} forest parcels"
        )
    }))
}

/// Loads the data set (from `dir`, or the copy embedded in the binary).
pub async fn run(
    pool: &DbPool,
    secrets: &Secrets,
    hash_cost: HashCost,
    dir: Option<PathBuf>,
) -> Result<Seeded, SeedError> {
    let demo: Demo = serde_json::from_str(&read(dir.as_deref(), "demo.json")?)
        .map_err(|e| format!("demo.json: {e}"))?;
    let mut conn = pool.get()?;
    let mut out = Seeded::default();
    if seeded(&mut conn)? {
        out.already = true;
        out.lines
            .push("The demo data set is already loaded: nothing changed.".into());
        out.example = example(&mut conn, &demo)?;
        return Ok(out);
    }

    // All or nothing: demo operators, parties and lots never join a registry in use, and
    // everything is checked before the first row is written.
    if let Some(held) = in_use(&mut conn)? {
        return Err(format!(
            "registry seed refuses this database: it already holds {held}. The demo data set \
             loads only into a new registry (a seed that stopped half-way leaves one too: start \
             again from a new database)"
        )
        .into());
    }

    let tmp = tempfile::tempdir()?;
    for (kind, name) in [
        (Kind::Parties, "parties.csv"),
        (Kind::Lots, "lots.csv"),
        (Kind::ForestParcels, "forest_parcels.csv"),
    ] {
        let path = tmp.path().join(name);
        std::fs::write(&path, read(dir.as_deref(), name)?)?;
        let mut opts = import::options(
            ACTOR.into(),
            format!("seeds/{name}"),
            secrets.id_hmac_key.clone(),
            false,
        );
        opts.skip_existing = true;
        let r = import::run(&mut conn, kind, &path, &opts, &mut Silent)
            .map_err(|e| format!("{name}: {e}"))?;
        if r.invalid > 0 {
            let bad: Vec<String> = r
                .bad_rows
                .iter()
                .map(|b| format!("line {} {}: {}", b.line, b.column, b.reason))
                .collect();
            return Err(format!("{name} has bad rows:\n{}", bad.join("\n")).into());
        }
        out.lines.push(format!(
            "{name}: {} imported, {} already registered",
            r.imported, r.existing
        ));
    }

    out.users = users(&mut conn, &demo, secrets, hash_cost)?;

    // The encumbrances go through the real endpoints, in-process.
    let state = web::Data::new(AppState {
        pool: pool.clone(),
        keys: Arc::new(Keys::from_secret(&secrets.jwt_secret)),
        secrets: Arc::new(secrets.clone()),
        clock: Clock::default(),
        token_ttl: 600,
        hash_cost,
        test_clock: false,
        exposure: Default::default(),
    });
    let app = test::init_service(
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(crate::kernel::json::JSON_LIMIT))
            .configure(crate::routes::routes),
    )
    .await;
    let api = Api {
        state: state.clone(),
    };
    let (mut pledges, mut mortgages) = (0, 0);
    for (i, p) in demo.pledges.iter().enumerate() {
        let reference = p.accept["loan_reference"].as_str().unwrap_or_default();
        let exists: i64 = pl::table
            .filter(pl::loan_reference.eq(reference))
            .count()
            .get_result(&mut *conn)?;
        if exists > 0 {
            continue;
        }
        let lot: i64 = lots::table
            .filter(lots::source_document.eq(&p.lot_source_document))
            .select(lots::id)
            .first(&mut *conn)
            .map_err(|_| format!("pledge {}: no lot {}", i + 1, p.lot_source_document))?;
        let lender = api.party_of(&mut conn, &p.lender)?;
        let applied = api
            .call(
                &app,
                &mut conn,
                &p.pledgor,
                "/v1/pledges".into(),
                json!({"lot_id": lot, "quantity": p.quantity, "lender_party_id": lender}),
                StatusCode::CREATED,
            )
            .await?;
        let id = applied["id"].as_i64().unwrap_or_default();
        let accepted = api
            .call(
                &app,
                &mut conn,
                &p.lender,
                format!("/v1/pledges/{id}/accept"),
                p.accept.clone(),
                StatusCode::OK,
            )
            .await?;
        if let Some(e) = &p.enforce {
            let mut body = e.clone();
            body["amendment_code"] = accepted["amendment_code"].clone();
            api.call(
                &app,
                &mut conn,
                &p.lender,
                format!("/v1/pledges/{id}/enforce"),
                body,
                StatusCode::OK,
            )
            .await?;
        }
        pledges += 1;
    }
    for (i, m) in demo.mortgages.iter().enumerate() {
        let exists: i64 = fm::table
            .filter(fm::official_certificate_no.eq(&m.official_certificate_no))
            .count()
            .get_result(&mut *conn)?;
        if exists > 0 {
            continue;
        }
        let mut parcel_ids = Vec::new();
        for c in &m.parcels {
            let id: i64 = fp::table
                .filter(fp::certificate_no.eq(c))
                .select(fp::id)
                .first(&mut *conn)
                .map_err(|_| format!("mortgage {}: no parcel {c}", i + 1))?;
            parcel_ids.push(id);
        }
        let lender = api.party_of(&mut conn, &m.lender)?;
        let applied = api
            .call(
                &app,
                &mut conn,
                &m.mortgagor,
                "/v1/forest-mortgages".into(),
                json!({"parcel_ids": parcel_ids, "lender_party_id": lender}),
                StatusCode::CREATED,
            )
            .await?;
        let id = applied["id"].as_i64().unwrap_or_default();
        let mut terms = m.complete.clone();
        terms["insurance"]["beneficiary_party_id"] = json!(lender);
        api.call(
            &app,
            &mut conn,
            &m.lender,
            format!("/v1/forest-mortgages/{id}/complete"),
            terms,
            StatusCode::OK,
        )
        .await?;
        // Microseconds: the official time may not lie before the completion just recorded (R14).
        let now = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
        api.call(
            &app,
            &mut conn,
            &m.lender,
            format!("/v1/forest-mortgages/{id}/official-registration"),
            json!({"certificate_no": m.official_certificate_no, "registered_at": now}),
            StatusCode::OK,
        )
        .await?;
        // An operator confirms the lender's entry before the mortgage ranks (R14).
        api.call(
            &app,
            &mut conn,
            "demo-operator",
            format!("/v1/forest-mortgages/{id}/official-registration/confirm"),
            json!({}),
            StatusCode::OK,
        )
        .await?;
        mortgages += 1;
    }
    let financing = seed_financing(&app, &api, &mut conn, &demo).await?;
    out.lines.push(format!(
        "demo.json: {financing} financing requests (融资需求) posted"
    ));
    out.lines.push(format!(
        "demo.json: {} users created, {pledges} pledges, {mortgages} forest mortgages",
        out.users.iter().filter(|u| u.password.is_some()).count()
    ));
    let trades = history::load(&app, &api, &mut conn, &read(dir.as_deref(), "trades.csv")?).await?;
    out.lines.push(format!(
        "trades.csv: {trades} trades of the price history settled"
    ));
    let at = db::now_micros(chrono::Utc::now());
    db::write_tx(&mut conn, |conn| {
        crate::audit::record(
            conn,
            crate::audit::Event {
                chain: "seed".into(),
                actor: ACTOR,
                action: "seed.loaded",
                object_type: "seed",
                object_id: "nanping-demo".into(),
                payload: json!({"pledges": pledges, "mortgages": mortgages, "trades": trades}),
                at,
            },
        )
    })?;
    out.example = example(&mut conn, &demo)?;
    Ok(out)
}

/// Posts the demo financing requests through the real endpoints (once: nothing when the
/// registry already has any), takes and funds those the data set says.
async fn seed_financing<S, B>(
    app: &S,
    api: &Api,
    conn: &mut DbConn,
    demo: &Demo,
) -> Result<usize, SeedError>
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    use crate::schema::financing_requests as fr;
    let existing: i64 = fr::table.count().get_result(&mut *conn)?;
    if existing > 0 {
        return Ok(0);
    }
    for (i, f) in demo.financing_requests.iter().enumerate() {
        let lot: i64 = lots::table
            .filter(lots::source_document.eq(&f.lot_source_document))
            .select(lots::id)
            .first(&mut *conn)
            .map_err(|_| {
                format!(
                    "financing request {}: no lot {}",
                    i + 1,
                    f.lot_source_document
                )
            })?;
        let posted = api
            .call(
                app,
                conn,
                &f.applicant,
                "/v1/financing-requests".into(),
                json!({"amount": f.amount, "term_months": f.term_months, "purpose": f.purpose,
                    "green_tag": f.green_tag, "collateral": {"lot_id": lot, "quantity": f.quantity}}),
                StatusCode::CREATED,
            )
            .await?;
        let id = posted["id"].as_i64().unwrap_or_default();
        let Some(bank) = &f.taken_by else { continue };
        let taken = api
            .call(
                app,
                conn,
                bank,
                format!("/v1/financing-requests/{id}/take"),
                json!({}),
                StatusCode::OK,
            )
            .await?;
        if let Some(terms) = &f.accept {
            let pledge = taken["pledge_id"].as_i64().unwrap_or_default();
            api.call(
                app,
                conn,
                bank,
                format!("/v1/pledges/{pledge}/accept"),
                terms.clone(),
                StatusCode::OK,
            )
            .await?;
        }
    }
    Ok(demo.financing_requests.len())
}

/// The first seeded pledge that is registered, with its verification code.
fn example(conn: &mut DbConn, demo: &Demo) -> QueryResult<Option<(String, String)>> {
    for p in &demo.pledges {
        let reference = p.accept["loan_reference"].as_str().unwrap_or_default();
        let row: Option<(Option<String>, Option<String>)> = pl::table
            .filter(pl::loan_reference.eq(reference))
            .filter(pl::status.eq("registered"))
            .select((pl::registration_no, pl::verification_code))
            .first(conn)
            .optional()?;
        if let Some((Some(no), Some(code))) = row {
            return Ok(Some((no, code)));
        }
    }
    Ok(None)
}

fn users(
    conn: &mut DbConn,
    demo: &Demo,
    secrets: &Secrets,
    cost: HashCost,
) -> Result<Vec<DemoUser>, SeedError> {
    let mut out = Vec::new();
    let now = db::now_micros(chrono::Utc::now());
    // The seed proposes the accounts it creates, as a user administrator would.
    let maker = crate::auth::Principal {
        id: 0,
        username: ACTOR.into(),
        role: crate::auth::Role::UserAdmin,
        party_id: None,
        person_id: None,
    };
    for u in &demo.users {
        if auth_store::find_by_username(conn, &u.username)?.is_some() {
            out.push(DemoUser {
                username: u.username.clone(),
                role: u.role.clone(),
                password: None,
            });
            continue;
        }
        let party_id: Option<i64> = match (&u.party_uscc, &u.party_id_number) {
            (Some(code), _) => Some(
                pt::table
                    .filter(pt::uscc.eq(code))
                    .select(pt::id)
                    .first(conn)
                    .map_err(|_| format!("user {}: no party {code}", u.username))?,
            ),
            (None, Some(id)) => {
                let hash = crate::parties::uscc::IdNumber::parse(id)
                    .map_err(|e| format!("user {}: {e}", u.username))?
                    .keyed_hash(&secrets.id_hmac_key);
                Some(
                    pt::table
                        .filter(pt::id_number_hash.eq(hash))
                        .select(pt::id)
                        .first(conn)
                        .map_err(|_| format!("user {}: no such individual", u.username))?,
                )
            }
            (None, None) => None,
        };
        let secret = password::random_secret(16);
        let hash = password::hash(&secret, cost)?;
        let person = format!("DEMO:{}", u.username.to_uppercase());
        let new = auth_store::NewPrincipal {
            kind: "user",
            username: &u.username,
            secret_hash: &hash,
            role: &u.role,
            party_id,
            created_at: now,
            // Each demo operator is a person of its own (maker-checker compares persons).
            person_id: (u.role == "operator").then_some(person.as_str()),
        };
        db::write_tx(conn, |conn| {
            let first_operator = auth_store::operator_count(conn)? == 0;
            let row = auth_routes::add_principal(conn, &new, ACTOR)?;
            let held = auth_routes::hold_for_approval(conn, &maker, &row, first_operator, now)?;
            if let Some(id) = held {
                // The first demo operator approves, as an operator approves the API's accounts.
                let checker = auth_store::find_by_username(conn, "demo-operator")?
                    .filter(|r| r.role == "operator" && r.id != row.id)
                    .ok_or_else(|| {
                        crate::error::ApiError::internal("demo.json names demo-operator first")
                    })?;
                let checker = crate::auth::Principal {
                    id: checker.id,
                    username: checker.username,
                    role: crate::auth::Role::Operator,
                    party_id: checker.party_id,
                    person_id: checker.person_id,
                };
                crate::proposals::routes::approve_in(conn, id, &checker, now.date(), now)?;
            }
            Ok(())
        })
        .map_err(|e: crate::error::ApiError| format!("user {}: {}", u.username, e.detail))?;
        out.push(DemoUser {
            username: u.username.clone(),
            role: u.role.clone(),
            password: Some(secret),
        });
    }
    Ok(out)
}

/// Calls the real endpoints as a demo user.
struct Api {
    state: web::Data<AppState>,
}

impl Api {
    fn party_of(&self, conn: &mut DbConn, username: &str) -> Result<i64, SeedError> {
        auth_store::find_by_username(conn, username)?
            .and_then(|u| u.party_id)
            .ok_or_else(|| format!("demo user {username} has no party").into())
    }

    #[allow(clippy::too_many_arguments)]
    async fn call<S, B>(
        &self,
        app: &S,
        conn: &mut DbConn,
        username: &str,
        path: String,
        body: Value,
        expect: StatusCode,
    ) -> Result<Value, SeedError>
    where
        S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
        B: actix_web::body::MessageBody,
    {
        let row = auth_store::find_by_username(conn, username)?
            .ok_or_else(|| format!("no demo user {username}"))?;
        let token = auth_routes::mint(&self.state.keys, &row, 600).map_err(|e| e.detail)?;
        let req = test::TestRequest::default()
            .method(Method::POST)
            .uri(&path)
            .insert_header(("Authorization", format!("Bearer {token}")))
            .insert_header(("Idempotency-Key", uuid::Uuid::new_v4().to_string()))
            .set_json(&body)
            .to_request();
        let res = test::call_service(app, req).await;
        let status = res.status();
        let bytes = test::read_body(res).await;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status != expect {
            return Err(
                format!("seed: POST {path} as {username} answered {status}: {value}").into(),
            );
        }
        Ok(value)
    }
}
