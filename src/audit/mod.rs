//! The tamper-evident audit trail. Events are hash-linked per chain (one chain per asset or
//! party, so unrelated writes never wait on one global row); a periodic checkpoint signs every
//! chain head with the registry's Ed25519 key. Verification recomputes every chain and checks
//! every checkpoint: editing, deleting or reordering any event is detected, and so is cutting
//! off the end of a chain up to the last checkpoint.

pub mod routes;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::db::DbConn;
use crate::schema::{audit_chain_heads as heads, audit_checkpoints as cps, audit_events as ev};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One state change to record.
pub struct Event<'a> {
    pub chain: String,
    pub actor: &'a str,
    pub action: &'a str,
    pub object_type: &'a str,
    pub object_id: String,
    pub payload: Value,
    pub at: NaiveDateTime,
}

/// Appends an event to its chain, in the caller's transaction. Bumping the head first takes the
/// chain's row lock on PostgreSQL, so concurrent appends to one chain queue, others don't.
pub fn record(conn: &mut DbConn, e: Event) -> QueryResult<()> {
    crate::insert_or_ignore!(
        conn,
        heads::table,
        (
            heads::chain.eq(&e.chain),
            heads::seq.eq(0i64),
            heads::hash.eq(GENESIS)
        )
    )?;
    diesel::update(heads::table.find(&e.chain))
        .set(heads::seq.eq(heads::seq + 1))
        .execute(conn)?;
    let (seq, prev_hash): (i64, String) = heads::table
        .find(&e.chain)
        .select((heads::seq, heads::hash))
        .first(conn)?;
    let payload = canonical(&e.payload);
    let hash = event_hash(
        &e.chain,
        seq,
        e.at,
        e.actor,
        e.action,
        e.object_type,
        &e.object_id,
        &payload,
        &prev_hash,
    );
    diesel::insert_into(ev::table)
        .values((
            ev::chain.eq(&e.chain),
            ev::seq.eq(seq),
            ev::at.eq(e.at),
            ev::actor.eq(e.actor),
            ev::action.eq(e.action),
            ev::object_type.eq(e.object_type),
            ev::object_id.eq(&e.object_id),
            ev::payload.eq(&payload),
            ev::prev_hash.eq(&prev_hash),
            ev::hash.eq(&hash),
        ))
        .execute(conn)?;
    diesel::update(heads::table.find(&e.chain))
        .set(heads::hash.eq(&hash))
        .execute(conn)?;
    Ok(())
}

/// RFC 8785 canonical JSON, so that the same event always hashes the same.
pub fn canonical(v: &Value) -> String {
    serde_json_canonicalizer::to_string(v).unwrap_or_else(|_| v.to_string())
}

#[allow(clippy::too_many_arguments)]
fn event_hash(
    chain: &str,
    seq: i64,
    at: NaiveDateTime,
    actor: &str,
    action: &str,
    object_type: &str,
    object_id: &str,
    payload: &str,
    prev_hash: &str,
) -> String {
    let doc = json!({
        "chain": chain, "seq": seq, "at": at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "actor": actor, "action": action, "object_type": object_type, "object_id": object_id,
        "payload": payload, "prev_hash": prev_hash,
    });
    hex::encode(Sha256::digest(canonical(&doc)))
}

/// Signs the current head of every chain.
pub fn checkpoint(conn: &mut DbConn, key: &SigningKey, at: NaiveDateTime) -> QueryResult<i64> {
    let rows: Vec<(String, i64, String)> = heads::table
        .order(heads::chain)
        .select((heads::chain, heads::seq, heads::hash))
        .load(conn)?;
    let heads_json = canonical(&json!(rows));
    let digest = hex::encode(Sha256::digest(&heads_json));
    let signature = hex::encode(key.sign(digest.as_bytes()).to_bytes());
    diesel::insert_into(cps::table)
        .values((
            cps::at.eq(at),
            cps::heads.eq(&heads_json),
            cps::digest.eq(&digest),
            cps::key_id.eq(key_id(&key.verifying_key())),
            cps::signature.eq(&signature),
        ))
        .execute(conn)?;
    cps::table
        .select(diesel::dsl::max(cps::id))
        .first::<Option<i64>>(conn)
        .map(|id| id.unwrap_or(0))
}

/// A short public identifier of a verifying key.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// The result of verifying the whole trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    pub ok: bool,
    pub chains: i64,
    pub events: i64,
    pub checkpoints: i64,
    /// Every problem found; empty when `ok`.
    pub problems: Vec<String>,
}

/// Recomputes every chain and checks every checkpoint.
pub fn verify(conn: &mut DbConn, key: &VerifyingKey) -> QueryResult<Verification> {
    let mut problems = Vec::new();
    let mut heads_found: std::collections::BTreeMap<String, (i64, String)> = Default::default();
    type Row = (
        String,
        i64,
        NaiveDateTime,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
    );
    let rows: Vec<Row> = ev::table
        .order((ev::chain, ev::seq))
        .select((
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
        .load(conn)?;
    let events = rows.len() as i64;
    let mut all_hashes: std::collections::HashMap<(String, i64), String> = Default::default();
    for (chain, seq, at, actor, action, otype, oid, payload, prev, hash) in rows {
        let (last_seq, last_hash) = heads_found
            .get(&chain)
            .cloned()
            .unwrap_or((0, GENESIS.to_string()));
        if seq != last_seq + 1 {
            problems.push(format!(
                "chain {chain}: event {seq} follows {last_seq} (missing or reordered events)"
            ));
        }
        if prev != last_hash {
            problems.push(format!(
                "chain {chain}: event {seq} does not link to its predecessor"
            ));
        }
        if event_hash(
            &chain, seq, at, &actor, &action, &otype, &oid, &payload, &prev,
        ) != hash
        {
            problems.push(format!("chain {chain}: event {seq} was altered"));
        }
        all_hashes.insert((chain.clone(), seq), hash.clone());
        heads_found.insert(chain, (seq, hash));
    }
    let stored_heads: Vec<(String, i64, String)> = heads::table
        .select((heads::chain, heads::seq, heads::hash))
        .load(conn)?;
    for (chain, seq, hash) in &stored_heads {
        match heads_found.get(chain) {
            Some((s, h)) if s == seq && h == hash => {}
            _ => problems.push(format!(
                "chain {chain}: its head (event {seq}) does not match the stored events"
            )),
        }
    }
    let checkpoints: Vec<(i64, String, String, String)> = cps::table
        .order(cps::id)
        .select((cps::id, cps::heads, cps::digest, cps::signature))
        .load(conn)?;
    for (id, heads_json, digest, signature) in &checkpoints {
        let sig_ok = hex::decode(signature)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .map(|sig| key.verify(digest.as_bytes(), &sig).is_ok())
            .unwrap_or(false);
        if !sig_ok || hex::encode(Sha256::digest(heads_json)) != *digest {
            problems.push(format!("checkpoint {id}: signature or digest invalid"));
            continue;
        }
        let listed: Vec<(String, i64, String)> =
            serde_json::from_str(heads_json).unwrap_or_default();
        for (chain, seq, hash) in listed {
            if all_hashes.get(&(chain.clone(), seq)) != Some(&hash) {
                problems.push(format!(
                    "checkpoint {id}: chain {chain} event {seq} is missing or changed"
                ));
            }
        }
    }
    Ok(Verification {
        ok: problems.is_empty(),
        chains: stored_heads.len() as i64,
        events,
        checkpoints: checkpoints.len() as i64,
        problems,
    })
}
