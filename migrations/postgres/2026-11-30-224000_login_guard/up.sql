-- Failed logins per name (known or not, so a lockout does not tell which names exist), shared by
-- every process on this database; a success deletes the row.
CREATE TABLE login_failures (
    username TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    last_failed_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP
);
CREATE INDEX login_failures_last_failed_at ON login_failures (last_failed_at);

-- Users who must choose a new password before they get a token (after an operator's reset).
CREATE TABLE password_change_due (
    principal_id BIGINT PRIMARY KEY REFERENCES principals(id),
    since TIMESTAMP NOT NULL
);
