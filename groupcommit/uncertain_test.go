package groupcommit_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	sqlitedriver "modernc.org/sqlite"

	"github.com/openpca/openpca/groupcommit"
)

// TestCommitFailureKeepsCause: a batch whose COMMIT fails is not written
// again (ErrUncertain), and each caller's error still holds the driver's
// own, which the store classifies by (SQLite's SQLITE_FULL is a disk
// full, answered ServiceUnavailableException). A deferred foreign key
// makes SQLite's COMMIT fail for one write of a batch: a failure that is
// certain (SQLite answered, and rolled back) and the write's own, which
// its batch-mates now share.
func TestCommitFailureKeepsCause(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "fk.db")+"?_pragma=journal_mode(WAL)&_pragma=foreign_keys(ON)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	for _, q := range []string{
		`CREATE TABLE p (k INTEGER PRIMARY KEY)`,
		`CREATE TABLE c (k INTEGER PRIMARY KEY, p INTEGER REFERENCES p(k) DEFERRABLE INITIALLY DEFERRED)`,
		`INSERT INTO p VALUES (1)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	c, err := groupcommit.New(context.Background(), db, 64, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	child := func(k, parent int) groupcommit.Write {
		return func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO c VALUES (?, ?)`, k, parent)
			return err
		}
	}
	const n = 32
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		parent := 1
		if i == 0 {
			parent = 99 // no such parent: COMMIT fails
		}
		wg.Go(func() { errs[i] = c.Do(t.Context(), child(i+1, parent)) })
	}
	wg.Wait()
	failed := 0
	for i, err := range errs {
		if err == nil {
			continue
		}
		failed++
		if !errors.Is(err, groupcommit.ErrUncertain) {
			t.Errorf("write %d: %v, want ErrUncertain", i, err)
		}
		if _, ok := errors.AsType[*sqlitedriver.Error](err); !ok {
			t.Errorf("write %d: %v does not hold SQLite's error", i, err)
		}
	}
	t.Logf("%d writes of %d failed with the one whose foreign key COMMIT refused", failed, n)
}
