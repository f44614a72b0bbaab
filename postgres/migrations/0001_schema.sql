-- The schema of the SQLite migrations 0001 to 0004, for PostgreSQL. Times
-- are Unix microseconds; JSON columns hold API structures as the API
-- writes them.
CREATE TABLE certificate_authorities (
    id                     TEXT PRIMARY KEY,
    account_id             TEXT NOT NULL,
    arn                    TEXT NOT NULL UNIQUE,
    type                   TEXT NOT NULL,
    status                 TEXT NOT NULL,
    status_before_deletion TEXT NOT NULL DEFAULT '',
    created_at             BIGINT NOT NULL,
    last_state_change_at   BIGINT NOT NULL,
    restorable_until       BIGINT,
    failure_reason         TEXT NOT NULL DEFAULT '',
    config                 BYTEA NOT NULL,
    revocation             BYTEA,
    key_storage            TEXT NOT NULL,
    usage_mode             TEXT NOT NULL,
    sealed_key             BYTEA NOT NULL,
    csr                    BYTEA NOT NULL,
    certificate            BYTEA,
    certificate_chain      BYTEA,
    serial                 TEXT NOT NULL DEFAULT '',
    not_before             BIGINT,
    not_after              BIGINT,
    tags                   BYTEA NOT NULL,
    version                BIGINT NOT NULL
);

CREATE INDEX certificate_authorities_by_account ON certificate_authorities (account_id, created_at, id);

CREATE TABLE idempotency_tokens (
    account_id TEXT NOT NULL,
    operation  TEXT NOT NULL,
    token      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    result     TEXT NOT NULL,
    PRIMARY KEY (account_id, operation, token)
);

-- How many entries each CA's key-use log has: the next entry's seq. Its
-- row lock orders the appends of concurrent transactions.
CREATE TABLE key_use_logs (
    ca_id TEXT PRIMARY KEY,
    size  BIGINT NOT NULL
);

CREATE TABLE certificates (
    ca_id             TEXT NOT NULL,
    serial            TEXT NOT NULL,
    account_id        TEXT NOT NULL,
    arn               TEXT NOT NULL,
    certificate       BYTEA NOT NULL,
    subject           TEXT NOT NULL,
    not_before        BIGINT NOT NULL,
    not_after         BIGINT NOT NULL,
    issued_at         BIGINT NOT NULL,
    template_arn      TEXT NOT NULL,
    revoked_at        BIGINT,
    revocation_reason TEXT NOT NULL DEFAULT '',
    requested_by      TEXT NOT NULL,
    request_id        TEXT NOT NULL,
    issue_seq         BIGINT NOT NULL,
    revoke_seq        BIGINT,
    PRIMARY KEY (ca_id, serial)
);

CREATE INDEX certificates_by_issue ON certificates (ca_id, issued_at, issue_seq);

CREATE TABLE key_uses (
    ca_id  TEXT NOT NULL,
    seq    BIGINT NOT NULL,
    kind   TEXT NOT NULL,
    at     BIGINT NOT NULL,
    serial TEXT NOT NULL DEFAULT '',
    record BYTEA NOT NULL,
    -- The Merkle tree hashes this entry's append stored: its leaf's, then
    -- those of the subtrees it completed (see package auditlog).
    hashes BYTEA NOT NULL,
    PRIMARY KEY (ca_id, seq)
);

CREATE TABLE audit_reports (
    id          TEXT PRIMARY KEY,
    ca_id       TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    bucket      TEXT NOT NULL,
    s3_key      TEXT NOT NULL,
    format      TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    log_size    BIGINT NOT NULL,
    failure     TEXT NOT NULL DEFAULT '',
    owner       TEXT NOT NULL DEFAULT '',
    lease_until BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX audit_reports_by_ca ON audit_reports (ca_id, created_at);
CREATE INDEX audit_reports_creating ON audit_reports (status, created_at);

CREATE TABLE accounts (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);

CREATE TABLE access_keys (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    sealed_secret BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);

CREATE INDEX access_keys_by_account ON access_keys (account_id, created_at);
