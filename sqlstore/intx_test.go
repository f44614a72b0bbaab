package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// TestInTxEndedByItsContext: a transaction whose context ended before its
// commit (database/sql has rolled it back) fails with the context's
// error, not with "transaction has already been committed or rolled
// back", which says nothing of why and was logged as an internal failure.
func TestInTxEndedByItsContext(t *testing.T) {
	w, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	db := &DB{write: w}
	ctx, cancel := context.WithCancel(t.Context())
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		cancel()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if _, err := tx.Exec(`SELECT 1`); errors.Is(err, sql.ErrTxDone) {
				return nil // rolled back, as the commit will find
			}
		}
		t.Fatal("the transaction was not rolled back when its context ended")
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("inTx whose context ended: %v, want context.Canceled", err)
	}
}
