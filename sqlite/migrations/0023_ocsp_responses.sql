-- The OCSP response last signed for each certificate of a CA, shared by
-- the servers of the database and kept across restarts: a certificate's
-- status is signed again only when it changes or the response ages, not
-- whenever a server's cache lost it (each signing stays in the CA's log).
-- status is "good" or "revoked"; revoked_at and signed_at are Unix
-- microseconds, revoked_at 0 for a certificate not revoked.
CREATE TABLE ocsp_responses (
    ca_id      TEXT    NOT NULL,
    serial     TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    revoked_at INTEGER NOT NULL,
    signed_at  INTEGER NOT NULL,
    der        BLOB    NOT NULL,
    PRIMARY KEY (ca_id, serial)
);
