-- keep_key marks a CA deleted at a backup, whose key is in a token or KMS,
-- in the database restored from it: its purge leaves the key in its store,
-- which the backed-up database's servers may still sign with.
ALTER TABLE certificate_authorities ADD COLUMN keep_key BOOLEAN NOT NULL DEFAULT FALSE;
