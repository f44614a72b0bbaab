package app_test

import (
	"os"
	"testing"

	"github.com/openpca/openpca/internal/testenv"
)

// TestMain gives the tests a PostgreSQL cluster.
func TestMain(m *testing.M) { os.Exit(testenv.RunWithPostgres(m)) }
