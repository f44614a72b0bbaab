package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/openpca/openpca"
)

// OCSPResponse implements openpca.OCSPStore.
func (db *DB) OCSPResponse(ctx context.Context, caID, serial string) (*openpca.OCSPResponse, error) {
	var r openpca.OCSPResponse
	var revokedAt, signedAt int64
	err := db.queryRow(ctx, `SELECT status, revoked_at, signed_at, der FROM ocsp_responses WHERE ca_id = ? AND serial = ?`, caID, serial).
		Scan(&r.Status, &revokedAt, &signedAt, &r.DER)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, openpca.ErrNotFound
	}
	if err != nil {
		return nil, db.wrap("reading an OCSP response", err)
	}
	if revokedAt != 0 {
		r.RevokedAt = time.UnixMicro(revokedAt).UTC()
	}
	r.SignedAt = time.UnixMicro(signedAt).UTC()
	return &r, nil
}

// RecordOCSP implements openpca.OCSPStore. The response is kept in the
// group commit that logs its signing, which costs it no durable write of
// its own.
func (db *DB) RecordOCSP(ctx context.Context, use *openpca.KeyUse, kept *openpca.OCSPResponse, statuses []openpca.CertificateAuthorityStatus) error {
	err := db.retry(ctx, func() error {
		return db.commits.Do(ctx, func(ctx context.Context, tx *sql.Tx) error {
			if err := db.appendKeyUse(ctx, tx, use, statuses, use.At); err != nil || kept == nil {
				return err
			}
			var revokedAt int64
			if !kept.RevokedAt.IsZero() {
				revokedAt = kept.RevokedAt.UnixMicro()
			}
			_, err := db.txExec(ctx, tx, `INSERT INTO ocsp_responses (ca_id, serial, status, revoked_at, signed_at, der) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (ca_id, serial) DO UPDATE SET status = excluded.status, revoked_at = excluded.revoked_at, signed_at = excluded.signed_at, der = excluded.der`,
				use.CAID, use.Serial, kept.Status, revokedAt, kept.SignedAt.UnixMicro(), kept.DER)
			return err
		})
	})
	return db.wrap("recording an OCSP response's signing", err)
}
