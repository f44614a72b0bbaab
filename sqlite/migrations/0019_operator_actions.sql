-- What operators changed with openpca commands (accounts, access keys and
-- their policies, buckets, the master key), the newest last.
CREATE TABLE operator_actions (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    os_user TEXT NOT NULL,
    host    TEXT NOT NULL,
    command TEXT NOT NULL,
    detail  TEXT NOT NULL
);
