package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/storetest"
	"github.com/openpca/openpca/sqlite"
)

func open(t testing.TB, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) openpca.Store {
		return open(t, filepath.Join(t.TempDir(), "test.db"))
	})
}

func TestReopenKeepsDataAndMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	db := open(t, path)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, path)
	defer db.Close()
	if got := db.SchemaVersion(t.Context()); got < 1 {
		t.Errorf("schema version %d after reopening", got)
	}
	if mode := db.JournalMode(t.Context()); mode != "wal" {
		t.Errorf("journal mode %q, want wal", mode)
	}
}
