package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"golang.org/x/sys/unix"

	"github.com/openpca/openpca"
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
			db, err := postgres.OpenDB(addr, "")
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
	db, err := postgres.OpenDB("postgres://u@/db?host="+dir, "")
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

// TestSilentDatabase: with the database's packets dropped (iptables; its
// host gone, or a failover that moved its address), a read fails as the
// database out of reach within the server's own bounds (see
// postgres/dial.go), not at the caller's deadline as it did (110 s for a
// request); and reads work again once the packets pass.
func TestSilentDatabase(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("dropping packets with iptables takes root, as CI runs")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Fatal("iptables is missing: apt-get install iptables (.ci/run does)")
	}
	pg, err := testenv.StartPostgres() // a cluster of its own: its port goes silent
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	dsn, err := pg.NewDB()
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	store, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.ListCAs(t.Context(), "111122223333", openpca.CACursor{}, 10); err != nil {
		t.Fatal(err)
	}
	silence := func(op string) error {
		for _, dir := range []string{"--sport", "--dport"} {
			if out, err := exec.Command("iptables", op, "INPUT", "-i", "lo", "-p", "tcp", dir, u.Port(), "-j", "DROP").CombinedOutput(); err != nil {
				return fmt.Errorf("iptables %s: %v: %s", op, err, out)
			}
		}
		return nil
	}
	if err := silence("-A"); err != nil {
		t.Fatal(err)
	}
	silenced := true
	defer func() {
		if silenced {
			silence("-D")
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	_, err = store.ListCAs(ctx, "111122223333", openpca.CACursor{}, 10)
	if e, ok := errors.AsType[*openpca.Error](err); !ok || e.Code != openpca.CodeServiceUnavailable || ctx.Err() != nil {
		t.Errorf("a read from a database gone silent: %v (the caller's deadline: %v), want ServiceUnavailableException before it", err, ctx.Err())
	}
	if err := silence("-D"); err != nil {
		t.Fatal(err)
	}
	silenced = false
	// Connections the silence ended may still be in the pool: each is
	// found so by its first use, and given up.
	for i := 0; ; i++ {
		if _, err = store.ListCAs(t.Context(), "111122223333", openpca.CACursor{}, 10); err == nil || i == 3 {
			break
		}
	}
	if err != nil {
		t.Errorf("a read once the database is heard again: %v", err)
	}
}
