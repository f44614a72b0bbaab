package postgres_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/postgres"
)

// TestSchemaDiffs: a database whose OpenPCA tables a dump changed is
// found changed, each way that would change what servers can trust of
// its rows; one that the migrations made, at any version, and one
// migrated since from an earlier version, are not.
func TestSchemaDiffs(t *testing.T) {
	migrations, _ := filepath.Glob("migrations/*.sql")
	for _, tc := range []struct {
		name string
		old  int    // migrations of an earlier version applied first; 0 for this version's
		sql  string // run on the database once made
		want []string
	}{
		{name: "this version's"},
		{name: "the first version's", old: 1},
		{name: "the first version's, migrated since", old: -1},
		{name: "the last version's but one", old: len(migrations) - 1},
		{name: "a unique index dropped", sql: `DROP INDEX certificates_by_serial`,
			want: []string{"lacks the index certificates_by_serial of table certificates"}},
		{name: "an index added", sql: `CREATE INDEX slow ON certificates (subject)`,
			want: []string{"holds the index slow of table certificates, which OpenPCA makes none of"}},
		{name: "an index made partial", sql: `DROP INDEX certificates_by_serial; CREATE UNIQUE INDEX certificates_by_serial ON certificates (ca_id, serial) WHERE serial <> ''`,
			want: []string{"has the index certificates_by_serial of table certificates other than OpenPCA makes it"}},
		{name: "a table unlogged", sql: `ALTER TABLE key_uses SET UNLOGGED`,
			want: []string{"has the table key_uses other than OpenPCA makes it"}},
		{name: "a column's type", sql: `ALTER TABLE certificates ALTER COLUMN subject TYPE varchar(8)`,
			want: []string{"has the column subject of table certificates other than OpenPCA makes it"}},
		{name: "a column's NOT NULL dropped", sql: `ALTER TABLE access_keys ALTER COLUMN sealed_secret DROP NOT NULL`,
			want: []string{"has the column sealed_secret of table access_keys other than OpenPCA makes it"}},
		{name: "a column's default", sql: `ALTER TABLE certificate_authorities ALTER COLUMN failure_reason SET DEFAULT 'x'`,
			want: []string{"has the column failure_reason of table certificate_authorities other than OpenPCA makes it"}},
		{name: "a column's collation", sql: `ALTER TABLE certificates ALTER COLUMN serial TYPE text COLLATE "C"`,
			want: []string{"has the column serial of table certificates other than OpenPCA makes it"}},
		{name: "a column added", sql: `ALTER TABLE accounts ADD COLUMN note text`,
			want: []string{"holds the column note of table accounts, which OpenPCA makes none of"}},
		{name: "a table dropped", sql: `DROP TABLE console_sessions`,
			want: []string{"lacks the table console_sessions", "lacks the column id_hash of table console_sessions"}},
		{name: "a primary key dropped", sql: `ALTER TABLE ocsp_responses DROP CONSTRAINT ocsp_responses_pkey`,
			want: []string{"lacks the constraint ocsp_responses_pkey of table ocsp_responses", "lacks the index ocsp_responses_pkey of table ocsp_responses"}},
		{name: "a foreign key made to cascade", sql: `ALTER TABLE access_keys DROP CONSTRAINT access_keys_account_id_fkey;
			ALTER TABLE access_keys ADD CONSTRAINT access_keys_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts(id) ON DELETE CASCADE`,
			want: []string{"has the constraint access_keys_account_id_fkey of table access_keys other than OpenPCA makes it"}},
		{name: "another schema's table that refers to one", sql: `CREATE SCHEMA other; CREATE TABLE other.pin (id text REFERENCES access_keys(id))`,
			want: []string{"holds the constraint pin_id_fkey of table other.pin, which OpenPCA makes none of"}},
		{name: "an identity that cycles", sql: `ALTER TABLE operator_actions ALTER COLUMN seq SET CYCLE`,
			want: []string{"has the sequence of column seq of table operator_actions other than OpenPCA makes it"}},
		{name: "an identity behind a decoy sequence", sql: `CREATE SEQUENCE decoy AS bigint;
			ALTER TABLE operator_actions ALTER COLUMN seq SET INCREMENT BY -1 SET MINVALUE -1000 SET MAXVALUE 3;
			ALTER SEQUENCE decoy OWNED BY operator_actions.seq`,
			want: []string{"has the sequence of column seq of table operator_actions other than OpenPCA makes it"}},
		{name: "storage parameters", sql: `ALTER TABLE key_uses SET (fillfactor = 90, autovacuum_vacuum_scale_factor = 0.01);
			ALTER INDEX certificates_pkey SET (fillfactor = 90)`},
		{name: "another application's tables", sql: `CREATE TABLE notes (id text PRIMARY KEY); CREATE INDEX notes_by_id ON notes (id)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := testenv.NewPostgresDB(t)
			switch {
			case tc.old > 0:
				oldDatabase(t, dsn, tc.old)
			case tc.old < 0:
				oldDatabase(t, dsn, 1)
				fallthrough
			default:
				s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
			}
			if tc.sql != "" {
				execSQL(t, dsn, tc.sql)
			}
			diffs, err := postgres.SchemaDiffs(t.Context(), dsn, "restore")
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !slices.Contains(diffs, w) {
					t.Errorf("found %q; want %q among them", diffs, w)
				}
			}
			if tc.want == nil && len(diffs) > 0 {
				t.Errorf("found %q in a database OpenPCA's migrations made", strings.Join(diffs, "; "))
			}
		})
	}
}

// TestRestoreChecksQuotedSchema: the checks read the schema that servers
// use by its name as it is, one that needs quoting included.
func TestRestoreChecksQuotedSchema(t *testing.T) {
	dsn := testenv.NewPostgresDB(t)
	execSQL(t, dsn, `CREATE SCHEMA "Open PCA"`)
	dsn += "&search_path=%22Open%20PCA%22"
	s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	execSQL(t, dsn, `ALTER TABLE access_keys SET UNLOGGED; CREATE TABLE public.access_keys (id text)`)
	found, err := postgres.Foreign(t.Context(), dsn, "restore")
	if err != nil || len(found) > 0 {
		t.Errorf("Foreign: %v, %q", err, found)
	}
	diffs, err := postgres.SchemaDiffs(t.Context(), dsn, "restore")
	if want := []string{"has the table access_keys other than OpenPCA makes it"}; err != nil || !slices.Equal(diffs, want) {
		t.Errorf("SchemaDiffs: %v, %q; want %q", err, diffs, want)
	}
}
