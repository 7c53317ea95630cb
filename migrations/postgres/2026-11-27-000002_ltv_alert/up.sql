-- Set while a pledge's loan-to-value is above the alert level, so the lender is told once per crossing.
ALTER TABLE pledges ADD COLUMN ltv_alerted BOOLEAN NOT NULL DEFAULT FALSE;
