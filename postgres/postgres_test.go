package postgres_test

import (
	"os"
	"sync"
	"testing"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/storetest"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/postgres"
)

func TestMain(m *testing.M) { os.Exit(testenv.RunWithPostgres(m)) }

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) openpca.Store {
		db, err := postgres.Open(t.Context(), testenv.NewPostgresDB(t))
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

// TestConcurrentMigrations opens one database from several servers at
// once: the schema is migrated once, and every server works.
func TestConcurrentMigrations(t *testing.T) {
	dsn := testenv.NewPostgresDB(t)
	migrations, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			db, err := postgres.Open(t.Context(), dsn)
			if err != nil {
				errs[i] = err
				return
			}
			if v, err := db.SchemaVersion(t.Context()); err != nil || v != len(migrations) {
				t.Errorf("schema version %d, %v; want %d", v, err, len(migrations))
			}
			errs[i] = db.Close()
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
