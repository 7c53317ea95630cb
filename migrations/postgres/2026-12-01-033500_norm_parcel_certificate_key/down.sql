DROP INDEX forest_parcels_certificate_key;
ALTER TABLE forest_parcels DROP COLUMN certificate_key;
