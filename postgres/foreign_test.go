package postgres_test

import (
	"context"
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
	// What a dump restored by the database's owner may do to its role:
	// put operators of its own before PostgreSQL's, which a check's
	// queries, and every server's, would call.
	const overtake = `CREATE TABLE public.ran (by text);
		CREATE FUNCTION public.texteq(a text, b text) RETURNS boolean LANGUAGE plpgsql STRICT SET search_path = pg_catalog
			AS $$ BEGIN INSERT INTO public.ran VALUES (current_setting('application_name')); RETURN a = b; END $$;
		CREATE OPERATOR public.= (FUNCTION = public.texteq, LEFTARG = text, RIGHTARG = text);
		CREATE FUNCTION public.nameeq(a name, b name) RETURNS boolean LANGUAGE plpgsql STRICT SET search_path = pg_catalog
			AS $$ BEGIN INSERT INTO public.ran VALUES (current_setting('application_name')); RETURN a = b; END $$;
		CREATE OPERATOR public.= (FUNCTION = public.nameeq, LEFTARG = name, RIGHTARG = name);
		ALTER ROLE CURRENT_USER SET search_path = public, pg_catalog`
	for _, tc := range []struct {
		name, sql string
		want      []string // in what Foreign finds; none for a database it must take
		owner     bool     // the database is restored by its owner, a role of its own, not a superuser
	}{
		{"a function alone", spy, []string{"function spy.keep"}, false},
		{"a trigger on a table of another schema that inherits from one of its tables", spy + `CREATE TABLE spy.ak () INHERITS (access_keys);
			CREATE TRIGGER keep BEFORE UPDATE ON spy.ak FOR EACH ROW EXECUTE FUNCTION spy.keep()`,
			[]string{"table spy.ak, which inherits from public.access_keys", "trigger keep on spy.ak"}, false},
		{"a domain's check", `CREATE SCHEMA spy; CREATE FUNCTION spy.ok(text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
			CREATE DOMAIN spy.id AS text CHECK (spy.ok(VALUE)); ALTER TABLE access_keys ALTER COLUMN id TYPE spy.id`, []string{"function spy.ok"}, false},
		{"an operator", `CREATE SCHEMA spy; CREATE FUNCTION spy.same(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
			CREATE OPERATOR spy.=== (LEFTARG = text, RIGHTARG = text, FUNCTION = spy.same);
			ALTER TABLE access_keys ADD CONSTRAINT same CHECK (id OPERATOR(spy.===) id) NOT VALID`, []string{"function spy.same"}, false},
		{"a rule", `CREATE RULE keep AS ON DELETE TO access_keys DO INSTEAD NOTHING`, []string{"rule keep on public.access_keys"}, false},
		{"a view", `CREATE VIEW keys AS SELECT id FROM access_keys`, []string{"view keys"}, false},
		{"row-level security", `ALTER TABLE access_keys ENABLE ROW LEVEL SECURITY`, []string{"row-level security on access_keys"}, false},
		{"a default that calls a function of PostgreSQL's own", `ALTER TABLE access_keys ALTER COLUMN revoked_at SET DEFAULT (CASE WHEN set_config('search_path', 'spy, public', false) IS NULL THEN NULL END)::bigint`,
			[]string{"default of column revoked_at of table public.access_keys, which is no constant"}, false},
		{"an extension's function in a check", `CREATE EXTENSION pgcrypto; ALTER TABLE access_keys ADD CONSTRAINT hashed CHECK (digest(id, 'sha256') IS NOT NULL) NOT VALID`,
			[]string{"check constraint hashed on public.access_keys", "function public.digest(text,text), which constraint hashed on table public.access_keys uses"}, false},
		{"a publication", `CREATE PUBLICATION leak FOR ALL TABLES`, []string{"publication leak"}, false},
		{"a setting of the database", `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = spy, public', current_database()); END $$`,
			[]string{"setting search_path=spy, public of the database"}, false},
		{"extensions", `CREATE EXTENSION pgcrypto; CREATE EXTENSION pg_stat_statements; CREATE EXTENSION pg_buffercache; CREATE EXTENSION lo; CREATE EXTENSION postgres_fdw`, nil, false},
		{"a setting of the role that puts the dump's operators first", overtake,
			[]string{"setting search_path=public, pg_catalog of role owner_", "function public.texteq"}, true},
		{"a setting of the role alone", `ALTER ROLE CURRENT_USER SET enable_indexscan = off`, []string{"setting enable_indexscan=off of role owner_"}, true},
		{"settings an operator tunes", `ALTER ROLE CURRENT_USER SET statement_timeout = '1ms';
			DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET work_mem = ''64MB''', current_database()); END $$`, nil, true},
		{"a function of the role's own made an extension's", `CREATE EXTENSION hstore;
			CREATE FUNCTION public.pg_advisory_xact_lock(k double precision) RETURNS void LANGUAGE sql AS 'SELECT';
			ALTER EXTENSION hstore ADD FUNCTION public.pg_advisory_xact_lock(double precision)`, []string{"function public.pg_advisory_xact_lock"}, true},
		{"a trusted extension the owner made", `CREATE EXTENSION hstore`, nil, true},
		{"CREATE on the database granted", `DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO PUBLIC', current_database()); END $$`,
			[]string{"privilege CREATE on the database granted to PUBLIC"}, false},
		{"a prepared transaction", `BEGIN; LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE; PREPARE TRANSACTION 'held'`,
			[]string{"prepared transaction held"}, false},
		{"a write granted to PUBLIC", `GRANT UPDATE ON access_keys TO PUBLIC`, []string{"privilege UPDATE on access_keys granted to PUBLIC"}, false},
		{"a read granted to PUBLIC", `GRANT SELECT ON access_keys TO PUBLIC`, []string{"privilege SELECT on access_keys granted to PUBLIC"}, false},
		{"a column's write granted to another role", `CREATE ROLE column_writer; GRANT UPDATE (revoked_at) ON access_keys TO column_writer`,
			[]string{"privilege UPDATE on column revoked_at of access_keys granted to column_writer"}, false},
		{"an identity sequence's setting granted", `GRANT UPDATE ON operator_actions_seq_seq TO PUBLIC`,
			[]string{"privilege UPDATE on operator_actions_seq_seq granted to PUBLIC"}, false},
		{"CREATE on the schema granted", `GRANT CREATE ON SCHEMA public TO PUBLIC`, []string{"privilege CREATE on schema public granted to PUBLIC"}, false},
		{"default privileges", `ALTER DEFAULT PRIVILEGES GRANT INSERT ON TABLES TO PUBLIC`, []string{"default privilege INSERT granted to PUBLIC by postgres"}, false},
		{"the operator log's sequence near its end", `SELECT setval('operator_actions_seq_seq', 9223372036854775000)`,
			[]string{"the identity sequence of operator_actions at 9223372036854775000, off its last row, 0"}, false},
		{"the operator log's sequence behind its rows", `INSERT INTO operator_actions (at, os_user, host, command, detail) VALUES (1, 'u', 'h', 'c', 'd'), (2, 'u', 'h', 'c', 'd');
			SELECT setval('operator_actions_seq_seq', 1)`, []string{"the identity sequence of operator_actions at 1, off its last row, 2"}, false},
		{"the operator log's sequence past rows rolled back", `INSERT INTO operator_actions (at, os_user, host, command, detail) VALUES (1, 'u', 'h', 'c', 'd');
			SELECT setval('operator_actions_seq_seq', 1000)`, nil, false},
		{"reads granted to a role of the operator's", `CREATE ROLE auditor; GRANT SELECT ON ALL TABLES IN SCHEMA public TO auditor;
			ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO auditor`, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			superuser := testenv.NewPostgresDB(t)
			dsn := superuser
			if tc.owner {
				dsn = ownedDB(t, superuser)
			}
			s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			execSQL(t, dsn, tc.sql)
			if strings.Contains(tc.sql, "PREPARE TRANSACTION") {
				t.Cleanup(func() {
					db, err := sql.Open("pgx", superuser)
					if err == nil {
						_, err = db.ExecContext(context.Background(), `ROLLBACK PREPARED 'held'`)
						db.Close()
					}
					if err != nil {
						t.Error(err)
					}
				})
			}
			found, err := postgres.Foreign(t.Context(), dsn, "restore")
			if err != nil {
				t.Fatal(err)
			}
			// Nor did the look run any of it, nor the comparison.
			if tc.sql == overtake {
				if _, err := postgres.SchemaDiffs(t.Context(), dsn, "restore"); err != nil {
					t.Error(err)
				}
				var ran int
				readFrom(t, superuser, `SELECT COUNT(*) FROM public.ran`, &ran)
				if ran > 0 {
					t.Errorf("the dump's operators ran %d times in the restore's checks", ran)
				}
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

// ownedDB gives the database at dsn (a superuser's address) an owner, a
// role of its own, and returns the owner's address to it.
func ownedDB(t *testing.T, dsn string) string {
	t.Helper()
	name := dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
	execSQL(t, dsn, `CREATE ROLE owner_`+name+` LOGIN; ALTER DATABASE `+name+` OWNER TO owner_`+name)
	return strings.Replace(dsn, "//postgres@", "//owner_"+name+"@", 1)
}

// readFrom reads one row of q on the database at dsn into v.
func readFrom(t *testing.T, dsn, q string, v ...any) {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRowContext(t.Context(), q).Scan(v...); err != nil {
		t.Fatal(err)
	}
}
