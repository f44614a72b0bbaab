package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/storetest"
	"github.com/openpca/openpca/sqlite"
	"github.com/openpca/openpca/sqlstore"
)

func open(t testing.TB, path string) *sqlstore.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
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
	if got, err := db.SchemaVersion(t.Context()); err != nil || got < 4 {
		t.Errorf("schema version %d (%v) after reopening", got, err)
	}
	if mode := sqlite.JournalMode(t.Context(), path); mode != "wal" {
		t.Errorf("journal mode %q, want wal", mode)
	}
}

// TestPathWithURICharacters opens databases in a folder whose name holds
// what a URI gives a meaning to: each is made in that folder, not beside
// it, and the store keeps the cases of its contract that open connections
// of each kind there: writes, reads, and the scanner's (a request's access
// key and CA, an audit report's log). The whole contract, run here too,
// took 40 s of the race run for nothing the path changes.
func TestPathWithURICharacters(t *testing.T) {
	storetest.Run(t, func(t *testing.T) openpca.Store {
		parent := t.TempDir()
		dir := filepath.Join(parent, "a?b#c%41 d")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "test.db")
		db := open(t, path)
		if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
			t.Fatalf("the database is not at %s: %v", path, err)
		}
		if entries, _ := os.ReadDir(parent); len(entries) != 1 {
			t.Fatalf("files beside the database's folder: %v", entries)
		}
		return db
	}, "CreateFind", "AccountsAndKeys", "Issue", "Revoke", "AuditEntries", "CRLPublication")
}

// TestRelativePath opens a database by a path relative to the working
// folder, as `openpca serve --data-dir data` does.
func TestRelativePath(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.Mkdir("data", 0o700); err != nil {
		t.Fatal(err)
	}
	db := open(t, filepath.Join("data", "test.db"))
	defer db.Close()
	ca := newActiveCA(t, db)
	if err := recordIssuance(t.Context(), db, ca, 1); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := db.LogRecords(t.Context(), ca.ID, 2, func([]byte) error { rows++; return nil }); err != nil || rows != 2 {
		t.Fatalf("LogRecords read %d records, %v; want 2", rows, err)
	}
	if fi, err := os.Stat(filepath.Join("data", "test.db")); err != nil || fi.Size() == 0 {
		t.Fatalf("the database is not in data: %v", err)
	}
}

// TestReadyNeedsFreeSpace: the store is not ready while its disk has less
// free space than it needs, though a small write still fits (a full disk
// let a readiness write through while issuances failed), and says how
// much it needs.
func TestReadyNeedsFreeSpace(t *testing.T) {
	for _, tc := range []struct {
		name  string
		min   int64
		ready bool
	}{{"the default", 0, true}, {"more than any disk has", 1 << 62, false}} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "test.db"), sqlite.Options{MinFreeSpace: tc.min})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			err = db.Ready(t.Context())
			if (err == nil) != tc.ready {
				t.Fatalf("Ready: %v, want ready %v", err, tc.ready)
			}
			if err != nil && !strings.Contains(err.Error(), "MiB free") {
				t.Errorf("Ready does not say what it needs: %v", err)
			}
		})
	}
}

// TestReadyNotFailedByItsCaller: a readiness check whose caller gave up
// is not kept as the store's answer for the others who ask.
func TestReadyNotFailedByItsCaller(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "test.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	if err := db.Ready(gone); err == nil {
		t.Fatal("Ready for a caller that gave up: nil, want its context's error")
	}
	if err := db.Ready(t.Context()); err != nil {
		t.Errorf("Ready right after a caller gave up: %v, want ready", err)
	}
}

// TestSchemaVersions: a database of a later version is refused, whatever
// the opener; one of an earlier version is brought up to date
// (sqlstore.Migrate), refused unchanged by a command a server of that
// version may run beside (RefuseEarlier), or opened as it is for a backup
// (AsIs); a database without a schema is made one only by Migrate.
func TestSchemaVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	db := open(t, path)
	latest, err := db.SchemaVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	sqlDB := func(path string) *sql.DB {
		t.Helper()
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		return raw
	}
	raw := sqlDB(path)
	version := func() (v int) {
		t.Helper()
		raw.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&v)
		return v
	}
	opens := func(schema sqlstore.Schema, want string) {
		t.Helper()
		db, err := sqlite.Open(t.Context(), path, sqlite.Options{Schema: schema})
		if db != nil {
			db.Close()
		}
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("schema %d on the database at %d of %d: %v, want %q", schema, version(), latest, err, want)
		}
	}
	if _, err := raw.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, latest+1); err != nil {
		t.Fatal(err)
	}
	for _, schema := range []sqlstore.Schema{sqlstore.Migrate, sqlstore.RefuseEarlier, sqlstore.AsIs} {
		opens(schema, "later version")
	}
	if _, err := raw.Exec(`DELETE FROM schema_migrations WHERE version >= ?`, latest); err != nil {
		t.Fatal(err)
	}
	opens(sqlstore.RefuseEarlier, "earlier version")
	opens(sqlstore.AsIs, "")
	if v := version(); v != latest-1 {
		t.Errorf("the database's schema went from %d to %d", latest-1, v)
	}
	// As it was before migration 16, without a column the hot queries
	// name: a backup still opens it.
	for _, q := range []string{`ALTER TABLE key_use_logs DROP COLUMN tree_edge`, `DELETE FROM schema_migrations WHERE version >= 16`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	opens(sqlstore.AsIs, "")
	empty := filepath.Join(t.TempDir(), "empty.db")
	sqlDB(empty).Exec(`CREATE TABLE other (x)`)
	path = empty
	opens(sqlstore.RefuseEarlier, "no OpenPCA schema")
	opens(sqlstore.AsIs, "no OpenPCA schema")
	var n int
	sqlDB(empty).QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE name = 'schema_migrations'`).Scan(&n)
	if n != 0 {
		t.Error("a command made a schema in a database without one")
	}
}

// TestNewDatabaseFileModes: a new database, its write-ahead log and its
// shared memory are readable by their owner alone, whatever the umask
// (they hold the CAs' sealed keys); files of an older version, looser,
// are tightened. The servers of most tests start on a database copied
// in (internal/testenv), and check it no more.
func TestNewDatabaseFileModes(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0))
	for _, tc := range []struct {
		name  string
		loose bool // the files are there, 0644
	}{
		{"a new database", false},
		{"an older version's", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "openpca.db")
			if tc.loose {
				open(t, path).Close()
				if err := os.Chmod(path, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			db := open(t, path)
			defer db.Close()
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: %v, %v; want -rw-------", filepath.Base(p), fi.Mode(), err)
				}
			}
		})
	}
}
