package postgres

import (
	"database/sql"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/openpca/openpca/sqlstore"
)

// NewScanner gives the tests of package postgres_test the scanner.
func NewScanner(db *sql.DB) sqlstore.Scanner { return scanner{db} }

// OpenDB opens the database at dsn with the store's sessions.
func OpenDB(dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	return stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(setSessionDefaults)), nil
}
