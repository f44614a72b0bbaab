package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
)

// entrySelect reads log entries with what makes an entry's record again
// when the store keeps none (an issuance's): its certificate's row.
const entrySelect = `SELECT k.seq, k.kind, k.at, k.serial, k.record, c.serial, c.subject, c.not_before, c.not_after, c.issued_at,
	c.template_arn, c.requested_by, c.request_id, c.signed_sha256
	FROM key_uses k LEFT JOIN certificates c ON c.ca_id = k.ca_id AND c.issue_seq = k.seq`

// entry reads the log entries of one CA, whose record says ca of it.
type entry struct {
	ca   signer
	caID string
	use  openpca.KeyUse
}

// scan reads the next entry into e.use, making its record again if the
// store keeps none.
func (e *entry) scan(rows *sql.Rows) error {
	var (
		at                                                int64
		serial, subject, template, requestedBy, requestID sql.NullString
		notBefore, notAfter, issuedAt                     sql.NullInt64
		signedSHA256                                      []byte
	)
	e.use = openpca.KeyUse{CAID: e.caID}
	if err := rows.Scan(&e.use.Seq, &e.use.Kind, &at, &e.use.Serial, &e.use.Record, &serial, &subject, &notBefore, &notAfter, &issuedAt,
		&template, &requestedBy, &requestID, &signedSHA256); err != nil {
		return err
	}
	e.use.At = time.UnixMicro(at).UTC()
	if e.use.Record != nil {
		return nil
	}
	if !serial.Valid || signedSHA256 == nil {
		return fmt.Errorf("sqlstore: log entry %d of CA %s has no record, and no certificate to make it again", e.use.Seq, e.caID)
	}
	c := openpca.Certificate{CAID: e.caID, AccountID: e.ca.accountID, Serial: serial.String, ARN: openpca.CertificateARN(e.ca.arn, serial.String),
		Subject: subject.String, NotBefore: fromMicros(notBefore), NotAfter: fromMicros(notAfter), IssuedAt: fromMicros(issuedAt),
		TemplateARN: template.String, RequestedBy: requestedBy.String, RequestID: requestID.String}
	e.use.Serial, e.use.Record = c.Serial, openpca.IssueRecord(e.ca.arn, &c, signedSHA256)
	return nil
}

// signerOf returns what the log's records say of CA caID.
func (db *DB) signerOf(ctx context.Context, caID string) (signer, error) {
	var ca signer
	err := db.queryRow(ctx, `SELECT arn, account_id FROM certificate_authorities WHERE id = ?`, caID).Scan(&ca.arn, &ca.accountID)
	if errors.Is(err, sql.ErrNoRows) {
		return signer{}, openpca.ErrNotFound
	}
	return ca, err
}

// KeyUses implements openpca.CertificateStore.
func (db *DB) KeyUses(ctx context.Context, caID string, from int64, limit int) ([]*openpca.KeyUse, error) {
	return db.keyUses(ctx, caID, ` AND k.seq >= ? ORDER BY k.seq LIMIT ?`, from, limit)
}

// maxCRLsASecond bounds the entries CRLKeyUses reads: a CA signs a CRL a
// few times a day, and not twice in a second but by a clock set back.
const maxCRLsASecond = 16

// CRLKeyUses implements openpca.CertificateStore. The kind is written out,
// not a parameter, and the order is the index's, so that the index of
// CRLs' entries (key_uses_crls) serves the query: SQLite otherwise read
// every entry of the CA in the order of seq.
func (db *DB) CRLKeyUses(ctx context.Context, caID string, thisUpdate time.Time) ([]*openpca.KeyUse, error) {
	return db.keyUses(ctx, caID, ` AND k.kind = '`+openpca.KeyUseCRL+`' AND k.at >= ? AND k.at < ? ORDER BY k.at, k.seq LIMIT ?`,
		thisUpdate.UnixMicro(), thisUpdate.Add(time.Second).UnixMicro(), maxCRLsASecond)
}

// keyUses reads the entries of CA caID's log that the rest of the query,
// where, and its args select.
func (db *DB) keyUses(ctx context.Context, caID, where string, args ...any) ([]*openpca.KeyUse, error) {
	ca, err := db.signerOf(ctx, caID)
	if errors.Is(err, openpca.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, db.wrap("reading key uses", err)
	}
	rows, err := db.query(ctx, entrySelect+` WHERE k.ca_id = ?`+where, append([]any{caID}, args...)...)
	if err != nil {
		return nil, db.wrap("reading key uses", err)
	}
	defer rows.Close()
	var uses []*openpca.KeyUse
	e := entry{ca: ca, caID: caID}
	for rows.Next() {
		if err := e.scan(rows); err != nil {
			return nil, db.wrap("reading key uses", err)
		}
		u := e.use
		uses = append(uses, &u)
	}
	return uses, db.wrap("reading key uses", rows.Err())
}

// CertificateKeyUses implements openpca.CertificateStore.
func (db *DB) CertificateKeyUses(ctx context.Context, caID, serial string) ([]*openpca.KeyUse, error) {
	var issueSeq int64
	var revokeSeq sql.NullInt64
	err := db.queryRow(ctx, `SELECT issue_seq, revoke_seq FROM certificates WHERE ca_id = ? AND serial = ?`, caID, serial).Scan(&issueSeq, &revokeSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, openpca.ErrNotFound
	}
	if err != nil {
		return nil, db.wrap("reading a certificate's key uses", err)
	}
	var uses []*openpca.KeyUse
	for _, seq := range []sql.NullInt64{{Int64: issueSeq, Valid: true}, revokeSeq} {
		if !seq.Valid {
			continue
		}
		u, err := db.KeyUses(ctx, caID, seq.Int64, 1)
		if err != nil {
			return nil, err
		}
		if len(u) != 1 || u[0].Seq != seq.Int64 {
			return nil, &openpca.LogIntegrityError{CAID: caID, Entry: seq.Int64, Problem: "is missing"}
		}
		uses = append(uses, u[0])
	}
	return uses, nil
}

// LogSize implements openpca.CertificateStore.
func (db *DB) LogSize(ctx context.Context, caID string) (int64, error) {
	var size int64
	err := db.queryRow(ctx, `SELECT size FROM key_use_logs WHERE ca_id = ?`, caID).Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, openpca.ErrNotFound
	}
	return size, db.wrap("reading log size", err)
}

// LogHashes implements openpca.CertificateStore.
func (db *DB) LogHashes(ctx context.Context, caID string, indexes []int64) ([][32]byte, error) {
	hashes, err := db.logHashes(ctx, caID, indexes, func(q string, args ...any) (*sql.Rows, error) { return db.query(ctx, q, args...) })
	return hashes, db.wrap("reading log hashes", err)
}

// logHashesChunk bounds the entries one query reads hashes from.
const logHashesChunk = 256

// logHashes reads the stored hashes at indexes of a CA's log tree from
// the entries that stored them (see auditlog.Producer), with query.
func (db *DB) logHashes(ctx context.Context, caID string, indexes []int64, query func(q string, args ...any) (*sql.Rows, error)) ([][32]byte, error) {
	seqs := make([]int64, len(indexes))
	for i, index := range indexes {
		seqs[i], _ = auditlog.Producer(index)
	}
	wanted := slices.Clone(seqs)
	slices.Sort(wanted)
	wanted = slices.Compact(wanted)
	stored := make(map[int64][]byte, len(wanted))
	for chunk := range slices.Chunk(wanted, logHashesChunk) {
		args := []any{caID}
		for _, seq := range chunk {
			args = append(args, seq)
		}
		rows, err := query(`SELECT seq, hashes FROM key_uses WHERE ca_id = ? AND seq IN (?`+strings.Repeat(", ?", len(chunk)-1)+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var seq int64
			var hashes []byte
			if err := rows.Scan(&seq, &hashes); err != nil {
				rows.Close()
				return nil, err
			}
			stored[seq] = hashes
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	out := make([][32]byte, len(indexes))
	for i, index := range indexes {
		hashes, ok := stored[seqs[i]]
		if !ok {
			return nil, &openpca.LogIntegrityError{CAID: caID, Entry: seqs[i], Problem: "is missing"}
		}
		_, pos := auditlog.Producer(index)
		h, err := auditlog.HashAt(hashes, pos)
		if err != nil {
			return nil, &openpca.LogIntegrityError{CAID: caID, Entry: seqs[i], Problem: fmt.Sprintf("has hashes the log cannot read: %v", err)}
		}
		out[i] = h
	}
	return out, nil
}
