package sqlite_test

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/sqlite"
)

// TestSecretsLeaveTheFiles: a CA's sealed key, once resealed with another
// master key, or purged with its CA, is in neither the database's file
// nor its write-ahead log, where anyone with a copy of them and the old
// master key would open it; nor, once forgotten, is the audit key's word
// that a CA's key may be destroyed, which anyone who can write the
// database could put back.
func TestSecretsLeaveTheFiles(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "openpca.db")
	db, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sealed := func() []byte {
		b := make([]byte, 300) // as long as a sealed P-384 key
		rand.Read(b)
		return b
	}
	newCA := func() (*openpca.CA, []byte) {
		now := time.Now()
		key := sealed()
		ca := &openpca.CA{ID: uuid.NewString(), AccountID: "111122223333", Status: openpca.CertificateAuthorityStatusActive,
			CreatedAt: now, LastStateChangeAt: now, NotAfter: now.AddDate(1, 0, 0), KeyStore: "software", KeyHandle: key, CSR: []byte{2}}
		ca.ARN = openpca.CAARN("us-east-1", ca.AccountID, ca.ID)
		if _, err := db.CreateCA(ctx, ca, openpca.CSRUse(ca, "b", "r"), openpca.IdempotencyToken{Now: now}, 10); err != nil {
			t.Fatal(err)
		}
		return ca, key
	}
	inFiles := func(secret []byte) string {
		for _, f := range []string{path, path + "-wal"} {
			if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, secret) {
				return filepath.Base(f)
			}
		}
		return ""
	}
	// The log is emptied in the background, soon.
	left := func(secret []byte) string {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if inFiles(secret) == "" {
				return ""
			}
		}
		return inFiles(secret)
	}

	resealed, oldKey := newCA()
	if err := db.Reseal(ctx, func(v *openpca.SealedValue) ([]byte, error) {
		if v.Kind == openpca.SealedCAKey && v.ID == resealed.ARN {
			return sealed(), nil
		}
		return v.Value, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	if f := left(oldKey); f != "" {
		t.Errorf("a CA's key, sealed with the old master key, is in %s after the reseal", f)
	}

	// The audit key's word that a key in a token may be destroyed, once
	// forgotten: the record's of a key made, as its CA is stored; a
	// deleted CA's, as it is restored.
	made := time.Now()
	inToken := &openpca.CA{ID: uuid.NewString(), AccountID: "111122223333", Status: openpca.CertificateAuthorityStatusActive,
		CreatedAt: made, LastStateChangeAt: made, NotAfter: made.AddDate(1, 0, 0), KeyStore: "pkcs11", CSR: []byte{2}}
	inToken.ARN = openpca.CAARN("us-east-1", inToken.AccountID, inToken.ID)
	inToken.KeyHandle = []byte(inToken.ID)
	record := *inToken
	record.Destruction = sealed()
	if err := db.RecordKeyMade(ctx, &record, made); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateCA(ctx, inToken, openpca.CSRUse(inToken, "b", "r"), openpca.IdempotencyToken{Now: made}, 10); err != nil {
		t.Fatal(err)
	}
	if f := left(record.Destruction); f != "" {
		t.Errorf("the word that a key made may be destroyed is in %s once its CA is stored", f)
	}
	word := sealed()
	inToken.Status, inToken.StatusBeforeDeletion, inToken.RestorableUntil, inToken.Destruction = openpca.CertificateAuthorityStatusDeleted, openpca.CertificateAuthorityStatusActive, made.Add(time.Hour), word
	if err := db.UpdateCA(ctx, inToken, nil); err != nil {
		t.Fatal(err)
	}
	inToken.Status, inToken.StatusBeforeDeletion, inToken.RestorableUntil, inToken.Destruction = openpca.CertificateAuthorityStatusActive, "", time.Time{}, nil
	if err := db.UpdateCA(ctx, inToken, nil); err != nil {
		t.Fatal(err)
	}
	if f := left(word); f != "" {
		t.Errorf("a deleted CA's word that its key may be destroyed is in %s once it is restored", f)
	}

	purged, purgedKey := newCA()
	purged.Status, purged.StatusBeforeDeletion, purged.RestorableUntil = openpca.CertificateAuthorityStatusDeleted, openpca.CertificateAuthorityStatusActive, time.Now().Add(-time.Hour)
	if err := db.UpdateCA(ctx, purged, nil); err != nil {
		t.Fatal(err)
	}
	// A reader on the log meanwhile (a listing, a backup) holds the log's
	// emptying off until it is done.
	reader, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	tx, err := reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM certificate_authorities`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if gone, err := db.PurgeCAs(ctx, time.Now()); err != nil || len(gone) != 1 {
		t.Fatalf("purged %v, %v; want the deleted CA", gone, err)
	}
	time.Sleep(1500 * time.Millisecond)
	tx.Rollback()
	if f := left(purgedKey); f != "" {
		t.Errorf("a purged CA's sealed key is in %s", f)
	}
}
