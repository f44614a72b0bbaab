package postgres

import (
	"database/sql"

	"github.com/openpca/openpca/sqlstore"
)

// NewScanner gives the tests of package postgres_test the scanner.
func NewScanner(db *sql.DB) sqlstore.Scanner { return scanner{db} }
