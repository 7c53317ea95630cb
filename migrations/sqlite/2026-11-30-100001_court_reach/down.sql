ALTER TABLE judicial_freezes DROP COLUMN executed;
ALTER TABLE judicial_freezes DROP COLUMN pledged;
