-- A round of witnessing asked for although the log has not grown (an
-- audit report wants cosignatures made after it was requested): the
-- least time, in microseconds, the round must begin at; and when the
-- round of the witnessed checkpoint began.
ALTER TABLE witnessing ADD COLUMN again_since BIGINT;
ALTER TABLE witnessing ADD COLUMN round_at BIGINT;
