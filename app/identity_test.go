package app_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/acmpca"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/sqlstore"
)

// The values the first server of these tests starts with, not the
// defaults, which a command or server that compared nothing would take.
const (
	firstAccount = "999999999999"
	firstRegion  = "eu-west-1"
)

// identityServer starts a server with firstAccount and firstRegion on
// SQLite, or on a new PostgreSQL database with a master key of its own.
func identityServer(t *testing.T, dialect string) *testenv.Env {
	t.Helper()
	key, _ := app.NewMasterKey()
	return testenv.Start(t, func(c *app.Config) {
		c.AccountID, c.Region, c.MasterKey = firstAccount, firstRegion, key
		if dialect == "postgres" {
			c.Database, c.ObjectStore = testenv.NewPostgresDB(t), "local"
		}
	})
}

// secondStart is the configuration of the next server on env's database:
// on SQLite the same folder once env's server is stopped (it holds the
// folder's lock); on PostgreSQL a second node, beside the first, in a
// folder of its own.
func secondStart(t *testing.T, env *testenv.Env) app.Config {
	cfg := env.Config
	if cfg.Database == "" {
		env.Stop(t)
	} else {
		cfg.DataDir = t.TempDir()
	}
	return cfg
}

// openServer starts a server on cfg, and stops it at once. It is given
// no root key, which would be refused as another account's: a server
// given none made the account it was given one.
func openServer(cfg app.Config) error {
	cfg.RootAccessKeyID, cfg.RootSecretAccessKey = "", ""
	a, err := app.Open(context.Background(), cfg)
	if err == nil {
		a.Close()
	}
	return err
}

// TestIdentityRecorded: the default account and the region a database's
// first server starts with are recorded; a later server (on SQLite a
// restart, on PostgreSQL a second node) or command given another is
// refused, saying which flag, the recorded value, and what to do. The
// same values start, and a command given no --account-id takes the
// recorded one; a command's region (it takes no --region) is not
// compared.
func TestIdentityRecorded(t *testing.T) {
	refused := func(flag, given, recorded string) string {
		return flag + " is " + given + ", but this database's is " + recorded
	}
	cases := []struct {
		name   string
		change func(*app.Config)
		open   func(app.Config) error
		want   string // in the error; "" for none
	}{
		{"a server given another account", func(c *app.Config) { c.AccountID = app.DefaultAccountID }, openServer, refused("--account-id", app.DefaultAccountID, firstAccount)},
		{"a server given another region", func(c *app.Config) { c.Region = app.DefaultRegion }, openServer, refused("--region", app.DefaultRegion, firstRegion)},
		{"a server given the same", func(c *app.Config) {}, openServer, ""},
		{"a command given another account", func(c *app.Config) { c.AccountID = app.DefaultAccountID }, openCommand(t, ""), refused("--account-id", app.DefaultAccountID, firstAccount)},
		{"a command given none", func(c *app.Config) { c.AccountID = "" }, openCommand(t, firstAccount), ""},
		{"a command given the same", func(c *app.Config) {}, openCommand(t, firstAccount), ""},
		{"a command's region", func(c *app.Config) { c.Region = app.DefaultRegion }, openCommand(t, firstAccount), ""},
	}
	for _, dialect := range []string{"sqlite", "postgres"} {
		for _, tc := range cases {
			t.Run(dialect+"/"+tc.name, func(t *testing.T) {
				cfg := secondStart(t, identityServer(t, dialect))
				tc.change(&cfg)
				err := tc.open(cfg)
				switch {
				case tc.want == "" && err != nil:
					t.Fatalf("refused: %v", err)
				case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "DELETE FROM settings")):
					t.Fatalf("got %v, want it refused: %s, and how to proceed", err, tc.want)
				}
			})
		}
	}
}

// openCommand opens a configuration as an operator's command does, and
// checks that it runs with the default account want and firstRegion
// (which policy simulate takes for the servers').
func openCommand(t *testing.T, want string) func(app.Config) error {
	return func(cfg app.Config) error {
		a, err := app.OpenAdmin(context.Background(), cfg)
		if err != nil {
			return err
		}
		defer a.Close()
		if a.AccountID != want || a.Region != firstRegion {
			t.Errorf("the command runs with account %s, region %s; want %s, %s", a.AccountID, a.Region, want, firstRegion)
		}
		return nil
	}
}

// TestIdentityUpgraded: on a database of an earlier version, which records
// no default account nor region, a command given none records nothing;
// the first server records what it is given, if the data bears it out
// (an account of the database's, the region of its CAs), and is refused
// otherwise, recording nothing: a server misconfigured before the
// upgrade, started first, had every other refused. Other values are
// refused once recorded.
func TestIdentityUpgraded(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := identityServer(t, dialect)
			opts := env.Client.Options()
			opts.Region = firstRegion // the server's
			(&testenv.Env{Client: acmpca.New(opts)}).NewActiveRoot(t, "Before the Upgrade")
			cfg := secondStart(t, env)
			// As an earlier version left it.
			var db *sql.DB
			if cfg.Database == "" {
				db = env.DB(t)
			} else {
				var err error
				if db, err = sql.Open("pgx", cfg.Database); err != nil {
					t.Fatal(err)
				}
				defer db.Close()
			}
			if _, err := db.Exec(`DELETE FROM settings WHERE name IN ('default-account-id', 'region')`); err != nil {
				t.Fatal(err)
			}
			command := cfg
			command.AccountID = ""
			a, err := app.OpenAdmin(context.Background(), command)
			if err != nil {
				t.Fatal(err)
			}
			a.Close()
			for _, change := range []func(*app.Config){
				func(c *app.Config) { c.AccountID = "444455556666" },
				func(c *app.Config) { c.Region = "ap-southeast-2" },
			} {
				misconfigured := cfg
				change(&misconfigured)
				if err := openServer(misconfigured); err == nil || !strings.Contains(err.Error(), "which this database's data does not bear out") {
					t.Fatalf("a first server after the upgrade given %s, %s: %v", misconfigured.AccountID, misconfigured.Region, err)
				}
			}
			if err := openServer(cfg); err != nil {
				t.Fatalf("the first server after the upgrade, given the values of before: %v", err)
			}
			other := cfg
			other.AccountID = app.DefaultAccountID
			if err := openServer(other); err == nil || !strings.Contains(err.Error(), "--account-id is "+app.DefaultAccountID+", but this database's is "+firstAccount) {
				t.Fatalf("a server given another account, once the first was recorded: %v", err)
			}
			other = cfg
			other.Region = app.DefaultRegion
			if err := openServer(other); err == nil || !strings.Contains(err.Error(), "--region is "+app.DefaultRegion+", but this database's is "+firstRegion) {
				t.Fatalf("a server given another region, once the first was recorded: %v", err)
			}
		})
	}
}

// TestIdentityRestoreAndRotate: a restore given another default account
// than the backup's database recorded restores nothing, as a master key
// rotation given one rotates nothing; given none, or the same, they run.
func TestIdentityRestoreAndRotate(t *testing.T) {
	env := identityServer(t, "sqlite")
	backup := backupOf(t, env)
	cfg := env.Config
	cfg.DataDir = t.TempDir()
	cfg.AccountID = app.DefaultAccountID
	if a, _, err := app.Restore(context.Background(), cfg, backup, time.Now(), sqlstore.Settling{}); err == nil || !strings.Contains(err.Error(), "nothing was restored: --account-id is "+app.DefaultAccountID) {
		if a != nil {
			a.Close()
		}
		t.Fatalf("a restore given another default account: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "openpca.db")); !os.IsNotExist(err) {
		t.Errorf("the refused restore left a database: %v", err)
	}
	cfg.AccountID = ""
	a, _, err := app.Restore(context.Background(), cfg, backup, time.Now(), sqlstore.Settling{})
	if err != nil {
		t.Fatal(err)
	}
	if a.AccountID != firstAccount {
		t.Errorf("the restored database's default account: %s, want %s", a.AccountID, firstAccount)
	}
	a.Close()

	env.Stop(t)
	next, _ := app.NewMasterKey()
	cfg = env.Config
	cfg.AccountID = app.DefaultAccountID
	if err := app.RotateMasterKey(context.Background(), cfg, next); err == nil || !strings.Contains(err.Error(), "--account-id is "+app.DefaultAccountID) {
		t.Fatalf("a rotation given another default account: %v", err)
	}
	env.Restart(t) // with the master key it had: nothing was resealed
}
