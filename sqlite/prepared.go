package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// statements prepares each query once per connection pool and keeps it:
// SQLite spends more time parsing a short statement than running it.
//
// Queries run inside the group commit's transactions must be prepared up
// front (see newStatements): preparing needs a connection, and the write
// pool's only connection is the one the transaction holds.
type statements struct {
	db   *sql.DB
	lazy bool
	mu   sync.Mutex
	m    map[string]*sql.Stmt
}

// newStatements prepares queries on db. With lazy, other queries are
// prepared when first used; without, using one is an error.
func newStatements(ctx context.Context, db *sql.DB, lazy bool, queries ...string) (*statements, error) {
	s := &statements{db: db, lazy: lazy, m: make(map[string]*sql.Stmt)}
	for _, q := range queries {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("preparing %q: %w", q, err)
		}
		s.m[q] = st
	}
	return s, nil
}

func (s *statements) get(ctx context.Context, query string) (*sql.Stmt, error) {
	s.mu.Lock()
	st, ok := s.m[query]
	s.mu.Unlock()
	if ok {
		return st, nil
	}
	if !s.lazy {
		return nil, fmt.Errorf("sqlite: query not prepared: %s", query)
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.m[query]; ok {
		st.Close()
		return prev, nil
	}
	s.m[query] = st
	return st, nil
}

func (s *statements) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.m {
		st.Close()
	}
}

// queryRow runs a prepared query on the pool.
func (s *statements) queryRow(ctx context.Context, query string, args ...any) rowScanner {
	st, err := s.get(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

// query runs a prepared query returning rows on the pool.
func (s *statements) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// txExec runs a prepared statement inside tx.
func (s *statements) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	st, err := s.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
}

// txQueryRow runs a prepared query inside tx.
func (s *statements) txQueryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) rowScanner {
	st, err := s.get(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
}

// rowScanner is a *sql.Row, or the error that kept a query from running.
type rowScanner interface{ Scan(dest ...any) error }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
