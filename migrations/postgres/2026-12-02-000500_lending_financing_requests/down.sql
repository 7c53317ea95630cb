DROP TABLE financing_request_events;
DROP TABLE financing_requests;
ALTER TABLE holdings DROP COLUMN reserved;
