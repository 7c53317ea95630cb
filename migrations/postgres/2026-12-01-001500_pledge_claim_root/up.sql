-- A court order that takes part of a pledged quantity splits the pledge; both parts secure the one
-- claim. `claim_root_id` names the pledge the split started from, so the waterfall pays the lender
-- at most the claim across all parts together.
ALTER TABLE pledges ADD COLUMN claim_root_id BIGINT NULL REFERENCES pledges(id);
