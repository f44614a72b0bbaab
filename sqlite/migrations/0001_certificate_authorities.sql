-- Certificate authorities. Times are Unix microseconds; JSON columns hold
-- API structures as the API writes them.
CREATE TABLE certificate_authorities (
    id                     TEXT PRIMARY KEY,
    account_id             TEXT NOT NULL,
    arn                    TEXT NOT NULL UNIQUE,
    type                   TEXT NOT NULL,
    status                 TEXT NOT NULL,
    status_before_deletion TEXT NOT NULL DEFAULT '',
    created_at             INTEGER NOT NULL,
    last_state_change_at   INTEGER NOT NULL,
    restorable_until       INTEGER,
    failure_reason         TEXT NOT NULL DEFAULT '',
    config                 TEXT NOT NULL,
    revocation             TEXT,
    key_storage            TEXT NOT NULL,
    usage_mode             TEXT NOT NULL,
    sealed_key             BLOB NOT NULL,
    csr                    BLOB NOT NULL,
    certificate            BLOB,
    certificate_chain      BLOB,
    serial                 TEXT NOT NULL DEFAULT '',
    not_before             INTEGER,
    not_after              INTEGER,
    tags                   TEXT NOT NULL DEFAULT '[]',
    version                INTEGER NOT NULL
);

CREATE INDEX certificate_authorities_by_account ON certificate_authorities (account_id, created_at, id);

-- Idempotency tokens of create operations: the first call's result.
CREATE TABLE idempotency_tokens (
    account_id TEXT NOT NULL,
    operation  TEXT NOT NULL,
    token      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    result     TEXT NOT NULL,
    PRIMARY KEY (account_id, operation, token)
);
