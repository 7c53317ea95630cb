-- Exactly-once in one transaction: an idempotency record is inserted by the effect's own write
-- transaction with the stored response, so a committed record is always finished. The claim
-- state, its owner and its lease go. A claim left unfinished by the old mechanism belongs to a
-- request whose effect never committed: dropping it lets a retry run.
DELETE FROM idempotency_keys WHERE state <> 'done';
ALTER TABLE idempotency_keys DROP COLUMN state;
ALTER TABLE idempotency_keys DROP COLUMN owner;
ALTER TABLE idempotency_keys DROP COLUMN lease_until;
