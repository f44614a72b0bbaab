package sqlite

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/openpca/openpca/internal/sqliteuri"
)

// TestFull: a write SQLite refuses for want of space (SQLITE_FULL, here
// past max_page_count) is taken for a full disk, and another failure that
// says so in words is not.
func TestFull(t *testing.T) {
	db, err := sql.Open("sqlite", sqliteuri.File(filepath.Join(t.TempDir(), "full.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range []string{`CREATE TABLE t (b BLOB)`, `PRAGMA max_page_count = 4`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	_, err = db.Exec(`INSERT INTO t VALUES (zeroblob(1000000))`)
	if !full(err) {
		t.Fatalf("a write past max_page_count: %v, not taken for a full disk", err)
	}
	if full(errors.New("database or disk is full")) {
		t.Error("an error that only says the disk is full is taken for one")
	}
}
