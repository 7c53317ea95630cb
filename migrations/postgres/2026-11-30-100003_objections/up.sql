-- Objections (异议登记, R8): a party with standing objects to a registration; the objection is its
-- own numbered record, an entry in the encumbrance's history, and shows on the notice until it is
-- withdrawn, resolved, or lapses at lapses_at.
CREATE TABLE objections (
    id BIGSERIAL PRIMARY KEY,
    registration_no TEXT NOT NULL,
    party_id BIGINT NOT NULL REFERENCES parties(id),
    standing TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    filed_by TEXT NOT NULL,
    filed_at TIMESTAMP NOT NULL,
    lapses_at TIMESTAMP NOT NULL,
    closed_by TEXT,
    closed_at TIMESTAMP,
    resolution TEXT
);
CREATE INDEX objections_registration ON objections (registration_no, id);
