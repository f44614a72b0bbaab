package sqlite

import (
	"database/sql"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openpca/openpca/internal/race"
	"github.com/openpca/openpca/internal/storetest"
)

// TestEveryMigrationOnPopulatedDatabase builds, for every migration N, a
// database at N-1 with two rows in each of its tables, and opens it: every
// migration after N-1 applies to a database with data in it, and the rows
// of tables that stay are kept.
func TestEveryMigrationOnPopulatedDatabase(t *testing.T) {
	race.Skip(t)
	names, _ := fs.Glob(migrations, "migrations/*.sql")
	for n := 1; n < len(names); n++ {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "old.db")
			raw := oldDatabase(t, path, n)
			counts := populate(t, raw)
			raw.Close()
			db, err := Open(t.Context(), path, Options{Bind: storetest.Unopened})
			if err != nil {
				t.Fatalf("migrating a populated database at %d: %v", n, err)
			}
			db.Close()
			raw, _ = sql.Open("sqlite", "file:"+path)
			defer raw.Close()
			for table, want := range counts {
				var exists int
				raw.QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, table).Scan(&exists)
				if exists == 0 {
					continue
				}
				var got int
				if err := raw.QueryRow(`SELECT COUNT(*) FROM "` + table + `"`).Scan(&got); err != nil || got < want {
					t.Errorf("table %s after migrating from %d: %d rows, %v; want %d", table, n, got, err, want)
				}
			}
		})
	}
}

// populate puts two rows in each table of raw, and returns how many.
func populate(t *testing.T, raw *sql.DB) map[string]int {
	t.Helper()
	rows, err := raw.Query(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations'`)
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
	counts := map[string]int{}
	for _, table := range tables {
		cols, err := raw.Query(`SELECT name, type FROM pragma_table_info(?)`, table)
		if err != nil {
			t.Fatal(err)
		}
		var names, types []string
		for cols.Next() {
			var name, typ string
			cols.Scan(&name, &typ)
			names, types = append(names, name), append(types, strings.ToUpper(typ))
		}
		cols.Close()
		for i := range 2 {
			var args []any
			for j, name := range names {
				switch {
				case name == "config" || name == "revocation" || name == "policies" && table == "access_keys":
					if name == "policies" {
						args = append(args, "[]")
					} else {
						args = append(args, "{}")
					}
				case name == "tags":
					args = append(args, "[]")
				case name == "seq" && table == "operator_actions":
					args = append(args, nil)
				case strings.Contains(types[j], "INT"), types[j] == "BOOLEAN":
					args = append(args, i)
				case types[j] == "BLOB":
					args = append(args, []byte{byte(i + 1)})
				default:
					args = append(args, fmt.Sprintf("v%d", i))
				}
			}
			q := `INSERT INTO "` + table + `" ("` + strings.Join(names, `", "`) + `") VALUES (` + strings.TrimSuffix(strings.Repeat("?, ", len(names)), ", ") + `)`
			if _, err := raw.Exec(q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			counts[table]++
		}
	}
	return counts
}
