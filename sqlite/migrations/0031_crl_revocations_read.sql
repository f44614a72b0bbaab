-- revocations_read is the revocationsBefore of the CA's last CRL
-- published: it read the revocations logged before that entry of the
-- CA's log. The next CRL lists those logged since, whatever their end,
-- once: one committed after the last CRL read, of a certificate that has
-- since ended, would otherwise be on no CRL. NULL: none published yet, or
-- the last by a version that did not keep it.
ALTER TABLE crl_publications ADD COLUMN revocations_read BIGINT;
