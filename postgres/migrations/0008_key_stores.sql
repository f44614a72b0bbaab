-- Where each CA's private key is kept: key_store names the store
-- (software, pkcs11 or kms), and key_handle is how the store finds the key:
-- the sealed key itself in the software store, where every key of earlier
-- versions is.
ALTER TABLE certificate_authorities RENAME COLUMN sealed_key TO key_handle;
ALTER TABLE certificate_authorities ADD COLUMN key_store TEXT NOT NULL DEFAULT 'software';
-- Keys kept in software meet no FIPS level: the CAs of earlier versions no
-- longer claim one.
UPDATE certificate_authorities SET key_storage = '' WHERE key_store = 'software';
