package sqlstore

import (
	"context"
	"time"
)

// ClockOffset returns how far the database's clock is ahead of now's
// (behind, if negative), within uncertainty either way: half the time the
// query took. ok reports whether the database has a clock of its own
// (Dialect.Clock), even when reading it fails.
//
// Servers sharing a database time their leases (audit reports, CRLs,
// witnessing) each by its own clock, and sign certificates and CRLs by
// it: a server whose clock is off from its peers' by more than a lease
// takes their jobs over while they live. The database's clock is the one
// they all reach, so each measures itself against it.
func (db *DB) ClockOffset(ctx context.Context, now func() time.Time) (offset, uncertainty time.Duration, ok bool, err error) {
	if db.dialect.Clock == "" {
		return 0, 0, false, nil
	}
	var micros int64
	sent := now()
	if err := db.queryRow(ctx, db.dialect.Clock).Scan(&micros); err != nil {
		return 0, 0, true, db.wrap("reading the database's clock", err)
	}
	half := now().Sub(sent) / 2
	return time.UnixMicro(micros).Sub(sent.Add(half)), half, true, nil
}
