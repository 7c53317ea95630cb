//! The audit trail detects tampering (issue 7): editing, deleting or reordering ANY stored event up
//! to the last checkpoint is caught by both `GET /v1/audit/verify` and `registry audit verify`.
//!
//! Two attackers with write access to the database, at every event position of every chain:
//! - a naive one, who changes the rows and nothing else (caught by the hash links);
//! - a careful one, who then recomputes every hash and link of the chain after the change and
//!   moves the chain head to match (only the signed checkpoint can catch that one — and must).

mod common;

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
    let signed: Vec<(String, i64, String)> = serde_json::from_str(&signed).unwrap();
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

both_backends!(every_event_tampering_is_detected);
