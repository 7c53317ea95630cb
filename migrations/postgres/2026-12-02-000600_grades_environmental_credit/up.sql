-- Environmental credit grades (环保信用等级): green 环保诚信, blue 良好, yellow 警示, red 不良, as
-- regulators record them with their source document and validity. Append-only: a correction is
-- a newer record; the grade in force is the latest recorded one whose validity covers the day.
CREATE TABLE environmental_credit_grades (
    id BIGSERIAL PRIMARY KEY,
    party_id BIGINT NOT NULL REFERENCES parties(id),
    grade TEXT NOT NULL,
    source_document TEXT NOT NULL,
    valid_from DATE NOT NULL,
    valid_to DATE,
    recorded_by TEXT NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);
CREATE INDEX environmental_credit_grades_party ON environmental_credit_grades (party_id, id);

-- The compliance flag "poor credit rating" stood for a red grade: each one still in force becomes
-- a red grade from the day it was set (its reason as the source document), and the flag is
-- cleared, so that the grade alone decides. The flag kind stays readable in the flag history but
-- can no longer be set.
INSERT INTO environmental_credit_grades (party_id, grade, source_document, valid_from, valid_to, recorded_by, recorded_at)
SELECT party_id, 'red', reason, CAST(set_at AS DATE), NULL, set_by, set_at
FROM compliance_flags WHERE flag = 'poor_credit_rating' AND cleared_at IS NULL;
UPDATE compliance_flags
SET cleared_by = 'migration', cleared_at = set_at,
    clear_reason = 'replaced by a red environmental credit grade'
WHERE flag = 'poor_credit_rating' AND cleared_at IS NULL;
