-- Courts come first: a freeze reaches pledged quantity too, which stays pledged and is frozen as
-- well (`pledged`: the part of the freeze resting on the pledged bucket; the rest of its active
-- quantity sits in the holding's frozen bucket). A court-ordered forced transfer executes against
-- the frozen quantity (`executed`: the part it took; a freeze fully executed is `executed`).
ALTER TABLE judicial_freezes ADD COLUMN pledged BIGINT NOT NULL DEFAULT 0 CHECK (pledged >= 0);
ALTER TABLE judicial_freezes ADD COLUMN executed BIGINT NOT NULL DEFAULT 0 CHECK (executed >= 0);
