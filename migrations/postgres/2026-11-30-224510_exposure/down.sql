DROP INDEX trades_settled_newest;
DROP INDEX search_certificates_created;
DROP INDEX idempotency_keys_created;
DROP TABLE page_sessions;
DROP TABLE id_lookup_counts;
