-- Foundation: key-value settings, parties, principals, idempotency, audit trail.
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE parties (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    uscc TEXT UNIQUE,
    id_number_hash TEXT UNIQUE,
    id_number_masked TEXT,
    name_zh TEXT NOT NULL,
    name_en TEXT,
    region_code TEXT NOT NULL,
    address TEXT,
    status TEXT NOT NULL DEFAULT 'active',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK ((uscc IS NULL) <> (id_number_hash IS NULL))
);

CREATE TABLE party_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    party_id BIGINT NOT NULL REFERENCES parties(id),
    kind TEXT NOT NULL,
    changes TEXT NOT NULL,
    document_ref TEXT,
    related_party_id BIGINT REFERENCES parties(id),
    actor TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX party_events_party ON party_events (party_id, id);

CREATE TABLE compliance_flags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    party_id BIGINT NOT NULL REFERENCES parties(id),
    flag TEXT NOT NULL,
    reason TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_at TIMESTAMP NOT NULL,
    cleared_by TEXT,
    cleared_at TIMESTAMP,
    clear_reason TEXT
);
CREATE INDEX compliance_flags_party ON compliance_flags (party_id, id);

CREATE TABLE principals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    username TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    party_id BIGINT REFERENCES parties(id),
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    token_version BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE idempotency_keys (
    principal_id BIGINT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    owner TEXT NOT NULL,
    lease_until TIMESTAMP NOT NULL,
    response_status INTEGER,
    response_body TEXT,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (principal_id, idem_key)
);

CREATE TABLE audit_chain_heads (
    chain TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chain TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    UNIQUE (chain, seq)
);

CREATE TABLE audit_checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TIMESTAMP NOT NULL,
    heads TEXT NOT NULL,
    digest TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
);
