//! P4's reference (bench/): a bare SQLite program doing the writes and syncs of one registered
//! transfer with the registry's own SQLite build (diesel's bundled libsqlite3) and pragmas (WAL,
//! synchronous=FULL, foreign_keys, busy_timeout), 16 clients with a connection each, and no HTTP,
//! JSON, auth or ORM queries. Per transfer, as the registry does: the Idempotency-Key claim in its
//! own transaction; then BEGIN IMMEDIATE, lot lock, the reads, the transfer row, both holdings,
//! the journal row, the audit chain append and the stored response, COMMIT.
//! The same program in Python (system SQLite) is bench/sqlite_bare.py.
//!
//! `cargo run --release --example sqlite_bare -- DB_FILE SECONDS [CLIENTS]`; prints one JSON line.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{sql_query, Connection, RunQueryDsl, SqliteConnection};
use sha2::{Digest, Sha256};

const SCHEMA: &str = include_str!("../bench/sqlite_bare.sql");
const PRAGMAS: &str = "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
    PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;";
const N_PARTIES: i64 = 32;
const N_LOTS: i64 = 32;
const PER_LOT: i64 = 8;
const NOW: &str = "2026-11-27 08:00:00.000000";

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn open(path: &str) -> Res<SqliteConnection> {
    let mut c = SqliteConnection::establish(path)?;
    c.batch_execute(PRAGMAS)?;
    Ok(c)
}

/// WAL mode is a property of the file, set once by the creator; clients set the per-connection
/// pragmas only (switching the journal mode while others write answers SQLITE_BUSY at once).
fn open_client(path: &str) -> Res<SqliteConnection> {
    let mut c = SqliteConnection::establish(path)?;
    c.batch_execute(
        "PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
    )?;
    Ok(c)
}

fn holder(lot: i64, j: i64) -> i64 {
    1 + (lot + j) % N_PARTIES
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .ok_or("usage: sqlite_bare DB_FILE SECONDS [CLIENTS]")?
        .clone();
    let seconds: f64 = args.get(2).map_or(Ok(20.0), |s| s.parse())?;
    let clients: usize = args.get(3).map_or(Ok(16), |s| s.parse())?;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    let mut db = open(&path)?;
    db.batch_execute(SCHEMA)?;
    let mut seed = String::from("BEGIN; INSERT INTO right_types VALUES ('EU', 0);");
    for p in 1..=N_PARTIES {
        seed += &format!("INSERT INTO parties VALUES ({p}, 'enterprise', '基准{p}');");
    }
    for lot in 1..=N_LOTS {
        seed += &format!(
            "INSERT INTO lots VALUES ({lot}, 'EU', 'EU-{lot}', 10000000000, '2030-12-31', 0);"
        );
        for j in 0..PER_LOT {
            seed += &format!(
                "INSERT INTO holdings (party_id, lot_id, available, updated_at) VALUES ({}, {lot}, 1000000000, '{NOW}');",
                holder(lot, j)
            );
        }
    }
    seed += "COMMIT;";
    db.batch_execute(&seed)?;
    drop(db);

    let next_id = Arc::new(AtomicI64::new(1));
    let start = Instant::now();
    let deadline = Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (path, next_id) = (path.clone(), next_id.clone());
            std::thread::spawn(move || client(&path, c as u64, &next_id, start, deadline))
        })
        .collect();
    let mut done = 0u64;
    for t in threads {
        done += t.join().map_err(|_| "client panicked")??;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"transfers\": {done}, \"seconds\": {secs:.3}, \"per_s\": {}, \"clients\": {clients}}}",
        done as f64 / secs
    );
    Ok(())
}

fn client(path: &str, c: u64, next_id: &AtomicI64, start: Instant, deadline: Duration) -> Res<u64> {
    let mut db = open_client(path)?;
    let mut rng = c
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut rand = |n: i64| {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((rng >> 33) % n as u64) as i64
    };
    let mut done = 0;
    while start.elapsed() < deadline {
        let lot = 1 + rand(N_LOTS);
        let a = holder(lot, rand(PER_LOT));
        let b = loop {
            let b = holder(lot, rand(PER_LOT));
            if b != a {
                break b;
            }
        };
        match transfer(&mut db, lot, a, b, next_id.fetch_add(1, Ordering::Relaxed)) {
            Ok(()) => done += 1,
            // SQLite answers "database is locked" at once in a few cases despite busy_timeout (a
            // checkpoint racing a writer): roll back and try another transfer, as a client would.
            Err(e) if e.to_string().contains("locked") => {
                let _ = db.batch_execute("ROLLBACK");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// One registered transfer: the key claim, then the effect.
fn transfer(db: &mut SqliteConnection, lot: i64, a: i64, b: i64, id: i64) -> Res<()> {
    let q = 10_000i64;
    let key = uuid::Uuid::new_v4().to_string();
    let owner = uuid::Uuid::new_v4().to_string();
    let req_hash = hex::encode(Sha256::digest(format!("{lot}{a}{b}")));
    // 1. claim the key
    db.batch_execute("BEGIN IMMEDIATE")?;
    sql_query(
        "SELECT request_hash, state FROM idempotency_keys WHERE principal_id = 1 AND idem_key = ?",
    )
    .bind::<Text, _>(&key)
    .execute(db)?;
    sql_query("INSERT INTO idempotency_keys VALUES (1, ?, ?, 'in_progress', ?, ?, NULL, NULL, ?)")
        .bind::<Text, _>(&key)
        .bind::<Text, _>(&req_hash)
        .bind::<Text, _>(&owner)
        .bind::<Text, _>(NOW)
        .bind::<Text, _>(NOW)
        .execute(db)?;
    db.batch_execute("COMMIT")?;
    // 2. the effect
    db.batch_execute("BEGIN IMMEDIATE")?;
    let one = |sql: &str, v: i64, db: &mut SqliteConnection| {
        sql_query(sql).bind::<BigInt, _>(v).execute(db)
    };
    one(
        "UPDATE lots SET version = version + 1 WHERE id = ?",
        lot,
        db,
    )?;
    one("SELECT * FROM lots WHERE id = ?", lot, db)?;
    sql_query("SELECT * FROM holdings WHERE party_id = ? AND lot_id = ?")
        .bind::<BigInt, _>(a)
        .bind::<BigInt, _>(lot)
        .execute(db)?;
    db.batch_execute("SELECT * FROM right_types WHERE code = 'EU'")?;
    one("SELECT * FROM parties WHERE id = ?", b, db)?;
    sql_query(
        "INSERT INTO transfers (id, lot_id, from_party_id, to_party_id, quantity, kind, status, requested_by, \
         created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'registered', 'settled', 'user:1', ?, ?)",
    )
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(lot)
    .bind::<BigInt, _>(a)
    .bind::<BigInt, _>(b)
    .bind::<BigInt, _>(q)
    .bind::<Text, _>(NOW)
    .bind::<Text, _>(NOW)
    .execute(db)?;
    one("SELECT * FROM transfers WHERE id = ?", id, db)?;
    let taken = sql_query(
        "UPDATE holdings SET available = available - ?, updated_at = ? WHERE party_id = ? AND lot_id = ? \
         AND available >= ?",
    )
    .bind::<BigInt, _>(q)
    .bind::<Text, _>(NOW)
    .bind::<BigInt, _>(a)
    .bind::<BigInt, _>(lot)
    .bind::<BigInt, _>(q)
    .execute(db)?;
    if taken != 1 {
        return Err("insufficient quantity".into());
    }
    let pair = |sql: &str, x: i64, y: i64, db: &mut SqliteConnection| {
        sql_query(sql)
            .bind::<BigInt, _>(x)
            .bind::<BigInt, _>(y)
            .execute(db)
    };
    pair(
        "SELECT acquired_free, acquired_paid FROM holdings WHERE party_id = ? AND lot_id = ?",
        a,
        lot,
        db,
    )?;
    pair(
        "UPDATE holdings SET acquired_paid = acquired_paid - 0 WHERE party_id = ? AND lot_id = ?",
        a,
        lot,
        db,
    )?;
    sql_query("INSERT OR IGNORE INTO holdings (party_id, lot_id, updated_at) VALUES (?, ?, ?)")
        .bind::<BigInt, _>(b)
        .bind::<BigInt, _>(lot)
        .bind::<Text, _>(NOW)
        .execute(db)?;
    sql_query("UPDATE holdings SET available = available + ?, updated_at = ? WHERE party_id = ? AND lot_id = ?")
        .bind::<BigInt, _>(q)
        .bind::<Text, _>(NOW)
        .bind::<BigInt, _>(b)
        .bind::<BigInt, _>(lot)
        .execute(db)?;
    pair("UPDATE holdings SET acquired_free = acquired_free + 10000 WHERE party_id = ? AND lot_id = ?", b, lot, db)?;
    sql_query(
        "INSERT INTO movements (lot_id, from_party_id, from_bucket, to_party_id, to_bucket, quantity, cause, \
         reference, actor, at) VALUES (?, ?, 'available', ?, 'available', ?, 'transfer_registered', ?, 'user:1', ?)",
    )
    .bind::<BigInt, _>(lot)
    .bind::<BigInt, _>(a)
    .bind::<BigInt, _>(b)
    .bind::<BigInt, _>(q)
    .bind::<Text, _>(format!("transfer:{id}"))
    .bind::<Text, _>(NOW)
    .execute(db)?;
    one(
        "UPDATE transfers SET decided_by = 'user:1', serials = NULL WHERE id = ?",
        id,
        db,
    )?;
    let chain = format!("lot:{lot}");
    let text =
        |sql: &str, db: &mut SqliteConnection| sql_query(sql).bind::<Text, _>(&chain).execute(db);
    text(
        "INSERT OR IGNORE INTO audit_chain_heads VALUES (?, 0, 'genesis')",
        db,
    )?;
    text(
        "UPDATE audit_chain_heads SET seq = seq + 1 WHERE chain = ?",
        db,
    )?;
    text(
        "SELECT seq, hash FROM audit_chain_heads WHERE chain = ?",
        db,
    )?;
    let payload = format!("{{\"from\":{a},\"quantity\":{q},\"status\":\"settled\",\"to\":{b}}}");
    let hash = hex::encode(Sha256::digest(format!("{chain}{id}{payload}")));
    sql_query(
        "INSERT INTO audit_events (chain, seq, at, actor, action, object_type, object_id, payload, prev_hash, hash) \
         SELECT chain, seq, ?, 'user:1', 'transfer.registered', 'transfer', ?, ?, hash, ? \
         FROM audit_chain_heads WHERE chain = ?",
    )
    .bind::<Text, _>(NOW)
    .bind::<Text, _>(id.to_string())
    .bind::<Text, _>(&payload)
    .bind::<Text, _>(&hash)
    .bind::<Text, _>(&chain)
    .execute(db)?;
    sql_query("UPDATE audit_chain_heads SET hash = ? WHERE chain = ?")
        .bind::<Text, _>(&hash)
        .bind::<Text, _>(&chain)
        .execute(db)?;
    sql_query(
        "UPDATE idempotency_keys SET state = 'done', response_status = 201, response_body = ? \
         WHERE principal_id = 1 AND idem_key = ? AND owner = ? AND state = 'in_progress'",
    )
    .bind::<Text, _>(&payload)
    .bind::<Text, _>(&key)
    .bind::<Text, _>(&owner)
    .execute(db)?;
    db.batch_execute("COMMIT")?;
    Ok(())
}
