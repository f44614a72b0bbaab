package sqlite_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/sqlite"
)

// TestReadyWhenDatabaseRemoved: the database's file removed (or renamed
// over) under a running server: SQLite goes on writing to the open, now
// nameless file, and every write "commits" where the next start does not
// look. The store must not be ready (README: 503 "when ... a database that
// is gone"), and a certificate must not be acknowledged into a file that
// no longer exists.
func TestReadyWhenDatabaseRemoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "openpca.db")
	db, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ca := newActiveCA(t, db)
	if err := db.Ready(t.Context()); err != nil {
		t.Fatalf("Ready before: %v", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	issueErr := recordIssuance(t.Context(), db, ca, 1)
	time.Sleep(1100 * time.Millisecond) // Ready writes at most once a second
	readyErr := db.Ready(t.Context())
	// Connections the server opens later (the checkpointer's, a reader
	// database/sql opens again) must not make a new, empty database under
	// the name, beside the old file's write-ahead log and shared memory,
	// which they would then share with the old file's connections.
	if _, err := os.Lstat(path); err == nil {
		t.Error("a new database file was made where the removed one was, beside its write-ahead log")
	}
	if readyErr == nil {
		t.Error("Ready with the database's file removed: ready, want not ready")
	}
	if issueErr == nil {
		t.Error("an issuance into the removed database's file was acknowledged; the next start does not find it")
	} else if e, ok := errors.AsType[*openpca.Error](issueErr); !ok || e.Code != openpca.CodeServiceUnavailable {
		t.Errorf("an issuance into the removed database's file: %v, want ServiceUnavailable", issueErr)
	}
}
