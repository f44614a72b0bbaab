// Package connlimit bounds how many connections a listener keeps open at
// once, in all and from any one network, so that an outsider cannot make
// a server hold the memory of thousands of connections, each sending its
// request slowly: before a request is read whole, nothing tells an
// attacker's connection from a client's.
package connlimit

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits are a listener's bounds; a zero bound is none.
type Limits struct {
	// Total is how many connections may be open at once. Past it, the
	// listener accepts no more until one closes: the kernel holds the
	// next in its backlog meanwhile.
	Total int
	// PerNetwork is how many of them may come from one network: an IPv4
	// address, or an IPv6 /64, which one host is often given whole. A
	// connection past it is closed at once.
	PerNetwork int
	// Exempt tells the addresses PerNetwork does not bound: the proxies
	// in front of the server, through which many clients come.
	Exempt func(netip.Addr) bool
	// Logger is told, at most once a minute, of connections closed for
	// PerNetwork.
	Logger *slog.Logger
}

// Listen returns l with lim's bounds.
func Listen(l net.Listener, lim Limits) net.Listener {
	ll := &listener{Listener: l, lim: lim, open: map[netip.Prefix]int{}, closed: make(chan struct{}),
		warn: &rate.Sometimes{Interval: time.Minute}}
	if lim.Total > 0 {
		ll.slots = make(chan struct{}, lim.Total)
	}
	return ll
}

type listener struct {
	net.Listener
	lim       Limits
	slots     chan struct{} // one per open connection; nil without Total
	closed    chan struct{}
	closeOnce sync.Once
	warn      *rate.Sometimes

	mu   sync.Mutex
	open map[netip.Prefix]int // open connections by network
}

// Accept waits for a slot, then for a connection from a network under its
// bound.
func (l *listener) Accept() (net.Conn, error) {
	for {
		if l.slots != nil {
			select {
			case l.slots <- struct{}{}:
			case <-l.closed:
				return nil, net.ErrClosed
			}
		}
		c, err := l.Listener.Accept()
		if err != nil {
			l.release()
			return nil, err
		}
		if network, ok := l.admit(c.RemoteAddr()); ok {
			return &conn{Conn: c, l: l, network: network}, nil
		}
		c.Close()
		l.release()
	}
}

// admit counts a connection from addr in its network, and returns that
// network (none, invalid, where no bound applies), or false if the network
// has as many connections open as it may.
func (l *listener) admit(addr net.Addr) (network netip.Prefix, ok bool) {
	tcp, isTCP := addr.(*net.TCPAddr)
	if l.lim.PerNetwork <= 0 || !isTCP {
		return netip.Prefix{}, true
	}
	ip := tcp.AddrPort().Addr().Unmap()
	if l.lim.Exempt != nil && l.lim.Exempt(ip) {
		return netip.Prefix{}, true
	}
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	network, _ = ip.WithZone("").Prefix(bits)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[network] >= l.lim.PerNetwork {
		if l.lim.Logger != nil {
			l.warn.Do(func() {
				l.lim.Logger.Warn("closed a connection: its network has as many open as one may (others may follow, unlogged for a minute)",
					"network", network.String(), "open", l.open[network])
			})
		}
		return netip.Prefix{}, false
	}
	l.open[network]++
	return network, true
}

func (l *listener) release() {
	if l.slots != nil {
		<-l.slots
	}
}

func (l *listener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// conn gives back its slot and its network's count once closed.
type conn struct {
	net.Conn
	l       *listener
	network netip.Prefix // the network counted; invalid for none
	once    sync.Once
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
		if c.network.IsValid() {
			c.l.mu.Lock()
			if c.l.open[c.network]--; c.l.open[c.network] == 0 {
				delete(c.l.open, c.network)
			}
			c.l.mu.Unlock()
		}
		c.l.release()
	})
	return err
}
