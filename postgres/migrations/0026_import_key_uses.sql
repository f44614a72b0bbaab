-- key_uses_imports finds the last import of a CA's certificate, which the
-- CA must hold (openpca.CheckImported): imports are a few in a CA's life,
-- of its millions of entries, so the index holds theirs alone. The CAs
-- that hold a certificate already get their IMPORT record as this
-- migration is applied (sqlstore's logEarlierImports).
CREATE INDEX key_uses_imports ON key_uses (ca_id, seq) WHERE kind = 'IMPORT';
