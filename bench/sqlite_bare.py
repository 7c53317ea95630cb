#!/usr/bin/env python3
"""P4's reference: a bare SQLite program doing the writes and syncs of one registered transfer,
with the registry's pragmas (WAL, synchronous=FULL, foreign_keys, busy_timeout) and no HTTP,
JSON, auth or ORM. Per transfer, as the registry does:

  1. the Idempotency-Key claim, its own transaction: look the key up, insert it, COMMIT;
  2. BEGIN IMMEDIATE; lock the lot (bump its version) and read it; read the sender's holding,
     the right type and the receiver; insert the transfer and read it back; take the quantity
     from the sender (conditional UPDATE) and its acquisition record; insert-or-ignore and credit
     the receiver's holding and acquisition; insert the journal row; update the transfer; append
     the audit event to the lot's hash chain (bump head, read, insert event, set head hash);
     finish the key with the stored response; COMMIT.

Like the server, it runs 16 clients, each with its own connection (writers queue on SQLite's
write lock through BEGIN IMMEDIATE and busy_timeout, as in the server's pool).

Usage: sqlite_bare.py DB_FILE SECONDS [CLIENTS]. Prints one JSON line {"transfers", "seconds", "per_s"}.
"""

import hashlib
import json
import os
import random
import sqlite3
import sys
import threading
import time
import uuid

SCHEMA = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "sqlite_bare.sql")).read()

N_PARTIES, N_LOTS, PER_LOT = 32, 32, 8


def main():
    path, seconds = sys.argv[1], float(sys.argv[2])
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=5000"):
        db.execute(f"PRAGMA {pragma}")
    db.executescript(SCHEMA)
    now = "2026-11-27 08:00:00.000000"
    db.execute("BEGIN")
    db.execute("INSERT INTO right_types VALUES ('EU', 0)")
    for p in range(1, N_PARTIES + 1):
        db.execute("INSERT INTO parties VALUES (?, 'enterprise', ?)", (p, f"基准{p}"))
    holders = []
    for lot in range(1, N_LOTS + 1):
        db.execute("INSERT INTO lots VALUES (?, 'EU', ?, 10000000000, '2030-12-31', 0)", (lot, f"EU-{lot}"))
        hs = [1 + (lot + j) % N_PARTIES for j in range(PER_LOT)]
        holders.append(hs)
        for h in hs:
            db.execute("INSERT INTO holdings (party_id, lot_id, available, updated_at) VALUES (?, ?, 1000000000, ?)",
                       (h, lot, now))
    db.execute("COMMIT")
    db.close()

    clients = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    counts = [0] * clients
    t0 = time.time()
    threads = [threading.Thread(target=client, args=(path, holders, seconds, t0, counts, c)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    done = sum(counts)
    print(json.dumps({"transfers": done, "seconds": round(elapsed, 3), "per_s": done / elapsed, "clients": clients}))


def client(path, holders, seconds, t0, counts, c):
    """One client: its own connection, transfers until the time is up."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=10000"):
        db.execute(f"PRAGMA {pragma}")
    now = "2026-11-27 08:00:00.000000"
    rng = random.Random(c)
    while time.time() - t0 < seconds:
        lot = rng.randint(1, N_LOTS)
        a, b = rng.sample(holders[lot - 1], 2)
        q = 10000
        key, owner = str(uuid.uuid4()), str(uuid.uuid4())
        req_hash = hashlib.sha256(f"{lot}{a}{b}".encode()).hexdigest()
        # 1. claim the key
        db.execute("BEGIN IMMEDIATE")
        db.execute("SELECT request_hash, state FROM idempotency_keys WHERE principal_id = 1 AND idem_key = ?", (key,))
        db.execute("INSERT INTO idempotency_keys VALUES (1, ?, ?, 'in_progress', ?, ?, NULL, NULL, ?)",
                   (key, req_hash, owner, now, now))
        db.execute("COMMIT")
        # 2. the effect
        db.execute("BEGIN IMMEDIATE")
        db.execute("UPDATE lots SET version = version + 1 WHERE id = ?", (lot,))
        db.execute("SELECT * FROM lots WHERE id = ?", (lot,)).fetchone()
        db.execute("SELECT * FROM holdings WHERE party_id = ? AND lot_id = ?", (a, lot)).fetchone()
        db.execute("SELECT * FROM right_types WHERE code = 'EU'").fetchone()
        db.execute("SELECT * FROM parties WHERE id = ?", (b,)).fetchone()
        db.execute("INSERT INTO transfers (lot_id, from_party_id, to_party_id, quantity, kind, status, requested_by, "
                   "created_at, updated_at) VALUES (?, ?, ?, ?, 'registered', 'settled', 'user:1', ?, ?)",
                   (lot, a, b, q, now, now))
        tid = db.execute("SELECT id FROM transfers WHERE from_party_id = ? AND lot_id = ? ORDER BY id DESC LIMIT 1",
                         (a, lot)).fetchone()[0]
        if db.execute("UPDATE holdings SET available = available - ?, updated_at = ? WHERE party_id = ? AND "
                      "lot_id = ? AND available >= ?", (q, now, a, lot, q)).rowcount != 1:
            raise SystemExit("insufficient quantity")
        db.execute("UPDATE holdings SET acquired_paid = acquired_paid - ? WHERE party_id = ? AND lot_id = ?",
                   (0, a, lot))
        db.execute("INSERT OR IGNORE INTO holdings (party_id, lot_id, updated_at) VALUES (?, ?, ?)", (b, lot, now))
        db.execute("UPDATE holdings SET available = available + ?, updated_at = ? WHERE party_id = ? AND lot_id = ?",
                   (q, now, b, lot))
        db.execute("UPDATE holdings SET acquired_free = acquired_free + ? WHERE party_id = ? AND lot_id = ?",
                   (q, b, lot))
        db.execute("INSERT INTO movements (lot_id, from_party_id, from_bucket, to_party_id, to_bucket, quantity, "
                   "cause, reference, actor, at) VALUES (?, ?, 'available', ?, 'available', ?, 'transfer_registered', "
                   "?, 'user:1', ?)", (lot, a, b, q, f"transfer:{tid}", now))
        db.execute("UPDATE transfers SET decided_by = 'user:1', serials = NULL WHERE id = ?", (tid,))
        chain = f"lot:{lot}"
        db.execute("INSERT OR IGNORE INTO audit_chain_heads VALUES (?, 0, 'genesis')", (chain,))
        db.execute("UPDATE audit_chain_heads SET seq = seq + 1 WHERE chain = ?", (chain,))
        seq, prev = db.execute("SELECT seq, hash FROM audit_chain_heads WHERE chain = ?", (chain,)).fetchone()
        payload = json.dumps({"from": a, "to": b, "quantity": q, "status": "settled"}, sort_keys=True)
        h = hashlib.sha256(f"{chain}{seq}{payload}{prev}".encode()).hexdigest()
        db.execute("INSERT INTO audit_events (chain, seq, at, actor, action, object_type, object_id, payload, "
                   "prev_hash, hash) VALUES (?, ?, ?, 'user:1', 'transfer.registered', 'transfer', ?, ?, ?, ?)",
                   (chain, seq, now, str(tid), payload, prev, h))
        db.execute("UPDATE audit_chain_heads SET hash = ? WHERE chain = ?", (h, chain))
        db.execute("UPDATE idempotency_keys SET state = 'done', response_status = 201, response_body = ? "
                   "WHERE principal_id = 1 AND idem_key = ? AND owner = ? AND state = 'in_progress'",
                   (payload, key, owner))
        db.execute("COMMIT")
        counts[c] += 1


if __name__ == "__main__":
    main()
