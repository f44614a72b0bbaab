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

// KeepOCSPResponse implements openpca.OCSPStore.
func (db *DB) KeepOCSPResponse(ctx context.Context, caID, serial string, r *openpca.OCSPResponse) error {
	var revokedAt int64
	if !r.RevokedAt.IsZero() {
		revokedAt = r.RevokedAt.UnixMicro()
	}
	_, err := db.exec(ctx, `INSERT INTO ocsp_responses (ca_id, serial, status, revoked_at, signed_at, der) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (ca_id, serial) DO UPDATE SET status = excluded.status, revoked_at = excluded.revoked_at, signed_at = excluded.signed_at, der = excluded.der`,
		caID, serial, r.Status, revokedAt, r.SignedAt.UnixMicro(), r.DER)
	return db.wrap("keeping an OCSP response", err)
}
