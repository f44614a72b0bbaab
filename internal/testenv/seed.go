package testenv

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/openpca/openpca/sqlite"
	"github.com/openpca/openpca/sqlstore"
)

// migrated is a SQLite database with this version's schema and nothing
// else, made once per test binary: migrating a new database parses every
// migration, about 0.8 s of CPU under the race detector (35 ms without),
// and most tests start a server on a new one. Its bytes are copied into
// each new data folder, which the server then opens as one of this
// version, as it would after its first start. The tests of the first
// start itself (the migrations, the new files' modes, the refusal of a
// restore cut short, which the database's absence shows) make their own
// in sqlite's and app's tests, without Start.
var migrated = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "openpca-schema-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "openpca.db")
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{Schema: sqlstore.Migrate})
	if err != nil {
		return nil, err
	}
	if err := db.Close(); err != nil {
		return nil, err
	}
	// The last connection closed checkpoints the write-ahead log into
	// the file and removes it: the file alone is the database.
	if _, err := os.Stat(path + "-wal"); !errors.Is(err, fs.ErrNotExist) {
		return nil, errors.Join(errors.New("the migrated database kept its write-ahead log"), err)
	}
	return os.ReadFile(path)
})

// seedDatabase puts a migrated database into the data folder dir, unless
// it holds one, or is not there yet.
func seedDatabase(t testing.TB, dir string) {
	t.Helper()
	b, err := migrated()
	if err != nil {
		t.Fatalf("making a migrated database: %v", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "openpca.db"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) || errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err == nil {
		_, err = f.Write(b)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		t.Fatalf("seeding the data folder with a migrated database: %v", err)
	}
}
