-- A region flag blocks trades into the region (R4), so one person no longer sets it: it is
-- proposed (by an operator or a regulator) and takes effect when an operator of another person
-- approves. The flag records the proposal and its approver; flags set before this have neither.
ALTER TABLE region_flags ADD COLUMN proposal_id BIGINT REFERENCES proposals(id);
ALTER TABLE region_flags ADD COLUMN approved_by TEXT;
