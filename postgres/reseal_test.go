package postgres_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/postgres"
	"github.com/openpca/openpca/sqlstore"
)

// unchanged reseals every value as it was, noting which it was given.
func unchanged(seen map[string]bool) func(*openpca.SealedValue) ([]byte, error) {
	return func(v *openpca.SealedValue) ([]byte, error) {
		seen[v.ID] = true
		return v.Value, nil
	}
}

// awaitLockWait returns once a session of the database db waits
// for a lock.
func awaitLockWait(t *testing.T, db *sql.DB) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		var waiting bool
		if err := db.QueryRowContext(t.Context(), `SELECT EXISTS (SELECT FROM pg_locks WHERE NOT granted)`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no session waited for a lock within a minute")
		}
	}
}

// TestResealBesideBatch: a rotation of the master key beside a group
// commit's batch, which holds one CA's row for share and then asks for
// another's, waits for the batch rather than deadlock with it.
func TestResealBesideBatch(t *testing.T) {
	ctx := t.Context()
	dsn := testenv.NewPostgresDB(t)
	db, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UTC()
	const account = "111122223333"
	if err := db.CreateAccount(ctx, &openpca.Account{ID: account, Name: "a", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	ids := []string{"aaaa", "bbbb"} // the rotation's scan takes aaaa first
	for _, id := range ids {
		ca := &openpca.CA{ID: id, AccountID: account, ARN: openpca.CAARN("us-east-1", account, id), Type: openpca.CertificateAuthorityTypeRoot,
			Status: openpca.CertificateAuthorityStatusActive, CreatedAt: now, LastStateChangeAt: now, KeyStore: "software", KeyHandle: []byte{1}, CSR: []byte{2},
			UsageMode: openpca.CertificateAuthorityUsageModeGeneralPurpose}
		if _, err := db.CreateCA(ctx, ca, openpca.CSRUse(ca, "t", "r"), openpca.IdempotencyToken{Now: now}, 100); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := postgres.OpenDB(dsn, "batch")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	deadlocks := func() (n int64) {
		if err := raw.QueryRowContext(ctx, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := deadlocks()
	batch, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer batch.Rollback()
	share := func(id string) error {
		_, err := batch.ExecContext(ctx, `SELECT 1 FROM certificate_authorities WHERE id = $1 FOR SHARE`, id)
		return err
	}
	if err := share(ids[1]); err != nil {
		t.Fatal(err)
	}
	resealed := make(chan error, 1)
	go func() { resealed <- db.Reseal(context.WithoutCancel(ctx), unchanged(map[string]bool{}), nil) }()
	awaitLockWait(t, raw) // the rotation's, for the batch's CA or for the table
	if err := share(ids[0]); err != nil {
		t.Fatalf("the batch's second CA: %v", err)
	}
	if err := batch.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-resealed; err != nil {
		t.Errorf("the rotation beside the batch: %v", err)
	}
	if n := deadlocks() - before; n != 0 {
		t.Errorf("%d deadlocks between the rotation and the batch", n)
	}
}

// TestResealUnderRepeatableRead: a database whose transactions are
// REPEATABLE READ by default (the role's or the database's setting) still
// has the rotation reseal what a transaction it waited for stored.
func TestResealUnderRepeatableRead(t *testing.T) {
	ctx := t.Context()
	dsn := testenv.NewPostgresDB(t)
	raw, err := postgres.OpenDB(dsn, "writer")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = %L', current_database(), 'repeatable read'); END $$`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.InitSetting(ctx, sqlstore.MasterKeyCheck, []byte("check")); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAccount(ctx, &openpca.Account{ID: "111122223333", Name: "a", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// A writer of a sealed value, as the store's own (checkSealing).
	if raw, err = postgres.OpenDB(dsn, "writer"); err != nil {
		t.Fatal(err)
	}
	writer, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Rollback()
	if _, err := writer.ExecContext(ctx, `SELECT value FROM settings WHERE name = 'master-key-check' FOR SHARE`); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.ExecContext(ctx, `INSERT INTO access_keys (id, account_id, sealed_secret, created_at) VALUES ('LATE', '111122223333', 'sealed', 0)`); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	resealed := make(chan error, 1)
	go func() { resealed <- db.Reseal(context.WithoutCancel(ctx), unchanged(seen), nil) }()
	awaitLockWait(t, raw) // the rotation's, for the writer
	if err := writer.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-resealed; err != nil {
		t.Fatal(err)
	}
	if !seen["LATE"] {
		t.Error("the rotation did not reseal the access key stored by a transaction it waited for")
	}
}
