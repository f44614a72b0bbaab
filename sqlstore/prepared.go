package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// statements prepares each query once per connection pool and keeps it:
// a database spends more time parsing a short statement than running it.
//
// Inside a transaction, only the hot queries, prepared up front, run
// prepared: preparing needs a connection, and the write pool of SQLite has
// one, which the transaction holds. Other queries there run unprepared.
type statements struct {
	db      *sql.DB
	rewrite func(string) string
	mu      sync.Mutex
	m       map[string]*sql.Stmt
	hot     map[string]*sql.Stmt
}

// newStatements prepares the hot queries on db.
func newStatements(ctx context.Context, db *sql.DB, rewrite func(string) string, hot ...string) (*statements, error) {
	s := &statements{db: db, rewrite: rewrite, m: make(map[string]*sql.Stmt), hot: make(map[string]*sql.Stmt)}
	if err := s.prepareHot(ctx, hot...); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// prepareHot prepares the hot queries of a pool opened without them (its
// schema was then of an earlier version), before it is used.
func (s *statements) prepareHot(ctx context.Context, hot ...string) error {
	for _, q := range hot {
		if _, ok := s.hot[q]; ok {
			continue
		}
		st, err := s.db.PrepareContext(ctx, s.rewrite(q))
		if err != nil {
			return err
		}
		s.hot[q] = st
	}
	return nil
}

// get returns q prepared on the pool, preparing it on first use.
func (s *statements) get(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := s.hot[q]; ok {
		return st, nil
	}
	s.mu.Lock()
	st, ok := s.m[q]
	s.mu.Unlock()
	if ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, s.rewrite(q))
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.m[q]; ok {
		st.Close()
		return prev, nil
	}
	s.m[q] = st
	return st, nil
}

func (s *statements) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.m {
		st.Close()
	}
	for _, st := range s.hot {
		st.Close()
	}
}

func (s *statements) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, err := s.get(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (s *statements) queryRow(ctx context.Context, q string, args ...any) rowScanner {
	st, err := s.get(ctx, q)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

func (s *statements) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := s.get(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (s *statements) txExec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if st, ok := s.hot[q]; ok {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, s.rewrite(q), args...)
}

func (s *statements) txQueryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) rowScanner {
	if st, ok := s.hot[q]; ok {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, s.rewrite(q), args...)
}

// rowScanner is a *sql.Row, or the error that kept a query from running.
type rowScanner interface{ Scan(dest ...any) error }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
