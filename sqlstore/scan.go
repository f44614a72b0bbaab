package sqlstore

import (
	"context"
	"errors"
)

// Scanner runs the store's long reads, those of an audit report: a query
// of many rows, each handed to fn in turn. A dialect may give one that
// reads faster than database/sql does (Config.Scan); without one, the
// scans go through the read pool.
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
