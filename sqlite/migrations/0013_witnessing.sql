-- What witnesses cosigned of each CA's key-use log: the latest checkpoint
-- enough of them cosigned (a signed note with the server's signature and
-- theirs), and when the CA is next due for a new one; owner holds it until
-- lease_until while it asks them.
CREATE TABLE witnessing (
    ca_id       TEXT PRIMARY KEY,
    size        INTEGER NOT NULL DEFAULT 0,
    note        BLOB,
    cosigners   INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL DEFAULT 0,
    owner       TEXT,
    lease_until INTEGER
);

-- What each witness, by its public key, last cosigned of each CA's log.
CREATE TABLE witness_sizes (
    ca_id   TEXT NOT NULL,
    witness TEXT NOT NULL,
    size    INTEGER NOT NULL,
    PRIMARY KEY (ca_id, witness)
) WITHOUT ROWID;
