package postgres_test

import (
	"database/sql"
	"slices"
	"strings"
	"testing"

	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/postgres"
)

// TestForeign: what a restore must refuse is found however it is put in
// a dump, each way of having a table run code of its own that OpenPCA's
// migrations never make; and an extension's objects, which databases
// often hold, are not.
func TestForeign(t *testing.T) {
	const spy = `CREATE SCHEMA spy; CREATE TABLE spy.ran (at timestamptz);
		CREATE FUNCTION spy.keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO spy.ran VALUES (now()); NEW.revoked_at := NULL; RETURN NEW; END $$;`
	for _, tc := range []struct {
		name, sql string
		want      []string // in what Foreign finds; none for a database it must take
	}{
		{"a function alone", spy, []string{"function spy.keep"}},
		{"a trigger on a table of another schema that inherits from one of its tables", spy + `CREATE TABLE spy.ak () INHERITS (access_keys);
			CREATE TRIGGER keep BEFORE UPDATE ON spy.ak FOR EACH ROW EXECUTE FUNCTION spy.keep()`,
			[]string{"table spy.ak, which inherits from access_keys", "trigger keep on spy.ak"}},
		{"a domain's check", `CREATE SCHEMA spy; CREATE FUNCTION spy.ok(text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
			CREATE DOMAIN spy.id AS text CHECK (spy.ok(VALUE)); ALTER TABLE access_keys ALTER COLUMN id TYPE spy.id`, []string{"function spy.ok"}},
		{"an operator", `CREATE SCHEMA spy; CREATE FUNCTION spy.same(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
			CREATE OPERATOR spy.=== (LEFTARG = text, RIGHTARG = text, FUNCTION = spy.same);
			ALTER TABLE access_keys ADD CONSTRAINT same CHECK (id OPERATOR(spy.===) id) NOT VALID`, []string{"function spy.same"}},
		{"a rule", `CREATE RULE keep AS ON DELETE TO access_keys DO INSTEAD NOTHING`, []string{"rule keep on access_keys"}},
		{"a view", `CREATE VIEW keys AS SELECT id FROM access_keys`, []string{"view keys"}},
		{"row-level security", `ALTER TABLE access_keys ENABLE ROW LEVEL SECURITY`, []string{"row-level security on access_keys"}},
		{"a default that calls a function of PostgreSQL's own", `ALTER TABLE access_keys ALTER COLUMN revoked_at SET DEFAULT (CASE WHEN set_config('search_path', 'spy, public', false) IS NULL THEN NULL END)::bigint`,
			[]string{"default of column revoked_at of table access_keys, which is no constant"}},
		{"an extension's function in a check", `CREATE EXTENSION pgcrypto; ALTER TABLE access_keys ADD CONSTRAINT hashed CHECK (digest(id, 'sha256') IS NOT NULL) NOT VALID`,
			[]string{"check constraint hashed on access_keys", "function digest(text,text), which constraint hashed on table access_keys uses"}},
		{"a publication", `CREATE PUBLICATION leak FOR ALL TABLES`, []string{"publication leak"}},
		{"a setting of the database", `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = spy, public', current_database()); END $$`,
			[]string{"setting search_path=spy, public of the database"}},
		{"extensions", `CREATE EXTENSION pgcrypto; CREATE EXTENSION pg_stat_statements; CREATE EXTENSION pg_buffercache; CREATE EXTENSION lo; CREATE EXTENSION postgres_fdw`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := testenv.NewPostgresDB(t)
			s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			execSQL(t, dsn, tc.sql)
			found, err := postgres.Foreign(t.Context(), dsn, "restore")
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(found, func(f string) bool { return strings.HasPrefix(f, w) }) {
					t.Errorf("found %q; want %q among them", found, w)
				}
			}
			if tc.want == nil && len(found) > 0 {
				t.Errorf("found %q in a database OpenPCA may be restored to", strings.Join(found, ", "))
			}
		})
	}
}

// execSQL runs q on the database at dsn.
func execSQL(t *testing.T, dsn, q string) {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), q); err != nil {
		t.Fatal(err)
	}
}
