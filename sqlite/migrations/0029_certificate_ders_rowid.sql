-- certificate_ders becomes a table with rowids: in one WITHOUT ROWID, a
-- row of more than about 1,000 bytes (4 KiB pages) spills to an overflow
-- page of its own, and a certificate's DER is 1 to 1.5 KB. A soak run's
-- 116.6 MB of DERs took 203 MB (the table was 62% of the database), a
-- synthetic one's of 1,150 bytes each 4.7 KB a row; with rowids, 152 MB
-- and 1.4 KB, their key's index included.
CREATE TABLE certificate_ders_rowid (
    ca_id     TEXT NOT NULL,
    issue_seq INTEGER NOT NULL,
    der       BLOB NOT NULL,
    PRIMARY KEY (ca_id, issue_seq)
);
INSERT INTO certificate_ders_rowid (ca_id, issue_seq, der) SELECT ca_id, issue_seq, der FROM certificate_ders;
DROP TABLE certificate_ders;
ALTER TABLE certificate_ders_rowid RENAME TO certificate_ders;
