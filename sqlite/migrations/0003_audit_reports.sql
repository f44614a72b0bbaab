-- Audit reports. owner and lease_until say which server generates a
-- CREATING report, and until when it holds it.
CREATE TABLE audit_reports (
    id          TEXT PRIMARY KEY,
    ca_id       TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    bucket      TEXT NOT NULL,
    s3_key      TEXT NOT NULL,
    format      TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    log_size    INTEGER NOT NULL,
    failure     TEXT NOT NULL DEFAULT '',
    owner       TEXT NOT NULL DEFAULT '',
    lease_until INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX audit_reports_by_ca ON audit_reports (ca_id, created_at);
CREATE INDEX audit_reports_creating ON audit_reports (status, created_at);
