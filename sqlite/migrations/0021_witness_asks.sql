-- Rounds of witnessing asked for although the log has not grown (an audit
-- report wants cosignatures made after it was requested), counted rather
-- than timed: a round's time and a report's came from the clocks of the
-- servers that ran them, which may differ. asks counts the asks of a CA;
-- claimed is asks when the current hold was taken; answered is claimed of
-- the round that had the witnessed checkpoint cosigned. An ask still open
-- stays open.
ALTER TABLE witnessing ADD COLUMN asks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE witnessing ADD COLUMN claimed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE witnessing ADD COLUMN answered INTEGER NOT NULL DEFAULT 0;
UPDATE witnessing SET asks = 1 WHERE again_since IS NOT NULL;
ALTER TABLE witnessing DROP COLUMN again_since;
ALTER TABLE witnessing DROP COLUMN round_at;
