-- A parcel's certificate number is unique in its comparison form (full-width digits, bracket
-- variants, 號/号, letter case, zero padding, spaces and invisible characters folded); the
-- service fills it for older parcels when it starts. The comparison form of source documents
-- changed with it, so the lots' keys are filled again too.
ALTER TABLE forest_parcels ADD COLUMN certificate_key TEXT;
CREATE UNIQUE INDEX forest_parcels_certificate_key ON forest_parcels (certificate_key);
UPDATE lots SET source_key = NULL;
