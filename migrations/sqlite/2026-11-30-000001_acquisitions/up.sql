-- How quantity was acquired (R11) follows the quantity: one record per holding and way of
-- acquisition, instead of counters on the holding. Kinds: `free` (initial free allocation,
-- reserve or offset issuance), `paid` (paid-use allocation), `market` (a purchase at or above the
-- benchmark price), `other` (a court order, a merger, a gift, a sale below the benchmark or without
-- one). Existing counters move over as they are; `forced` becomes `other`.
CREATE TABLE acquisitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    holding_id BIGINT NOT NULL REFERENCES holdings(id),
    kind TEXT NOT NULL CHECK (kind IN ('free', 'paid', 'market', 'other')),
    quantity BIGINT NOT NULL CHECK (quantity >= 0),
    UNIQUE (holding_id, kind)
);

INSERT INTO acquisitions (holding_id, kind, quantity)
    SELECT id, 'free', acquired_free FROM holdings WHERE acquired_free > 0;
INSERT INTO acquisitions (holding_id, kind, quantity)
    SELECT id, 'paid', acquired_paid FROM holdings WHERE acquired_paid > 0;
INSERT INTO acquisitions (holding_id, kind, quantity)
    SELECT id, 'market', acquired_market FROM holdings WHERE acquired_market > 0;
INSERT INTO acquisitions (holding_id, kind, quantity)
    SELECT id, 'other', acquired_forced FROM holdings WHERE acquired_forced > 0;

ALTER TABLE holdings DROP COLUMN acquired_free;
ALTER TABLE holdings DROP COLUMN acquired_paid;
ALTER TABLE holdings DROP COLUMN acquired_market;
ALTER TABLE holdings DROP COLUMN acquired_forced;
