//! The bank workload (after Jepsen's "bank" test): many clients across server processes on
//! one database run a random mix of transfers (request, confirm, approve, cancel), pledges (apply,
//! accept, release), retirements, and the market: listings, purchases, payments and withdrawals. Every acknowledged operation is kept in a client-side history;
//! the checker then verifies, against the registry:
//! - conservation per lot and no negative bucket (`assert_conserved`);
//! - every bucket of every holding equals what the acknowledged operations imply, so nothing
//!   acknowledged is lost and nothing else happened — in particular no quantity is both pledged
//!   and transferred away;
//! - every acknowledged operation is present, looked up by id, in its last acknowledged state;
//! - exactly once: the registry holds exactly as many transfers, pledges and retirements as were
//!   acknowledged, even when requests were retried with the same Idempotency-Key;
//! - no response was a 5xx.
//!
//! The crash variants kill -9 a server process several times during the run and restart it;
//! clients whose request died retry it with the same key until they get an answer.
//!
//! Short forms run in the normal suite; the long forms are `#[ignore]`d and read their duration
//! from `WORKLOAD_SECS` (bench runs them: `WORKLOAD_SECS=300 cargo test --release --test workload
//! -- --ignored --nocapture`).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use common::ledger::{assert_conserved, dec, holdings, issue, lot_request};
use common::{party, user, Api, Backend, Db, Reply, Server};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde_json::{json, Value};

const CLIENTS: usize = 32;
const ENTERPRISES: usize = 8;
const BANKS: usize = 2;
/// Each enterprise starts with one lot of each of these types.
const TYPES: [&str; 2] = ["CA", "EM"];
const START_QUANTITY: i64 = 100_000;
const SHORT_SECS: u64 = 8;

// ---------------------------------------------------------------------------------------------
// The servers: a slot per process; a slot is empty while its process is down.

struct Cluster {
    db: Db,
    servers: Vec<Option<Server>>,
    bases: Arc<RwLock<Vec<Option<String>>>>,
}

impl Cluster {
    fn start(backend: Backend, processes: usize) -> Cluster {
        let first = Server::start(backend);
        let db = first.db.clone();
        let mut servers = vec![Some(first)];
        for _ in 1..processes {
            servers.push(Some(Server::on(db.clone())));
        }
        let bases = servers
            .iter()
            .map(|s| s.as_ref().map(|s| s.base.clone()))
            .collect();
        Cluster {
            db,
            servers,
            bases: Arc::new(RwLock::new(bases)),
        }
    }

    fn admin(&self) -> Api {
        self.servers[0].as_ref().expect("server 0 up").admin()
    }

    /// kill -9 the process in `slot`.
    fn kill(&mut self, slot: usize) {
        self.bases.write().unwrap()[slot] = None;
        if let Some(mut s) = self.servers[slot].take() {
            s.kill();
        }
    }

    /// Starts a new process in `slot` on the same database.
    fn restart(&mut self, slot: usize) {
        let s = Server::on(self.db.clone());
        self.bases.write().unwrap()[slot] = Some(s.base.clone());
        self.servers[slot] = Some(s);
    }

    /// An admin client on any live process.
    fn any_admin(&self, token: &str) -> Api {
        let base = self
            .servers
            .iter()
            .flatten()
            .next()
            .expect("a live server")
            .base
            .clone();
        Api::new(&base).with_token(token)
    }
}

// ---------------------------------------------------------------------------------------------
// The parties, their tokens, and the lots.

#[derive(Clone)]
struct Actors {
    admin: String,
    checker: String,
    /// (party id, token) of each enterprise.
    ents: Vec<(i64, String)>,
    banks: Vec<(i64, String)>,
    /// (lot id, right type).
    lots: Vec<(i64, &'static str)>,
}

fn setup(admin: &Api) -> (Actors, Model) {
    let checker = user(admin, "operator", None, "checker");
    let mut ents = Vec::new();
    for i in 0..ENTERPRISES {
        let p = party(admin, "enterprise", 10 + i as u32);
        let api = user(admin, "enterprise", Some(p), &format!("ent-{i}"));
        ents.push((p, api.token.clone().unwrap()));
    }
    let mut banks = Vec::new();
    for i in 0..BANKS {
        let p = party(admin, "bank", 50 + i as u32);
        let api = user(admin, "bank", Some(p), &format!("bank-{i}"));
        banks.push((p, api.token.clone().unwrap()));
    }
    let mut model = Model::default();
    let mut lots = Vec::new();
    for (i, (p, _)) in ents.iter().enumerate() {
        for t in TYPES {
            let body = lot_request(
                t,
                *p,
                &START_QUANTITY.to_string(),
                &format!("workload-{t}-{i}"),
            );
            let id = issue(admin, &checker, body)["id"].as_i64().unwrap();
            lots.push((id, t));
            model.issued.insert(id, START_QUANTITY);
            model.bucket(*p, id).available = START_QUANTITY;
        }
    }
    let actors = Actors {
        admin: admin.token.clone().unwrap(),
        checker: checker.token.clone().unwrap(),
        ents,
        banks,
        lots,
    };
    (actors, model)
}

// ---------------------------------------------------------------------------------------------
// The model: what the acknowledged operations imply, and the history to look them up by.

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
struct Buckets {
    available: i64,
    listed: i64,
    in_transfer: i64,
    pledged: i64,
}

#[derive(Clone, Debug)]
struct Listing {
    lot: i64,
    seller: usize,
    /// Unsold, as far as the acknowledged purchases tell.
    remaining: i64,
    withdrawn: bool,
}

#[derive(Clone, Debug)]
struct Trade {
    lot: i64,
    seller: usize,
    buyer: usize,
    quantity: i64,
    status: String,
}

#[derive(Clone, Debug)]
struct Transfer {
    lot: i64,
    from: usize,
    to: usize,
    quantity: i64,
    needs_approval: bool,
    /// The last acknowledged status.
    status: String,
}

#[derive(Clone, Debug)]
struct Pledge {
    lot: i64,
    pledgor: usize,
    bank: usize,
    quantity: i64,
    status: String,
    /// The amendment code (修改码) the lender needs to release; shown once by the accept, so
    /// absent when only a replay of it came back (a crash cut the first answer off).
    code: Option<String>,
}

#[derive(Default)]
struct Model {
    issued: HashMap<i64, i64>,
    retired: HashMap<i64, i64>,
    holdings: HashMap<(i64, i64), Buckets>,
    transfers: HashMap<i64, Transfer>,
    pledges: HashMap<i64, Pledge>,
    /// (retirement id, lot, quantity).
    retirements: Vec<(i64, i64, i64)>,
    listings: HashMap<i64, Listing>,
    trades: HashMap<i64, Trade>,
}

impl Model {
    fn bucket(&mut self, party: i64, lot: i64) -> &mut Buckets {
        self.holdings.entry((party, lot)).or_default()
    }
}

#[derive(Default)]
struct Stats {
    responses: AtomicU64,
    five_xx: AtomicU64,
    transport_retries: AtomicU64,
    /// Answers that did not come from the registry (see `Shared::post`).
    foreign: AtomicU64,
    in_progress_retries: AtomicU64,
    replays: AtomicU64,
    refused: AtomicU64,
    acked: AtomicU64,
}

/// What a client shares with the others.
struct Shared {
    actors: Actors,
    bases: Arc<RwLock<Vec<Option<String>>>>,
    model: Mutex<Model>,
    stats: Stats,
    /// Unexpected answers (a status the workload does not allow), reported at the end.
    unexpected: Mutex<Vec<String>>,
    /// Refusals by `code`, reported at the end.
    refusals: Mutex<HashMap<String, u64>>,
}

impl Shared {
    /// Sends one POST until it gets a definitive answer: retried with the same key after a
    /// transport failure (a killed process).
    fn post(&self, prefer: usize, token: &str, path: &str, key: &str, body: &Value) -> Reply {
        loop {
            let base = {
                let bases = self.bases.read().unwrap();
                bases[prefer % bases.len()]
                    .clone()
                    .or_else(|| bases.iter().flatten().next().cloned())
            };
            let Some(base) = base else {
                thread::sleep(Duration::from_millis(50));
                continue;
            };
            match Api::new(&base)
                .with_token(token)
                .try_post_key(path, key, body)
            {
                Err(_) => {
                    self.stats.transport_retries.fetch_add(1, Ordering::Relaxed);
                    thread::sleep(Duration::from_millis(50));
                }
                // Every answer of the registry carries a request id. One without it came from
                // another program: on a shared machine, the port of a killed process can be taken
                // by someone else's server before the clients learn it is gone. Not an answer
                // to this request: retry like a transport failure, and report it.
                Ok(r) if r.header("x-request-id").is_none() => {
                    self.stats.foreign.fetch_add(1, Ordering::Relaxed);
                    eprintln!(
                        "workload: an answer without x-request-id from {base} (not the registry?): {} {}",
                        r.status, r.body
                    );
                    thread::sleep(Duration::from_millis(50));
                }
                Ok(r) => {
                    self.stats.responses.fetch_add(1, Ordering::Relaxed);
                    if r.status.is_server_error() {
                        self.stats.five_xx.fetch_add(1, Ordering::Relaxed);
                        self.unexpected
                            .lock()
                            .unwrap()
                            .push(format!("POST {path}: {} {}", r.status, r.body));
                        thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                    if r.code() == "idempotency_request_in_progress" {
                        // Nothing may hold a key: its record commits with the effect, and a
                        // duplicate waits for the first attempt to end. Counted and reported.
                        self.stats
                            .in_progress_retries
                            .fetch_add(1, Ordering::Relaxed);
                        self.unexpected
                            .lock()
                            .unwrap()
                            .push(format!("POST {path}: a key held by another attempt"));
                        thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                    if r.header("idempotent-replayed").is_some() {
                        self.stats.replays.fetch_add(1, Ordering::Relaxed);
                    }
                    if r.status.is_success() {
                        self.stats.acked.fetch_add(1, Ordering::Relaxed);
                    } else {
                        self.stats.refused.fetch_add(1, Ordering::Relaxed);
                        *self
                            .refusals
                            .lock()
                            .unwrap()
                            .entry(format!(
                                "{} {}",
                                path.split('/').nth(2).unwrap_or(""),
                                r.code()
                            ))
                            .or_default() += 1;
                        if std::env::var("WORKLOAD_DEBUG").is_ok() {
                            eprintln!("refused {path} {body}: {}", r.body);
                        }
                        // Refusals the workload provokes: not enough quantity, a state that
                        // moved on. Anything else is a defect of the workload or the server.
                        if !matches!(r.status.as_u16(), 409 | 422) {
                            self.unexpected
                                .lock()
                                .unwrap()
                                .push(format!("POST {path} {body}: {} {}", r.status, r.body));
                        }
                    }
                    return r;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One client.

/// Records an acknowledged status. Two clients may act on one object at once (a confirm and a
/// cancel of the same transfer) and learn their answers in either order, so a status only moves
/// forward: requested/applied → confirmed/registered → a final one. Two different final statuses
/// both acknowledged would be a defect: returned as a conflict.
fn advance(current: &mut String, new: String) -> Option<String> {
    let rank = |s: &str| match s {
        "requested" | "applied" => 0,
        "confirmed" | "registered" => 1,
        _ => 2,
    };
    if rank(&new) == 2 && rank(current) == 2 && *current != new {
        return Some(format!("acknowledged both {current} and {new}"));
    }
    if rank(&new) >= rank(current) {
        *current = new;
    }
    None
}

/// A random lot (of type `only`, if given) in which `party` has quantity available, as far as
/// the acknowledged operations tell: (lot, type, available).
fn pick_lot(
    shared: &Shared,
    rng: &mut StdRng,
    party: i64,
    only: Option<&str>,
) -> Option<(i64, &'static str, i64)> {
    let m = shared.model.lock().unwrap();
    let held: Vec<(i64, &'static str, i64)> = shared
        .actors
        .lots
        .iter()
        .filter(|(_, t)| only.is_none_or(|o| o == *t))
        .filter_map(|(lot, t)| {
            let have = m.holdings.get(&(party, *lot)).map_or(0, |b| b.available);
            (have > 0).then_some((*lot, *t, have))
        })
        .collect();
    (!held.is_empty()).then(|| held[rng.random_range(0..held.len())])
}

fn client(c: usize, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let mut rng = StdRng::seed_from_u64(0x5eed_0000 + c as u64);
    let a = &shared.actors;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("c{c}-op{n}");
        let roll = rng.random_range(0..100);
        match roll {
            // A new transfer between two enterprises.
            0..=24 => {
                let from = rng.random_range(0..ENTERPRISES);
                let to = (from + rng.random_range(1..ENTERPRISES)) % ENTERPRISES;
                let Some((lot, t, have)) = pick_lot(&shared, &mut rng, a.ents[from].0, None) else {
                    continue;
                };
                let quantity = rng.random_range(1..=have.min(500));
                let mut body = json!({"lot_id": lot, "to_party_id": a.ents[to].0, "quantity": quantity.to_string()});
                if t == "EM" {
                    body["unit_price"] = json!("100");
                    body["years"] = json!(1);
                }
                let r = shared.post(c, &a.ents[from].1, "/v1/transfers", &key, &body);
                if r.status.as_u16() == 201 {
                    let id = r.body["id"].as_i64().unwrap();
                    let mut m = shared.model.lock().unwrap();
                    let b = m.bucket(a.ents[from].0, lot);
                    b.available -= quantity;
                    b.in_transfer += quantity;
                    m.transfers.insert(
                        id,
                        Transfer {
                            lot,
                            from,
                            to,
                            quantity,
                            needs_approval: r.body["requires_approval"] == true,
                            status: r.body["status"].as_str().unwrap().to_string(),
                        },
                    );
                }
            }
            // Move an open transfer on: confirm (receiver), approve (operator) or cancel (sender).
            25..=49 => {
                let open: Vec<(i64, Transfer)> = {
                    let m = shared.model.lock().unwrap();
                    m.transfers
                        .iter()
                        .filter(|(_, t)| t.status == "requested" || t.status == "confirmed")
                        .map(|(id, t)| (*id, t.clone()))
                        .collect()
                };
                if open.is_empty() {
                    continue;
                }
                let (id, t) = open[rng.random_range(0..open.len())].clone();
                let (token, action) = match (t.status.as_str(), rng.random_range(0..10)) {
                    (_, 0..=1) => (&a.ents[t.from].1, "cancel"),
                    ("requested", _) => (&a.ents[t.to].1, "confirm"),
                    (_, _) => (&a.checker, "approve"),
                };
                let r = shared.post(
                    c,
                    token,
                    &format!("/v1/transfers/{id}/{action}"),
                    &key,
                    &json!({}),
                );
                if r.status.as_u16() == 200 {
                    let status = r.body["status"].as_str().unwrap().to_string();
                    let mut m = shared.model.lock().unwrap();
                    let from = a.ents[t.from].0;
                    let to = a.ents[t.to].0;
                    match status.as_str() {
                        "settled" => {
                            m.bucket(from, t.lot).in_transfer -= t.quantity;
                            m.bucket(to, t.lot).available += t.quantity;
                        }
                        "cancelled" => {
                            let b = m.bucket(from, t.lot);
                            b.in_transfer -= t.quantity;
                            b.available += t.quantity;
                        }
                        _ => {}
                    }
                    let conflict = m
                        .transfers
                        .get_mut(&id)
                        .and_then(|x| advance(&mut x.status, status));
                    if let Some(c) = conflict {
                        shared
                            .unexpected
                            .lock()
                            .unwrap()
                            .push(format!("transfer {id}: {c}"));
                    }
                }
            }
            // A pledge: apply (pledgor), accept (bank), release (bank).
            50..=71 => {
                let open: Vec<(i64, Pledge)> = {
                    let m = shared.model.lock().unwrap();
                    m.pledges
                        .iter()
                        .filter(|(_, p)| {
                            p.status == "applied" || (p.status == "registered" && p.code.is_some())
                        })
                        .map(|(id, p)| (*id, p.clone()))
                        .collect()
                };
                if open.is_empty() || rng.random_bool(0.4) {
                    let pledgor = rng.random_range(0..ENTERPRISES);
                    let bank = rng.random_range(0..BANKS);
                    let Some((lot, _, have)) = pick_lot(&shared, &mut rng, a.ents[pledgor].0, None)
                    else {
                        continue;
                    };
                    let quantity = rng.random_range(1..=have.min(200));
                    let body = json!({"lot_id": lot, "quantity": quantity.to_string(), "lender_party_id": a.banks[bank].0});
                    let r = shared.post(c, &a.ents[pledgor].1, "/v1/pledges", &key, &body);
                    if r.status.as_u16() == 201 {
                        let id = r.body["id"].as_i64().unwrap();
                        shared.model.lock().unwrap().pledges.insert(
                            id,
                            Pledge {
                                lot,
                                pledgor,
                                bank,
                                quantity,
                                status: "applied".into(),
                                code: None,
                            },
                        );
                    }
                    continue;
                }
                let (id, p) = open[rng.random_range(0..open.len())].clone();
                let token = &a.banks[p.bank].1;
                let r = if p.status == "applied" {
                    // Within every lot's limit: a CA lot's is the end of the year after its
                    // compliance year.
                    let body = json!({"secured_amount": "1000.00", "loan_maturity": "2027-12-31",
                        "period_end": "2027-12-31", "loan_reference": format!("WL-{id}"),
                        "appraisal_value": "5000.00", "appraiser": "福建中兴资产评估", "appraisal_date": "2026-11-20"});
                    shared.post(c, token, &format!("/v1/pledges/{id}/accept"), &key, &body)
                } else {
                    shared.post(
                        c,
                        token,
                        &format!("/v1/pledges/{id}/release"),
                        &key,
                        &json!({"amendment_code": p.code}),
                    )
                };
                if r.status.as_u16() == 200 {
                    let status = r.body["status"].as_str().unwrap().to_string();
                    let mut m = shared.model.lock().unwrap();
                    let pledgor = a.ents[p.pledgor].0;
                    let b = m.bucket(pledgor, p.lot);
                    match status.as_str() {
                        "registered" => {
                            b.available -= p.quantity;
                            b.pledged += p.quantity;
                        }
                        "released" => {
                            b.pledged -= p.quantity;
                            b.available += p.quantity;
                        }
                        other => panic!("pledge {id}: unexpected status {other}"),
                    }
                    if let Some(x) = m.pledges.get_mut(&id) {
                        if let Some(c) = advance(&mut x.status, status) {
                            shared
                                .unexpected
                                .lock()
                                .unwrap()
                                .push(format!("pledge {id}: {c}"));
                        }
                        if let Some(code) = r.body["amendment_code"].as_str() {
                            x.code = Some(code.to_string());
                        }
                    }
                }
            }
            // A retirement (compliance surrender of CA).
            72..=79 => {
                let who = rng.random_range(0..ENTERPRISES);
                let Some((lot, _, have)) = pick_lot(&shared, &mut rng, a.ents[who].0, Some("CA"))
                else {
                    continue;
                };
                let quantity = rng.random_range(1..=have.min(100));
                let body = json!({"lot_id": lot, "quantity": quantity.to_string(), "reason": "履约清缴",
                    "beneficiary": format!("企业{who}"), "compliance_year": 2026});
                let r = shared.post(c, &a.ents[who].1, "/v1/retirements", &key, &body);
                if r.status.as_u16() == 201 {
                    let id = r.body["id"].as_i64().unwrap();
                    let mut m = shared.model.lock().unwrap();
                    m.bucket(a.ents[who].0, lot).available -= quantity;
                    *m.retired.entry(lot).or_default() += quantity;
                    m.retirements.push((id, lot, quantity));
                }
            }
            // The market: list, buy, pay, withdraw.
            _ => market_step(c, &shared, &mut rng, &key),
        }
    }
}

/// One market operation: a seller lists (available → listed), a buyer purchases (the seller's
/// listed → in transfer), the operator confirms payment (→ the buyer's available), a seller
/// withdraws (the unsold rest → available). A purchase acknowledged after its listing's withdrawal
/// happened before it (a later one is refused), so it took from what the withdrawal returned.
fn market_step(c: usize, shared: &Shared, rng: &mut StdRng, key: &str) {
    let a = &shared.actors;
    let roll = rng.random_range(0..10);
    if roll < 3 {
        let seller = rng.random_range(0..ENTERPRISES);
        let Some((lot, t, have)) = pick_lot(shared, rng, a.ents[seller].0, None) else {
            return;
        };
        let quantity = rng.random_range(1..=have.min(300));
        let mut body = json!({"lot_id": lot, "quantity": quantity.to_string(), "unit_price": "100",
            "min_lot": "1", "ends_at": "2030-06-30T00:00:00Z"});
        if t == "EM" {
            body["years"] = json!(1);
        }
        let r = shared.post(c, &a.ents[seller].1, "/v1/listings", key, &body);
        if r.status.as_u16() == 201 {
            let id = r.body["id"].as_i64().unwrap();
            let mut m = shared.model.lock().unwrap();
            let b = m.bucket(a.ents[seller].0, lot);
            b.available -= quantity;
            b.listed += quantity;
            m.listings.insert(
                id,
                Listing {
                    lot,
                    seller,
                    remaining: quantity,
                    withdrawn: false,
                },
            );
        }
        return;
    }
    if roll < 8 {
        let open: Vec<(i64, Listing)> = {
            let m = shared.model.lock().unwrap();
            m.listings
                .iter()
                .filter(|(_, l)| !l.withdrawn && l.remaining > 0)
                .map(|(id, l)| (*id, l.clone()))
                .collect()
        };
        if open.is_empty() {
            return;
        }
        let (id, l) = open[rng.random_range(0..open.len())].clone();
        if roll == 7 {
            let r = shared.post(
                c,
                &a.ents[l.seller].1,
                &format!("/v1/listings/{id}/withdraw"),
                key,
                &json!({}),
            );
            if r.status.as_u16() == 200 {
                let mut m = shared.model.lock().unwrap();
                let rest = m.listings.get(&id).map_or(0, |x| x.remaining);
                let b = m.bucket(a.ents[l.seller].0, l.lot);
                b.listed -= rest;
                b.available += rest;
                if let Some(x) = m.listings.get_mut(&id) {
                    x.withdrawn = true;
                    x.remaining = 0;
                }
            }
            return;
        }
        let buyer = (l.seller + rng.random_range(1..ENTERPRISES)) % ENTERPRISES;
        let quantity = rng.random_range(1..=l.remaining.min(50));
        let r = shared.post(
            c,
            &a.ents[buyer].1,
            &format!("/v1/listings/{id}/purchases"),
            key,
            &json!({"quantity": quantity.to_string()}),
        );
        if r.status.as_u16() == 201 {
            let trade = r.body["id"].as_i64().unwrap();
            let mut m = shared.model.lock().unwrap();
            let withdrawn = m.listings.get(&id).is_some_and(|x| x.withdrawn);
            let b = m.bucket(a.ents[l.seller].0, l.lot);
            if withdrawn {
                b.available -= quantity;
            } else {
                b.listed -= quantity;
            }
            b.in_transfer += quantity;
            if let Some(x) = m.listings.get_mut(&id).filter(|x| !x.withdrawn) {
                x.remaining -= quantity;
            }
            m.trades.insert(
                trade,
                Trade {
                    lot: l.lot,
                    seller: l.seller,
                    buyer,
                    quantity,
                    status: "awaiting_payment".into(),
                },
            );
        }
        return;
    }
    let unpaid: Vec<(i64, Trade)> = {
        let m = shared.model.lock().unwrap();
        m.trades
            .iter()
            .filter(|(_, t)| t.status == "awaiting_payment")
            .map(|(id, t)| (*id, t.clone()))
            .collect()
    };
    if unpaid.is_empty() {
        return;
    }
    let (id, t) = unpaid[rng.random_range(0..unpaid.len())].clone();
    // The seller acknowledges receipt of the payment (an operator's confirmation takes two).
    let r = shared.post(
        c,
        &a.ents[t.seller].1,
        &format!("/v1/trades/{id}/payment"),
        key,
        &json!({"payment_ref": format!("WL-PAY-{id}")}),
    );
    if r.status.as_u16() == 200 {
        let mut m = shared.model.lock().unwrap();
        if m.trades
            .get(&id)
            .is_some_and(|x| x.status == "awaiting_payment")
        {
            m.bucket(a.ents[t.seller].0, t.lot).in_transfer -= t.quantity;
            m.bucket(a.ents[t.buyer].0, t.lot).available += t.quantity;
            if let Some(x) = m.trades.get_mut(&id) {
                x.status = "settled".into();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The checker.

/// Every item of a paginated list.
fn all_items(api: &Api, path: &str) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=500&cursor={c}"),
            None => format!("{path}{sep}limit=500"),
        };
        let page = api.get(&url).expect(200);
        out.extend(page.body["items"].as_array().unwrap().iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

fn check(op: &Api, shared: &Shared) {
    let m = shared.model.lock().unwrap();
    let unexpected = shared.unexpected.lock().unwrap();
    assert!(
        unexpected.is_empty(),
        "{} unexpected answers, first: {:?}",
        unexpected.len(),
        &unexpected[..unexpected.len().min(5)]
    );
    assert_eq!(
        shared.stats.five_xx.load(Ordering::Relaxed),
        0,
        "no 5xx under load"
    );
    let d = Decimal::from;
    for (lot, _) in &shared.actors.lots {
        // Conservation and no negative bucket.
        assert_conserved(op, *lot);
        let l = op.get(&format!("/v1/lots/{lot}")).expect(200).body;
        assert_eq!(dec(&l["issued"]), d(m.issued[lot]), "lot {lot} issued");
        assert_eq!(
            dec(&l["retired"]),
            d(m.retired.get(lot).copied().unwrap_or(0)),
            "lot {lot}: retired differs from the acknowledged retirements"
        );
        // Every bucket is what the acknowledged operations imply.
        let found: HashMap<i64, Value> = holdings(op, *lot)
            .into_iter()
            .map(|h| (h["party_id"].as_i64().unwrap(), h))
            .collect();
        for ((party, l2), want) in m.holdings.iter().filter(|((_, l2), _)| l2 == lot) {
            let zero = json!({"available": "0", "in_transfer": "0", "pledged": "0", "listed": "0", "frozen": "0"});
            let h = found.get(party).unwrap_or(&zero);
            let got = (
                dec(&h["available"]),
                dec(&h["in_transfer"]),
                dec(&h["pledged"]),
                dec(&h["listed"]),
                dec(&h["frozen"]),
            );
            assert_eq!(
                got,
                (
                    d(want.available),
                    d(want.in_transfer),
                    d(want.pledged),
                    d(want.listed),
                    Decimal::ZERO
                ),
                "holding of party {party} in lot {l2}: (available, in_transfer, pledged, listed, frozen)"
            );
        }
        for party in found.keys() {
            assert!(
                m.holdings.contains_key(&(*party, *lot)),
                "lot {lot}: a holding of party {party} that no acknowledged operation made"
            );
        }
    }
    // Every acknowledged operation, looked up by id, in its last acknowledged state.
    for (id, t) in &m.transfers {
        let v = op.get(&format!("/v1/transfers/{id}")).expect(200).body;
        assert_eq!(v["status"], t.status.as_str(), "transfer {id}");
        assert_eq!(dec(&v["quantity"]), d(t.quantity), "transfer {id}");
        assert_eq!(v["lot_id"], t.lot, "transfer {id}");
        assert_eq!(v["requires_approval"], t.needs_approval, "transfer {id}");
    }
    let mut pledged: HashMap<(usize, i64), i64> = HashMap::new();
    for (id, p) in &m.pledges {
        let v = op.get(&format!("/v1/pledges/{id}")).expect(200).body;
        let v = if v["pledge"].is_object() {
            v["pledge"].clone()
        } else {
            v
        };
        assert_eq!(v["status"], p.status.as_str(), "pledge {id}: {v}");
        assert_eq!(v["lot_id"], p.lot, "pledge {id}");
        if p.status == "registered" {
            *pledged.entry((p.pledgor, p.lot)).or_default() += p.quantity;
        }
    }
    // Pledged quantity is exactly that of the live pledges: none of it was also transferred,
    // retired or released twice.
    for ((pledgor, lot), q) in &pledged {
        let party = shared.actors.ents[*pledgor].0;
        assert_eq!(
            m.holdings
                .get(&(party, *lot))
                .map(|b| b.pledged)
                .unwrap_or(0),
            *q
        );
    }
    // Exactly once: as many objects as acknowledged creations, no more.
    // A settled trade is delivered by a transfer of kind `trade`: one each, no more.
    let (by_trade, requested): (Vec<Value>, Vec<Value>) = all_items(op, "/v1/transfers")
        .into_iter()
        .partition(|t| t["kind"] == "trade");
    assert_eq!(
        requested.len(),
        m.transfers.len(),
        "transfers in the registry vs acknowledged requests"
    );
    assert_eq!(
        by_trade.len(),
        m.trades.values().filter(|t| t.status == "settled").count(),
        "a transfer per settled trade"
    );
    let pledges = all_items(op, "/v1/pledges");
    assert_eq!(
        pledges.len(),
        m.pledges.len(),
        "pledges in the registry vs acknowledged applications"
    );
    let retirements = all_items(op, "/v1/retirements");
    assert_eq!(
        retirements.len(),
        m.retirements.len(),
        "retirements in the registry vs acknowledged ones"
    );
    let ids: std::collections::HashSet<i64> = retirements
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    for (id, lot, q) in &m.retirements {
        assert!(ids.contains(id), "acknowledged retirement {id} missing");
        let r = retirements.iter().find(|r| r["id"] == *id).unwrap();
        assert_eq!(
            (r["lot_id"].as_i64(), dec(&r["quantity"])),
            (Some(*lot), d(*q))
        );
    }
    // The market: every acknowledged trade in its state, and as many listings and trades as
    // acknowledged — none sold twice, none lost.
    for (id, t) in &m.trades {
        let v = op.get(&format!("/v1/trades/{id}")).expect(200).body;
        assert_eq!(v["status"], t.status.as_str(), "trade {id}");
        assert_eq!(dec(&v["quantity"]), d(t.quantity), "trade {id}");
    }
    assert_eq!(
        all_items(op, "/v1/listings").len(),
        m.listings.len(),
        "listings vs acknowledged"
    );
    assert_eq!(
        all_items(op, "/v1/trades").len(),
        m.trades.len(),
        "trades vs acknowledged purchases"
    );
    assert_eq!(
        op.get("/v1/audit/verify").expect(200).body["ok"],
        true,
        "audit trail verifies"
    );
}

// ---------------------------------------------------------------------------------------------
// The runs.

/// How a run disturbs the servers.
#[derive(Clone, Copy, PartialEq)]
enum Faults {
    None,
    /// kill -9 a process this many times, evenly spread over the run, and restart it.
    Kill(u32),
}

fn run(backend: Backend, processes: usize, secs: u64, faults: Faults) {
    let mut cluster = Cluster::start(backend, processes);
    let admin = cluster.admin();
    let (actors, model) = setup(&admin);
    let shared = Arc::new(Shared {
        actors,
        bases: cluster.bases.clone(),
        model: Mutex::new(model),
        stats: Stats::default(),
        unexpected: Mutex::new(Vec::new()),
        refusals: Mutex::new(HashMap::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (shared, stop) = (shared.clone(), stop.clone());
            thread::spawn(move || client(c, shared, stop))
        })
        .collect();
    let mut kills = 0;
    if let Faults::Kill(times) = faults {
        let step = Duration::from_secs(secs) / (times + 1);
        for k in 0..times {
            thread::sleep(step);
            let slot = k as usize % processes;
            cluster.kill(slot);
            thread::sleep(Duration::from_millis(300));
            cluster.restart(slot);
            kills += 1;
            // A request the kill cut off left nothing behind (its key's record commits with its
            // effect): the retries run at once, with no lease to wait out.
        }
    }
    let left = Duration::from_secs(secs).saturating_sub(started.elapsed());
    thread::sleep(left);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread");
    }
    let s = &shared.stats;
    let (transfers, pledges, retirements, states) = {
        let m = shared.model.lock().unwrap();
        let mut states: std::collections::BTreeMap<String, usize> = Default::default();
        for t in m.transfers.values() {
            *states.entry(format!("transfer {}", t.status)).or_default() += 1;
        }
        for p in m.pledges.values() {
            *states.entry(format!("pledge {}", p.status)).or_default() += 1;
        }
        for t in m.trades.values() {
            *states.entry(format!("trade {}", t.status)).or_default() += 1;
        }
        *states.entry("listings".into()).or_default() += m.listings.len();
        (
            m.transfers.len(),
            m.pledges.len(),
            m.retirements.len(),
            states,
        )
    };
    eprintln!(
        "workload {backend:?}, {processes} process(es), {CLIENTS} clients, {secs} s, {kills} kills: \
         {} responses ({} acknowledged, {} refused 409/422, {} 5xx), {} replays, \
         {} retries after transport errors, {} after foreign answers, {} while a claim held; \
         {transfers} transfers, {pledges} pledges, {retirements} retirements acknowledged; \
         final states {states:?}; refusals {:?}",
        s.responses.load(Ordering::Relaxed),
        s.acked.load(Ordering::Relaxed),
        s.refused.load(Ordering::Relaxed),
        s.five_xx.load(Ordering::Relaxed),
        s.replays.load(Ordering::Relaxed),
        s.transport_retries.load(Ordering::Relaxed),
        s.foreign.load(Ordering::Relaxed),
        s.in_progress_retries.load(Ordering::Relaxed),
        shared.refusals.lock().unwrap(),
    );
    let op = cluster.any_admin(&shared.actors.admin);
    check(&op, &shared);
    // A fresh process on the same database sees the same (and the database still opens).
    if faults != Faults::None {
        if backend == Backend::Sqlite {
            use diesel::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct Check {
                #[diesel(sql_type = diesel::sql_types::Text)]
                integrity_check: String,
            }
            let mut conn = registry::db::establish(&cluster.db.url).unwrap();
            let rows: Vec<Check> = diesel::sql_query("PRAGMA integrity_check")
                .load(&mut conn)
                .unwrap();
            let found: Vec<&str> = rows.iter().map(|r| r.integrity_check.as_str()).collect();
            assert_eq!(found, ["ok"], "SQLite integrity after kill -9");
        }
        let last = Server::on(cluster.db.clone());
        check(
            &Api::new(&last.base).with_token(&shared.actors.admin),
            &shared,
        );
    }
}

fn long_secs() -> u64 {
    std::env::var("WORKLOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120)
}

#[test]
fn bank_workload_postgres_two_processes() {
    run(Backend::Postgres, 2, SHORT_SECS, Faults::None);
}

#[test]
fn bank_workload_sqlite() {
    run(Backend::Sqlite, 1, SHORT_SECS, Faults::None);
}

#[test]
fn crash_postgres_two_processes() {
    run(Backend::Postgres, 2, 12, Faults::Kill(4));
}

#[test]
fn crash_sqlite() {
    run(Backend::Sqlite, 1, 10, Faults::Kill(3));
}

#[test]
#[ignore = "long form: WORKLOAD_SECS (default 120)"]
fn long_bank_workload_postgres() {
    run(Backend::Postgres, 2, long_secs(), Faults::None);
}

#[test]
#[ignore = "long form: WORKLOAD_SECS (default 120)"]
fn long_bank_workload_sqlite() {
    run(Backend::Sqlite, 1, long_secs(), Faults::None);
}

#[test]
#[ignore = "long form: WORKLOAD_SECS (default 120), a kill every 10 s"]
fn long_crash_postgres() {
    let secs = long_secs();
    run(Backend::Postgres, 2, secs, Faults::Kill((secs / 10) as u32));
}

#[test]
#[ignore = "long form: WORKLOAD_SECS (default 120), a kill every 10 s"]
fn long_crash_sqlite() {
    let secs = long_secs();
    run(Backend::Sqlite, 1, secs, Faults::Kill((secs / 10) as u32));
}
