package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openpca/openpca/sqlstore"
)

// TestScanner runs scans on a real database file that a writer has open in
// WAL mode, as the store's is: the columns come out as stored, bad queries
// and arguments fail with SQLite's message, and a scan that stops early
// leaves its connection fit for the next and no reader on the log.
func TestScanner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scan.db")
	w, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	if _, err := w.Exec(`CREATE TABLE t (n INTEGER NOT NULL, s TEXT NOT NULL, b BLOB, m INTEGER)`); err != nil {
		t.Fatal(err)
	}
	for i, s := range []string{"one", "twő", ""} {
		var b []byte
		if s != "" {
			b = []byte{byte(i), 0, 0xff}
		}
		if _, err := w.Exec(`INSERT INTO t VALUES (?, ?, ?, ?)`, i-1, s, b, sql.NullInt64{Int64: 1 << 40, Valid: i == 1}); err != nil {
			t.Fatal(err)
		}
	}

	s := newScanner(path)
	defer s.close()
	type row struct {
		n    int64
		s    string
		b    string
		null bool
		m    int64
	}
	read := func(ctx context.Context, q string, args ...any) ([]row, error) {
		var got []row
		err := s.Scan(ctx, q, args, func(r sqlstore.Row) error {
			got = append(got, row{r.Int64(0), r.Text(1), string(r.Bytes(2)), r.IsNull(3), r.Int64(3)})
			return nil
		})
		return got, err
	}
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	all := []row{{-1, "one", "\x00\x00\xff", true, 0}, {0, "twő", "\x01\x00\xff", false, 1 << 40}, {1, "", "", true, 0}}
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		q       string
		args    []any
		want    []row
		wantErr string
	}{
		{name: "all rows", q: `SELECT n, s, b, m FROM t ORDER BY n`, want: all},
		{name: "arguments", q: `SELECT n, s, b, m FROM t WHERE n >= ? AND s != ? ORDER BY n`, args: []any{int64(0), "one"}, want: all[1:]},
		{name: "no rows", q: `SELECT n, s, b, m FROM t WHERE n > ?`, args: []any{int64(5)}},
		{name: "again, prepared", q: `SELECT n, s, b, m FROM t ORDER BY n`, want: all},
		{name: "bad query", q: `SELECT missing FROM t`, wantErr: "no such column: missing"},
		{name: "argument of another type", q: `SELECT n, s, b, m FROM t WHERE n > ?`, args: []any{5}, wantErr: "argument 1 is a int"},
		{name: "too many arguments", q: `SELECT n, s, b, m FROM t`, args: []any{int64(1)}, wantErr: "column index out of range"},
		{name: "read-only", q: `DELETE FROM t RETURNING n, s, b, m`, wantErr: "readonly"},
		{name: "canceled", ctx: canceled, q: `SELECT n, s, b, m FROM t`, wantErr: context.Canceled.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			got, err := read(ctx, tc.q, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("rows %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("row %d is %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}

	t.Run("stopped early", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := s.Scan(t.Context(), `SELECT n, s, b, m FROM t ORDER BY n`, nil, func(sqlstore.Row) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Fatalf("Scan returned %v after %d rows, want fn's error after 1", err, n)
		}
		// A scan left unfinished would hold a reader on the log, and a
		// truncating checkpoint would report itself busy.
		if _, err := w.Exec(`INSERT INTO t VALUES (2, 'four', NULL, NULL)`); err != nil {
			t.Fatal(err)
		}
		var busy, frames, copied int
		if err := w.QueryRow(`PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &copied); err != nil || busy != 0 {
			t.Fatalf("truncating checkpoint: busy %d, %v", busy, err)
		}
		got, err := read(t.Context(), `SELECT n, s, b, m FROM t ORDER BY n`)
		if err != nil || len(got) != 4 || got[3].s != "four" {
			t.Fatalf("the next scan read %v, %v; want the four rows", got, err)
		}
	})

	t.Run("at most readers at once", func(t *testing.T) {
		var running, most atomic.Int32
		var wg sync.WaitGroup
		for range 3 * readers {
			wg.Go(func() {
				err := s.Scan(t.Context(), `SELECT n FROM t LIMIT 1`, nil, func(sqlstore.Row) error {
					n := running.Add(1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					time.Sleep(5 * time.Millisecond)
					running.Add(-1)
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if most.Load() > readers {
			t.Errorf("%d scans ran at once, more than the %d connections", most.Load(), readers)
		}
		if len(s.idle) > readers {
			t.Errorf("%d connections kept", len(s.idle))
		}
	})

	t.Run("no database", func(t *testing.T) {
		missing := newScanner(filepath.Join(t.TempDir(), "missing.db"))
		defer missing.close()
		err := missing.Scan(t.Context(), `SELECT 1`, nil, func(sqlstore.Row) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "unable to open") {
			t.Fatalf("a scan of a missing database returned %v", err)
		}
	})

	t.Run("closed", func(t *testing.T) {
		s.close()
		if _, err := read(t.Context(), `SELECT n, s, b, m FROM t`); err == nil {
			t.Fatal("a closed scanner scanned")
		}
	})
}
