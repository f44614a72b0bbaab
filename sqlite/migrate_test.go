package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"log/slog"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/openpca/openpca"
)

// TestReadOnlyKeysMigrate opens a database of the version before key
// policies, with a read-only key and a key with every right: after the
// migration, the first has the managed ReadOnly policy, which allows what
// read-only did, and the other none, which allows everything.
func TestReadOnlyKeysMigrate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	names, _ := fs.Glob(migrations, "migrations/*.sql")
	sort.Strings(names)
	if _, err := raw.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i, name := range names[:9] { // up to 0009, the last without key policies
		body, _ := fs.ReadFile(migrations, name)
		if _, err := raw.Exec(string(body)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := raw.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, i+1); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO accounts (id, name, created_at) VALUES ('111122223333', 'a', 0)`,
		`INSERT INTO access_keys (id, account_id, sealed_secret, created_at, read_only) VALUES ('OPCAREADER', '111122223333', x'00', 0, TRUE)`,
		`INSERT INTO access_keys (id, account_id, sealed_secret, created_at, read_only) VALUES ('OPCAWRITER', '111122223333', x'00', 0, FALSE)`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()

	db, err := Open(ctx, path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reader, err := db.FindAccessKey(ctx, "OPCAREADER")
	if err != nil || !reflect.DeepEqual(reader.Policies, []openpca.KeyPolicy{{Name: "ReadOnly", Managed: true}}) {
		t.Errorf("the read-only key: %+v, %v", reader, err)
	}
	if writer, err := db.FindAccessKey(ctx, "OPCAWRITER"); err != nil || writer.Policies != nil {
		t.Errorf("the key with every right: %+v, %v", writer, err)
	}
}
