package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/openpca/openpca"
)

// CreateConsoleSession implements openpca.ConsoleStore.
func (db *DB) CreateConsoleSession(ctx context.Context, s *openpca.ConsoleSession) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := db.txExec(ctx, tx, `DELETE FROM console_sessions WHERE expires_at <= ?`, s.CreatedAt.UnixMicro()); err != nil {
			return err
		}
		if _, err := db.txExec(ctx, tx, `INSERT INTO console_sessions (id_hash, key_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			s.IDHash, s.KeyID, s.CSRF, s.CreatedAt.UnixMicro(), s.ExpiresAt.UnixMicro()); err != nil {
			return err
		}
		// The new session is kept whatever its time says (a clock
		// stepped back, another server's, a tie), and the newest others.
		_, err := db.txExec(ctx, tx, `DELETE FROM console_sessions WHERE key_id = ? AND id_hash <> ? AND id_hash NOT IN
			(SELECT id_hash FROM console_sessions WHERE key_id = ? AND id_hash <> ? ORDER BY created_at DESC, id_hash LIMIT ?)`,
			s.KeyID, s.IDHash, s.KeyID, s.IDHash, openpca.ConsoleSessionsPerKey-1)
		return err
	})
	return db.wrap("creating a console session", err)
}

// FindConsoleSession implements openpca.ConsoleStore.
func (db *DB) FindConsoleSession(ctx context.Context, idHash []byte, now time.Time) (*openpca.ConsoleSession, error) {
	s := &openpca.ConsoleSession{IDHash: idHash}
	var created, expires int64
	err := db.queryRow(ctx, `SELECT key_id, csrf, created_at, expires_at FROM console_sessions WHERE id_hash = ? AND expires_at > ?`,
		idHash, now.UnixMicro()).Scan(&s.KeyID, &s.CSRF, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, openpca.ErrNotFound
	}
	if err != nil {
		return nil, db.wrap("reading a console session", err)
	}
	s.CreatedAt, s.ExpiresAt = time.UnixMicro(created).UTC(), time.UnixMicro(expires).UTC()
	return s, nil
}

// DeleteConsoleSession implements openpca.ConsoleStore.
func (db *DB) DeleteConsoleSession(ctx context.Context, idHash []byte, now time.Time) error {
	_, err := db.exec(ctx, `DELETE FROM console_sessions WHERE id_hash = ? OR expires_at <= ?`, idHash, now.UnixMicro())
	return db.wrap("ending a console session", err)
}

// ExtendConsoleSession implements openpca.ConsoleStore.
func (db *DB) ExtendConsoleSession(ctx context.Context, idHash []byte, expiresAt time.Time) error {
	_, err := db.exec(ctx, `UPDATE console_sessions SET expires_at = ? WHERE id_hash = ? AND expires_at < ?`, expiresAt.UnixMicro(), idHash, expiresAt.UnixMicro())
	return db.wrap("extending a console session", err)
}

// likeEscaper escapes a LIKE pattern's wildcards and its escape character.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// ListCertificates implements openpca.ConsoleStore. Each page walks the
// CA's certificates backwards from its cursor, newest first, and stops
// once it has a page: however many certificates the CA has, a page costs
// what the rows it reads to fill it cost.
func (db *DB) ListCertificates(ctx context.Context, caID string, q openpca.CertificateQuery) ([]*openpca.ListedCertificate, error) {
	where := []string{"c.ca_id = ?"}
	args := []any{caID}
	if q.Serial != "" {
		where, args = append(where, "c.serial = ?"), append(args, q.Serial)
	}
	if q.Text != "" {
		// The pattern is lowered by the database, as the columns are:
		// SQLite lowers ASCII letters alone, and a pattern Go lowered
		// ("ÅRHUS" to "århus") matched no subject with a capital outside
		// ASCII, even one typed exactly as the subject has it.
		pattern := "%" + likeEscaper.Replace(q.Text) + "%"
		where, args = append(where, `(lower(c.subject) LIKE lower(CAST(? AS TEXT)) ESCAPE '\' OR lower(c.names) LIKE lower(CAST(? AS TEXT)) ESCAPE '\')`), append(args, pattern, pattern)
	}
	switch q.Status {
	case "issued":
		where, args = append(where, "c.revoked_at IS NULL AND c.not_after >= ?"), append(args, q.Now.UnixMicro())
	case "revoked":
		where = append(where, "c.revoke_seq IS NOT NULL") // as the partial index of revoked certificates says it
	case "expired":
		where, args = append(where, "c.revoked_at IS NULL AND c.not_after < ?"), append(args, q.Now.UnixMicro())
	}
	if q.Before > 0 {
		where, args = append(where, "c.issue_seq < ?"), append(args, q.Before)
	}
	rows, err := db.query(ctx, `SELECT c.issue_seq, c.serial, a.account_id, a.arn, c.subject, c.names, c.not_before, c.not_after, c.issued_at,
		c.template_arn, c.revoked_at, c.revocation_reason, c.requested_by, c.request_id
		FROM certificates c JOIN certificate_authorities a ON a.id = c.ca_id
		WHERE `+strings.Join(where, " AND ")+` ORDER BY c.issue_seq DESC LIMIT ?`, append(args, q.Limit)...)
	if err != nil {
		return nil, db.wrap("listing certificates", err)
	}
	defer rows.Close()
	var out []*openpca.ListedCertificate
	for rows.Next() {
		l := &openpca.ListedCertificate{Certificate: openpca.Certificate{CAID: caID}}
		var caARN string
		var notBefore, notAfter, issuedAt, revokedAt sql.NullInt64
		if err := rows.Scan(&l.IssueSeq, &l.Serial, &l.AccountID, &caARN, &l.Subject, &l.Names, &notBefore, &notAfter, &issuedAt,
			&l.TemplateARN, &revokedAt, &l.RevocationReason, &l.RequestedBy, &l.RequestID); err != nil {
			return nil, db.wrap("listing certificates", err)
		}
		l.ARN = openpca.CertificateARN(caARN, l.Serial)
		l.NotBefore, l.NotAfter, l.IssuedAt, l.RevokedAt = fromMicros(notBefore), fromMicros(notAfter), fromMicros(issuedAt), fromMicros(revokedAt)
		out = append(out, l)
	}
	return out, db.wrap("listing certificates", rows.Err())
}

// microsPerDay turns microsecond times into day numbers.
const microsPerDay = int64(24 * time.Hour / time.Microsecond)

// ExpiryCounts implements openpca.ConsoleStore.
func (db *DB) ExpiryCounts(ctx context.Context, caID string, from, to time.Time) ([]openpca.DayCount, error) {
	return db.dayCounts(ctx, "counting expiries", `SELECT not_after / ?, COUNT(*) FROM certificates
		WHERE ca_id = ? AND revoked_at IS NULL AND not_after >= ? AND not_after < ? GROUP BY 1 ORDER BY 1`,
		microsPerDay, caID, from.UnixMicro(), to.UnixMicro())
}

// ActivityCounts implements openpca.ConsoleStore.
func (db *DB) ActivityCounts(ctx context.Context, caID string, since time.Time) (issued, revoked []openpca.DayCount, err error) {
	q := `SELECT at / ?, COUNT(*) FROM key_uses WHERE ca_id = ? AND kind = ? AND at >= ? GROUP BY 1 ORDER BY 1`
	if issued, err = db.dayCounts(ctx, "counting issuances", q, microsPerDay, caID, openpca.KeyUseIssue, since.UnixMicro()); err != nil {
		return nil, nil, err
	}
	revoked, err = db.dayCounts(ctx, "counting revocations", q, microsPerDay, caID, openpca.KeyUseRevoke, since.UnixMicro())
	return issued, revoked, err
}

func (db *DB) dayCounts(ctx context.Context, what, q string, args ...any) ([]openpca.DayCount, error) {
	rows, err := db.query(ctx, q, args...)
	if err != nil {
		return nil, db.wrap(what, err)
	}
	defer rows.Close()
	var out []openpca.DayCount
	for rows.Next() {
		var day int64
		var n int
		if err := rows.Scan(&day, &n); err != nil {
			return nil, db.wrap(what, err)
		}
		out = append(out, openpca.DayCount{Day: time.UnixMicro(day * microsPerDay).UTC(), Count: n})
	}
	return out, db.wrap(what, rows.Err())
}
