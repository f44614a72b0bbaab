-- Read-only access keys may only call the operations that change nothing.
ALTER TABLE access_keys ADD COLUMN read_only BOOLEAN NOT NULL DEFAULT FALSE;
