DROP INDEX webhook_deliveries_status;
ALTER TABLE webhook_endpoints ADD COLUMN secret TEXT NOT NULL DEFAULT '';
ALTER TABLE webhook_endpoints DROP COLUMN secret_salt;
