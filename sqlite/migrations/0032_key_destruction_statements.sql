-- The audit key's signed word that a CA's key in a token or KMS may be
-- destroyed (auditlog.KeyDestruction): a DELETED CA keeps it, for its
-- purge, which copies it to the CA's key destruction; a key made for a
-- CA not yet stored has it in its record. A server destroys no such key
-- without it: whoever can write the database could otherwise have any
-- CA's key destroyed. NULL: none (a live CA, or one deleted, or a key
-- recorded, by a version that did not sign them).
ALTER TABLE certificate_authorities ADD COLUMN destruction BLOB;
ALTER TABLE key_destructions ADD COLUMN statement BLOB;
