package testenv

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
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

// A CommitCutter is a relay in front of PostgreSQL that reads both sides
// of the wire protocol, and once armed, cuts the connection of a
// transaction that matched at its COMMIT, as a network cut or a crash
// would, so that its client learns only that the connection broke: just
// after PostgreSQL answered the COMMIT (the transaction committed), or
// just before PostgreSQL gets it (the transaction is aborted). It can
// then keep the database out of the client's reach until Heal, as a
// network partition would. It can also hold a client's next statement
// within a transaction for a while, as a server frozen mid-transaction (a
// paused VM, a stall) would. The client must connect without TLS
// (sslmode=disable).
type CommitCutter struct {
	l     net.Listener
	to    string
	armed atomic.Pointer[Cut]
	// freeze, if not 0, is how long the next statement sent within a
	// transaction is held.
	freeze atomic.Int64
	// apart: the database is out of reach, every connection refused.
	apart atomic.Bool
	cuts  atomic.Int64
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// A Cut says which COMMIT a CommitCutter cuts, and how.
type Cut struct {
	// Match, if set, decides from the CommandComplete tags of a
	// transaction whether its COMMIT is cut; nil matches all.
	Match func(tags []string) bool
	// Before cuts the COMMIT before PostgreSQL gets it, which aborts the
	// transaction, rather than once it committed.
	Before bool
	// Apart keeps the database out of reach from the cut on: every
	// connection through the cutter is closed, and new ones refused,
	// until Heal.
	Apart bool
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
			if c.apart.Load() {
				conn.Close()
				continue
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
// statements' tags match says (all of them if match is nil) is cut after
// PostgreSQL committed it.
func (c *CommitCutter) CutNext(match func(tags []string) bool) {
	c.Arm(Cut{Match: match})
}

// Arm has the cutter cut the next COMMIT that cut matches, as it says.
func (c *CommitCutter) Arm(cut Cut) {
	c.armed.Store(&cut)
}

// Heal brings the database back within reach after a Cut kept it apart.
func (c *CommitCutter) Heal() { c.apart.Store(false) }

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
	// One accepted as a cut kept the database apart is refused too.
	if c.conns == nil || c.apart.Load() {
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
	var (
		inTx atomic.Bool // the server said it is within a transaction
		mu   sync.Mutex
		tags []string // of the transaction under way
	)
	// cutHere reports whether the cut armed is to cut this transaction's
	// COMMIT, before PostgreSQL gets it or after it answered, and if so
	// disarms it and breaks the connection.
	cutHere := func(before bool) bool {
		armed := c.armed.Load()
		if armed == nil || armed.Before != before {
			return false
		}
		mu.Lock()
		match := armed.Match == nil || armed.Match(tags)
		mu.Unlock()
		if !match || !c.armed.CompareAndSwap(armed, nil) {
			return false
		}
		c.cuts.Add(1)
		// Reset, not a FIN: the client sees a broken connection, as a
		// crash or a cut would leave it.
		server.(*net.TCPConn).SetLinger(0)
		client.(*net.TCPConn).SetLinger(0)
		server.Close()
		client.Close()
		if armed.Apart {
			c.mu.Lock()
			c.apart.Store(true)
			for conn := range c.conns {
				conn.Close()
			}
			c.mu.Unlock()
		}
		return true
	}
	go func() {
		defer server.Close()
		r := bufio.NewReader(client)
		// The client's first message, of startup, has no type byte.
		for startup := true; ; startup = false {
			msg, err := readMessage(r, startup)
			if err != nil {
				return
			}
			if !startup && inTx.Load() {
				if d := c.freeze.Load(); d != 0 && c.freeze.CompareAndSwap(d, 0) {
					time.Sleep(time.Duration(d))
				}
				if msg[0] == 'Q' && strings.EqualFold(strings.TrimSpace(string(bytes.TrimRight(msg[5:], "\x00"))), "commit") && cutHere(true) {
					return
				}
			}
			if _, err := server.Write(msg); err != nil {
				return
			}
		}
	}()
	defer client.Close()
	defer server.Close()
	r := bufio.NewReader(server)
	for {
		msg, err := readMessage(r, false)
		if err != nil {
			return
		}
		body := msg[5:]
		switch msg[0] {
		case 'C': // CommandComplete
			tag := string(bytes.TrimRight(body, "\x00"))
			if tag == "COMMIT" && cutHere(false) {
				return
			}
			mu.Lock()
			tags = append(tags, tag)
			mu.Unlock()
		case 'Z': // ReadyForQuery: 'I' outside a transaction
			if len(body) == 1 && body[0] == 'I' {
				mu.Lock()
				tags = tags[:0]
				mu.Unlock()
			}
			inTx.Store(len(body) == 1 && body[0] != 'I')
		}
		if _, err := client.Write(msg); err != nil {
			return
		}
	}
}

// readMessage reads one message of PostgreSQL's wire protocol: a type
// byte and a length that counts itself, or, for a client's startup
// message, the length alone.
func readMessage(r *bufio.Reader, startup bool) ([]byte, error) {
	head := 5
	if startup {
		head = 4
	}
	msg := make([]byte, head)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(msg[head-4:]))
	if n < 4 || n > 1<<30 {
		return nil, fmt.Errorf("message length %d", n)
	}
	msg = append(msg, make([]byte, n-4)...)
	_, err := io.ReadFull(r, msg[head:])
	return msg, err
}
