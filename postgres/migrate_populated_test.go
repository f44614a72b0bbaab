package postgres_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openpca/openpca/internal/storetest"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/postgres"
)

// TestEveryMigrationOnPopulatedDatabase builds, for every migration N, a
// database at N-1 with two rows in each of its tables, and opens it: every
// migration after N-1 applies to a database with data in it, and leaves
// the schema a new database has.
func TestEveryMigrationOnPopulatedDatabase(t *testing.T) {
	names, _ := filepath.Glob("migrations/*.sql")
	for n := 1; n < len(names); n++ {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			dsn := testenv.NewPostgresDB(t)
			raw := oldDatabase(t, dsn, n)
			populatePG(t, raw)
			db, err := postgres.Open(t.Context(), dsn, postgres.Options{Bind: storetest.Unopened})
			if err != nil {
				t.Fatalf("migrating a populated database at %d: %v", n, err)
			}
			db.Close()
			// As a new database of this version has it, for a restore to
			// take.
			if diffs, err := postgres.SchemaDiffs(t.Context(), dsn, "restore"); err != nil || len(diffs) > 0 {
				t.Errorf("the schema migrated from %d: %v, %q", n, err, diffs)
			}
		})
	}
}

func populatePG(t *testing.T, raw *sql.DB) {
	t.Helper()
	rows, err := raw.Query(`SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name <> 'schema_migrations'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		rows.Scan(&name)
		tables = append(tables, name)
	}
	rows.Close()
	for _, table := range tables {
		cols, err := raw.Query(`SELECT column_name, data_type, is_identity FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, table)
		if err != nil {
			t.Fatal(err)
		}
		var names, types []string
		for cols.Next() {
			var name, typ, ident string
			cols.Scan(&name, &typ, &ident)
			if ident == "YES" {
				continue
			}
			names, types = append(names, name), append(types, typ)
		}
		cols.Close()
		for i := range 2 {
			var args []any
			var marks []string
			for j, name := range names {
				switch {
				case name == "config" || name == "revocation":
					args = append(args, []byte("{}"))
				case name == "policies" && table == "access_keys":
					args = append(args, "[]")
				case name == "tags":
					args = append(args, []byte("[]"))
				case strings.Contains(types[j], "int"):
					args = append(args, i)
				case types[j] == "boolean":
					args = append(args, i == 1)
				case types[j] == "bytea":
					args = append(args, []byte{byte(i + 1)})
				default:
					args = append(args, fmt.Sprintf("v%d", i))
				}
				marks = append(marks, fmt.Sprintf("$%d", j+1))
			}
			q := `INSERT INTO "` + table + `" ("` + strings.Join(names, `", "`) + `") VALUES (` + strings.Join(marks, ", ") + `)`
			if _, err := raw.Exec(q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
}
