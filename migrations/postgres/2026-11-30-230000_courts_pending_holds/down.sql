DROP TABLE judicial_freeze_holds;
ALTER TABLE judicial_freezes DROP COLUMN pending;
