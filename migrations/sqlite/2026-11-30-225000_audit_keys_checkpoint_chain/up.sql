-- Checkpoints form a chain of their own: each names its number and the hash (digest) of the one
-- before it, so deleting or replacing a checkpoint breaks the chain that every later one signs.
-- Checkpoints made before this migration keep seq NULL and are verified as before.
ALTER TABLE audit_checkpoints ADD COLUMN seq BIGINT;
ALTER TABLE audit_checkpoints ADD COLUMN prev_hash TEXT;
CREATE UNIQUE INDEX audit_checkpoints_seq ON audit_checkpoints (seq);
