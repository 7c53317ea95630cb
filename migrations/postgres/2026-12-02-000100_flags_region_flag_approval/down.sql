ALTER TABLE region_flags DROP COLUMN approved_by;
ALTER TABLE region_flags DROP COLUMN proposal_id;
