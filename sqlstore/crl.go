package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/openpca/openpca"
)

// qWantCRL asks for a new CRL of a CA whose CRLs are enabled, making its
// publication row the first time.
const qWantCRL = `INSERT INTO crl_publications (ca_id, wanted) VALUES (?, 1)
	ON CONFLICT (ca_id) DO UPDATE SET wanted = crl_publications.wanted + 1`

// qRevokedWantsCRL asks for a new CRL after a revocation (or a CRL written
// late), if the CA has ever had CRLs enabled.
const qRevokedWantsCRL = `UPDATE crl_publications SET wanted = wanted + 1 WHERE ca_id = ?`

// wantCRL asks, in tx, for a new CRL of ca if its CRLs are enabled: its
// configuration, certificate or status may have changed.
func (db *DB) wantCRL(ctx context.Context, tx *sql.Tx, ca *openpca.CA) error {
	if ca.CRL() == nil {
		return nil
	}
	_, err := db.txExec(ctx, tx, qWantCRL, ca.ID)
	return err
}

// ClaimCRL implements openpca.CRLStore. Of the CAs that want a CRL, the
// one whose last CRL is oldest goes first: a CA that keeps revoking gets
// its next CRL after every other CA's, not before (by the time of its
// next refresh, a CA with short-lived CRLs would go first every time).
func (db *DB) ClaimCRL(ctx context.Context, owner string, now time.Time, lease time.Duration) (*openpca.CRLJob, error) {
	var job openpca.CRLJob
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var thisUpdate, first, before, read sql.NullInt64
		err := db.txQueryRow(ctx, tx, `SELECT ca_id, (SELECT account_id FROM certificate_authorities WHERE id = ca_id), wanted, number, this_update, failures, revocations_read,
				(SELECT min(at) FROM key_uses WHERE key_uses.ca_id = crl_publications.ca_id AND kind = 'CRL'),
				(SELECT max(at) FROM key_uses WHERE key_uses.ca_id = crl_publications.ca_id AND kind = 'CRL' AND at <= ?)
			FROM crl_publications
			WHERE (published < wanted OR refresh_at <= ? OR this_update > ?) AND (lease_until IS NULL OR lease_until <= ? OR owner = ? OR owner IS NULL AND lease_until > ?)
			ORDER BY COALESCE(this_update, 0) LIMIT 1{FOR_UPDATE}{SKIP_LOCKED}`, now.UnixMicro(), now.UnixMicro(), now.Add(openpca.ClockSlack).UnixMicro(), now.UnixMicro(), owner, now.Add(openpca.ClockStep).UnixMicro()).
			Scan(&job.CAID, &job.AccountID, &job.Wanted, &job.Number, &thisUpdate, &job.Failures, &read, &first, &before)
		if errors.Is(err, sql.ErrNoRows) {
			return openpca.ErrNotFound
		}
		if err != nil {
			return err
		}
		job.LastThisUpdate, job.FirstSigned, job.SignedBefore = fromMicros(thisUpdate), fromMicros(first), fromMicros(before)
		job.RevocationsRead = -1
		if read.Valid {
			job.RevocationsRead = read.Int64
		}
		_, err = db.txExec(ctx, tx, `UPDATE crl_publications SET owner = ?, lease_until = ? WHERE ca_id = ?`, owner, now.Add(lease).UnixMicro(), job.CAID)
		return err
	})
	if err != nil {
		return nil, db.wrap("claiming a CRL", err)
	}
	return &job, nil
}

// RenewCRL implements openpca.CRLStore.
func (db *DB) RenewCRL(ctx context.Context, caID, owner string, until time.Time) error {
	res, err := db.exec(ctx, `UPDATE crl_publications SET lease_until = ? WHERE ca_id = ? AND owner = ?`, until.UnixMicro(), caID, owner)
	return db.held(res, err, "renewing a CRL's lease")
}

// RecordCRL implements openpca.CRLStore.
func (db *DB) RecordCRL(ctx context.Context, job *openpca.CRLJob, owner string, use *openpca.KeyUse, read int64, statuses []openpca.CertificateAuthorityStatus) error {
	err := db.retry(ctx, func() error {
		return db.commits.DoFor(ctx, job.CAID, func(ctx context.Context, tx *sql.Tx) error {
			// The CA's row, the log's, then the CRL's, as RecordRevocation
			// says; a CRL this server no longer holds undoes its entry.
			if _, err := db.caMaySign(ctx, tx, job.CAID, statuses, use.At); err != nil {
				return err
			}
			if err := db.logKeyUse(ctx, tx, use); err != nil {
				return err
			}
			// No CRL published has what it read NULL, unless one was
			// (by a version that did not keep it): then the first signed
			// keeps its read (CRLJob.RevocationsRead).
			res, err := db.txExec(ctx, tx, `UPDATE crl_publications SET number = ?,
					revocations_read = CASE WHEN this_update IS NULL AND revocations_read IS NULL THEN ? ELSE revocations_read END
				WHERE ca_id = ? AND owner = ? AND number = ?`,
				job.Number+1, read, job.CAID, owner, job.Number)
			return db.held(res, err, "recording a CRL")
		})
	})
	return db.wrap("recording a CRL", err)
}

// FinishCRL implements openpca.CRLStore.
func (db *DB) FinishCRL(ctx context.Context, caID, owner string, wanted int64, thisUpdate time.Time, read int64, refreshAt, notBefore time.Time) error {
	// An unheld row's lease_until is when it may be claimed again, as
	// ReleaseCRL sets it.
	readAt := sql.NullInt64{Int64: read, Valid: read >= 0}
	res, err := db.exec(ctx, `UPDATE crl_publications SET published = ?, this_update = COALESCE(?, this_update), revocations_read = COALESCE(?, revocations_read),
		refresh_at = ?, owner = NULL, lease_until = ?, failures = 0
		WHERE ca_id = ? AND owner = ?`, wanted, micros(thisUpdate), readAt, micros(refreshAt), micros(notBefore), caID, owner)
	return db.held(res, err, "finishing a CRL")
}

// LatestCRL implements openpca.CRLStore.
func (db *DB) LatestCRL(ctx context.Context, caID string) (time.Time, error) {
	var thisUpdate sql.NullInt64
	err := db.queryRow(ctx, `SELECT this_update FROM crl_publications WHERE ca_id = ?`, caID).Scan(&thisUpdate)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, db.wrap("reading the latest CRL", err)
	}
	return fromMicros(thisUpdate), nil
}

// WantCRL implements openpca.CRLStore.
func (db *DB) WantCRL(ctx context.Context, caID string) error {
	_, err := db.exec(ctx, qRevokedWantsCRL, caID)
	return db.wrap("asking for a CRL", err)
}

// ReleaseCRL implements openpca.CRLStore.
func (db *DB) ReleaseCRL(ctx context.Context, caID, owner string, retryAt time.Time, failed bool) error {
	add := 0
	if failed {
		add = 1
	}
	res, err := db.exec(ctx, `UPDATE crl_publications SET owner = NULL, lease_until = ?, failures = failures + ? WHERE ca_id = ? AND owner = ?`,
		retryAt.UnixMicro(), add, caID, owner)
	return db.held(res, err, "releasing a CRL")
}

// CountFailingCRLs implements openpca.CRLStore. A CA that was deleted, or
// whose certificate ended, keeps the failures of its last attempts, which
// no attempt follows.
func (db *DB) CountFailingCRLs(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := db.queryRow(ctx, `SELECT COUNT(*) FROM crl_publications p JOIN certificate_authorities c ON c.id = p.ca_id
		WHERE p.failures > 0 AND c.status IN ('ACTIVE', 'DISABLED') AND c.not_after >= ?`, now.UnixMicro()).Scan(&n)
	return n, db.wrap("counting failing CRLs", err)
}

// RetryCRLsNow implements openpca.CRLStore.
func (db *DB) RetryCRLsNow(ctx context.Context) error {
	_, err := db.exec(ctx, `UPDATE crl_publications SET lease_until = NULL WHERE owner IS NULL AND lease_until IS NOT NULL`)
	return db.wrap("retrying CRLs", err)
}

// RetryCRLNow implements openpca.CRLStore. The wait of a CA whose CRL did
// not fail (the pause after a large CRL) stays.
func (db *DB) RetryCRLNow(ctx context.Context, caID string) error {
	_, err := db.exec(ctx, `UPDATE crl_publications SET lease_until = NULL WHERE ca_id = ? AND owner IS NULL AND lease_until IS NOT NULL AND failures > 0`, caID)
	return db.wrap("retrying a CRL", err)
}

// RevokedCertificates implements openpca.CRLStore. It reads readChunk
// certificates at a time, for the reason AuditEntries does: a CA's CRL can
// list a million, and one long read would keep SQLite's write-ahead log
// from starting over. The log's size is read first: a revocation is
// committed with its entry and the log's new size, so every one logged
// before is read, whichever chunk reads it.
func (db *DB) RevokedCertificates(ctx context.Context, caID string, expiresAfter time.Time, listedFrom int64, fn func(*openpca.RevokedCertificate) error) (int64, time.Time, error) {
	before, err := db.LogSize(ctx, caID)
	if errors.Is(err, openpca.ErrNotFound) {
		return 0, expiresAfter, nil // no log, and so no revocation
	}
	if err != nil {
		return 0, expiresAfter, err
	}
	if listedFrom >= 0 {
		// On the partial index of revocations, those since listedFrom:
		// the revocations of one CRL's time.
		var end sql.NullInt64
		err := db.queryRow(ctx, `SELECT MIN(not_after) FROM certificates WHERE ca_id = ? AND revoke_seq >= ? AND revoke_seq < ?`, caID, listedFrom, before).Scan(&end)
		if err != nil {
			return 0, expiresAfter, db.wrap("reading revoked certificates", err)
		}
		if end.Valid && !time.UnixMicro(end.Int64).After(expiresAfter) {
			expiresAfter = time.UnixMicro(end.Int64).UTC().Truncate(time.Second).Add(-time.Microsecond)
		}
	}
	for after := int64(-1); ; {
		n, err := db.revokedChunk(ctx, caID, expiresAfter, before, &after, fn)
		if err != nil || n < readChunk {
			return before, expiresAfter, err
		}
	}
}

// revokedChunk is RevokedCertificates for at most readChunk certificates
// revoked after log entry *after and before entry before, and moves *after
// on to the last one read.
func (db *DB) revokedChunk(ctx context.Context, caID string, expiresAfter time.Time, before int64, after *int64, fn func(*openpca.RevokedCertificate) error) (int, error) {
	rows, err := db.query(ctx, `SELECT serial, revoked_at, revocation_reason, revoke_seq FROM certificates
		WHERE ca_id = ? AND revoke_seq > ? AND revoke_seq < ? AND not_after > ? ORDER BY revoke_seq LIMIT ?`, caID, *after, before, expiresAfter.UnixMicro(), readChunk)
	if err != nil {
		return 0, db.wrap("reading revoked certificates", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var r openpca.RevokedCertificate
		var at int64
		if err := rows.Scan(&r.Serial, &at, &r.Reason, after); err != nil {
			return n, db.wrap("reading revoked certificates", err)
		}
		r.RevokedAt = time.UnixMicro(at).UTC()
		n++
		if err := fn(&r); err != nil {
			return n, err
		}
	}
	return n, db.wrap("reading revoked certificates", rows.Err())
}
