-- Keys made for CAs not yet stored: should the CA never be stored (its
-- server stopped, or its request failed and the key could not be
-- destroyed then), the key is destroyed once the row is old enough. NULL
-- for the keys of purged CAs.
ALTER TABLE key_destructions ADD COLUMN made_at BIGINT;
