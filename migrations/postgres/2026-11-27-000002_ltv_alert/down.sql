ALTER TABLE pledges DROP COLUMN ltv_alerted;
