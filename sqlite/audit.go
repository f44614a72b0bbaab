package sqlite

import (
	"context"
	"database/sql"
	"errors"
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
// report and the insert share one write transaction, which SQLite runs
// one at a time: of two concurrent requests, exactly one is stored.
func (db *DB) CreateAuditReport(ctx context.Context, r *openpca.AuditReport, since time.Time) (*openpca.AuditReport, error) {
	var last *openpca.AuditReport
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		last, err = scanAuditReport(tx.QueryRowContext(ctx, `SELECT `+auditColumns+` FROM audit_reports
			WHERE ca_id = ? AND status != 'FAILED' AND created_at > ? ORDER BY created_at DESC LIMIT 1`, r.CAID, since.UnixMicro()))
		if err == nil {
			return openpca.ErrTooSoon
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		last = nil
		if err := tx.QueryRowContext(ctx, `SELECT size FROM key_use_logs WHERE ca_id = ?`, r.CAID).Scan(&r.LogSize); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO audit_reports (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.CAID, r.AccountID, r.Bucket, r.Key, r.Format, r.Status, r.CreatedAt.UnixMicro(), r.LogSize, r.Failure)
		return err
	})
	if errors.Is(err, openpca.ErrTooSoon) {
		return last, err
	}
	return r, wrap("creating audit report", err)
}

// FindAuditReport implements openpca.AuditStore.
func (db *DB) FindAuditReport(ctx context.Context, caID, id string) (*openpca.AuditReport, error) {
	r, err := scanAuditReport(db.r.queryRow(ctx, `SELECT `+auditColumns+` FROM audit_reports WHERE ca_id = ? AND id = ?`, caID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, openpca.ErrNotFound
	}
	return r, wrap("reading audit report", err)
}

// ClaimAuditReport implements openpca.AuditStore.
func (db *DB) ClaimAuditReport(ctx context.Context, owner string, now time.Time, lease time.Duration) (*openpca.AuditReport, error) {
	var r *openpca.AuditReport
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = scanAuditReport(tx.QueryRowContext(ctx, `SELECT `+auditColumns+` FROM audit_reports
			WHERE status = 'CREATING' AND (lease_until < ? OR owner = ?) ORDER BY created_at LIMIT 1`, now.UnixMicro(), owner))
		if errors.Is(err, sql.ErrNoRows) {
			return openpca.ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE audit_reports SET owner = ?, lease_until = ? WHERE id = ?`, owner, now.Add(lease).UnixMicro(), r.ID)
		return err
	})
	if err != nil {
		return nil, wrap("claiming audit report", err)
	}
	return r, nil
}

// RenewAuditReport implements openpca.AuditStore.
func (db *DB) RenewAuditReport(ctx context.Context, id, owner string, until time.Time) error {
	res, err := db.write.ExecContext(ctx, `UPDATE audit_reports SET lease_until = ? WHERE id = ? AND owner = ? AND status = 'CREATING'`,
		until.UnixMicro(), id, owner)
	return held(res, err, "renewing audit report")
}

// FinishAuditReport implements openpca.AuditStore.
func (db *DB) FinishAuditReport(ctx context.Context, id, owner string, status openpca.AuditReportStatus, failure string) error {
	res, err := db.write.ExecContext(ctx, `UPDATE audit_reports SET status = ?, failure = ?, lease_until = 0 WHERE id = ? AND owner = ? AND status = 'CREATING'`,
		status, failure, id, owner)
	return held(res, err, "finishing audit report")
}

// held turns an update that matched no row into ErrConflict.
func held(res sql.Result, err error, what string) error {
	if err != nil {
		return wrap(what, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap(what, err)
	} else if n == 0 {
		return openpca.ErrConflict
	}
	return nil
}

// AuditRows implements openpca.AuditStore. One query is one read
// transaction in SQLite: the rows are a snapshot, however long the scan.
func (db *DB) AuditRows(ctx context.Context, caID string, logSize int64, fn func(*openpca.Certificate) error) error {
	rows, err := db.r.query(ctx, `SELECT account_id, arn, serial, subject, not_before, not_after, issued_at, template_arn,
		CASE WHEN revoke_seq < ? THEN revoked_at END, CASE WHEN revoke_seq < ? THEN revocation_reason ELSE '' END
		FROM certificates WHERE ca_id = ? AND issue_seq < ? ORDER BY issued_at, issue_seq`, logSize, logSize, caID, logSize)
	if err != nil {
		return wrap("reading audit rows", err)
	}
	defer rows.Close()
	var c openpca.Certificate
	c.CAID = caID
	for rows.Next() {
		var notBefore, notAfter, issuedAt int64
		var revokedAt sql.NullInt64
		if err := rows.Scan(&c.AccountID, &c.ARN, &c.Serial, &c.Subject, &notBefore, &notAfter, &issuedAt, &c.TemplateARN, &revokedAt, &c.RevocationReason); err != nil {
			return wrap("reading audit rows", err)
		}
		c.NotBefore, c.NotAfter, c.IssuedAt = time.UnixMicro(notBefore).UTC(), time.UnixMicro(notAfter).UTC(), time.UnixMicro(issuedAt).UTC()
		c.RevokedAt = fromMicros(revokedAt)
		if err := fn(&c); err != nil {
			return err
		}
	}
	return wrap("reading audit rows", rows.Err())
}
