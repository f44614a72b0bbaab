-- Server-wide values, written once by the first server (see
-- openpca.SettingStore).
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
