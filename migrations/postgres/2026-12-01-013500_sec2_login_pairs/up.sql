-- Failed logins per (login name, client address). A name's own lock (login_failures) then holds only
-- against addresses that keep failing on it, so a stranger's wrong passwords cannot lock the real
-- user out; this table keeps each address's count strictly, across processes.
CREATE TABLE login_failures_by_address (
    username TEXT NOT NULL,
    client_address TEXT NOT NULL,
    failures BIGINT NOT NULL,
    last_failed_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    PRIMARY KEY (username, client_address)
);
CREATE INDEX login_failures_by_address_last_failed_at ON login_failures_by_address (last_failed_at);
