package console_test

import (
	"os"
	"testing"

	"github.com/openpca/openpca/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.RunWithPostgres(m)) }
