DROP INDEX lots_source_key;
ALTER TABLE lots DROP COLUMN source_key;
