package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Scanner runs the reads that cost the most through database/sql: the long
// ones of an audit report, and the point reads every request makes (its
// access key, its CA's version). It runs a query and hands each row to fn
// in turn. A dialect may give one that reads faster than database/sql does
// (Config.Scan); without one, the reads go through the read pool.
type Scanner interface {
	Scan(ctx context.Context, query string, args []any, fn func(Row) error) error
}

// Row is the row a scan is on, its columns read by position, each as what
// it holds; a NULL reads as the zero value.
type Row interface {
	Int64(col int) int64
	Text(col int) string
	// Bytes is valid only until fn returns.
	Bytes(col int) []byte
	IsNull(col int) bool
}

// scan runs a read through the dialect's scanner or the read pool.
func (db *DB) scan(ctx context.Context, q string, args []any, fn func(Row) error) error {
	if db.scanner != nil {
		return db.scanner.Scan(ctx, db.rewrite(q), args, fn)
	}
	rows, err := db.query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	row := make(anyRow, len(cols))
	dest := make([]any, len(cols))
	for i := range dest {
		dest[i] = &row[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	return errors.Join(rows.Err(), rows.Close())
}

// readRow runs a query of one row through the dialect's scanner, or the
// read pool, and reads it into Scan's destinations: those the store's scan
// functions use. Without a row, Scan returns sql.ErrNoRows.
func (db *DB) readRow(ctx context.Context, q string, args ...any) rowScanner {
	if db.scanner == nil {
		return db.queryRow(ctx, q, args...)
	}
	return scannedRow{db, ctx, q, args}
}

type scannedRow struct {
	db   *DB
	ctx  context.Context
	q    string
	args []any
}

func (r scannedRow) Scan(dest ...any) error {
	found := false
	err := r.db.scanner.Scan(r.ctx, r.db.rewrite(r.q), r.args, func(row Row) error {
		if found {
			return nil // as QueryRow, the first row
		}
		found = true
		for i, d := range dest {
			switch d := d.(type) {
			case *string:
				*d = row.Text(i)
			case *int64:
				*d = row.Int64(i)
			case *[]byte:
				*d = bytes.Clone(row.Bytes(i))
			case *sql.NullInt64:
				*d = sql.NullInt64{Int64: row.Int64(i), Valid: !row.IsNull(i)}
			default:
				return fmt.Errorf("sqlstore: column %d read into a %T", i, d)
			}
		}
		return nil
	})
	if err == nil && !found {
		return sql.ErrNoRows
	}
	return err
}

// anyRow is a row as database/sql gives it to an *any.
type anyRow []any

func (r anyRow) Int64(col int) int64 {
	n, _ := r[col].(int64)
	return n
}

func (r anyRow) Text(col int) string {
	switch v := r[col].(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

func (r anyRow) Bytes(col int) []byte {
	switch v := r[col].(type) {
	case []byte:
		return v
	case string:
		return []byte(v)
	}
	return nil
}

func (r anyRow) IsNull(col int) bool { return r[col] == nil }
