-- The edge of each CA's log tree that its last append left (see
-- auditlog.Edge), so that an append reads no entry; a log without one has
-- its edge read from its entries.
ALTER TABLE key_use_logs ADD COLUMN tree_edge BYTEA;
