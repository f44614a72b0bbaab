-- The SHA-1 hash of each CA's public key, in hex, by which OCSP requests
-- name their issuer.
ALTER TABLE certificate_authorities ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
CREATE INDEX certificate_authorities_by_key_id ON certificate_authorities (key_id);
