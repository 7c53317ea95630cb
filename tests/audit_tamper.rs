//! The audit trail detects tampering: editing, deleting or reordering ANY stored event up
//! to the last checkpoint is caught by both `GET /v1/audit/verify` and `registry audit verify`.
//! And checkpoints are witnessed: a lender keeps them, and deleting checkpoints,
//! truncating chains or re-signing rewritten history is caught against what it kept.
//!
//! Two attackers with write access to the database, at every event position of every chain:
//! - a naive one, who changes the rows and nothing else (caught by the hash links);
//! - a careful one, who then recomputes every hash and link of the chain after the change and
//!   moves the chain head to match (only the signed checkpoint can catch that one — and must).

mod common;

use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use common::ledger::{issue, key, lot_request};
use common::{party, user, Api, Backend, Server};
use diesel::prelude::*;
use registry::schema::{audit_chain_heads as heads, audit_checkpoints as cps, audit_events as ev};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Clone, Debug, Queryable, Insertable)]
#[diesel(table_name = ev)]
struct Row {
    id: i64,
    chain: String,
    seq: i64,
    at: NaiveDateTime,
    actor: String,
    action: String,
    object_type: String,
    object_id: String,
    payload: String,
    prev_hash: String,
    hash: String,
}

/// What src/audit computes, recomputed the way an attacker with the source would.
fn event_hash(r: &Row) -> String {
    let doc = json!({
        "chain": r.chain, "seq": r.seq, "at": r.at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "actor": r.actor, "action": r.action, "object_type": r.object_type, "object_id": r.object_id,
        "payload": r.payload, "prev_hash": r.prev_hash,
    });
    hex::encode(Sha256::digest(
        serde_json_canonicalizer::to_string(&doc).unwrap(),
    ))
}

/// Renumbers and relinks a chain from its first event, as the careful attacker does.
fn rehash(rows: &mut [Row]) {
    let mut prev = GENESIS.to_string();
    for (i, r) in rows.iter_mut().enumerate() {
        r.seq = i as i64 + 1;
        r.prev_hash = prev;
        r.hash = event_hash(r);
        prev = r.hash.clone();
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Edit,
    Delete,
    Reorder,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Attacker {
    Naive,
    Careful,
}

/// The chain's rows after tampering with its event at `at` (an index into `rows`).
fn tampered(rows: &[Row], at: usize, kind: Kind, who: Attacker) -> Option<Vec<Row>> {
    let mut out = rows.to_vec();
    match kind {
        Kind::Edit => {
            let mut p: Value = serde_json::from_str(&out[at].payload).unwrap_or(json!({}));
            p["tampered"] = json!(true);
            out[at].payload = serde_json::to_string(&p).unwrap();
        }
        Kind::Delete => {
            out.remove(at);
        }
        Kind::Reorder => {
            if rows.len() < 2 {
                return None;
            }
            let other = if at + 1 < rows.len() { at + 1 } else { at - 1 };
            match who {
                // Swap the sequence numbers of two events: each keeps its own hash.
                Attacker::Naive => {
                    let s = out[at].seq;
                    out[at].seq = out[other].seq;
                    out[other].seq = s;
                }
                Attacker::Careful => out.swap(at, other),
            }
        }
    }
    if who == Attacker::Careful {
        rehash(&mut out);
    }
    Some(out)
}

struct Db {
    url: String,
}

impl Db {
    fn conn(&self) -> registry::db::DbConn {
        registry::db::establish(&self.url).unwrap()
    }

    fn chain(&self, conn: &mut registry::db::DbConn, chain: &str) -> Vec<Row> {
        ev::table
            .filter(ev::chain.eq(chain))
            .order(ev::seq)
            .select((
                ev::id,
                ev::chain,
                ev::seq,
                ev::at,
                ev::actor,
                ev::action,
                ev::object_type,
                ev::object_id,
                ev::payload,
                ev::prev_hash,
                ev::hash,
            ))
            .load(conn)
            .unwrap()
    }

    /// Replaces the chain's rows; with `head`, also moves its head to the last row.
    fn write(&self, conn: &mut registry::db::DbConn, chain: &str, rows: &[Row], head: bool) {
        diesel::delete(ev::table.filter(ev::chain.eq(chain)))
            .execute(conn)
            .unwrap();
        for r in rows {
            diesel::insert_into(ev::table)
                .values(r.clone())
                .execute(conn)
                .unwrap();
        }
        if head {
            let (seq, hash) = rows
                .last()
                .map_or((0, GENESIS.to_string()), |r| (r.seq, r.hash.clone()));
            diesel::update(heads::table.find(chain))
                .set((heads::seq.eq(seq), heads::hash.eq(hash)))
                .execute(conn)
                .unwrap();
        }
    }
}

fn verify_http(op: &Api) -> Value {
    op.get("/v1/audit/verify").expect(200).body
}

fn verify_cli(srv: &Server) -> bool {
    let out = common::command(&srv.db)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    out.status.success()
}

fn every_event_tampering_is_detected(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let checker = user(&admin, "operator", None, "checker");
    let pa = party(&admin, "enterprise", 1);
    let pb = party(&admin, "enterprise", 2);
    let ent_a = user(&admin, "enterprise", Some(pa), "ent-a");
    let lot = issue(
        &admin,
        &checker,
        lot_request("CA", pa, "100", "CA-tamper-1"),
    )["id"]
        .as_i64()
        .unwrap();
    let transfer = |q: &str| {
        ent_a
            .post_key(
                "/v1/transfers",
                &key(),
                &json!({"lot_id": lot, "to_party_id": pb, "quantity": q}),
            )
            .expect(201);
    };
    transfer("1");
    transfer("2");
    transfer("3");
    admin.post("/v1/audit/checkpoints", &json!({})).expect(201);
    // Events after the checkpoint: the careful attacker rewrites those too when relinking.
    transfer("4");
    assert_eq!(verify_http(&admin)["ok"], true);
    assert!(verify_cli(&srv));

    let db = Db {
        url: srv.db.url.clone(),
    };
    let mut conn = db.conn();
    // What the last checkpoint covers: chain → last signed event.
    let signed: String = cps::table
        .order(cps::id.desc())
        .select(cps::heads)
        .first(&mut conn)
        .unwrap();
    let signed: Vec<(String, i64, String)> = serde_json::from_str::<Vec<Value>>(&signed)
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["chain"].as_str().unwrap().to_string(),
                h["seq"].as_i64().unwrap(),
                h["hash"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut cases = 0;
    let mut missed = Vec::new();
    for (chain, covered, _) in &signed {
        let original = db.chain(&mut conn, chain);
        for at in 0..original.len() {
            if original[at].seq > *covered {
                continue;
            }
            for kind in [Kind::Edit, Kind::Delete, Kind::Reorder] {
                for who in [Attacker::Naive, Attacker::Careful] {
                    let Some(rows) = tampered(&original, at, kind, who) else {
                        continue;
                    };
                    cases += 1;
                    db.write(&mut conn, chain, &rows, who == Attacker::Careful);
                    let http = verify_http(&admin);
                    let cli = verify_cli(&srv);
                    if http["ok"] != false || cli {
                        missed.push(format!(
                            "{who:?} {kind:?} of {chain} event {} (http: {}, cli ok: {cli})",
                            original[at].seq, http
                        ));
                    }
                    db.write(&mut conn, chain, &original, true);
                }
            }
        }
        assert_eq!(
            verify_http(&admin)["ok"],
            true,
            "restored chain {chain} verifies"
        );
    }
    eprintln!(
        "audit tamper ({b:?}): {cases} cases over {} chains",
        signed.len()
    );
    assert!(cases > 20, "too few cases: {cases}");
    assert!(
        missed.is_empty(),
        "undetected tampering:\n{}",
        missed.join("\n")
    );
    assert!(verify_cli(&srv));
}

/// Plain HTTP to the witnessing bank's loopback receiver is allowlisted (refused otherwise).
const ALLOW_HOOK: &[&str] = &["--webhook-allow-http", "127.0.0.1:9"];

/// A lender with a webhook endpoint on loopback port 9 (nobody listens; the server is started
/// with that address allowlisted for plain HTTP), returning the endpoint id.
fn lender(admin: &Api) -> (Api, i64) {
    let bank = party(admin, "bank", 90);
    let banker = user(admin, "bank", Some(bank), "witness-bank");
    let hook = banker
        .post_key(
            "/v1/webhooks",
            &key(),
            &json!({ "url": "http://127.0.0.1:9/hook" }),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    (banker, hook)
}

/// Every checkpoint the lender can read, saved as it would keep them (page by page).
fn keep_checkpoints(banker: &Api, dir: &Path, name: &str) -> (PathBuf, Vec<Value>) {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/v1/audit/checkpoints?limit=1".to_string(),
            Some(c) => format!("/v1/audit/checkpoints?limit=1&cursor={c}"),
        };
        let page = banker.get(&path).expect(200).body;
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let file = dir.join(name);
    std::fs::write(&file, json!({ "items": items }).to_string()).unwrap();
    (file, items)
}

fn verify_witnessed(srv: &Server, witness: &Path) -> (bool, String) {
    let out = common::command(&srv.db)
        .args(["audit", "verify", "--witness", witness.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A small trail: a lot, transfers, two checkpoints; returns the transfer maker.
fn trail(admin: &Api) -> impl Fn(&str) {
    let checker = user(admin, "operator", None, "checker");
    let pa = party(admin, "enterprise", 1);
    let pb = party(admin, "enterprise", 2);
    let ent_a = user(admin, "enterprise", Some(pa), "ent-a");
    let lot = issue(
        admin,
        &checker,
        lot_request("CA", pa, "100", "CA-witness-1"),
    )["id"]
        .as_i64()
        .unwrap();
    move |q: &str| {
        ent_a
            .post_key(
                "/v1/transfers",
                &key(),
                &json!({"lot_id": lot, "to_party_id": pb, "quantity": q}),
            )
            .expect(201);
    }
}

/// Checkpoint `index` (from 0) as operators see it, with the heads a bank's view leaves out.
fn operators_view(admin: &Api, index: usize) -> Value {
    admin.get("/v1/audit/checkpoints").expect(200).body["items"][index].clone()
}

/// The longest chain the checkpoint signs: (chain, its signed length).
fn longest(checkpoint: &Value) -> (String, i64) {
    checkpoint["heads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["chain"].as_str().unwrap().to_string(),
                h["seq"].as_i64().unwrap(),
            )
        })
        .max_by_key(|(_, n)| *n)
        .unwrap()
}

fn deleted_checkpoints_and_rewritten_history_are_caught_by_a_witness(b: Backend) {
    let srv = Server::on_with(common::Db::fresh(b), ALLOW_HOOK);
    let admin = srv.admin();
    let (banker, hook) = lender(&admin);
    let transfer = trail(&admin);
    transfer("1");
    transfer("2");
    admin.post("/v1/audit/checkpoints", &json!({})).expect(201);
    transfer("3");
    admin.post("/v1/audit/checkpoints", &json!({})).expect(201);
    let (witness, kept) = keep_checkpoints(&banker, srv.db.dir.path(), "witness.json");
    assert_eq!(kept.len(), 2);
    assert_eq!(
        (kept[0]["seq"].as_i64(), kept[1]["seq"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(
        kept[1]["prev_hash"], kept[0]["digest"],
        "checkpoints form a chain"
    );
    let log = banker
        .get(&format!("/v1/webhooks/{hook}/deliveries"))
        .expect(200)
        .body;
    let sent = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["event"] == "audit.checkpoint")
        .count();
    assert_eq!(sent, 2, "the lender receives every checkpoint: {log}");
    transfer("4");
    let (ok, out) = verify_witnessed(&srv, &witness);
    assert!(ok, "a database that extends the witness verifies:\n{out}");

    let db = Db {
        url: srv.db.url.clone(),
    };
    let mut conn = db.conn();
    let (chain, signed) = longest(&operators_view(&admin, 1));
    let original = db.chain(&mut conn, &chain);
    assert!(signed >= 2);
    // Rewrite a signed event, relink the chain, delete every checkpoint.
    let rows = tampered(&original, 0, Kind::Edit, Attacker::Careful).unwrap();
    db.write(&mut conn, &chain, &rows, true);
    diesel::delete(cps::table).execute(&mut conn).unwrap();
    let (ok, out) = verify_witnessed(&srv, &witness);
    assert!(!ok, "rewritten history passed the witness:\n{out}");
    assert!(out.contains("witnessed checkpoint"), "{out}");
    // Truncate the chain below what the witness signs (checkpoints still deleted).
    let cut: Vec<Row> = original
        .iter()
        .filter(|r| r.seq < signed)
        .cloned()
        .collect();
    db.write(&mut conn, &chain, &cut, true);
    let (ok, out) = verify_witnessed(&srv, &witness);
    assert!(!ok, "a truncated chain passed the witness:\n{out}");
    // The bank kept the commitment, not the heads: it is the database's checkpoint of the same
    // digest that names the chain's signed length.
    assert!(out.contains("witnessed checkpoint 2 is missing"), "{out}");
}

/// A database writer without the key turns every chained checkpoint into the pre-chain format
/// (number and link removed, "heads" set to the checkpoint's own canonical body, whose SHA-256
/// is the stored digest, so the old signature still verifies) after rewriting an event's actor.
/// The checkpoints then sign nothing readable: verification must fail, not check nothing. And a
/// trail whose checkpoints are all deleted is flagged as signed by nothing.
fn checkpoints_turned_into_the_pre_chain_format_fail(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let transfer = trail(&admin);
    transfer("1");
    transfer("2");
    admin.post("/v1/audit/checkpoints", &json!({})).expect(201);
    transfer("3");
    admin.post("/v1/audit/checkpoints", &json!({})).expect(201);
    assert!(verify_cli(&srv), "the untouched trail verifies");

    let db = Db {
        url: srv.db.url.clone(),
    };
    let mut conn = db.conn();
    let (chain, _) = longest(&operators_view(&admin, 1));
    let mut rows = db.chain(&mut conn, &chain);
    rows[0].actor = "someone-else".into();
    rehash(&mut rows);
    db.write(&mut conn, &chain, &rows, true);

    type Cp = (
        i64,
        Option<i64>,
        NaiveDateTime,
        Option<String>,
        String,
        String,
        String,
    );
    let stored: Vec<Cp> = cps::table
        .select((
            cps::id,
            cps::seq,
            cps::at,
            cps::prev_hash,
            cps::heads,
            cps::digest,
            cps::key_id,
        ))
        .load(&mut conn)
        .unwrap();
    assert_eq!(stored.len(), 2);
    for (id, seq, at, prev, heads_text, digest, key_id) in stored {
        let body = json!({
            "seq": seq.unwrap(),
            "at": at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            "prev_hash": prev.unwrap(),
            "heads_root": hex::encode(Sha256::digest(heads_text.as_bytes())),
            "key_id": key_id,
        });
        let body = serde_json_canonicalizer::to_string(&body).unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(body.as_bytes())),
            digest,
            "the body hashes to the signed digest (the attack's premise)"
        );
        diesel::update(cps::table.find(id))
            .set((
                cps::seq.eq(None::<i64>),
                cps::prev_hash.eq(None::<String>),
                cps::heads.eq(&body),
            ))
            .execute(&mut conn)
            .unwrap();
    }
    let out = common::command(&srv.db)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !out.status.success(),
        "converted checkpoints passed:\n{text}"
    );
    assert!(!text.contains("verified: OK"), "{text}");
    assert!(text.contains("its heads cannot be read"), "{text}");
    let v = verify_http(&admin);
    assert_eq!(v["ok"], false, "{v}");
    assert!(
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("heads cannot be read")),
        "{v}"
    );

    // No checkpoint at all: nothing is proven, and the verifier says so.
    diesel::delete(cps::table).execute(&mut conn).unwrap();
    let out = common::command(&srv.db)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("WARNING:") && text.contains("no checkpoint"),
        "{text}"
    );
    let v = verify_http(&admin);
    assert!(v["unsigned_events"].as_i64().unwrap() > 0, "{v}");
    assert!(!v["warnings"].as_array().unwrap().is_empty(), "{v}");
}

fn re_signing_with_a_key_outside_the_key_files_is_caught(b: Backend) {
    use ed25519_dalek::{Signer, SigningKey};
    let srv = Server::on_with(common::Db::fresh(b), ALLOW_HOOK);
    let admin = srv.admin();
    let (banker, _) = lender(&admin);
    let transfer = trail(&admin);
    transfer("1");
    transfer("2");
    admin.post("/v1/audit/checkpoints", &json!({})).expect(201);
    let (witness, _) = keep_checkpoints(&banker, srv.db.dir.path(), "witness.json");
    let db = Db {
        url: srv.db.url.clone(),
    };
    let mut conn = db.conn();
    // The best key a database reader has: a key the database holds, else one of its own.
    let seed: [u8; 32] = registry::schema::settings::table
        .filter(registry::schema::settings::name.eq("signing_key"))
        .select(registry::schema::settings::value)
        .first::<String>(&mut conn)
        .ok()
        .and_then(|v| hex::decode(v).ok())
        .and_then(|b| b.try_into().ok())
        .unwrap_or([5u8; 32]);
    let forger = SigningKey::from_bytes(&seed);
    let forger_id = registry::keys::key_id(&forger.verifying_key());
    // And it publishes that key where a database writer can.
    let _ = diesel::insert_into(registry::schema::signing_keys::table)
        .values((
            registry::schema::signing_keys::key_id.eq(&forger_id),
            registry::schema::signing_keys::public_key.eq(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                forger.verifying_key().as_bytes(),
            )),
            registry::schema::signing_keys::first_used_at.eq(chrono::Utc::now().naive_utc()),
        ))
        .execute(&mut conn);

    let (chain, _) = longest(&operators_view(&admin, 0));
    let original = db.chain(&mut conn, &chain);
    let rows = tampered(&original, 0, Kind::Edit, Attacker::Careful).unwrap();
    db.write(&mut conn, &chain, &rows, true);
    diesel::delete(cps::table).execute(&mut conn).unwrap();
    let now_heads: Vec<(String, i64, String)> = heads::table
        .order(heads::chain)
        .select((heads::chain, heads::seq, heads::hash))
        .load(&mut conn)
        .unwrap();
    // A checkpoint of the old form, re-signed.
    let heads_json = serde_json_canonicalizer::to_string(&json!(now_heads)).unwrap();
    let digest = hex::encode(Sha256::digest(&heads_json));
    diesel::insert_into(cps::table)
        .values((
            cps::at.eq(chrono::Utc::now().naive_utc()),
            cps::heads.eq(&heads_json),
            cps::digest.eq(&digest),
            cps::key_id.eq(&forger_id),
            cps::signature.eq(hex::encode(forger.sign(digest.as_bytes()).to_bytes())),
        ))
        .execute(&mut conn)
        .unwrap();
    let v = verify_http(&admin);
    assert_eq!(v["ok"], false, "a re-signed legacy checkpoint passed: {v}");
    assert!(!verify_cli(&srv));
    let keys = srv.api().get("/v1/registry-keys").expect(200).body;
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .all(|k| k["key_id"] != forger_id),
        "a key a database writer inserted is published: {keys}"
    );

    // A chained checkpoint, re-signed.
    diesel::delete(cps::table).execute(&mut conn).unwrap();
    let mut forged = registry::audit::Checkpoint {
        seq: 1,
        at: "2026-11-30T23:00:00.000000Z".into(),
        prev_hash: GENESIS.into(),
        heads: Some(
            now_heads
                .iter()
                .map(|(chain, seq, hash)| registry::audit::Head {
                    chain: chain.clone(),
                    seq: *seq,
                    hash: hash.clone(),
                })
                .collect(),
        ),
        heads_root: None,
        key_id: forger_id.clone(),
        digest: String::new(),
        signature: String::new(),
    };
    forged.digest = forged.computed_digest();
    forged.signature = hex::encode(forger.sign(forged.digest.as_bytes()).to_bytes());
    diesel::insert_into(cps::table)
        .values((
            cps::at.eq(
                NaiveDateTime::parse_from_str("2026-11-30T23:00:00", "%Y-%m-%dT%H:%M:%S").unwrap(),
            ),
            cps::heads.eq(serde_json_canonicalizer::to_string(&json!(forged.heads)).unwrap()),
            cps::digest.eq(&forged.digest),
            cps::key_id.eq(&forged.key_id),
            cps::signature.eq(&forged.signature),
            cps::seq.eq(Some(1i64)),
            cps::prev_hash.eq(Some(GENESIS)),
        ))
        .execute(&mut conn)
        .unwrap();
    let v = verify_http(&admin);
    assert_eq!(v["ok"], false, "a re-signed checkpoint passed: {v}");
    assert!(
        v["problems"]
            .to_string()
            .contains("not one of the registry's keys"),
        "{v}"
    );
    let (ok, out) = verify_witnessed(&srv, &witness);
    assert!(!ok, "{out}");
    assert!(out.contains("witnessed checkpoint 1 differs"), "{out}");
}

/// What a bank keeps of a checkpoint names no audit chain and no chain's length — neither
/// `GET /v1/audit/checkpoints` nor the `audit.checkpoint` webhook tells it which parties, lots
/// or users exist or how busy they are — yet it verifies offline (digest over the commitment,
/// signature by a published key), and `registry audit verify --witness` proves against it that
/// the database extends what the bank kept: a chain cut below a checkpoint is caught.
fn a_banks_checkpoints_name_no_chain(b: Backend) {
    use base64::Engine;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    let srv = Server::on_with(common::Db::fresh(b), ALLOW_HOOK);
    let admin = srv.admin();
    let (banker, _) = lender(&admin);
    let transfer = trail(&admin);
    transfer("1");
    transfer("2");
    admin.post("/v1/audit/checkpoints", &json!({})).expect(201);
    transfer("3");
    admin.post("/v1/audit/checkpoints", &json!({})).expect(201);
    let full = admin.get("/v1/audit/checkpoints").expect(200).body;
    let chains: Vec<String> = full["items"][1]["heads"]
        .as_array()
        .expect("operators see the heads")
        .iter()
        .map(|h| h["chain"].as_str().unwrap().to_string())
        .collect();
    assert!(chains.len() > 3, "{full}");
    let (witness, kept) = keep_checkpoints(&banker, srv.db.dir.path(), "witness.json");
    let mut conn = Db {
        url: srv.db.url.clone(),
    }
    .conn();
    let sent: Vec<String> = registry::schema::webhook_deliveries::table
        .filter(registry::schema::webhook_deliveries::event_type.eq("audit.checkpoint"))
        .select(registry::schema::webhook_deliveries::payload)
        .load(&mut conn)
        .unwrap();
    assert_eq!(sent.len(), 2);
    let seen = format!("{} {}", json!(kept), sent.join(" "));
    assert!(!seen.contains("\"heads\""), "a bank sees the heads: {seen}");
    for chain in &chains {
        assert!(
            !seen.contains(chain.as_str()),
            "a bank sees chain {chain}: {seen}"
        );
    }
    let keys = srv.api().get("/v1/registry-keys").expect(200).body;
    for cp in &kept {
        let body = json!({"seq": cp["seq"], "at": cp["at"], "prev_hash": cp["prev_hash"],
            "heads_root": cp["heads_root"], "key_id": cp["key_id"]});
        let digest = hex::encode(Sha256::digest(
            serde_json_canonicalizer::to_string(&body).unwrap(),
        ));
        assert_eq!(cp["digest"], digest.as_str(), "{cp}");
        let key = keys
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key_id"] == cp["key_id"])
            .expect("a published key");
        let public: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(key["public_key"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let sig = Signature::from_slice(&hex::decode(cp["signature"].as_str().unwrap()).unwrap())
            .unwrap();
        assert!(VerifyingKey::from_bytes(&public)
            .unwrap()
            .verify(digest.as_bytes(), &sig)
            .is_ok());
    }
    let (ok, out) = verify_witnessed(&srv, &witness);
    assert!(ok, "{out}");
    // Cut the longest chain below what checkpoint 2 signs, checkpoints left in place.
    let (chain, signed) = longest(&full["items"][1]);
    let db = Db {
        url: srv.db.url.clone(),
    };
    let original = db.chain(&mut conn, &chain);
    let cut: Vec<Row> = original
        .iter()
        .filter(|r| r.seq < signed)
        .cloned()
        .collect();
    db.write(&mut conn, &chain, &cut, true);
    let (ok, out) = verify_witnessed(&srv, &witness);
    assert!(!ok, "a truncated chain passed the witness:\n{out}");
    assert!(
        out.contains(&format!("chain {chain} event {signed} is missing")),
        "{out}"
    );
}

both_backends!(
    checkpoints_turned_into_the_pre_chain_format_fail,
    a_banks_checkpoints_name_no_chain,
    every_event_tampering_is_detected,
    deleted_checkpoints_and_rewritten_history_are_caught_by_a_witness,
    re_signing_with_a_key_outside_the_key_files_is_caught,
);
