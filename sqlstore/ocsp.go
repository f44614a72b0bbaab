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
	r := openpca.OCSPResponse{CAID: caID, Serial: serial}
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
	var caID string
	switch {
	case use != nil:
		caID = use.CAID
	case kept != nil:
		caID = kept.CAID
	}
	err := db.retry(ctx, func() error {
		return db.commits.DoFor(ctx, caID, func(ctx context.Context, tx *sql.Tx) error {
			if use != nil {
				if err := db.appendKeyUse(ctx, tx, use, statuses, use.At); err != nil {
					return err
				}
			}
			if kept == nil {
				return nil
			}
			var revokedAt int64
			if !kept.RevokedAt.IsZero() {
				revokedAt = kept.RevokedAt.UnixMicro()
			}
			// Not for a CA purged meanwhile: nothing would remove it.
			_, err := db.txExec(ctx, tx, `INSERT INTO ocsp_responses (ca_id, serial, status, revoked_at, signed_at, der)
				SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM certificate_authorities WHERE id = ?)
				ON CONFLICT (ca_id, serial) DO UPDATE SET status = excluded.status, revoked_at = excluded.revoked_at, signed_at = excluded.signed_at, der = excluded.der`,
				kept.CAID, kept.Serial, kept.Status, revokedAt, kept.SignedAt.UnixMicro(), kept.DER, kept.CAID)
			return err
		})
	})
	return db.wrap("recording an OCSP response's signing", err)
}
