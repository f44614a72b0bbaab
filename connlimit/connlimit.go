// Package connlimit bounds how many connections a listener keeps open at
// once, in all and from any one network, so that an outsider cannot make
// a server hold the memory of thousands of connections, each sending its
// request slowly: before a request is read whole, nothing tells an
// attacker's connection from a client's. Connections that wait idle
// between requests make room for new ones when the listener is full, so
// that holding its slots takes requests, not silence.
package connlimit

import (
	"cmp"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/openpca/openpca/clientaddr"
)

// Limits are a listener's bounds; a zero bound is none.
type Limits struct {
	// Total is how many connections may be open at once. Past it, a new
	// connection waits for the one idle the longest, if one is, to be
	// closed (its next read fails), and otherwise for any to close.
	Total int
	// PerNetwork is how many of them may come from one network: an IPv4
	// address, or an IPv6 /64, which one host is often given whole. A
	// connection past it is closed at once.
	PerNetwork int
	// Exempt tells the addresses PerNetwork does not bound: the proxies
	// in front of the server, through which many clients come.
	Exempt func(netip.Addr) bool
	// Logger is told, at most once a minute, of connections closed for
	// PerNetwork, and of a listener full.
	Logger *slog.Logger
	// NextRequest is how long a connection idle between requests has,
	// once the first bytes of its next request come, to have its server
	// read on (0: DefaultNextRequest). Those bytes make it busy, no longer
	// to be evicted, and net/http waits for its first four under its idle
	// timeout: a byte sent after each request held a slot for minutes.
	NextRequest time.Duration
}

// DefaultNextRequest is Limits.NextRequest's default: the server's own
// bound on a request's headers.
const DefaultNextRequest = 10 * time.Second

// A Listener is a net.Listener with Limits. Its ConnState must be the
// http.Server's, for it to know which connections are idle.
type Listener struct {
	net.Listener
	lim        Limits
	slots      chan struct{} // one per open connection; nil without Total
	closed     chan struct{}
	closeOnce  sync.Once
	idled      chan struct{} // told when a connection turns idle
	warnRefuse *rate.Sometimes
	warnFull   *rate.Sometimes

	mu   sync.Mutex
	open map[netip.Prefix]int // open connections by network
	idle map[*conn]time.Time  // connections idle between requests, since when
}

// Listen returns l with lim's bounds.
func Listen(l net.Listener, lim Limits) *Listener {
	ll := &Listener{Listener: l, lim: lim, closed: make(chan struct{}), idled: make(chan struct{}, 1),
		warnRefuse: &rate.Sometimes{Interval: time.Minute}, warnFull: &rate.Sometimes{Interval: time.Minute},
		open: map[netip.Prefix]int{}, idle: map[*conn]time.Time{}}
	if lim.Total > 0 {
		ll.slots = make(chan struct{}, lim.Total)
	}
	return ll
}

// Accept waits for a connection from a network under its bound, then for
// a slot for it: so that an idle connection is evicted only for a
// connection that is there.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		network, ok := l.admit(c.RemoteAddr())
		if !ok {
			c.Close()
			continue
		}
		cc := &conn{Conn: c, l: l, network: network}
		if err := l.slot(); err != nil {
			cc.Close()
			return nil, err
		}
		cc.slotted = true
		return cc, nil
	}
}

// evictionWait is how long a slot is waited for after an eviction before
// another idle connection is evicted: the evicted one may first answer a
// request its server had already read.
const evictionWait = time.Second

// slot takes a slot: a free one, or that of the connection idle the
// longest, which it evicts; or else it waits for one.
func (l *Listener) slot() error {
	if l.slots == nil {
		return nil
	}
	for {
		select {
		case l.slots <- struct{}{}:
			return nil
		default:
		}
		if l.lim.Logger != nil {
			l.warnFull.Do(func() {
				l.lim.Logger.Warn("the listener has as many connections open as it may: it closes idle ones, or new ones wait (logged at most once a minute)",
					"open", l.lim.Total)
			})
		}
		idled, retry := l.idled, (*time.Timer)(nil)
		var retried <-chan time.Time
		if idlest := l.idlest(); idlest != nil {
			idlest.evict() // its server closes it, giving its slot back
			retry = time.NewTimer(evictionWait)
			idled, retried = nil, retry.C
		}
		var err error
		select {
		case l.slots <- struct{}{}:
			err = nil
		case <-idled:
			continue
		case <-retried:
			continue
		case <-l.closed:
			err = net.ErrClosed
		}
		if retry != nil {
			retry.Stop()
		}
		return err
	}
}

// idlest returns the connection idle the longest, evicted, or nil if none
// is idle. A connection that a request reached first is no longer idle:
// its read and the eviction decide between them (conn.state), so that no
// request read is then cut off.
func (l *Listener) idlest() *conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.idle) > 0 {
		var idlest *conn
		var since time.Time
		for c, t := range l.idle {
			if idlest == nil || t.Before(since) {
				idlest, since = c, t
			}
		}
		delete(l.idle, idlest)
		if idlest.state.CompareAndSwap(idle, evicted) {
			return idlest
		}
	}
	return nil
}

// ConnState is for http.Server's ConnState: it keeps track of the
// connections idle between requests.
func (l *Listener) ConnState(nc net.Conn, state http.ConnState) {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, ok := nc.(*conn)
	if !ok || c.l != l {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if state != http.StateIdle {
		// A request its server had read ahead (pipelined, or in TLS's
		// buffer) reads nothing from the connection: it is busy all the
		// same.
		c.state.CompareAndSwap(idle, busy)
		delete(l.idle, c)
		return
	}
	if c.state.CompareAndSwap(busy, idle) {
		l.idle[c] = time.Now()
		select {
		case l.idled <- struct{}{}:
		default:
		}
	}
}

// admit counts a connection from addr in its network, and returns that
// network (none, invalid, where no bound applies), or false if the network
// has as many connections open as it may.
func (l *Listener) admit(addr net.Addr) (network netip.Prefix, ok bool) {
	tcp, isTCP := addr.(*net.TCPAddr)
	if l.lim.PerNetwork <= 0 || !isTCP {
		return netip.Prefix{}, true
	}
	ip := tcp.AddrPort().Addr().Unmap()
	if l.lim.Exempt != nil && l.lim.Exempt(ip) {
		return netip.Prefix{}, true
	}
	network = clientaddr.Network(ip, 32, 64)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[network] >= l.lim.PerNetwork {
		if l.lim.Logger != nil {
			l.warnRefuse.Do(func() {
				l.lim.Logger.Warn("closed a connection: its network has as many open as one may (others may follow, unlogged for a minute)",
					"network", network.String(), "open", l.open[network])
			})
		}
		return netip.Prefix{}, false
	}
	l.open[network]++
	return network, true
}

func (l *Listener) release() {
	if l.slots != nil {
		<-l.slots
	}
}

// Close closes the listener; connections it accepted stay open.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// conn gives back its slot and its network's count once closed.
type conn struct {
	net.Conn
	l       *Listener
	network netip.Prefix // the network counted; invalid for none
	slotted bool         // holds a slot
	once    sync.Once
	state   atomic.Int32 // busy, idle or evicted
	// deadlines orders setting the read deadline with an eviction, which
	// pins it in the past.
	deadlines sync.Mutex
}

// A connection's states: idle between requests, as http.Server tells;
// evicted, once taken to make room, when it reads nothing more.
const (
	busy int32 = iota
	idle
	evicted
)

// past is the read deadline of an evicted connection.
var past = time.Unix(1, 0)

// evict has the connection's next read fail, however its server sets its
// deadline, so that its server closes it. It is not closed here: a
// request its server had already read ahead still gets its answer.
func (c *conn) evict() {
	c.deadlines.Lock()
	defer c.deadlines.Unlock()
	c.Conn.SetReadDeadline(past)
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.deadlines.Lock()
	defer c.deadlines.Unlock()
	if c.state.Load() == evicted {
		t = past
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *conn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// Read reads, and marks the connection busy once bytes of a request come:
// an evicted one gives them up, as closed, so that no request read from it
// runs.
func (c *conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && c.state.Load() != busy {
		if !c.state.CompareAndSwap(idle, busy) {
			return 0, net.ErrClosed
		}
		// Its server, which waited for these bytes under its idle
		// timeout, sets a deadline of its own once it has what it waits
		// for: until then, these bytes alone must not hold the slot.
		c.SetReadDeadline(time.Now().Add(cmp.Or(c.l.lim.NextRequest, DefaultNextRequest)))
	}
	return n, err
}

// CloseWrite and ReadFrom pass on what a TCP connection does: net/http
// shuts a connection's writing before it closes it, so that a client
// still sending a body the server refused reads the answer rather than a
// reset, and serves files with sendfile.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *conn) ReadFrom(r io.Reader) (int64, error) { return io.Copy(c.Conn, r) }

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.idle, c)
		if c.network.IsValid() {
			if c.l.open[c.network]--; c.l.open[c.network] == 0 {
				delete(c.l.open, c.network)
			}
		}
		c.l.mu.Unlock()
		if c.slotted {
			c.l.release()
		}
	})
	return err
}
