//! The tamper-evident audit trail. Events are hash-linked per chain (one chain per asset or
//! party, so unrelated writes never wait on one global row); a periodic checkpoint signs every
//! chain's head and length with the registry's Ed25519 key. Checkpoints form a chain of their own
//! (each signs the previous one's digest) and are sent to every lender with a webhook endpoint
//! and served at `GET /v1/audit/checkpoints`, so that the banks are witnesses: the key is not in
//! the database, and whoever kept an earlier checkpoint can prove that the database still
//! extends it (`registry audit verify --witness FILE`). Verification recomputes every chain and
//! checks every checkpoint with the key it names: editing, deleting or reordering any event is
//! detected, and so is cutting off the end of a chain up to the last checkpoint; deleting or
//! re-signing checkpoints after rewriting history is detected against any witness.

pub mod outbox;
pub mod routes;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::db::{self, DbConn};
use crate::error::ApiResult;
pub use crate::keys::key_id;
use crate::keys::KeyRing;
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

/// One chain's head as a checkpoint signs it: its last event number (the chain's length) and
/// that event's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Head {
    pub chain: String,
    pub seq: i64,
    pub hash: String,
}

/// A signed checkpoint, exactly as lenders receive and keep it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Checkpoint {
    /// Its number in the chain of checkpoints, from 1.
    pub seq: i64,
    /// When it was made (UTC, RFC 3339 with microseconds).
    pub at: String,
    /// The `digest` of checkpoint `seq - 1` (64 zeros for the first).
    pub prev_hash: String,
    /// Every audit chain's head, by chain name: in the registry's own and the regulator's view
    /// only. A bank receives the checkpoint without them (`heads_root` commits to them), so the
    /// checkpoints do not tell a bank which parties, lots or users exist or how busy they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<Vec<Head>>,
    /// Hex SHA-256 of the RFC 8785 canonical JSON of `heads` (sorted by chain). Absent on
    /// checkpoints made before it existed, whose digest covers `heads` directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads_root: Option<String>,
    /// The signing key (see `GET /v1/registry-keys`).
    pub key_id: String,
    /// Hex SHA-256 of the RFC 8785 canonical JSON of
    /// `{"seq", "at", "prev_hash", "heads_root", "key_id"}` (older checkpoints: `heads` in
    /// place of `heads_root`).
    pub digest: String,
    /// Hex Ed25519 signature over `digest` (its 64 ASCII characters).
    pub signature: String,
}

impl Checkpoint {
    /// What `digest` must be.
    pub fn computed_digest(&self) -> String {
        let body = match &self.heads_root {
            Some(root) => json!({
                "seq": self.seq, "at": self.at, "prev_hash": self.prev_hash,
                "heads_root": root, "key_id": self.key_id,
            }),
            None => json!({
                "seq": self.seq, "at": self.at, "prev_hash": self.prev_hash,
                "heads": self.heads.as_deref().unwrap_or_default(), "key_id": self.key_id,
            }),
        };
        hex::encode(Sha256::digest(canonical(&body)))
    }

    /// Whether its digest is right (and its heads hash to its `heads_root`) and it is signed by
    /// the key it names, which must be one of the registry's keys. An older checkpoint a bank
    /// kept without its heads can only have its signature checked.
    pub fn check(&self, ring: &KeyRing) -> Result<(), String> {
        if let (Some(root), Some(heads)) = (&self.heads_root, &self.heads) {
            if heads_root_of(&canonical(&json!(heads))) != *root {
                return Err("its heads do not match its heads_root".into());
            }
        }
        if (self.heads_root.is_some() || self.heads.is_some())
            && self.computed_digest() != self.digest
        {
            return Err("its digest does not match its content".into());
        }
        signed_by(ring, &self.key_id, &self.digest, &self.signature)
    }

    /// The checkpoint as a bank receives it: the commitment to the heads, not the heads.
    pub fn commitment(&self) -> Checkpoint {
        Checkpoint {
            heads: None,
            ..self.clone()
        }
    }
}

/// The `heads_root` of a checkpoint whose heads are `heads_json` (their canonical JSON).
fn heads_root_of(heads_json: &str) -> String {
    hex::encode(Sha256::digest(heads_json.as_bytes()))
}

/// Checks a hex signature over `digest` with the registry key `key_id`.
fn signed_by(ring: &KeyRing, key_id: &str, digest: &str, signature: &str) -> Result<(), String> {
    let Some(key) = ring.get(key_id) else {
        return Err(format!(
            "it names key {key_id}, which is not one of the registry's keys"
        ));
    };
    let ok = hex::decode(signature)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .is_some_and(|sig| key.verify(digest.as_bytes(), &sig).is_ok());
    if ok {
        Ok(())
    } else {
        Err(format!("its signature by key {key_id} is invalid"))
    }
}

fn at_text(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Key of the PostgreSQL transaction lock that makes checkpoints one chain across processes
/// (SQLite's immediate transaction serialises them anyway).
const CHECKPOINT_LOCK_KEY: i64 = 0x4155_4449_5443_5054; // "AUDITCPT"

type CheckpointRow = (
    Option<i64>,
    NaiveDateTime,
    Option<String>,
    String,
    String,
    String,
    String,
);

fn checkpoint_of(row: CheckpointRow) -> Checkpoint {
    let (seq, at, prev_hash, heads_json, digest, key_id, signature) = row;
    let mut cp = Checkpoint {
        seq: seq.unwrap_or(0),
        at: at_text(at),
        prev_hash: prev_hash.unwrap_or_default(),
        // Heads that do not parse are `None`, never an empty list (which would sign nothing):
        // verification reports them.
        heads: serde_json::from_str(&heads_json).ok(),
        heads_root: Some(heads_root_of(&heads_json)),
        key_id,
        digest,
        signature,
    };
    // A checkpoint from before `heads_root` signs its heads directly (the stored rows do not say
    // which form they are; a row that is neither fails its check).
    if cp.computed_digest() != cp.digest {
        cp.heads_root = None;
    }
    cp
}

/// The chained checkpoints after number `after`, oldest first.
pub fn checkpoints_after(
    conn: &mut DbConn,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<Checkpoint>> {
    let rows: Vec<CheckpointRow> = cps::table
        .filter(cps::seq.gt(after))
        .order(cps::seq)
        .limit(limit)
        .select((
            cps::seq,
            cps::at,
            cps::prev_hash,
            cps::heads,
            cps::digest,
            cps::key_id,
            cps::signature,
        ))
        .load(conn)?;
    Ok(rows.into_iter().map(checkpoint_of).collect())
}

/// Signs the current head of every chain as the next checkpoint and queues it for every lender
/// with an active webhook endpoint, in one transaction. With `only_if_changed`, nothing is made
/// when no chain moved since the last checkpoint.
pub fn checkpoint(
    conn: &mut DbConn,
    key: &SigningKey,
    at: NaiveDateTime,
    only_if_changed: bool,
) -> ApiResult<Option<Checkpoint>> {
    db::write_tx(conn, |conn| {
        if let DbConn::Pg(c) = conn {
            diesel::sql_query(format!(
                "SELECT pg_advisory_xact_lock({CHECKPOINT_LOCK_KEY})"
            ))
            .execute(c)?;
        }
        let heads: Vec<Head> = heads::table
            .order(heads::chain)
            .select((heads::chain, heads::seq, heads::hash))
            .load::<(String, i64, String)>(conn)?
            .into_iter()
            .map(|(chain, seq, hash)| Head { chain, seq, hash })
            .collect();
        let heads_json = canonical(&json!(heads));
        let last: Option<(Option<i64>, String, String)> = cps::table
            .filter(cps::seq.is_not_null())
            .order(cps::seq.desc())
            .select((cps::seq, cps::digest, cps::heads))
            .first(conn)
            .optional()?;
        if only_if_changed && last.as_ref().is_some_and(|l| l.2 == heads_json) {
            return Ok(None);
        }
        let (prev_seq, prev_hash) = last
            .map(|(s, d, _)| (s.unwrap_or(0), d))
            .unwrap_or((0, GENESIS.to_string()));
        let mut cp = Checkpoint {
            seq: prev_seq + 1,
            at: at_text(at),
            prev_hash,
            heads: Some(heads),
            heads_root: Some(heads_root_of(&heads_json)),
            key_id: key_id(&key.verifying_key()),
            digest: String::new(),
            signature: String::new(),
        };
        cp.digest = cp.computed_digest();
        cp.signature = hex::encode(key.sign(cp.digest.as_bytes()).to_bytes());
        diesel::insert_into(cps::table)
            .values((
                cps::at.eq(at),
                cps::heads.eq(&heads_json),
                cps::digest.eq(&cp.digest),
                cps::key_id.eq(&cp.key_id),
                cps::signature.eq(&cp.signature),
                cps::seq.eq(cp.seq),
                cps::prev_hash.eq(&cp.prev_hash),
            ))
            .execute(conn)?;
        notify_lenders(conn, &cp, at)?;
        Ok(Some(cp))
    })
}

/// Every bank with an active webhook endpoint receives every checkpoint (event
/// `audit.checkpoint`), in order, as a commitment (no chain names).
fn notify_lenders(conn: &mut DbConn, cp: &Checkpoint, at: NaiveDateTime) -> ApiResult<()> {
    use crate::schema::webhook_endpoints as we;
    let parties: Vec<i64> = we::table
        .filter(we::active.eq(true))
        .select(we::party_id)
        .distinct()
        .load(conn)?;
    let data = serde_json::to_value(cp.commitment()).unwrap_or(Value::Null);
    for party in parties {
        outbox::enqueue(
            conn,
            party,
            "audit-checkpoints",
            "audit.checkpoint",
            data.clone(),
            at,
        )?;
    }
    Ok(())
}

/// The result of verifying the whole trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    pub ok: bool,
    pub chains: i64,
    pub events: i64,
    pub checkpoints: i64,
    /// Every problem found (at most 1,000 listed); empty when `ok`.
    pub problems: Vec<String>,
    /// Events that no checkpoint (stored or witnessed) signs: whoever can write the database
    /// could have rewritten them without a trace.
    pub unsigned_events: i64,
    /// What weakens the result without proving tampering (e.g. events but no checkpoint).
    pub warnings: Vec<String>,
}

const MAX_PROBLEMS: usize = 1000;
/// Events read per query: verification holds one page of events at a time, never the trail.
const EVENT_PAGE: i64 = 1000;
const CHECKPOINT_PAGE: i64 = 100;
/// Unsigned events older than this are flagged: the periodic checkpoint (every 300 s by
/// default) should have signed them long before.
const UNSIGNED_GRACE_SECS: i64 = 3600;

#[derive(Default)]
struct Problems {
    list: Vec<String>,
    more: usize,
}

impl Problems {
    fn push(&mut self, p: String) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(p);
        } else {
            self.more += 1;
        }
    }
    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    fn into_list(mut self) -> Vec<String> {
        if self.more > 0 {
            self.list.push(format!("… and {} more problems", self.more));
        }
        self.list
    }
}

/// What signed checkpoints (stored or witnessed) say each chain's event at a position hashes to.
#[derive(Default)]
struct Expected(HashMap<String, BTreeMap<i64, (String, String)>>);

impl Expected {
    fn add(&mut self, heads: &[Head], origin: &str, problems: &mut Problems) {
        for h in heads {
            let at = self.0.entry(h.chain.clone()).or_default();
            match at.get(&h.seq) {
                Some((hash, first)) if *hash != h.hash => problems.push(format!(
                    "{origin} and {first} disagree on chain {} event {}",
                    h.chain, h.seq
                )),
                Some(_) => {}
                None => {
                    at.insert(h.seq, (h.hash.clone(), origin.to_string()));
                }
            }
        }
    }
}

/// Recomputes every chain and checks every checkpoint with the key it names; with `witness`
/// (checkpoints a lender kept), also that the database still holds each of them unchanged and
/// that every chain still extends the heads they sign. Reads one consistent snapshot, a page of
/// events at a time.
pub fn verify(
    conn: &mut DbConn,
    ring: &KeyRing,
    witness: &[Checkpoint],
) -> QueryResult<Verification> {
    conn.transaction(|conn| {
        if let DbConn::Pg(c) = conn {
            diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(c)?;
        }
        verify_snapshot(conn, ring, witness)
    })
}

fn verify_snapshot(
    conn: &mut DbConn,
    ring: &KeyRing,
    witness: &[Checkpoint],
) -> QueryResult<Verification> {
    let mut problems = Problems::default();
    let mut expected = Expected::default();
    let mut checkpoints = 0i64;

    // Checkpoints from before they were chained: each on its own, and only before the first
    // chained one. Their digest is the SHA-256 of their heads text, so a chained checkpoint
    // stripped of seq and prev_hash, with its own canonical body as "heads", still matches its
    // digest and signature: the heads must therefore parse as a list of chain heads (which no
    // chained checkpoint's body does) and are then checked against the chains like any other.
    let first_chained: Option<i64> = cps::table
        .filter(cps::seq.is_not_null())
        .select(diesel::dsl::min(cps::id))
        .first(conn)?;
    let mut after_id = 0i64;
    loop {
        let rows: Vec<(i64, Option<String>, String, String, String, String)> = cps::table
            .filter(cps::seq.is_null())
            .filter(cps::id.gt(after_id))
            .order(cps::id)
            .limit(CHECKPOINT_PAGE)
            .select((
                cps::id,
                cps::prev_hash,
                cps::heads,
                cps::digest,
                cps::key_id,
                cps::signature,
            ))
            .load(conn)?;
        let Some(last) = rows.last() else { break };
        after_id = last.0;
        for (id, prev, heads_json, digest, key, signature) in rows {
            checkpoints += 1;
            let origin = format!("checkpoint #{id}");
            if prev.is_some() {
                problems.push(format!(
                    "{origin} links to a previous checkpoint but has no number"
                ));
            }
            if first_chained.is_some_and(|first| id > first) {
                problems.push(format!(
                    "{origin} is in the pre-chain format, yet the registry had already made \
                     chained checkpoints (a checkpoint stripped of its number and link?)"
                ));
            }
            if hex::encode(Sha256::digest(&heads_json)) != digest {
                problems.push(format!("{origin}: its digest does not match its content"));
                continue;
            }
            if let Err(e) = signed_by(ring, &key, &digest, &signature) {
                problems.push(format!("{origin}: {e}"));
                continue;
            }
            let Ok(listed) = serde_json::from_str::<Vec<(String, i64, String)>>(&heads_json) else {
                problems.push(format!(
                    "{origin}: its heads cannot be read, so it signs no chain \
                     (a chained checkpoint turned into the pre-chain format?)"
                ));
                continue;
            };
            let heads: Vec<Head> = listed
                .into_iter()
                .map(|(chain, seq, hash)| Head { chain, seq, hash })
                .collect();
            expected.add(&heads, &origin, &mut problems);
        }
    }

    // The chain of checkpoints: numbered 1, 2, … without a gap, each linked to the one before.
    let (mut prev_seq, mut prev_hash) = (0i64, GENESIS.to_string());
    let mut stored: HashMap<i64, String> = HashMap::new();
    let wanted: BTreeSet<i64> = witness.iter().map(|w| w.seq).collect();
    loop {
        let page = checkpoints_after(conn, prev_seq, CHECKPOINT_PAGE)?;
        if page.is_empty() {
            break;
        }
        for cp in page {
            checkpoints += 1;
            let origin = format!("checkpoint {}", cp.seq);
            if cp.seq != prev_seq + 1 {
                problems.push(format!(
                    "{origin} follows checkpoint {prev_seq}: checkpoints are missing"
                ));
            }
            if cp.prev_hash != prev_hash {
                problems.push(format!(
                    "{origin} does not link to the checkpoint before it"
                ));
            }
            match (cp.check(ring), &cp.heads) {
                (Ok(()), Some(heads)) => expected.add(heads, &origin, &mut problems),
                (Ok(()), None) => problems.push(format!(
                    "{origin}: its heads cannot be read, so it signs no chain"
                )),
                (Err(e), _) => problems.push(format!("{origin}: {e}")),
            }
            if wanted.contains(&cp.seq) {
                stored.insert(cp.seq, cp.digest.clone());
            }
            prev_seq = cp.seq;
            prev_hash = cp.digest;
        }
    }

    // What the lenders kept must still be there, unchanged, and the chains must extend it.
    for w in witness {
        let origin = format!("witnessed checkpoint {}", w.seq);
        if let Err(e) = w.check(ring) {
            problems.push(format!("{origin}: {e}"));
        }
        match stored.get(&w.seq) {
            None => problems.push(format!(
                "{origin} is missing from the database (checkpoints deleted or history rewritten)"
            )),
            Some(d) if *d != w.digest => problems.push(format!(
                "{origin} differs from the database's checkpoint {} (history rewritten or re-signed)",
                w.seq
            )),
            Some(_) => {}
        }
        // A bank's witness has only the commitment: the database's own checkpoint of the same
        // digest, checked above, supplies the heads the chains must extend.
        if let Some(heads) = &w.heads {
            expected.add(heads, &origin, &mut problems);
        }
    }

    let stored_heads: BTreeMap<String, (i64, String)> = heads::table
        .select((heads::chain, heads::seq, heads::hash))
        .load::<(String, i64, String)>(conn)?
        .into_iter()
        .map(|(c, s, h)| (c, (s, h)))
        .collect();
    let mut chains: BTreeSet<String> = ev::table
        .select(ev::chain)
        .distinct()
        .load::<String>(conn)?
        .into_iter()
        .collect();
    chains.extend(stored_heads.keys().cloned());
    chains.extend(expected.0.keys().cloned());

    let mut events = 0i64;
    let mut unsigned_events = 0i64;
    let mut oldest_unsigned: Option<NaiveDateTime> = None;
    for chain in &chains {
        let want = expected.0.remove(chain).unwrap_or_default();
        let signed_up_to = want.keys().next_back().copied().unwrap_or(0);
        let (last_seq, last_hash, n, first_unsigned) =
            verify_chain(conn, chain, &want, signed_up_to, &mut problems)?;
        events += n;
        unsigned_events += (last_seq - signed_up_to).max(0);
        if let Some(at) = first_unsigned {
            oldest_unsigned = Some(oldest_unsigned.map_or(at, |o| o.min(at)));
        }
        if let Some((seq, hash)) = stored_heads.get(chain) {
            if *seq != last_seq || *hash != last_hash {
                problems.push(format!(
                    "chain {chain}: its head (event {seq}) does not match the stored events"
                ));
            }
        } else if n > 0 {
            problems.push(format!("chain {chain}: its events have no head"));
        }
    }
    // Unsigned events are flagged, not failed. Without a witness a database writer who deletes
    // the checkpoints can also rewrite every event, timestamps included (they are only hashed,
    // and he recomputes the hashes), so no rule about missing or stale checkpoints can prove
    // tampering: it would only fail honest trails (checkpoints made on request only, a longer
    // interval, a shifted test clock) while the careful attacker dates his events "now". What
    // does prove it is a checkpoint a lender kept: `--witness` turns a missing checkpoint into
    // a problem ("witnessed checkpoint N is missing"). The flag says what is not proven.
    let mut warnings = Vec::new();
    if events > 0 && checkpoints == 0 {
        warnings.push(format!(
            "there are {events} events but no checkpoint: nothing signs the trail, so it proves \
             nothing against whoever can write the database; verify against checkpoints a \
             lender kept (--witness)"
        ));
    } else if let Some(at) = oldest_unsigned.filter(|at| {
        *at < chrono::Utc::now().naive_utc() - chrono::TimeDelta::seconds(UNSIGNED_GRACE_SECS)
    }) {
        warnings.push(format!(
            "{unsigned_events} events are signed by no checkpoint, the oldest made at {} (more \
             than {UNSIGNED_GRACE_SECS} s ago): checkpoints deleted, or none made since; \
             verify against checkpoints a lender kept (--witness)",
            at_text(at)
        ));
    }
    Ok(Verification {
        ok: problems.is_empty(),
        chains: stored_heads.len() as i64,
        events,
        checkpoints,
        problems: problems.into_list(),
        unsigned_events,
        warnings,
    })
}

type EventRow = (
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

/// Recomputes one chain a page at a time; returns its last event number and hash, how many
/// events it has and when the first event after `signed_up_to` (signed by no checkpoint) was
/// made.
fn verify_chain(
    conn: &mut DbConn,
    chain: &str,
    want: &BTreeMap<i64, (String, String)>,
    signed_up_to: i64,
    problems: &mut Problems,
) -> QueryResult<(i64, String, i64, Option<NaiveDateTime>)> {
    let mut first_unsigned = None;
    let (mut last_seq, mut last_hash, mut count) = (0i64, GENESIS.to_string(), 0i64);
    let mut seen = BTreeSet::new();
    let mut after = i64::MIN;
    loop {
        let rows: Vec<EventRow> = ev::table
            .filter(ev::chain.eq(chain))
            .filter(ev::seq.gt(after))
            .order(ev::seq)
            .limit(EVENT_PAGE)
            .select((
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
        let Some(last) = rows.last() else { break };
        after = last.0;
        for (seq, at, actor, action, otype, oid, payload, prev, hash) in rows {
            count += 1;
            if seq > signed_up_to && first_unsigned.is_none() {
                first_unsigned = Some(at);
            }
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
                chain, seq, at, &actor, &action, &otype, &oid, &payload, &prev,
            ) != hash
            {
                problems.push(format!("chain {chain}: event {seq} was altered"));
            }
            if let Some((signed, origin)) = want.get(&seq) {
                seen.insert(seq);
                if *signed != hash {
                    problems.push(format!(
                        "{origin}: chain {chain} event {seq} is missing or changed"
                    ));
                }
            }
            last_seq = seq;
            last_hash = hash;
        }
    }
    for (seq, (_, origin)) in want.iter().filter(|(s, _)| !seen.contains(*s)) {
        problems.push(format!(
            "{origin}: chain {chain} event {seq} is missing or changed"
        ));
    }
    Ok((last_seq, last_hash, count, first_unsigned))
}
