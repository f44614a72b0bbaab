package postgres

import (
	"database/sql"

	"github.com/openpca/openpca/sqlstore"
)

// NewScanner gives the tests of package postgres_test the scanner.
func NewScanner(db *sql.DB) sqlstore.Scanner { return scanner{db} }

// OpenDB opens the database at dsn with the store's connections.
func OpenDB(dsn string) (*sql.DB, error) { return openDB(dsn) }

// Unreachable gives the tests of package postgres_test the dialect's
// classification of errors.
func Unreachable(err error) bool { return unreachable(err) }
