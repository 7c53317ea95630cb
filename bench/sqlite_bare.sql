-- The tables of P4's bare SQLite reference (bench/sqlite_bare.py, examples/sqlite_bare.rs).
CREATE TABLE idempotency_keys (principal_id INTEGER NOT NULL, idem_key TEXT NOT NULL, request_hash TEXT NOT NULL,
  state TEXT NOT NULL, owner TEXT NOT NULL, lease_until TEXT NOT NULL, response_status INTEGER, response_body TEXT,
  created_at TEXT NOT NULL, PRIMARY KEY (principal_id, idem_key));
CREATE TABLE right_types (code TEXT PRIMARY KEY, serialized INTEGER NOT NULL);
CREATE TABLE parties (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, name_zh TEXT NOT NULL);
CREATE TABLE lots (id INTEGER PRIMARY KEY, right_type TEXT NOT NULL REFERENCES right_types(code),
  certificate_no TEXT NOT NULL UNIQUE, issued INTEGER NOT NULL, valid_to TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE holdings (id INTEGER PRIMARY KEY, party_id INTEGER NOT NULL REFERENCES parties(id),
  lot_id INTEGER NOT NULL REFERENCES lots(id), available INTEGER NOT NULL DEFAULT 0, in_transfer INTEGER NOT NULL DEFAULT 0,
  acquired_free INTEGER NOT NULL DEFAULT 0, acquired_paid INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL,
  UNIQUE (party_id, lot_id));
CREATE TABLE transfers (id INTEGER PRIMARY KEY, lot_id INTEGER NOT NULL REFERENCES lots(id),
  from_party_id INTEGER NOT NULL REFERENCES parties(id), to_party_id INTEGER NOT NULL REFERENCES parties(id),
  quantity INTEGER NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, requested_by TEXT NOT NULL,
  decided_by TEXT, serials TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX transfers_lot ON transfers (lot_id);
CREATE TABLE movements (id INTEGER PRIMARY KEY, lot_id INTEGER NOT NULL REFERENCES lots(id), from_party_id INTEGER,
  from_bucket TEXT NOT NULL, to_party_id INTEGER, to_bucket TEXT NOT NULL, quantity INTEGER NOT NULL,
  cause TEXT NOT NULL, reference TEXT NOT NULL, actor TEXT NOT NULL, at TEXT NOT NULL);
CREATE INDEX movements_lot ON movements (lot_id);
CREATE TABLE audit_chain_heads (chain TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL);
CREATE TABLE audit_events (id INTEGER PRIMARY KEY, chain TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL,
  actor TEXT NOT NULL, action TEXT NOT NULL, object_type TEXT NOT NULL, object_id TEXT NOT NULL,
  payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, UNIQUE (chain, seq));
