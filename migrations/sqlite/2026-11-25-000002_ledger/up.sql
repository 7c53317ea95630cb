-- The rights ledger: right types as data, lots, holdings by bucket, serial ranges, the movement
-- journal, transfers, retirements, and maker-checker proposals.
CREATE TABLE right_types (
    code TEXT PRIMARY KEY,
    name_zh TEXT NOT NULL,
    name_en TEXT NOT NULL,
    unit TEXT NOT NULL,
    max_places INTEGER NOT NULL,
    requires_approval BOOLEAN NOT NULL,
    sub_kind_label TEXT,
    sub_kinds TEXT NOT NULL,
    serialized BOOLEAN NOT NULL,
    priced_per_year BOOLEAN NOT NULL
);

INSERT INTO right_types VALUES
 ('EM', '排污权', 'Emission right', 't/a', 4, 1, 'pollutant', '["COD","NH3N","SO2","NOX"]', 0, 1),
 ('EU', '用能权', 'Energy-use right', 'tce', 4, 1, NULL, '[]', 0, 0),
 ('CA', '碳排放权配额', 'Carbon emission allowance', 'tCO2e', 0, 0, NULL, '[]', 0, 0),
 ('CS', '林业碳汇', 'Forestry carbon sink credit', 'tCO2e', 0, 0, 'standard', '["FFCER","CCER"]', 1, 0);

CREATE TABLE proposals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    source_document TEXT,
    proposed_by BIGINT NOT NULL,
    proposed_by_name TEXT NOT NULL,
    decided_by BIGINT,
    decided_by_name TEXT,
    decided_at TIMESTAMP,
    decision_reason TEXT,
    result TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX proposals_status ON proposals (status, id);

CREATE TABLE lots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    right_type TEXT NOT NULL REFERENCES right_types(code),
    sub_kind TEXT,
    certificate_no TEXT NOT NULL UNIQUE,
    source_document TEXT NOT NULL UNIQUE,
    vintage INTEGER NOT NULL,
    compliance_year INTEGER,
    valid_from DATE NOT NULL,
    valid_to DATE NOT NULL,
    region_code TEXT NOT NULL,
    origin TEXT NOT NULL,
    project TEXT,
    monitoring_period TEXT,
    issued BIGINT NOT NULL CHECK (issued > 0),
    retired BIGINT NOT NULL DEFAULT 0 CHECK (retired >= 0),
    cancelled BIGINT NOT NULL DEFAULT 0 CHECK (cancelled >= 0),
    first_holder_id BIGINT NOT NULL REFERENCES parties(id),
    proposed_by TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    CHECK (valid_from <= valid_to)
);

CREATE TABLE holdings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    party_id BIGINT NOT NULL REFERENCES parties(id),
    lot_id BIGINT NOT NULL REFERENCES lots(id),
    available BIGINT NOT NULL DEFAULT 0 CHECK (available >= 0),
    listed BIGINT NOT NULL DEFAULT 0 CHECK (listed >= 0),
    in_transfer BIGINT NOT NULL DEFAULT 0 CHECK (in_transfer >= 0),
    pledged BIGINT NOT NULL DEFAULT 0 CHECK (pledged >= 0),
    frozen BIGINT NOT NULL DEFAULT 0 CHECK (frozen >= 0),
    acquired_free BIGINT NOT NULL DEFAULT 0,
    acquired_paid BIGINT NOT NULL DEFAULT 0,
    acquired_market BIGINT NOT NULL DEFAULT 0,
    acquired_forced BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (party_id, lot_id)
);
CREATE INDEX holdings_lot ON holdings (lot_id);

CREATE TABLE serial_ranges (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lot_id BIGINT NOT NULL REFERENCES lots(id),
    party_id BIGINT REFERENCES parties(id),
    state TEXT NOT NULL,
    first_serial BIGINT NOT NULL,
    last_serial BIGINT NOT NULL,
    CHECK (first_serial <= last_serial)
);
CREATE INDEX serial_ranges_lot ON serial_ranges (lot_id, first_serial);

CREATE TABLE movements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lot_id BIGINT NOT NULL REFERENCES lots(id),
    from_party_id BIGINT,
    from_bucket TEXT NOT NULL,
    to_party_id BIGINT,
    to_bucket TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    cause TEXT NOT NULL,
    reference TEXT NOT NULL,
    serials TEXT,
    actor TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX movements_lot ON movements (lot_id, id);

CREATE TABLE transfers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lot_id BIGINT NOT NULL REFERENCES lots(id),
    from_party_id BIGINT NOT NULL REFERENCES parties(id),
    to_party_id BIGINT NOT NULL REFERENCES parties(id),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    requires_approval BOOLEAN NOT NULL,
    unit_price BIGINT,
    years INTEGER,
    amount BIGINT,
    document_ref TEXT,
    note TEXT,
    serials TEXT,
    requested_by TEXT NOT NULL,
    confirmed_by TEXT,
    decided_by TEXT,
    decision_reason TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX transfers_from ON transfers (from_party_id, id);
CREATE INDEX transfers_to ON transfers (to_party_id, id);

CREATE TABLE retirements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lot_id BIGINT NOT NULL REFERENCES lots(id),
    party_id BIGINT NOT NULL REFERENCES parties(id),
    kind TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    reason TEXT NOT NULL,
    beneficiary TEXT,
    compliance_year INTEGER,
    serials TEXT,
    actor TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX retirements_party ON retirements (party_id, id);
