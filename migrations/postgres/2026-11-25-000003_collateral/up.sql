-- Collateral: pledges of rights with their append-only entries, judicial freezes, and signed
-- search certificates.
CREATE TABLE pledges (
    id BIGSERIAL PRIMARY KEY,
    registration_no TEXT UNIQUE,
    lot_id BIGINT NOT NULL REFERENCES lots(id),
    pledgor_id BIGINT NOT NULL REFERENCES parties(id),
    lender_id BIGINT NOT NULL REFERENCES parties(id),
    quantity BIGINT NOT NULL CHECK (quantity >= 0),
    applied_quantity BIGINT NOT NULL CHECK (applied_quantity > 0),
    serials TEXT,
    status TEXT NOT NULL,
    rank INTEGER,
    secured_amount BIGINT,
    loan_reference TEXT,
    loan_maturity DATE,
    period_end DATE,
    registered_at TIMESTAMP,
    appraisal_value BIGINT,
    appraiser TEXT,
    appraisal_date DATE,
    pboc_registration_no TEXT,
    verification_code TEXT,
    amendment_code_hash TEXT,
    claim_amount BIGINT,
    claim_detail TEXT,
    proceeds BIGINT,
    paid_to_lender BIGINT,
    paid_to_pledgor BIGINT,
    lapse_warned_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX pledges_pledgor ON pledges (pledgor_id, id);
CREATE INDEX pledges_lender ON pledges (lender_id, id);
CREATE INDEX pledges_lot ON pledges (lot_id, id);

CREATE TABLE pledge_entries (
    id BIGSERIAL PRIMARY KEY,
    pledge_id BIGINT NOT NULL REFERENCES pledges(id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    details TEXT NOT NULL,
    actor TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    UNIQUE (pledge_id, seq)
);

CREATE TABLE judicial_freezes (
    id BIGSERIAL PRIMARY KEY,
    lot_id BIGINT NOT NULL REFERENCES lots(id),
    party_id BIGINT NOT NULL REFERENCES parties(id),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    court TEXT NOT NULL,
    case_no TEXT NOT NULL,
    document_ref TEXT NOT NULL,
    status TEXT NOT NULL,
    ordered_by TEXT NOT NULL,
    ordered_at TIMESTAMP NOT NULL,
    lift_document_ref TEXT,
    lifted_by TEXT,
    lifted_at TIMESTAMP
);
CREATE INDEX judicial_freezes_party ON judicial_freezes (party_id, id);

CREATE TABLE search_certificates (
    id BIGSERIAL PRIMARY KEY,
    certificate_no TEXT NOT NULL UNIQUE,
    requested_by BIGINT NOT NULL,
    body TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
