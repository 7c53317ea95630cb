-- Webhook endpoint secrets are no longer stored: each is derived from a server key and the
-- endpoint's random salt. Endpoints registered before have a secret that cannot be derived:
-- they are disabled (the bank registers a new one) and their undelivered events are dead.
ALTER TABLE webhook_endpoints ADD COLUMN secret_salt TEXT;
UPDATE webhook_deliveries SET status = 'dead', last_error = 'endpoint_retired'
    WHERE status = 'pending';
UPDATE webhook_endpoints SET active = FALSE;
ALTER TABLE webhook_endpoints DROP COLUMN secret;
CREATE INDEX webhook_deliveries_status ON webhook_deliveries (status, id);
