-- The publication of each CA's CRL (see openpca.CRLStore). A row exists
-- once the CA has had CRLs enabled. wanted counts the requests for a new
-- CRL (revocations, changes of the CA); published is the count the last
-- published CRL answered; number is the last CRL number signed.
CREATE TABLE crl_publications (
    ca_id       TEXT PRIMARY KEY,
    wanted      BIGINT NOT NULL,
    published   BIGINT NOT NULL DEFAULT 0,
    number      BIGINT NOT NULL DEFAULT 0,
    this_update BIGINT,
    refresh_at  BIGINT,
    owner       TEXT,
    lease_until BIGINT
);

-- The revoked certificates of a CA, for its CRL, without a scan of all it
-- issued.
CREATE INDEX certificates_revoked ON certificates (ca_id, revoke_seq) WHERE revoke_seq IS NOT NULL;
