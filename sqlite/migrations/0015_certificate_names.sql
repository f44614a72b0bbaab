-- The subject alternative names of each certificate, space-separated, for
-- the console's search; certificates issued before are left without.
ALTER TABLE certificates ADD COLUMN names TEXT NOT NULL DEFAULT '';
