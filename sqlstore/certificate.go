package sqlstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
)

// certificateSelect reads certificates whole: their narrow rows, their
// CA's ARN and account, which are theirs too, and their DER.
const certificateSelect = `SELECT c.ca_id, c.serial, a.account_id, a.arn, d.der, c.subject, c.not_before, c.not_after, c.issued_at,
	c.template_arn, c.revoked_at, c.revocation_reason, c.requested_by, c.request_id
	FROM certificates c JOIN certificate_authorities a ON a.id = c.ca_id
	JOIN certificate_ders d ON d.ca_id = c.ca_id AND d.issue_seq = c.issue_seq`

func scanCertificate(s rowScanner) (*openpca.Certificate, error) {
	var (
		c                                        openpca.Certificate
		caARN                                    string
		notBefore, notAfter, issuedAt, revokedAt sql.NullInt64
	)
	if err := s.Scan(&c.CAID, &c.Serial, &c.AccountID, &caARN, &c.DER, &c.Subject, &notBefore, &notAfter, &issuedAt,
		&c.TemplateARN, &revokedAt, &c.RevocationReason, &c.RequestedBy, &c.RequestID); err != nil {
		return nil, err
	}
	c.ARN = openpca.CertificateARN(caARN, c.Serial)
	c.NotBefore, c.NotAfter, c.IssuedAt, c.RevokedAt = fromMicros(notBefore), fromMicros(notAfter), fromMicros(issuedAt), fromMicros(revokedAt)
	return &c, nil
}

// The queries of the group commit's writes, prepared when the store opens.
const (
	// qCAMaySign checks that a CA may still sign, and keeps it so (on a
	// database with row locks) until the transaction ends: a concurrent
	// change of its status waits, and comes after the signature.
	qCAMaySign = `SELECT arn, account_id FROM certificate_authorities
		WHERE id = ? AND (not_after IS NULL OR not_after >= ?) AND status IN (?, ?, ?){FOR_SHARE}`
	// qCAExpired checks that a CA's certificate has expired, and keeps it
	// so, as qCAMaySign does: a root CA signs its own renewal so.
	qCAExpired = `SELECT arn, account_id FROM certificate_authorities
		WHERE id = ? AND not_after < ? AND status IN ('ACTIVE', 'DISABLED'){FOR_SHARE}`
	// qAppendKeyUses takes the next entries of a CA's log; its row lock
	// orders concurrent appends, so entries are numbered without gaps.
	qAppendKeyUses = `UPDATE key_use_logs SET size = size + ? WHERE ca_id = ? RETURNING size, tree_edge`
	// qLockLog takes a CA's row, then its log's, as every write takes
	// them (see RecordRevocation), before an idempotent issuance takes its
	// token's, whatever comes of the token.
	qLockLog = `UPDATE key_use_logs SET size = size WHERE ca_id = ? AND EXISTS (SELECT 1 FROM certificate_authorities WHERE id = ?{FOR_SHARE})`
	// qSetTreeEdge keeps the edge of a CA's log tree that its last append
	// left, so that the next one reads no entry (see auditlog.Edge).
	qSetTreeEdge = `UPDATE key_use_logs SET tree_edge = ? WHERE ca_id = ?`
	// qClaimToken records a token, or replaces one past its window; it
	// returns a row only if it did.
	qClaimToken = `INSERT INTO idempotency_tokens (account_id, operation, token, created_at, result) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (account_id, operation, token) DO UPDATE SET created_at = excluded.created_at, result = excluded.result
		WHERE idempotency_tokens.created_at < ? RETURNING result`
	qTokenResult     = `SELECT result FROM idempotency_tokens WHERE account_id = ? AND operation = ? AND token = ?`
	qFindCertificate = certificateSelect + ` WHERE c.ca_id = ? AND c.serial = ?`
	qRevokedAt       = `SELECT revoked_at FROM certificates WHERE ca_id = ? AND serial = ?{FOR_UPDATE}`
	qRevoke          = `UPDATE certificates SET revoked_at = ?, revocation_reason = ?, revoke_seq = ? WHERE ca_id = ? AND serial = ?`
)

// Multi-row inserts of key uses and certificates (see insertRows).
var (
	keyUseInserts      = newRowInsert(`INSERT INTO key_uses (ca_id, seq, kind, at, serial, record, hashes) VALUES `, 7, "")
	certificateInserts = newRowInsert(`INSERT INTO certificates (ca_id, issue_seq, serial, subject, not_before, not_after, issued_at,
		template_arn, requested_by, request_id, signed_sha256, names) VALUES `, 12, ` ON CONFLICT (ca_id, serial) DO NOTHING`)
	derInserts = newRowInsert(`INSERT INTO certificate_ders (ca_id, issue_seq, der) VALUES `, 3, "")
)

var hotQueries = slices.Concat([]string{qCAMaySign, qLockLog, qAppendKeyUses, qSetTreeEdge, qClaimToken, qTokenResult, qFindCertificate, qRevokedAt, qRevoke, qRevokedWantsCRL},
	keyUseInserts.queries, certificateInserts.queries, derInserts.queries)

// signer is what the log's records say of the CA that signs.
type signer struct{ arn, accountID string }

// caMaySign returns ErrCAState unless the CA is in one of statuses with a
// certificate valid at at (or none yet), or, for statuses of EXPIRED
// alone, its certificate has expired by at.
func (db *DB) caMaySign(ctx context.Context, tx *sql.Tx, caID string, statuses []openpca.CertificateAuthorityStatus, at time.Time) (signer, error) {
	if len(statuses) == 0 || len(statuses) > 3 {
		return signer{}, fmt.Errorf("sqlstore: between 1 and 3 allowed statuses, not %d", len(statuses))
	}
	q, args := qCAMaySign, []any{caID, at.UnixMicro()}
	if slices.Equal(statuses, []openpca.CertificateAuthorityStatus{openpca.CertificateAuthorityStatusExpired}) {
		q = qCAExpired
	} else {
		for i := range 3 { // the query takes three; repeat the last to fill
			args = append(args, statuses[min(i, len(statuses)-1)])
		}
	}
	var ca signer
	err := db.txQueryRow(ctx, tx, q, args...).Scan(&ca.arn, &ca.accountID)
	if errors.Is(err, sql.ErrNoRows) {
		return signer{}, openpca.ErrCAState
	}
	return ca, err
}

// reserveKeyUses takes the next n entries of a CA's log and returns the
// edge of the tree before them, whose size is the first one's number: the
// edge the last append kept, or else (a log of an older version, or one
// changed by hand) the one its entries give.
func (db *DB) reserveKeyUses(ctx context.Context, tx *sql.Tx, caID string, n int) (auditlog.Edge, error) {
	var size int64
	var kept []byte
	if err := db.txQueryRow(ctx, tx, qAppendKeyUses, n, caID).Scan(&size, &kept); err != nil {
		return auditlog.Edge{}, err
	}
	first := size - int64(n)
	if edge, err := auditlog.ParseEdge(kept); err == nil && edge.Size == first {
		return edge, nil
	}
	hashes, err := db.logHashes(ctx, caID, auditlog.Frontier(first), func(q string, args ...any) (*sql.Rows, error) {
		return tx.QueryContext(ctx, db.rewrite(q), args...)
	})
	if err != nil {
		return auditlog.Edge{}, err
	}
	edge := auditlog.Edge{Size: first}
	for _, h := range hashes {
		edge.Hashes = append(edge.Hashes, h)
	}
	return edge, nil
}

// appendKeyUse appends use to its CA's log as the next entry, if the CA
// may sign (see caMaySign).
func (db *DB) appendKeyUse(ctx context.Context, tx *sql.Tx, use *openpca.KeyUse, statuses []openpca.CertificateAuthorityStatus, at time.Time) error {
	if _, err := db.caMaySign(ctx, tx, use.CAID, statuses, at); err != nil {
		return err
	}
	return db.logKeyUse(ctx, tx, use)
}

// logKeyUse appends a key use to its CA's log, once the CA may sign.
func (db *DB) logKeyUse(ctx context.Context, tx *sql.Tx, use *openpca.KeyUse) error {
	edge, err := db.reserveKeyUses(ctx, tx, use.CAID, 1)
	if err != nil {
		return err
	}
	use.Seq = edge.Size
	return db.insertKeyUses(ctx, tx, use.CAID, edge, []*openpca.KeyUse{use}, [][]byte{use.Record})
}

// insertKeyUses inserts a CA's log entries after the tree's edge, already
// reserved, with the hashes that add them to the log's Merkle tree, and
// their records as stored: nil for a record made again from its
// certificate (see storedRecord).
func (db *DB) insertKeyUses(ctx context.Context, tx *sql.Tx, caID string, edge auditlog.Edge, uses []*openpca.KeyUse, stored [][]byte) error {
	records := make([][]byte, len(uses))
	for i, u := range uses {
		records[i] = u.Record
	}
	hashes, next, err := auditlog.Append(edge, records)
	if err != nil {
		return err
	}
	kept, err := next.MarshalBinary()
	if err != nil {
		return err
	}
	if _, err := db.txExec(ctx, tx, qSetTreeEdge, kept, caID); err != nil {
		return err
	}
	rows := make([][]any, len(uses))
	for i, u := range uses {
		serial := u.Serial
		if stored[i] == nil {
			serial = "" // the certificate's row has it
		}
		rows[i] = []any{u.CAID, u.Seq, u.Kind, u.At.UnixMicro(), serial, stored[i], hashes[i]}
	}
	_, err = db.insertRows(ctx, tx, keyUseInserts, rows)
	return err
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
		return db.commits.DoFor(ctx, is.Certificate.CAID, func(ctx context.Context, tx *sql.Tx) error {
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
	// The token's row comes after the CA's and the log's: a batch on
	// another server that holds the log's row (an earlier write of the
	// CA) and then claims the same token would otherwise wait for this
	// one, which waits for the log.
	if _, err := db.txExec(ctx, tx, qLockLog, c.CAID, c.CAID); err != nil {
		return err
	}
	serial, err := db.claimToken(ctx, tx, is.Token, c.Serial)
	if err != nil {
		return err
	}
	if serial != "" {
		*existing, err = scanCertificate(db.txQueryRow(ctx, tx, qFindCertificate, c.CAID, serial))
		return err
	}
	ca, err := db.caMaySign(ctx, tx, c.CAID, is.Statuses, c.IssuedAt)
	if err != nil {
		return err
	}
	edge, err := db.reserveKeyUses(ctx, tx, c.CAID, 1)
	if err != nil {
		return err
	}
	is.Use.Seq = edge.Size
	return db.insertIssuances(ctx, tx, c.CAID, edge, []*openpca.Issuance{is}, ca)
}

// insertIssuances inserts issuances of CA caID, ca, whose log entries
// follow the tree's edge, already reserved: the entries, and the
// certificates' rows and DER. A serial taken already is ErrConflict.
func (db *DB) insertIssuances(ctx context.Context, tx *sql.Tx, caID string, edge auditlog.Edge, issuances []*openpca.Issuance, ca signer) error {
	uses := make([]*openpca.KeyUse, len(issuances))
	stored := make([][]byte, len(issuances))
	certs := make([][]any, len(issuances))
	ders := make([][]any, len(issuances))
	for i, is := range issuances {
		c := is.Certificate
		sum := sha256.Sum256(c.DER)
		uses[i], stored[i] = is.Use, storedRecord(ca, is, sum[:])
		certs[i] = []any{c.CAID, is.Use.Seq, c.Serial, c.Subject, micros(c.NotBefore), micros(c.NotAfter), micros(c.IssuedAt),
			c.TemplateARN, c.RequestedBy, c.RequestID, sum[:], c.Names}
		ders[i] = []any{c.CAID, is.Use.Seq, c.DER}
	}
	if err := db.insertKeyUses(ctx, tx, caID, edge, uses, stored); err != nil {
		return err
	}
	n, err := db.insertRows(ctx, tx, certificateInserts, certs)
	if err != nil {
		return err
	}
	if n < int64(len(certs)) {
		return openpca.ErrConflict // a serial is taken
	}
	_, err = db.insertRows(ctx, tx, derInserts, ders)
	return err
}

// storedRecord is what the log keeps of an issuance's record: nil if the
// certificate's row makes it again byte for byte (as it does unless the
// certificate names another account or ARN than its CA's), else the
// record itself.
func storedRecord(ca signer, is *openpca.Issuance, signedSHA256 []byte) []byte {
	c := *is.Certificate
	c.AccountID, c.ARN = ca.accountID, openpca.CertificateARN(ca.arn, c.Serial)
	if bytes.Equal(openpca.IssueRecord(ca.arn, &c, signedSHA256), is.Use.Record) {
		return nil
	}
	return is.Use.Record
}

// RecordRevocation implements openpca.CertificateStore. The certificate's
// row is locked until the revocation commits, so that of two concurrent
// revocations the second finds the first.
//
// Every write takes a CA's rows in one order: the CA's row, its log's,
// its CRL publication's, then the certificate's or the idempotency
// token's (here, in RecordCRL, in issuances, in UpdateCA), so that two on
// two servers never each wait for the other. PostgreSQL finds such a deadlock after a second and aborts
// one, to be retried, its requests held meanwhile: with the CRL's row
// taken after the log's in one write and before it in another, a
// revocation and a CRL recorded at once did so dozens of times a minute,
// halving revocations; and a group commit that wrote an idempotent
// issuance (the log's row) and then a revocation (the CRL's) beside a
// revocation alone on another server, six times in 20 seconds. A
// revocation of a certificate not found, or revoked already, undoes its
// log entry with its savepoint.
func (db *DB) RecordRevocation(ctx context.Context, r *openpca.Revocation) error {
	err := db.retry(ctx, func() error {
		return db.commits.DoFor(ctx, r.CAID, func(ctx context.Context, tx *sql.Tx) error {
			if _, err := db.caMaySign(ctx, tx, r.CAID, r.Statuses, r.At); err != nil {
				return err
			}
			if err := db.logKeyUse(ctx, tx, r.Use); err != nil {
				return err
			}
			if _, err := db.txExec(ctx, tx, qRevokedWantsCRL, r.CAID); err != nil {
				return err
			}
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

// ExpireIdempotencyTokens implements openpca.CertificateStore.
func (db *DB) ExpireIdempotencyTokens(ctx context.Context, before time.Time, atMost int64) (int64, error) {
	n, err := db.deleteInChunks(ctx, `DELETE FROM idempotency_tokens WHERE (account_id, operation, token) IN
		(SELECT account_id, operation, token FROM idempotency_tokens WHERE created_at < ? LIMIT ?)`, atMost, before.UnixMicro())
	return n, db.wrap("removing idempotency tokens", err)
}

// FindIdempotent implements openpca.CertificateStore.
func (db *DB) FindIdempotent(ctx context.Context, token openpca.IdempotencyToken) (string, error) {
	var result string
	err := db.queryRow(ctx, `SELECT result FROM idempotency_tokens WHERE account_id = ? AND operation = ? AND token = ? AND created_at >= ?`,
		token.AccountID, token.Operation, token.Token, token.Since.UnixMicro()).Scan(&result)
	if errors.Is(err, sql.ErrNoRows) {
		return "", openpca.ErrNotFound
	}
	return result, db.wrap("reading idempotency token", err)
}
