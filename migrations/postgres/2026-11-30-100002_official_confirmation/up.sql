-- R14: a forest mortgage ranks by its official registration only once an operator other than the
-- person who entered it has confirmed it; the 不动产登记证明号 is unique; the time is checked
-- against the mortgage's completion. When each was done is in the mortgage's entries.
ALTER TABLE forest_mortgages ADD COLUMN completed_at TIMESTAMP;
ALTER TABLE forest_mortgages ADD COLUMN official_entered_by TEXT;
ALTER TABLE forest_mortgages ADD COLUMN official_confirmed_by TEXT;
UPDATE forest_mortgages SET completed_at = (
    SELECT MIN(e.at) FROM forest_mortgage_entries e
    WHERE e.mortgage_id = forest_mortgages.id AND e.kind = 'completed');
CREATE UNIQUE INDEX forest_mortgages_official_certificate ON forest_mortgages (official_certificate_no);
