-- Identity policies of access keys: a JSON list of {name, managed,
-- document}. The read-only keys of earlier versions get the managed
-- ReadOnly policy, which allows what read-only did.
ALTER TABLE access_keys ADD COLUMN policies TEXT NOT NULL DEFAULT '[]';
UPDATE access_keys SET policies = '[{"name":"ReadOnly","managed":true}]' WHERE read_only;
ALTER TABLE access_keys DROP COLUMN read_only;

-- A CA's resource policy (PutPolicy), and the accounts it names, by which
-- ListCertificateAuthorities finds the CAs shared with an account.
ALTER TABLE certificate_authorities ADD COLUMN policy TEXT NOT NULL DEFAULT '';
CREATE TABLE ca_shares (
    account_id TEXT NOT NULL,
    ca_id      TEXT NOT NULL,
    PRIMARY KEY (account_id, ca_id)
);

-- Permissions CAs gave AWS service principals (CreatePermission).
CREATE TABLE ca_permissions (
    ca_id          TEXT NOT NULL,
    principal      TEXT NOT NULL,
    source_account TEXT NOT NULL,
    actions        TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (ca_id, principal, source_account)
);
