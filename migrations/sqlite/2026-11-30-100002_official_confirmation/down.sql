DROP INDEX forest_mortgages_official_certificate;
ALTER TABLE forest_mortgages DROP COLUMN official_confirmed_by;
ALTER TABLE forest_mortgages DROP COLUMN official_entered_by;
ALTER TABLE forest_mortgages DROP COLUMN completed_at;
