package postgres_test

import (
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"golang.org/x/sys/unix"

	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/postgres"
)

// TestConnectionsFindSilentPeers: each connection of a server to
// PostgreSQL gives up on a peer that went silent within about 30 s (see
// postgres/dial.go): its sockets have TCP_USER_TIMEOUT and keepalives.
// The address's connect_timeout still bounds the dial.
func TestConnectionsFindSilentPeers(t *testing.T) {
	dsn := testenv.NewPostgresDB(t)
	for _, tc := range []struct {
		name, params string
	}{
		{"the address as it is", ""},
		{"with connect_timeout", "connect_timeout=7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := dsn
			if tc.params != "" {
				addr += "&" + tc.params
			}
			db, err := postgres.OpenDB(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			conn, err := db.Conn(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var raw syscall.RawConn
			if err := conn.Raw(func(c any) error {
				raw, err = c.(*stdlib.Conn).Conn().PgConn().Conn().(*net.TCPConn).SyscallConn()
				return err
			}); err != nil {
				t.Fatal(err)
			}
			for _, o := range []struct {
				name       string
				level, opt int
				want       int
			}{
				{"TCP_USER_TIMEOUT (ms)", unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 30000},
				{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
				{"TCP_KEEPIDLE (s)", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 15},
				{"TCP_KEEPINTVL (s)", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 5},
				{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 3},
			} {
				var got int
				var gerr error
				raw.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), o.level, o.opt) })
				if gerr != nil || got != o.want {
					t.Errorf("%s is %d (%v), want %d", o.name, got, gerr, o.want)
				}
			}
		})
	}
}

// TestDialUnixSocket: an address of a Unix socket (host=/run/postgresql)
// connects as before: the TCP options are not asked of it.
func TestDialUnixSocket(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(dir, ".s.PGSQL.5432"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan struct{})
	go func() {
		if c, err := l.Accept(); err == nil {
			close(accepted)
			c.Close() // not PostgreSQL: the connection's start fails, after the dial
		}
	}()
	db, err := postgres.OpenDB("postgres://u@/db?host=" + dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.PingContext(t.Context())
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatalf("the Unix socket was not dialled: %v", err)
	}
	if err == nil {
		t.Error("a listener that is not PostgreSQL answered a ping")
	}
}
