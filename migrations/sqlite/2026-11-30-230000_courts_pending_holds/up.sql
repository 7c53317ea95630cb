-- Courts come first: a freeze reaches quantity sitting in a pending transfer or a trade awaiting
-- payment. That quantity stays where it is, held by the freeze (one row per freeze and pending
-- step); the step cannot settle while an active freeze holds it. When the step ends otherwise
-- (cancelled, rejected, expired) the held quantity returns to its holder still frozen.
-- `pending`: the part of the freeze that rests on pending steps.
ALTER TABLE judicial_freezes ADD COLUMN pending BIGINT NOT NULL DEFAULT 0 CHECK (pending >= 0);
CREATE TABLE judicial_freeze_holds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    freeze_id BIGINT NOT NULL REFERENCES judicial_freezes(id),
    step TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX judicial_freeze_holds_step ON judicial_freeze_holds (step);
