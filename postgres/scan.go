package postgres

import (
	"context"
	"database/sql"
	"encoding/binary"
	"strconv"

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
// again into the destination. Rows are read in place.
type scanner struct{ db *sql.DB }

// resultFormats asks for integers and bytea in PostgreSQL's binary format,
// and every other type in its text format, which is the text itself for
// text, and which Int64 reads for the others (a boolean as 1 or 0, as
// SQLite keeps it).
var resultFormats = pgx.QueryResultFormatsByOID{
	pgtype.Int8OID: pgx.BinaryFormatCode, pgtype.Int4OID: pgx.BinaryFormatCode, pgtype.Int2OID: pgx.BinaryFormatCode,
	pgtype.ByteaOID: pgx.BinaryFormatCode,
}

// Scan implements sqlstore.Scanner.
func (s scanner) Scan(ctx context.Context, query string, args []any, fn func(sqlstore.Row) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		c := driverConn.(*stdlib.Conn).Conn()
		rows, err := c.Query(ctx, query, append([]any{resultFormats}, args...)...)
		if err != nil {
			return err
		}
		defer rows.Close() // reads what is left of the rows if fn stops early
		row := pgRow{fields: rows.FieldDescriptions()}
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

// pgRow is a row as resultFormats asks for it; NULL is nil.
type pgRow struct {
	fields []pgconn.FieldDescription
	values [][]byte
}

func (r pgRow) Int64(col int) int64 {
	v := r.values[col]
	if r.fields[col].Format == pgx.TextFormatCode {
		switch string(v) {
		case "t":
			return 1
		case "f":
			return 0
		}
		n, _ := strconv.ParseInt(string(v), 10, 64)
		return n
	}
	switch len(v) { // big-endian, in the integer's own size
	case 8:
		return int64(binary.BigEndian.Uint64(v))
	case 4:
		return int64(int32(binary.BigEndian.Uint32(v)))
	case 2:
		return int64(int16(binary.BigEndian.Uint16(v)))
	}
	return 0
}

func (r pgRow) Text(col int) string  { return string(r.values[col]) }
func (r pgRow) Bytes(col int) []byte { return r.values[col] }
func (r pgRow) IsNull(col int) bool  { return r.values[col] == nil }
