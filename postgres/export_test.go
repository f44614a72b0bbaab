package postgres

import (
	"database/sql"

	"github.com/jackc/pgx/v5"

	"github.com/openpca/openpca/sqlstore"
)

// NewScanner gives the tests of package postgres_test the scanner.
func NewScanner(db *sql.DB) sqlstore.Scanner { return scanner{db} }

// ConnConfig gives the tests the connections' configuration.
func ConnConfig(dsn string) (*pgx.ConnConfig, error) { return connConfig(dsn) }
