-- Certificates, narrowed to what audit reports, revocations, CRLs and OCSP
-- read, in the order of issue; their DER lies apart, so that scans of many
-- rows read little. A certificate's ARN and account are its CA's. The
-- record of an issuance's key-use log entry is not kept twice: it is made
-- again from the certificate's row and the DER's SHA-256 (signed_sha256),
-- and key_uses.record is NULL. Entries logged before this migration keep
-- their records.
CREATE TABLE certificates_narrow (
    ca_id             TEXT NOT NULL,
    issue_seq         INTEGER NOT NULL,
    serial            TEXT NOT NULL,
    subject           TEXT NOT NULL,
    not_before        INTEGER NOT NULL,
    not_after         INTEGER NOT NULL,
    issued_at         INTEGER NOT NULL,
    template_arn      TEXT NOT NULL,
    requested_by      TEXT NOT NULL,
    request_id        TEXT NOT NULL,
    signed_sha256     BLOB,
    revoked_at        INTEGER,
    revocation_reason TEXT NOT NULL DEFAULT '',
    revoke_seq        INTEGER,
    PRIMARY KEY (ca_id, issue_seq)
) WITHOUT ROWID;
INSERT INTO certificates_narrow (ca_id, issue_seq, serial, subject, not_before, not_after, issued_at, template_arn,
        requested_by, request_id, revoked_at, revocation_reason, revoke_seq)
    SELECT ca_id, issue_seq, serial, subject, not_before, not_after, issued_at, template_arn,
        requested_by, request_id, revoked_at, revocation_reason, revoke_seq FROM certificates;

CREATE TABLE certificate_ders (
    ca_id     TEXT NOT NULL,
    issue_seq INTEGER NOT NULL,
    der       BLOB NOT NULL,
    PRIMARY KEY (ca_id, issue_seq)
) WITHOUT ROWID;
INSERT INTO certificate_ders (ca_id, issue_seq, der) SELECT ca_id, issue_seq, certificate FROM certificates;

DROP TABLE certificates;
ALTER TABLE certificates_narrow RENAME TO certificates;
CREATE UNIQUE INDEX certificates_by_serial ON certificates (ca_id, serial);
CREATE INDEX certificates_revoked ON certificates (ca_id, revoke_seq) WHERE revoke_seq IS NOT NULL;

CREATE TABLE key_uses_nullable (
    ca_id  TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    at     INTEGER NOT NULL,
    serial TEXT NOT NULL DEFAULT '',
    record BLOB,
    hashes BLOB NOT NULL,
    PRIMARY KEY (ca_id, seq)
) WITHOUT ROWID;
INSERT INTO key_uses_nullable (ca_id, seq, kind, at, serial, record, hashes)
    SELECT ca_id, seq, kind, at, serial, record, hashes FROM key_uses;
DROP TABLE key_uses;
ALTER TABLE key_uses_nullable RENAME TO key_uses;
