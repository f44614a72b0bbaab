-- Access keys' secrets, sealed with the master key bound to the key's id
-- alone, are sealed again bound to its account too: whoever could write
-- the database could move a key of theirs to any account. The work is
-- in Go, with the master key (sqlstore's bindAccessKeys); this file
-- gives the migration its number, which records that it ran.
SELECT 1;
