ALTER TABLE pledges DROP COLUMN claim_root_id;
