package sqlstore

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"golang.org/x/mod/sumdb/tlog"
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
		// A report dated more than a window after this one (by a server
		// whose clock ran ahead) does not count: it would hold the window
		// until its date. One dated a little after it does: requests at
		// once, on servers whose clocks differ by a little, take their
		// times before they take the lock.
		ahead := r.CreatedAt.Add(r.CreatedAt.Sub(since))
		last, err = scanAuditReport(db.txQueryRow(ctx, tx, `SELECT `+auditColumns+` FROM audit_reports
			WHERE ca_id = ? AND status != 'FAILED' AND created_at > ? AND created_at <= ? ORDER BY created_at DESC LIMIT 1`,
			r.CAID, since.UnixMicro(), ahead.UnixMicro()))
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

// AuditReports implements openpca.AuditStore.
func (db *DB) AuditReports(ctx context.Context, caID string, limit int) ([]*openpca.AuditReport, error) {
	rows, err := db.query(ctx, `SELECT `+auditColumns+` FROM audit_reports WHERE ca_id = ? ORDER BY created_at DESC, id LIMIT ?`, caID, limit)
	if err != nil {
		return nil, db.wrap("listing audit reports", err)
	}
	defer rows.Close()
	var out []*openpca.AuditReport
	for rows.Next() {
		r, err := scanAuditReport(rows)
		if err != nil {
			return nil, db.wrap("listing audit reports", err)
		}
		out = append(out, r)
	}
	return out, db.wrap("listing audit reports", rows.Err())
}

// ClaimAuditReport implements openpca.AuditStore. It chooses the report
// by its id, and reads its row once the claim holds it: of a row that
// cannot be read, only the reading fails.
func (db *DB) ClaimAuditReport(ctx context.Context, owner string, now time.Time, lease time.Duration) (*openpca.AuditReport, error) {
	var (
		id         string
		r          *openpca.AuditReport
		unreadable error
	)
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		// Of the accounts' reports, those of the account with the fewest
		// being made first, then the oldest: one account's many reports
		// take one worker at a time while another's wait. An id that is
		// not text (SQLite keeps what it is given) names no report that
		// can be asked for, or finished.
		err := db.txQueryRow(ctx, tx, `SELECT id FROM audit_reports
			WHERE status = 'CREATING' AND (lease_until < ? OR owner = ?) AND CAST(id AS TEXT) = id
			ORDER BY (SELECT COUNT(*) FROM audit_reports made WHERE made.account_id = audit_reports.account_id AND made.status = 'CREATING' AND made.lease_until >= ?),
				created_at LIMIT 1{FOR_UPDATE}{SKIP_LOCKED}`, now.UnixMicro(), owner, now.UnixMicro()).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return openpca.ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := db.txExec(ctx, tx, `UPDATE audit_reports SET owner = ?, lease_until = ? WHERE id = ?`, owner, now.Add(lease).UnixMicro(), id); err != nil {
			return err
		}
		rows, err := db.txQuery(ctx, tx, `SELECT `+auditColumns+` FROM audit_reports WHERE id = ?`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		if !rows.Next() {
			return cmp.Or(rows.Err(), sql.ErrNoRows)
		}
		// The row was read: what Scan fails at is converting its values.
		r, unreadable = scanAuditReport(rows)
		return rows.Close()
	})
	if err != nil {
		return nil, db.wrap("claiming audit report", err)
	}
	if unreadable != nil {
		return nil, &openpca.UnreadableReportError{ID: id, Err: unreadable}
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

// readChunk is how many log entries one query of a long scan reads. A
// scan of a whole log is many short reads rather than one long one: a long
// read holds a snapshot, and SQLite's write-ahead log cannot start over
// while a reader is on it. The rows of the first n entries of a log do not
// change but for revocations, which each query reads only if they are of
// those entries: the reads agree without a snapshot.
const readChunk = 2000

// AuditEntries implements openpca.AuditStore. It reads the range two
// ways at once, each in the log's order: the entries (their records, if
// kept, and hashes) and the certificates issued in it, and merges them.
func (db *DB) AuditEntries(ctx context.Context, caID string, logSize, from, to int64, fn func(*openpca.AuditEntry) error) error {
	if to > logSize {
		return fmt.Errorf("sqlstore: audit entries up to %d of a log cut at %d", to, logSize)
	}
	ca, err := db.signerOf(ctx, caID)
	if err != nil {
		return db.wrap("reading audit entries", err)
	}
	for ; from < to; from += readChunk {
		if err := db.auditChunk(ctx, caID, ca, logSize, from, min(from+readChunk, to), fn); err != nil {
			return err
		}
	}
	return nil
}

// auditChunk is AuditEntries for at most readChunk entries: it reads the
// certificates issued in the range, those revoked in it, then its entries.
func (db *DB) auditChunk(ctx context.Context, caID string, ca signer, logSize, from, to int64, fn func(*openpca.AuditEntry) error) error {
	type issued struct {
		seq          int64
		c            openpca.Certificate
		signedSHA256 []byte
	}
	certs := make([]issued, 0, to-from)
	err := db.scan(ctx, `SELECT issue_seq, serial, subject, not_before, not_after, issued_at, template_arn, requested_by, request_id, signed_sha256,
		CASE WHEN revoke_seq < ? THEN revoke_seq END, revoked_at, revocation_reason, CASE WHEN revoke_seq > issue_seq THEN 1 ELSE 0 END,
		CASE WHEN CAST(serial AS TEXT) = serial THEN 1 ELSE 0 END
		FROM certificates WHERE ca_id = ? AND issue_seq >= ? AND issue_seq < ? ORDER BY issue_seq`, []any{logSize, caID, from, to}, func(row Row) error {
		certs = append(certs, issued{
			seq: row.Int64(0),
			c: openpca.Certificate{
				CAID: caID, AccountID: ca.accountID,
				Serial: row.Text(1), Subject: row.Text(2),
				NotBefore: time.UnixMicro(row.Int64(3)).UTC(), NotAfter: time.UnixMicro(row.Int64(4)).UTC(), IssuedAt: time.UnixMicro(row.Int64(5)).UTC(),
				TemplateARN: row.Text(6), RequestedBy: row.Text(7), RequestID: row.Text(8),
			},
			signedSHA256: bytes.Clone(row.Bytes(9)),
		})
		is := &certs[len(certs)-1]
		is.c.ARN = openpca.CertificateARN(ca.arn, is.c.Serial)
		// SQLite keeps a serial that is not text (a blob) apart from the
		// text of the same bytes, in the unique index of serials too, and
		// reads both as one: two rows of one serial, of which a
		// revocation would show one revoked, and verify both.
		if row.Int64(14) != 1 {
			return &openpca.LogIntegrityError{CAID: caID, Entry: is.seq, Problem: fmt.Sprintf("issued certificate %s, whose serial in the certificates' table is not text", is.c.Serial)}
		}
		// A revocation logged after the report's end is not the report's.
		// The comparison is the database's, as in the query of the rows
		// revoked in the range below: SQLite keeps a value of revoke_seq
		// that is not a number as text or a blob, which it orders after
		// every number but sqlite3_column_int64 reads as its leading
		// digits. Compared here, such a row would be shown revoked, and
		// no entry would be checked against it.
		if !row.IsNull(10) {
			if err := revokedAfterIssue(caID, is.c.Serial, is.seq, row.Int64(10), row.Int64(13) == 1); err != nil {
				return err
			}
			is.c.RevokedAt, is.c.RevocationReason = time.UnixMicro(row.Int64(11)).UTC(), openpca.RevocationReason(row.Text(12))
		}
		return nil
	})
	if err != nil {
		return db.wrap("reading audit entries", err)
	}
	// The rows that name an entry of the range as their revocation, which
	// the partial index of revoked certificates finds. Each must be one the
	// issuance query shows, revoked: its issuance an entry of the log (not
	// below 0), before its revocation, compared by the database as there.
	// A row that is not would agree with its revocation entry while the
	// report leaves it out.
	type revokedBy struct {
		seq int64
		c   openpca.RevokedCertificate
	}
	var revoked []revokedBy
	err = db.scan(ctx, `SELECT revoke_seq, serial, issue_seq, revoked_at, revocation_reason,
		CASE WHEN issue_seq >= 0 AND issue_seq < revoke_seq THEN 1 ELSE 0 END FROM certificates
		WHERE ca_id = ? AND revoke_seq >= ? AND revoke_seq < ? ORDER BY revoke_seq`, []any{caID, from, to}, func(row Row) error {
		r := revokedBy{seq: row.Int64(0), c: openpca.RevokedCertificate{Serial: row.Text(1),
			RevokedAt: time.UnixMicro(row.Int64(3)).UTC(), Reason: openpca.RevocationReason(row.Text(4))}}
		if row.Int64(5) != 1 {
			return &openpca.LogIntegrityError{CAID: caID, Entry: r.seq,
				Problem: fmt.Sprintf("is the revocation of certificate %s, the certificates' table says, whose row does not name an entry of the log before it as its issuance (it names entry %d)", r.c.Serial, row.Int64(2))}
		}
		if n := len(revoked); n > 0 && revoked[n-1].seq == r.seq {
			return &openpca.LogIntegrityError{CAID: caID, Entry: r.seq,
				Problem: fmt.Sprintf("is the revocation of two certificates, %s and %s, the certificates' table says", revoked[n-1].c.Serial, r.c.Serial)}
		}
		revoked = append(revoked, r)
		return nil
	})
	if err != nil {
		return db.wrap("reading audit entries", err)
	}

	var (
		e       openpca.AuditEntry
		rebuilt []byte
	)
	next := from
	// A kind that is not text (a blob, in SQLite) reads as none: queries
	// that find entries by kind compare it as the database does, which
	// finds a blob equal to no text.
	err = db.scan(ctx, `SELECT seq, record, hashes, CASE WHEN CAST(kind AS TEXT) = kind THEN kind END FROM key_uses WHERE ca_id = ? AND seq >= ? AND seq < ? ORDER BY seq`, []any{caID, from, to}, func(row Row) error {
		// The record and hashes are read in place: a log can have millions.
		e.Seq, e.Record, e.Certificate, e.Revoked, e.RecordFromRow = row.Int64(0), row.Bytes(1), nil, nil, false
		if e.Seq != next {
			return &openpca.LogIntegrityError{CAID: caID, Entry: next, Problem: "is missing"}
		}
		if len(revoked) > 0 && revoked[0].seq == e.Seq {
			e.Revoked = &revoked[0].c
			revoked = revoked[1:]
		}
		if len(certs) > 0 && certs[0].seq == e.Seq {
			is := &certs[0]
			certs = certs[1:]
			e.Certificate = &is.c
			if e.Record == nil {
				if is.signedSHA256 == nil {
					return &openpca.LogIntegrityError{CAID: caID, Entry: e.Seq, Problem: "has no record, and no certificate to make it again"}
				}
				rebuilt = openpca.AppendIssueRecord(rebuilt[:0], ca.arn, &is.c, is.signedSHA256)
				e.Record, e.RecordFromRow = rebuilt, true
			}
		}
		if e.Record == nil {
			return &openpca.LogIntegrityError{CAID: caID, Entry: e.Seq, Problem: "has no record"}
		}
		e.Hash, e.Stored = tlog.RecordHash(e.Record), row.Bytes(2)
		if leaf, err := auditlog.HashAt(e.Stored, 0); err != nil || leaf != e.Hash {
			return &openpca.LogIntegrityError{CAID: caID, Entry: e.Seq, Problem: "does not match the hash the log stored for it"}
		}
		e.Kind = storedKind(row.Bytes(3))
		next++
		return fn(&e)
	})
	if err != nil {
		return db.wrap("reading audit entries", err)
	}
	if next != to {
		return &openpca.LogIntegrityError{CAID: caID, Entry: next, Problem: fmt.Sprintf("is missing: the log has %d entries, not %d", next, to)}
	}
	if len(certs) > 0 {
		return &openpca.LogIntegrityError{CAID: caID, Entry: certs[0].seq, Problem: fmt.Sprintf("is not the issuance of certificate %s, which names it", certs[0].c.Serial)}
	}
	return nil
}

// storedKinds are the kinds of entry a server stores.
var storedKinds = []string{openpca.KeyUseIssue, openpca.KeyUseRevoke, openpca.KeyUseOCSP, openpca.KeyUseCRL, openpca.KeyUseCSR, openpca.KeyUseImport}

// storedKind is the kind an entry is stored as, without a string made for
// each of a log's millions: one of those a server writes, or any.
func storedKind(b []byte) string {
	for _, k := range storedKinds {
		if string(b) == k {
			return k
		}
	}
	return string(b)
}

// revokedAfterIssue refuses a row that names as its revocation an entry
// of the log not after its issuance's: after is the database's comparison
// of the two.
func revokedAfterIssue(caID, serial string, issueSeq, revokeSeq int64, after bool) error {
	if after {
		return nil
	}
	return &openpca.LogIntegrityError{CAID: caID, Entry: issueSeq,
		Problem: fmt.Sprintf("issued certificate %s, whose row in the certificates' table says entry %d revoked it, which is not after it", serial, revokeSeq)}
}

// LogRecords implements openpca.AuditStore.
func (db *DB) LogRecords(ctx context.Context, caID string, logSize int64, fn func(record []byte) error) error {
	return db.AuditEntries(ctx, caID, logSize, 0, logSize, func(e *openpca.AuditEntry) error { return fn(e.Record) })
}
