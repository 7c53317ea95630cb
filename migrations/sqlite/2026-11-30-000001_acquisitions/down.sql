ALTER TABLE holdings ADD COLUMN acquired_free BIGINT NOT NULL DEFAULT 0;
ALTER TABLE holdings ADD COLUMN acquired_paid BIGINT NOT NULL DEFAULT 0;
ALTER TABLE holdings ADD COLUMN acquired_market BIGINT NOT NULL DEFAULT 0;
ALTER TABLE holdings ADD COLUMN acquired_forced BIGINT NOT NULL DEFAULT 0;
UPDATE holdings SET
    acquired_free = COALESCE((SELECT quantity FROM acquisitions a WHERE a.holding_id = holdings.id AND a.kind = 'free'), 0),
    acquired_paid = COALESCE((SELECT quantity FROM acquisitions a WHERE a.holding_id = holdings.id AND a.kind = 'paid'), 0),
    acquired_market = COALESCE((SELECT quantity FROM acquisitions a WHERE a.holding_id = holdings.id AND a.kind = 'market'), 0),
    acquired_forced = COALESCE((SELECT quantity FROM acquisitions a WHERE a.holding_id = holdings.id AND a.kind = 'other'), 0);
DROP TABLE acquisitions;
