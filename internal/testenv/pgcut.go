package testenv

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A CommitCutter is a relay in front of PostgreSQL that reads the
// server's side of the wire protocol, and once armed, cuts the connection
// of a transaction that matched just after PostgreSQL answered its COMMIT,
// without passing the answer on: the transaction is committed, and its
// client learns only that the connection broke, as it would of a network
// cut or a server's crash between its commit and its answer. It can also
// hold a client's next statement within a transaction for a while, as a
// server frozen mid-transaction (a paused VM, a stall) would. The client
// must connect without TLS (sslmode=disable).
type CommitCutter struct {
	l     net.Listener
	to    string
	armed atomic.Bool
	// freeze, if not 0, is how long the next statement sent within a
	// transaction is held.
	freeze atomic.Int64
	// match, if set, decides from the CommandComplete tags of a
	// transaction whether its COMMIT is cut.
	match atomic.Pointer[func(tags []string) bool]
	cuts  atomic.Int64
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewCommitCutter starts a CommitCutter in front of the PostgreSQL
// database at dsn, and returns it with the address of the database through
// it; it stops when the test ends.
func NewCommitCutter(t testing.TB, dsn string) (*CommitCutter, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	addr := u.Host
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &CommitCutter{l: l, to: addr, conns: map[net.Conn]struct{}{}}
	c.wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			c.wg.Go(func() { c.pass(conn) })
		}
	})
	t.Cleanup(func() {
		l.Close()
		c.mu.Lock()
		for conn := range c.conns {
			conn.Close()
		}
		c.conns = nil
		c.mu.Unlock()
		c.wg.Wait()
	})
	u.Host = l.Addr().String()
	return c, u.String()
}

// CutNext arms the cutter: the next COMMIT answered in a transaction whose
// statements' tags match says (all of them if match is nil) is cut.
func (c *CommitCutter) CutNext(match func(tags []string) bool) {
	c.match.Store(&match)
	c.armed.Store(true)
}

// FreezeNext holds the next statement a client sends within a
// transaction for d before passing it on.
func (c *CommitCutter) FreezeNext(d time.Duration) { c.freeze.Store(int64(d)) }

// Cuts is how many commits were cut.
func (c *CommitCutter) Cuts() int64 { return c.cuts.Load() }

// MultiRowInsert matches a transaction that inserted several rows in one
// statement: a group commit's batch of several writes.
func MultiRowInsert(tags []string) bool {
	for _, tag := range tags {
		f := strings.Fields(tag)
		if len(f) == 3 && f[0] == "INSERT" {
			if n, _ := strconv.Atoi(f[2]); n >= 2 {
				return true
			}
		}
	}
	return false
}

func (c *CommitCutter) track(conns ...net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conns == nil {
		for _, conn := range conns {
			conn.Close()
		}
		return false
	}
	for _, conn := range conns {
		c.conns[conn] = struct{}{}
	}
	return true
}

func (c *CommitCutter) untrack(conns ...net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range conns {
		delete(c.conns, conn)
	}
}

func (c *CommitCutter) pass(client net.Conn) {
	server, err := net.Dial("tcp", c.to)
	if err != nil {
		client.Close()
		return
	}
	if !c.track(client, server) {
		return
	}
	defer c.untrack(client, server)
	var inTx atomic.Bool // the server said it is within a transaction
	go func() {
		defer server.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 && inTx.Load() {
				if d := c.freeze.Load(); d != 0 && c.freeze.CompareAndSwap(d, 0) {
					time.Sleep(time.Duration(d))
				}
			}
			if n > 0 {
				if _, err := server.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	defer client.Close()
	defer server.Close()
	r := bufio.NewReader(server)
	var tags []string // of the transaction under way
	hdr := make([]byte, 5)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(hdr[1:])) - 4
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		switch hdr[0] {
		case 'C': // CommandComplete
			tag := string(bytes.TrimRight(body, "\x00"))
			if tag == "COMMIT" && c.armed.Load() {
				match := c.match.Load()
				if (*match == nil || (*match)(tags)) && c.armed.CompareAndSwap(true, false) {
					c.cuts.Add(1)
					// Reset, not a FIN: the client sees a broken
					// connection, as a crash or a cut would leave it.
					server.(*net.TCPConn).SetLinger(0)
					client.(*net.TCPConn).SetLinger(0)
					return
				}
			}
			tags = append(tags, tag)
		case 'Z': // ReadyForQuery: 'I' outside a transaction
			if len(body) == 1 && body[0] == 'I' {
				tags = tags[:0]
			}
			inTx.Store(len(body) == 1 && body[0] != 'I')
		}
		if _, err := client.Write(append(hdr, body...)); err != nil {
			return
		}
	}
}
