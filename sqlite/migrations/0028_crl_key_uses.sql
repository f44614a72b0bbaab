-- key_uses_crls finds the log entry of a CRL by its CA and thisUpdate
-- (openpca audit proof --crl): CRLs are a few a day of a CA's millions of
-- entries, so the index holds theirs alone.
CREATE INDEX key_uses_crls ON key_uses (ca_id, at) WHERE kind = 'CRL';
