-- An individual's ID number is shown with only its province (first 2 digits): the first 4 and
-- last 4 (check digit included) that were shown left too little unknown to stop a bank from
-- completing the number by exact-match searches.
UPDATE parties
SET id_number_masked = substr(id_number_masked, 1, 2) || '****************'
WHERE id_number_masked IS NOT NULL;

-- Look-ups by ID number, counted per bank and day so that the quota holds across processes.
CREATE TABLE id_lookup_counts (
    bank_key TEXT NOT NULL,
    day DATE NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (bank_key, day)
);

-- Sessions of the /verify page: the cookie holds a random token whose hash is kept here, which the
-- API does not accept; logging out revokes it.
CREATE TABLE page_sessions (
    id BIGSERIAL PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    principal_id BIGINT NOT NULL REFERENCES principals(id),
    token_version BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX page_sessions_expiry ON page_sessions (expires_at);

-- Retention sweeps delete by age.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
CREATE INDEX search_certificates_created ON search_certificates (created_at);

-- The market summary reads only the newest settled trade.
CREATE INDEX trades_settled_newest ON trades (status, created_at, id);
