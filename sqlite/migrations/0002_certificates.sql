-- How many entries each CA's key-use log has: the next entry's seq. It
-- lives apart from the CA's row so that an issuance rewrites this small
-- row, not the CA's large one.
CREATE TABLE key_use_logs (
    ca_id TEXT PRIMARY KEY,
    size  INTEGER NOT NULL
) WITHOUT ROWID;

-- Certificates the CAs issued. serial is lowercase hex without colons.
CREATE TABLE certificates (
    ca_id             TEXT NOT NULL,
    serial            TEXT NOT NULL,
    account_id        TEXT NOT NULL,
    arn               TEXT NOT NULL,
    certificate       BLOB NOT NULL,
    subject           TEXT NOT NULL,
    not_before        INTEGER NOT NULL,
    not_after         INTEGER NOT NULL,
    issued_at         INTEGER NOT NULL,
    template_arn      TEXT NOT NULL,
    revoked_at        INTEGER,
    revocation_reason TEXT NOT NULL DEFAULT '',
    requested_by      TEXT NOT NULL,
    request_id        TEXT NOT NULL,
    -- The key-use log entries of the issuance and the revocation: an audit
    -- report cut at log size n lists what happened before entry n.
    issue_seq         INTEGER NOT NULL,
    revoke_seq        INTEGER,
    PRIMARY KEY (ca_id, serial)
);

-- Audit reports list a CA's certificates in issue order.
CREATE INDEX certificates_by_issue ON certificates (ca_id, issued_at, issue_seq);

-- The append-only log of each CA's key uses: entry seq of CA ca_id.
CREATE TABLE key_uses (
    ca_id  TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    at     INTEGER NOT NULL,
    serial TEXT NOT NULL DEFAULT '',
    record BLOB NOT NULL,
    -- The Merkle tree hashes this entry's append stored: its leaf's, then
    -- those of the subtrees it completed (see package auditlog).
    hashes BLOB NOT NULL,
    PRIMARY KEY (ca_id, seq)
) WITHOUT ROWID;
