package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/openpca/openpca"
)

const certificateColumns = `ca_id, serial, account_id, arn, certificate, subject, not_before, not_after, issued_at,
	template_arn, revoked_at, revocation_reason, requested_by, request_id`

func scanCertificate(s rowScanner) (*openpca.Certificate, error) {
	var (
		c                                        openpca.Certificate
		notBefore, notAfter, issuedAt, revokedAt sql.NullInt64
	)
	if err := s.Scan(&c.CAID, &c.Serial, &c.AccountID, &c.ARN, &c.DER, &c.Subject, &notBefore, &notAfter, &issuedAt,
		&c.TemplateARN, &revokedAt, &c.RevocationReason, &c.RequestedBy, &c.RequestID); err != nil {
		return nil, err
	}
	c.NotBefore, c.NotAfter, c.IssuedAt, c.RevokedAt = fromMicros(notBefore), fromMicros(notAfter), fromMicros(issuedAt), fromMicros(revokedAt)
	return &c, nil
}

// The queries of the group commit's writes, prepared when the store opens.
const (
	// qCAMaySign checks that a CA may still sign, and keeps it so (on a
	// database with row locks) until the transaction ends: a concurrent
	// change of its status waits, and comes after the signature.
	qCAMaySign = `SELECT 1 FROM certificate_authorities
		WHERE id = ? AND (not_after IS NULL OR not_after > ?) AND status IN (?, ?, ?){FOR_SHARE}`
	// qAppendKeyUses takes the next entries of a CA's log; its row lock
	// orders concurrent appends, so entries are numbered without gaps.
	qAppendKeyUses = `UPDATE key_use_logs SET size = size + ? WHERE ca_id = ? RETURNING size`
	qInsertKeyUse  = `INSERT INTO key_uses (ca_id, seq, kind, at, serial, record) VALUES (?, ?, ?, ?, ?, ?)`
	// qClaimToken records a token, or replaces one past its window; it
	// returns a row only if it did.
	qClaimToken = `INSERT INTO idempotency_tokens (account_id, operation, token, created_at, result) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (account_id, operation, token) DO UPDATE SET created_at = excluded.created_at, result = excluded.result
		WHERE idempotency_tokens.created_at < ? RETURNING result`
	qTokenResult       = `SELECT result FROM idempotency_tokens WHERE account_id = ? AND operation = ? AND token = ?`
	qFindCertificate   = `SELECT ` + certificateColumns + ` FROM certificates WHERE ca_id = ? AND serial = ?`
	qInsertCertificate = `INSERT INTO certificates (` + certificateColumns + `, issue_seq)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ca_id, serial) DO NOTHING`
	qRevokedAt = `SELECT revoked_at FROM certificates WHERE ca_id = ? AND serial = ?{FOR_UPDATE}`
	qRevoke    = `UPDATE certificates SET revoked_at = ?, revocation_reason = ?, revoke_seq = ? WHERE ca_id = ? AND serial = ?`
)

var hotQueries = []string{qCAMaySign, qAppendKeyUses, qInsertKeyUse, qClaimToken, qTokenResult, qFindCertificate, qInsertCertificate, qRevokedAt, qRevoke}

// caMaySign returns ErrCAState unless the CA is in one of statuses with a
// certificate valid at at (or none yet).
func (db *DB) caMaySign(ctx context.Context, tx *sql.Tx, caID string, statuses []openpca.CertificateAuthorityStatus, at time.Time) error {
	if len(statuses) == 0 || len(statuses) > 3 {
		return fmt.Errorf("sqlstore: between 1 and 3 allowed statuses, not %d", len(statuses))
	}
	args := []any{caID, at.UnixMicro()}
	for i := range 3 { // the query takes three; repeat the last to fill
		args = append(args, statuses[min(i, len(statuses)-1)])
	}
	var one int64
	err := db.txQueryRow(ctx, tx, qCAMaySign, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return openpca.ErrCAState
	}
	return err
}

// reserveKeyUses takes the next n entries of a CA's log and returns the
// first one's number.
func (db *DB) reserveKeyUses(ctx context.Context, tx *sql.Tx, caID string, n int) (int64, error) {
	var size int64
	err := db.txQueryRow(ctx, tx, qAppendKeyUses, n, caID).Scan(&size)
	return size - int64(n), err
}

// appendKeyUse appends use to its CA's log as the next entry, if the CA
// may sign (see caMaySign).
func (db *DB) appendKeyUse(ctx context.Context, tx *sql.Tx, use *openpca.KeyUse, statuses []openpca.CertificateAuthorityStatus, at time.Time) error {
	if err := db.caMaySign(ctx, tx, use.CAID, statuses, at); err != nil {
		return err
	}
	seq, err := db.reserveKeyUses(ctx, tx, use.CAID, 1)
	if err != nil {
		return err
	}
	use.Seq = seq
	return db.insertKeyUse(ctx, tx, use)
}

func (db *DB) insertKeyUse(ctx context.Context, tx *sql.Tx, use *openpca.KeyUse) error {
	_, err := db.txExec(ctx, tx, qInsertKeyUse, keyUseRow(use)...)
	return err
}

func keyUseRow(use *openpca.KeyUse) []any {
	return []any{use.CAID, use.Seq, use.Kind, use.At.UnixMicro(), use.Serial, use.Record}
}

// RecordIssuance implements openpca.CertificateStore. Issuances without an
// idempotency token, the bulk of them, are written together (see
// issueBatch); one with a token is written alone, as its token may name
// another issuance of the same batch.
func (db *DB) RecordIssuance(ctx context.Context, is *openpca.Issuance) (*openpca.Certificate, error) {
	if is.Token.Token == "" {
		err := db.retry(ctx, func() error { return db.issuances.Do(ctx, is) })
		if err != nil {
			return nil, db.wrap("recording issuance", err)
		}
		return is.Certificate, nil
	}
	var existing *openpca.Certificate
	err := db.retry(ctx, func() error {
		return db.commits.Do(ctx, func(ctx context.Context, tx *sql.Tx) error {
			return db.issue(ctx, tx, is, &existing)
		})
	})
	if err != nil {
		return nil, db.wrap("recording issuance", err)
	}
	if existing != nil {
		return existing, nil
	}
	return is.Certificate, nil
}

// issue is the write of an idempotent issuance; it sets *existing to the
// certificate of an idempotency token used before.
func (db *DB) issue(ctx context.Context, tx *sql.Tx, is *openpca.Issuance, existing **openpca.Certificate) error {
	c := is.Certificate
	*existing = nil
	serial, err := db.claimToken(ctx, tx, c.AccountID, is.Token, c.Serial)
	if err != nil {
		return err
	}
	if serial != "" {
		*existing, err = scanCertificate(db.txQueryRow(ctx, tx, qFindCertificate, c.CAID, serial))
		return err
	}
	if err := db.appendKeyUse(ctx, tx, is.Use, is.Statuses, c.IssuedAt); err != nil {
		return err
	}
	res, err := db.txExec(ctx, tx, qInsertCertificate, certificateRow(c, is.Use.Seq)...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return openpca.ErrConflict
	}
	return nil
}

func certificateRow(c *openpca.Certificate, seq int64) []any {
	return []any{c.CAID, c.Serial, c.AccountID, c.ARN, c.DER, c.Subject, micros(c.NotBefore), micros(c.NotAfter), micros(c.IssuedAt),
		c.TemplateARN, micros(c.RevokedAt), c.RevocationReason, c.RequestedBy, c.RequestID, seq}
}

// RecordRevocation implements openpca.CertificateStore. The certificate's
// row is locked until the revocation commits, so that of two concurrent
// revocations the second finds the first.
func (db *DB) RecordRevocation(ctx context.Context, r *openpca.Revocation) error {
	err := db.retry(ctx, func() error {
		return db.commits.Do(ctx, func(ctx context.Context, tx *sql.Tx) error {
			var revoked sql.NullInt64
			err := db.txQueryRow(ctx, tx, qRevokedAt, r.CAID, r.Serial).Scan(&revoked)
			if errors.Is(err, sql.ErrNoRows) {
				return openpca.ErrNotFound
			}
			if err != nil {
				return err
			}
			if revoked.Valid {
				return openpca.ErrAlreadyRevoked
			}
			if err := db.appendKeyUse(ctx, tx, r.Use, r.Statuses, r.At); err != nil {
				return err
			}
			_, err = db.txExec(ctx, tx, qRevoke, r.At.UnixMicro(), r.Reason, r.Use.Seq, r.CAID, r.Serial)
			return err
		})
	})
	return db.wrap("recording revocation", err)
}

// FindCertificate implements openpca.CertificateStore.
func (db *DB) FindCertificate(ctx context.Context, caID, serial string) (*openpca.Certificate, error) {
	c, err := scanCertificate(db.queryRow(ctx, qFindCertificate, caID, serial))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, openpca.ErrNotFound
	}
	return c, db.wrap("reading certificate", err)
}

// FindIdempotent implements openpca.CertificateStore.
func (db *DB) FindIdempotent(ctx context.Context, accountID, operation, token string, since time.Time) (string, error) {
	var result string
	err := db.queryRow(ctx, `SELECT result FROM idempotency_tokens WHERE account_id = ? AND operation = ? AND token = ? AND created_at >= ?`,
		accountID, operation, token, since.UnixMicro()).Scan(&result)
	if errors.Is(err, sql.ErrNoRows) {
		return "", openpca.ErrNotFound
	}
	return result, db.wrap("reading idempotency token", err)
}

// KeyUses implements openpca.CertificateStore.
func (db *DB) KeyUses(ctx context.Context, caID string, from int64, limit int) ([]*openpca.KeyUse, error) {
	rows, err := db.query(ctx, `SELECT ca_id, seq, kind, at, serial, record FROM key_uses WHERE ca_id = ? AND seq >= ? ORDER BY seq LIMIT ?`, caID, from, limit)
	if err != nil {
		return nil, db.wrap("reading key uses", err)
	}
	defer rows.Close()
	var uses []*openpca.KeyUse
	for rows.Next() {
		var u openpca.KeyUse
		var at int64
		if err := rows.Scan(&u.CAID, &u.Seq, &u.Kind, &at, &u.Serial, &u.Record); err != nil {
			return nil, db.wrap("reading key uses", err)
		}
		u.At = time.UnixMicro(at).UTC()
		uses = append(uses, &u)
	}
	return uses, db.wrap("reading key uses", rows.Err())
}
