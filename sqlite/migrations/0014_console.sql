-- Sessions of the web console: the SHA-256 of each session's token, the
-- access key signed in, the CSRF token its forms carry, and when it ends.
CREATE TABLE console_sessions (
    id_hash    BLOB PRIMARY KEY,
    key_id     TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
