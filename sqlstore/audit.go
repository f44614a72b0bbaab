package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/openpca/openpca"
)

const auditColumns = `id, ca_id, account_id, bucket, s3_key, format, status, created_at, log_size, failure`

func scanAuditReport(s rowScanner) (*openpca.AuditReport, error) {
	var r openpca.AuditReport
	var created int64
	if err := s.Scan(&r.ID, &r.CAID, &r.AccountID, &r.Bucket, &r.Key, &r.Format, &r.Status, &created, &r.LogSize, &r.Failure); err != nil {
		return nil, err
	}
	r.CreatedAt = time.UnixMicro(created).UTC()
	return &r, nil
}

// CreateAuditReport implements openpca.AuditStore. The check of the last
// report and the insert share one transaction, under a lock on the CA's
// reports: of two concurrent requests, exactly one is stored.
func (db *DB) CreateAuditReport(ctx context.Context, r *openpca.AuditReport, since time.Time) (*openpca.AuditReport, error) {
	var last *openpca.AuditReport
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.lockKey(ctx, tx, "audit:"+r.CAID); err != nil {
			return err
		}
		var err error
		last, err = scanAuditReport(db.txQueryRow(ctx, tx, `SELECT `+auditColumns+` FROM audit_reports
			WHERE ca_id = ? AND status != 'FAILED' AND created_at > ? ORDER BY created_at DESC LIMIT 1`, r.CAID, since.UnixMicro()))
		if err == nil {
			return openpca.ErrTooSoon
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		last = nil
		// The lock waits for issuances in progress, so the size is that of
		// a log with every committed entry.
		if err := db.txQueryRow(ctx, tx, `SELECT size FROM key_use_logs WHERE ca_id = ?{FOR_SHARE}`, r.CAID).Scan(&r.LogSize); err != nil {
			return err
		}
		_, err = db.txExec(ctx, tx, `INSERT INTO audit_reports (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.CAID, r.AccountID, r.Bucket, r.Key, r.Format, r.Status, r.CreatedAt.UnixMicro(), r.LogSize, r.Failure)
		return err
	})
	if errors.Is(err, openpca.ErrTooSoon) {
		return last, err
	}
	return r, db.wrap("creating audit report", err)
}

// FindAuditReport implements openpca.AuditStore.
func (db *DB) FindAuditReport(ctx context.Context, caID, id string) (*openpca.AuditReport, error) {
	r, err := scanAuditReport(db.queryRow(ctx, `SELECT `+auditColumns+` FROM audit_reports WHERE ca_id = ? AND id = ?`, caID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, openpca.ErrNotFound
	}
	return r, db.wrap("reading audit report", err)
}

// ClaimAuditReport implements openpca.AuditStore.
func (db *DB) ClaimAuditReport(ctx context.Context, owner string, now time.Time, lease time.Duration) (*openpca.AuditReport, error) {
	var r *openpca.AuditReport
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = scanAuditReport(db.txQueryRow(ctx, tx, `SELECT `+auditColumns+` FROM audit_reports
			WHERE status = 'CREATING' AND (lease_until < ? OR owner = ?) ORDER BY created_at LIMIT 1{FOR_UPDATE}{SKIP_LOCKED}`, now.UnixMicro(), owner))
		if errors.Is(err, sql.ErrNoRows) {
			return openpca.ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = db.txExec(ctx, tx, `UPDATE audit_reports SET owner = ?, lease_until = ? WHERE id = ?`, owner, now.Add(lease).UnixMicro(), r.ID)
		return err
	})
	if err != nil {
		return nil, db.wrap("claiming audit report", err)
	}
	return r, nil
}

// RenewAuditReport implements openpca.AuditStore.
func (db *DB) RenewAuditReport(ctx context.Context, id, owner string, until time.Time) error {
	res, err := db.exec(ctx, `UPDATE audit_reports SET lease_until = ? WHERE id = ? AND owner = ? AND status = 'CREATING'`,
		until.UnixMicro(), id, owner)
	return db.held(res, err, "renewing audit report")
}

// FinishAuditReport implements openpca.AuditStore.
func (db *DB) FinishAuditReport(ctx context.Context, id, owner string, status openpca.AuditReportStatus, failure string) error {
	res, err := db.exec(ctx, `UPDATE audit_reports SET status = ?, failure = ?, lease_until = 0 WHERE id = ? AND owner = ? AND status = 'CREATING'`,
		status, failure, id, owner)
	return db.held(res, err, "finishing audit report")
}

// held turns an update that matched no row into ErrConflict.
func (db *DB) held(res sql.Result, err error, what string) error {
	if err != nil {
		return db.wrap(what, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return db.wrap(what, err)
	} else if n == 0 {
		return openpca.ErrConflict
	}
	return nil
}

// readChunk is how many rows one query of a long scan reads. A scan of a
// whole log is many short reads rather than one long one: a long read
// holds a snapshot, and SQLite's write-ahead log cannot start over while
// a reader is on it. The rows of the first n entries of a log do not
// change but for revocations, which each query reads only if they are of
// those entries: the reads agree without a snapshot.
const readChunk = 2000

// AuditRows implements openpca.AuditStore.
func (db *DB) AuditRows(ctx context.Context, caID string, logSize int64, fn func(*openpca.Certificate) error) error {
	const q = `SELECT issue_seq, serial, subject, not_before, not_after, issued_at, template_arn,
		CASE WHEN revoke_seq < ? THEN revoked_at END, CASE WHEN revoke_seq < ? THEN revocation_reason ELSE '' END
		FROM certificates WHERE ca_id = ? AND issue_seq >= ? AND issue_seq < ? ORDER BY issue_seq LIMIT ?`
	ca, err := db.signerOf(ctx, caID)
	if err != nil {
		return db.wrap("reading audit rows", err)
	}
	c := openpca.Certificate{CAID: caID, AccountID: ca.accountID}
	for from := int64(0); from < logSize; {
		rows, err := db.query(ctx, q, logSize, logSize, caID, from, logSize, readChunk)
		if err != nil {
			return db.wrap("reading audit rows", err)
		}
		n := 0
		for rows.Next() {
			var seq, notBefore, notAfter, issuedAt int64
			var revokedAt sql.NullInt64
			if err := rows.Scan(&seq, &c.Serial, &c.Subject, &notBefore, &notAfter, &issuedAt, &c.TemplateARN, &revokedAt, &c.RevocationReason); err != nil {
				rows.Close()
				return db.wrap("reading audit rows", err)
			}
			c.ARN = openpca.CertificateARN(ca.arn, c.Serial)
			c.NotBefore, c.NotAfter, c.IssuedAt = time.UnixMicro(notBefore).UTC(), time.UnixMicro(notAfter).UTC(), time.UnixMicro(issuedAt).UTC()
			c.RevokedAt = fromMicros(revokedAt)
			if err := fn(&c); err != nil {
				rows.Close()
				return err
			}
			n, from = n+1, seq+1
		}
		if err := rows.Close(); err != nil {
			return db.wrap("reading audit rows", err)
		}
		if err := rows.Err(); err != nil {
			return db.wrap("reading audit rows", err)
		}
		if n < readChunk {
			return nil
		}
	}
	return nil
}

// LogRecords implements openpca.AuditStore.
func (db *DB) LogRecords(ctx context.Context, caID string, logSize int64, fn func(record []byte) error) error {
	ca, err := db.signerOf(ctx, caID)
	if err != nil {
		return db.wrap("reading key-use records", err)
	}
	var next int64
	for next < logSize {
		rows, err := db.query(ctx, entrySelect+` WHERE k.ca_id = ? AND k.seq >= ? AND k.seq < ? ORDER BY k.seq`, caID, next, min(next+readChunk, logSize))
		if err != nil {
			return db.wrap("reading key-use records", err)
		}
		e := entry{ca: ca, caID: caID}
		start := next
		for rows.Next() {
			if err := e.scan(rows); err != nil {
				rows.Close()
				return db.wrap("reading key-use records", err)
			}
			if e.use.Seq != next {
				break
			}
			if err := fn(e.use.Record); err != nil {
				rows.Close()
				return err
			}
			next++
		}
		if err := rows.Close(); err != nil {
			return db.wrap("reading key-use records", err)
		}
		if err := rows.Err(); err != nil {
			return db.wrap("reading key-use records", err)
		}
		if next == start || next < min(start+readChunk, logSize) {
			break
		}
	}
	if next != logSize {
		return fmt.Errorf("sqlstore: read %d entries of the key-use log of CA %s, want %d", next, caID, logSize)
	}
	return nil
}
