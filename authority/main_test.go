package authority_test

import (
	"os"
	"testing"

	"github.com/openpca/openpca/internal/testenv"
)

// TestMain gives the benchmarks a PostgreSQL cluster to compare with
// SQLite.
func TestMain(m *testing.M) { os.Exit(testenv.RunWithPostgres(m)) }
