-- The keys of CAs purged for good, until their key stores have destroyed
-- them: a store that cannot be reached at the purge (a token away, KMS
-- down) is tried again, and a server that stops in between leaves no key
-- behind unknown.
CREATE TABLE key_destructions (
    ca_id      TEXT PRIMARY KEY,
    arn        TEXT NOT NULL,
    key_store  TEXT NOT NULL,
    key_handle BYTEA NOT NULL,
    key_id     TEXT NOT NULL
);
