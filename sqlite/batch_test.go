package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/openpca/openpca/internal/storetest"
)

// TestLargeBatch holds the database's write lock from another connection
// while issuances queue up, so that they commit together in a batch of
// more rows than one INSERT takes: the batch commits whole (a batch that
// fails runs again one issuance per transaction, which the commit counts
// would show), every certificate is stored, and the log's tree holds.
func TestLargeBatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "batch.db")
	db := open(t, path)
	defer db.Close()
	ca := newActiveCA(t, db)
	ctx := context.Background()

	other, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	before := db.CommitStats()
	const n = 100
	errs := make(chan error, n)
	for i := range int64(n) {
		go func() { errs <- recordIssuance(ctx, db, ca, i+1) }()
	}
	time.Sleep(500 * time.Millisecond) // the issuances queue behind the lock
	if _, err := lock.ExecContext(ctx, `COMMIT`); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	after := db.CommitStats()
	writes, batches := after.Writes-before.Writes, after.Batches-before.Batches
	if writes != n || writes/batches <= 16 {
		t.Fatalf("%d writes in %d transactions: batches of more than 16 should commit whole", writes, batches)
	}
	for i := range int64(n) {
		if _, err := db.FindCertificate(ctx, ca.ID, serial(i+1)); err != nil {
			t.Errorf("certificate %d: %v", i+1, err)
		}
	}
	storetest.CheckTree(t, db, ca)
}
