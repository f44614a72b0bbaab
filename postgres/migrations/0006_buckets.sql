-- The account that owns a bucket of the object store: only its CAs write
-- audit reports and CRLs there. A bucket without a row belongs to the
-- default account.
CREATE TABLE buckets (
    name       TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    created_at BIGINT NOT NULL
);
