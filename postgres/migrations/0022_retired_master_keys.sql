-- The master keys that rotations retired (sqlstore.RetiredMasterKeys),
-- none yet: a rotation rewrites the list with the rest of what it reseals.
-- Servers of the version before stop once they see this migration: they
-- neither name their sessions by their master key nor refuse a retired
-- one, which a rolling rotation relies on.
INSERT INTO settings (name, value) VALUES ('retired-master-keys', '') ON CONFLICT (name) DO NOTHING;
