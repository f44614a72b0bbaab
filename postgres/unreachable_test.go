package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestUnreachable: errors of a database that could not be reached are
// told apart from those of what a statement asked, so that clients are
// told to retry (ServiceUnavailableException; OCSP's tryLater).
func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, refused := pgconn.Connect(context.Background(), "postgres://u@"+addr+"/db?connect_timeout=5")
	if refused == nil {
		t.Fatal("a connection to a closed port succeeded")
	}
	// Go's dial timeout is an error that errors.Is context.DeadlineExceeded.
	cfg, err := pgconn.ParseConfig("postgres://u@" + addr + "/db")
	if err != nil {
		t.Fatal(err)
	}
	cfg.DialFunc = (&net.Dialer{Timeout: time.Nanosecond}).DialContext
	_, timedOut := pgconn.ConnectConfig(context.Background(), cfg)
	if !errors.Is(timedOut, context.DeadlineExceeded) {
		t.Fatalf("a dial that timed out: %v, not a deadline's error", timedOut)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, canceled := pgconn.Connect(ctx, "postgres://u@"+addr+"/db")
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", refused, true},
		{"a dial that timed out", timedOut, true},
		{"a connection the client went away from", canceled, false},
		{"connection lost mid-answer", fmt.Errorf("reading CA: %w", io.ErrUnexpectedEOF), true},
		{"server shutting down", &pgconn.PgError{Code: "57P01"}, true},
		{"server starting", &pgconn.PgError{Code: "57P03"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"a session ended idle in a transaction", &pgconn.PgError{Severity: "FATAL", Code: "25P03"}, true},
		{"a session ended idle", &pgconn.PgError{Severity: "FATAL", Code: "57P05"}, true},
		{"a connection pgx closed", pgconn.ErrConnClosed, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, false},
		{"a statement's own error", errors.New("sql: no rows in result set"), false},
		{"the request's deadline, or a lock waited on", context.DeadlineExceeded, false},
		{"the client gone", context.Canceled, false},
	} {
		if got := unreachable(fmt.Errorf("postgres: %w", tc.err)); got != tc.want {
			t.Errorf("%s (%v): unreachable %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
