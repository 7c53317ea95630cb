DROP INDEX audit_checkpoints_seq;
ALTER TABLE audit_checkpoints DROP COLUMN prev_hash;
ALTER TABLE audit_checkpoints DROP COLUMN seq;
