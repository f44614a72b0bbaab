-- failures counts a CA's CRL publications that failed in a row since its
-- last CRL was published, by any server sharing the database: the wait
-- before the next attempt doubles with it.
ALTER TABLE crl_publications ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
