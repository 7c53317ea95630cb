-- Deliveries still pending to an endpoint that was disabled are never sent: settle them as
-- cancelled (disabling an endpoint now does this at once).
UPDATE webhook_deliveries SET status = 'cancelled', last_error = 'endpoint_disabled'
    WHERE status = 'pending'
      AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE active = FALSE);
