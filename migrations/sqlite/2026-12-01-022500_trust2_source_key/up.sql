-- R2: one source document, one lot, whatever its formatting. The comparison form of the source
-- document (full-width digits, bracket variants, spaces and invisible characters folded) is kept
-- next to the text as entered; the service fills it for older lots when it starts.
ALTER TABLE lots ADD COLUMN source_key TEXT;
CREATE UNIQUE INDEX lots_source_key ON lots (source_key);
