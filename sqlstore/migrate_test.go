package sqlstore_test

import (
	"path/filepath"
	"testing"

	"github.com/openpca/openpca/sqlite"
	"github.com/openpca/openpca/sqlstore"
)

// TestMigratePreparesHotQueries: a database opened as it is, then
// migrated, has its hot queries prepared, as one opened to migrate has:
// a restarted server ran every issuance's statements unprepared.
func TestMigratePreparesHotQueries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "openpca.db")
	db, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := sqlstore.HotPrepared(db)
	db.Close()
	if want == 0 {
		t.Fatal("a database opened to migrate has no hot query prepared")
	}
	db, err = sqlite.Open(t.Context(), path, sqlite.Options{Schema: sqlstore.AsIs})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := sqlstore.HotPrepared(db); got != want {
		t.Errorf("%d hot queries prepared after Migrate, want %d", got, want)
	}
}
