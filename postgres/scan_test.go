package postgres_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"reflect"
	"testing"

	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/postgres"
	"github.com/openpca/openpca/sqlstore"
)

// TestScanner reads each type the store reads through the scanner, in
// PostgreSQL's binary format, and checks that a scan stopped early, or
// refused, leaves its connection fit for the next.
func TestScanner(t *testing.T) {
	db, err := sql.Open("pgx", testenv.NewPostgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // every scan on the same connection
	s := postgres.NewScanner(db)

	type got struct {
		i8, i4, i2, null, yes, no, numeric int64
		isNull                             bool
		text                               string
		bytes                              []byte
	}
	var rows []got
	err = s.Scan(t.Context(), `SELECT $1::int8, $2::int4, $3::int2, NULL::int8, true, false, 12::numeric, t, decode(b, 'hex')
		FROM (VALUES ($4, $5), ('', '')) AS v(t, b)`,
		[]any{int64(-1) << 40, int64(-70000), int64(-300), "sujet é", "00ff10"}, func(r sqlstore.Row) error {
			rows = append(rows, got{r.Int64(0), r.Int64(1), r.Int64(2), r.Int64(3), r.Int64(4), r.Int64(5), r.Int64(6), r.IsNull(3),
				r.Text(7), bytes.Clone(r.Bytes(8))})
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	want := got{-1 << 40, -70000, -300, 0, 1, 0, 12, true, "sujet é", []byte{0, 0xff, 0x10}}
	if len(rows) != 2 || !reflect.DeepEqual(rows[0], want) || rows[1].text != "" || len(rows[1].bytes) != 0 {
		t.Fatalf("read %+v, want %+v first", rows, want)
	}

	stop := errors.New("enough")
	n := 0
	err = s.Scan(t.Context(), `SELECT generate_series(1, 100000)::int8`, nil, func(r sqlstore.Row) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Fatalf("a scan stopped at its third row: %d rows, %v", n, err)
	}
	if err := s.Scan(t.Context(), `SELECT nope FROM nowhere`, nil, func(sqlstore.Row) error { return nil }); err == nil {
		t.Fatal("a bad query scanned")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Scan(ctx, `SELECT 1::int8`, nil, func(sqlstore.Row) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("a canceled scan: %v", err)
	}
	var one int64
	if err := s.Scan(t.Context(), `SELECT $1::int8`, []any{int64(7)}, func(r sqlstore.Row) error { one = r.Int64(0); return nil }); err != nil || one != 7 {
		t.Fatalf("the connection after them: %d, %v", one, err)
	}
}
