package postgres

import (
	"context"
	"database/sql"
	"encoding/binary"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/openpca/openpca/sqlstore"
)

// scanner runs the store's costliest reads (an audit report reads every
// row of a CA's log; every request reads its access key) through pgx
// itself, on a connection of the pool, rather than through database/sql,
// which turns each column of each row into a driver.Value and converts it
// again into the destination. Rows come in PostgreSQL's binary format and
// are read in place.
type scanner struct{ db *sql.DB }

// Scan implements sqlstore.Scanner.
func (s scanner) Scan(ctx context.Context, query string, args []any, fn func(sqlstore.Row) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		c := driverConn.(*stdlib.Conn).Conn()
		rows, err := c.Query(ctx, query, append([]any{pgx.QueryResultFormats{pgx.BinaryFormatCode}}, args...)...)
		if err != nil {
			return err
		}
		defer rows.Close() // reads what is left of the rows if fn stops early
		row := binaryRow{fields: rows.FieldDescriptions()}
		for rows.Next() {
			row.values = rows.RawValues()
			if err := fn(row); err != nil {
				return err
			}
		}
		rows.Close()
		return rows.Err()
	})
}

// binaryRow is a row in PostgreSQL's binary format: integers big-endian in
// their column's size, text and bytea as their bytes, NULL as nil.
type binaryRow struct {
	fields []pgconn.FieldDescription
	values [][]byte
}

func (r binaryRow) Int64(col int) int64 {
	v := r.values[col]
	switch r.fields[col].DataTypeOID {
	case pgtype.Int8OID:
		if len(v) == 8 {
			return int64(binary.BigEndian.Uint64(v))
		}
	case pgtype.Int4OID:
		if len(v) == 4 {
			return int64(int32(binary.BigEndian.Uint32(v)))
		}
	case pgtype.Int2OID:
		if len(v) == 2 {
			return int64(int16(binary.BigEndian.Uint16(v)))
		}
	}
	return 0
}

func (r binaryRow) Text(col int) string  { return string(r.values[col]) }
func (r binaryRow) Bytes(col int) []byte { return r.values[col] }
func (r binaryRow) IsNull(col int) bool  { return r.values[col] == nil }
