// Package connlimit bounds how many connections a listener keeps open at
// once, in all and from any one network, so that an outsider cannot make
// a server hold the memory of thousands of connections, each sending its
// request slowly: before a request is read whole, nothing tells an
// attacker's connection from a client's. Connections that wait idle
// between requests make room for new ones when the listener is full, and
// so do those that have been reading a request's headers, or awaiting its
// body (AwaitBody, Leaving), the longest (a client sends them at once):
// holding the slots takes requests, not silence, nor a byte now and then,
// nor a body held back. New connections wait for a slot in a queue of the
// listener's own, not the kernel's, where those of networks whose
// connections were cut off lately go last: many networks that hold slots
// so, each connection made again as soon as it is cut off, keep a client
// of another network waiting only for the next slot.
package connlimit

import (
	"cmp"
	"context"
	"errors"
	"io"
	"iter"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
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
	// closed (its next read fails), and otherwise for any to close. Of
	// those waiting in the listener's queue (see enqueue), one of a
	// network whose connections were not cut off lately, that holds the
	// fewest slots, takes the next (see place).
	Total int
	// PerNetwork is how many of them may come from one network: an IPv4
	// address, or an IPv6 /64, which one host is often given whole. A
	// connection past it is closed at once.
	PerNetwork int
	// RatePerNetwork is how many connections a second one network may
	// open, on average, in bursts of as many: a connection past it is
	// closed at once. A TLS handshake costs the server 0.3 ms of CPU
	// (ECDSA) to 1.6 ms (RSA-2048), and a client that sends a ClientHello
	// it kept, and never the rest, none: one address had a server make
	// 4,200 handshakes a second, 1.6 of its 2 CPUs.
	RatePerNetwork float64
	// Exempt tells the addresses PerNetwork and RatePerNetwork do not
	// bound: the proxies in front of the server, through which many
	// clients come.
	Exempt func(netip.Addr) bool
	// Logger is told, at most once a minute, of connections closed for
	// PerNetwork, for RatePerNetwork, and of a listener full.
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
	queuing    sync.Once     // starts acceptQueued, at the first Accept
	idled      chan struct{} // told when a connection turns idle
	arrived    chan struct{} // told when a connection is queued
	dequeued   chan struct{} // told when Accept takes a queued connection
	warnRefuse *rate.Sometimes
	warnRate   *rate.Sometimes
	warnFull   *rate.Sometimes
	warnAccept *rate.Sometimes

	mu   sync.Mutex
	open map[netip.Prefix]int       // open connections by network
	held map[netip.Prefix]int       // of those, the ones that hold slots
	cuts map[netip.Prefix]cutRecord // connections cut off lately (wasCut)
	// ahead counts, by network, the queued connections before one (places).
	ahead map[netip.Prefix]int
	// opened paces the connections each network opens (RatePerNetwork):
	// those whose bucket is full again are forgotten, past maxPaced.
	opened map[netip.Prefix]*rate.Limiter
	idle   map[*conn]time.Time // connections idle between requests, since when
	// reading are the connections reading a request's headers (their
	// first since they were accepted, or a next one since its first
	// bytes came), since when.
	reading map[*conn]time.Time
	// awaiting are the connections whose request's handler waits for its
	// body (AwaitBody), or refused it unread (Leaving), since when.
	awaiting map[*conn]time.Time
	// queued are the connections accepted and counted that wait for a
	// slot, the longest first.
	queued []*conn
	// acceptErr ends Accept once no connection is queued: the error of
	// the listener's own Accept, which is not tried again.
	acceptErr error
}

// Listen returns l with lim's bounds.
func Listen(l net.Listener, lim Limits) *Listener {
	ll := &Listener{Listener: l, lim: lim, closed: make(chan struct{}), idled: make(chan struct{}, 1), arrived: make(chan struct{}, 1),
		dequeued:   make(chan struct{}, 1),
		warnRefuse: &rate.Sometimes{Interval: time.Minute}, warnRate: &rate.Sometimes{Interval: time.Minute}, warnFull: &rate.Sometimes{Interval: time.Minute},
		warnAccept: &rate.Sometimes{Interval: time.Minute},
		open:       map[netip.Prefix]int{}, held: map[netip.Prefix]int{}, cuts: map[netip.Prefix]cutRecord{}, ahead: map[netip.Prefix]int{}, opened: map[netip.Prefix]*rate.Limiter{}, idle: map[*conn]time.Time{}, reading: map[*conn]time.Time{},
		awaiting: map[*conn]time.Time{}}
	if lim.Total > 0 {
		ll.slots = make(chan struct{}, lim.Total)
	}
	return ll
}

// Accept waits for a queued connection (acceptQueued), then for a slot,
// so that an idle connection is evicted only for a connection that is
// there, and then gives the slot to a queued connection (dequeue).
func (l *Listener) Accept() (net.Conn, error) {
	l.queuing.Do(func() { go l.acceptQueued() })
	for {
		l.mu.Lock()
		n, err := len(l.queued), l.acceptErr
		l.mu.Unlock()
		if n == 0 {
			if err != nil {
				return nil, err
			}
			select {
			case <-l.arrived:
			case <-l.closed:
				return nil, net.ErrClosed
			}
			continue
		}
		if err := l.slot(); err != nil {
			return nil, err
		}
		if c := l.dequeue(); c != nil {
			return c, nil
		}
		l.release() // the listener was closed meanwhile
	}
}

// acceptQueued accepts the connections the kernel queues, as they come,
// counts each in its network (or closes it, past the network's bounds),
// and queues it for Accept (enqueue): in the kernel's queue alone, a
// client waited behind every connection queued before it, each slot taken
// back after readingGrace. It ends with the listener's Accept, whose error
// then ends Accept once none is queued; one of too many files open, or
// another that may pass, is waited out, as net/http does.
func (l *Listener) acceptQueued() {
	var wait time.Duration
	for {
		c, err := l.Listener.Accept()
		var temporary interface{ Temporary() bool }
		switch {
		case err == nil:
			wait = 0
		case errors.As(err, &temporary) && temporary.Temporary():
			wait = min(max(2*wait, 5*time.Millisecond), time.Second)
			if l.lim.Logger != nil {
				l.warnAccept.Do(func() {
					l.lim.Logger.Warn("accepting a connection failed; trying again (logged at most once a minute)", "error", err, "in", wait)
				})
			}
			select {
			case <-time.After(wait):
			case <-l.closed:
			}
			continue
		default:
			l.mu.Lock()
			l.acceptErr = err
			l.mu.Unlock()
			tell(l.arrived)
			return
		}
		network, ok := l.admit(c.RemoteAddr())
		if !ok {
			c.Close()
			continue
		}
		cc := &conn{Conn: c, l: l, network: network}
		cc.state.Store(reading)
		l.enqueue(cc)
	}
}

// tell signals ch, which holds one signal, unless it holds one already.
func tell(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// enqueue queues c once there is room, and tells Accept. Past the queue's
// bound, c takes the place of the queued connection last in place (the
// newest of those), if that is of a network whose connections were cut
// off lately, and after c's own; or else, if c's network's were cut off
// lately, c is closed; or else c waits for Accept to take one, and the
// connections that come meanwhile wait in the kernel's queue. So networks
// whose connections hold slots without sending their requests keep none
// of another's waiting behind theirs, and a network's connections are
// closed here only if its own were cut off: otherwise they wait their
// turn, as in the kernel's queue. (A client that shares its address with
// such connections shares their lot, as it shares PerNetwork.) If the
// listener is closed first, it closes c.
func (l *Listener) enqueue(c *conn) {
	for {
		l.mu.Lock()
		select {
		case <-l.closed:
			l.mu.Unlock()
			c.Close()
			return
		default:
		}
		if len(l.queued) < min(max(l.lim.Total, minQueued), maxQueued) {
			l.queued = append(l.queued, c)
			l.mu.Unlock()
			tell(l.arrived)
			return
		}
		own := place{cuts: l.recentCuts(c.network), held: l.heldBy(c)}
		for _, q := range l.queued {
			if c.network.IsValid() && q.network == c.network {
				own.ahead++
			}
		}
		at, last := -1, own
		for i, p := range l.places() {
			if p.cuts > 0 && (p.after(last) || at >= 0 && !last.after(p)) {
				at, last = i, p
			}
		}
		if at >= 0 {
			closed := l.queued[at]
			l.queued = append(slices.Delete(l.queued, at, at+1), c)
			l.mu.Unlock()
			closed.Close()
			tell(l.arrived)
			return
		}
		if own.cuts > 0 {
			l.mu.Unlock()
			c.Close()
			return
		}
		l.mu.Unlock()
		select {
		case <-l.dequeued:
		case <-l.closed:
		}
	}
}

// A listener's queue holds as many connections as Total, at least
// minQueued and at most maxQueued. Each holds a file descriptor (a
// connection the kernel queues holds its memory all the same, and hides
// its network), and each choice of one reads them all.
const (
	minQueued = 64
	maxQueued = 1024
)

// A place is a queued connection's place in the order in which queued
// connections take slots: how many of its network's were cut off lately
// (recentCuts), the slots its network holds, and how many of its
// network's are queued before it, so that networks take turns.
type place struct{ cuts, held, ahead int }

func (a place) after(b place) bool {
	return cmp.Or(cmp.Compare(a.cuts, b.cuts), cmp.Compare(a.held, b.held), cmp.Compare(a.ahead, b.ahead)) > 0
}

// cutRecord is how many of a network's connections were cut off (taken
// while reading a request's headers or awaiting its body) since first,
// and when the last was.
type cutRecord struct {
	n    int
	last time.Time
}

// cutMemory is how long a network's cut connections count against its
// new ones; maxCutNetworks how many networks' cuts a listener keeps, those
// older than cutMemory forgotten first, and then the one cut the longest
// ago.
const (
	cutMemory      = time.Minute
	maxCutNetworks = 4096
)

// wasCut counts a connection of network cut off. Call it with l.mu held.
func (l *Listener) wasCut(network netip.Prefix) {
	if !network.IsValid() {
		return
	}
	now := time.Now()
	r, ok := l.cuts[network]
	if !ok && len(l.cuts) >= maxCutNetworks {
		maps.DeleteFunc(l.cuts, func(_ netip.Prefix, r cutRecord) bool { return now.Sub(r.last) >= cutMemory })
		if len(l.cuts) >= maxCutNetworks {
			// Every one cut within the minute: the one cut the
			// longest ago is forgotten, not this one.
			oldest := netip.Prefix{}
			for n, r := range l.cuts {
				if !oldest.IsValid() || r.last.Before(l.cuts[oldest].last) {
					oldest = n
				}
			}
			delete(l.cuts, oldest)
		}
	}
	if now.Sub(r.last) >= cutMemory {
		r.n = 0
	}
	l.cuts[network] = cutRecord{n: r.n + 1, last: now}
}

// recentCuts is how many of network's connections were cut off, in a run
// of cuts less than cutMemory apart that has not ended. Call it with l.mu
// held.
func (l *Listener) recentCuts(network netip.Prefix) int {
	if r, ok := l.cuts[network]; ok && time.Since(r.last) < cutMemory {
		return r.n
	}
	return 0
}

// places yields each queued connection's index and place. Call it with
// l.mu held.
func (l *Listener) places() iter.Seq2[int, place] {
	return func(yield func(int, place) bool) {
		clear(l.ahead)
		for i, q := range l.queued {
			p := place{cuts: l.recentCuts(q.network), held: l.heldBy(q), ahead: l.ahead[q.network]}
			if q.network.IsValid() {
				l.ahead[q.network]++
			}
			if !yield(i, p) {
				return
			}
		}
	}
}

// heldBy is how many slots c's network holds: none for a network not
// counted (a proxy's, whose connections are each a client's).
func (l *Listener) heldBy(c *conn) int {
	if !c.network.IsValid() {
		return 0
	}
	return l.held[c.network]
}

// dequeue takes the queued connection first in place (the longest queued
// of those), and gives it a slot; nil if none is queued.
func (l *Listener) dequeue() *conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, first := -1, place{}
	for i, p := range l.places() {
		if at < 0 || first.after(p) {
			at, first = i, p
		}
	}
	if at < 0 {
		return nil
	}
	c := l.queued[at]
	l.queued = slices.Delete(l.queued, at, at+1)
	c.slotted = true
	if c.network.IsValid() {
		l.held[c.network]++
	}
	l.reading[c] = time.Now()
	tell(l.dequeued)
	return c
}

// evictionWait is how long a slot is waited for after an eviction before
// another idle connection is evicted: the evicted one may first answer a
// request its server had already read.
const evictionWait = time.Second

// readingGrace is how long a connection reads a request's headers before
// a new connection may take its place: a client sends them at once, in a
// round trip or two, TLS's handshake first.
const readingGrace = time.Second

// slot takes a slot: a free one, or that of the connection idle the
// longest, which it evicts, or else of the one reading a request's
// headers, or awaiting its body, the longest, past readingGrace; or else
// it waits for one.
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
		if evicted := l.evictable(); evicted != nil {
			evicted.evict() // its server closes it, giving its slot back
			retry = time.NewTimer(evictionWait)
			idled, retried = nil, retry.C
		} else {
			// A connection reading its headers may pass the grace
			// meanwhile.
			retry = time.NewTimer(readingGrace / 4)
			retried = retry.C
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

// evictable returns the connection idle the longest, evicted, or else the
// one reading a request's headers the longest, or else awaiting its body
// (AwaitBody, Leaving), past readingGrace, cut off; or nil if none is. A
// connection that a request reached first is no longer idle, and one
// whose request's handler began no longer reading: its read or its
// handler and the eviction decide between them (conn.state), so that no
// request is then cut off, but in its wait for its body.
func (l *Listener) evictable() *conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, set := range []struct {
		conns    map[*conn]time.Time
		from, to int32
		before   time.Time
	}{{l.idle, idle, evicted, time.Now()}, {l.reading, reading, cut, time.Now().Add(-readingGrace)},
		{l.awaiting, awaiting, cut, time.Now().Add(-readingGrace)}} {
		for {
			var longest *conn
			var since time.Time
			for c, t := range set.conns {
				if longest == nil || t.Before(since) {
					longest, since = c, t
				}
			}
			if longest == nil || since.After(set.before) {
				break
			}
			delete(set.conns, longest)
			if longest.state.CompareAndSwap(set.from, set.to) {
				if set.to == cut {
					l.wasCut(longest.network)
				}
				return longest
			}
		}
	}
	return nil
}

// Limit has srv tell l of its connections and their requests: l's
// ConnState and ConnContext (before any srv had), and its handler told when
// each request begins: every request, "OPTIONS *" too, which net/http
// would otherwise answer itself, unseen. Call it before srv serves l.
func (l *Listener) Limit(srv *http.Server) {
	srv.DisableGeneralOptionsHandler = true
	state, connContext, h := srv.ConnState, srv.ConnContext, srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		l.ConnState(c, s)
		if state != nil {
			state(c, s)
		}
	}
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if connContext != nil {
			ctx = connContext(ctx, c)
		}
		if cc := l.own(c); cc != nil {
			ctx = context.WithValue(ctx, connKey{}, cc)
		}
		return ctx
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(connKey{}).(*conn); ok && !c.handling() {
			// Cut off as its headers came: it is not run (its context
			// would end at the connection's next read), and its
			// connection closes without an answer.
			panic(http.ErrAbortHandler)
		}
		h.ServeHTTP(w, r)
	})
}

type connKey struct{}

// AwaitBody marks the connection of the request of ctx (of a Listener,
// under Limit) as waiting for the request's body, until done: past
// readingGrace, a new connection may take its place, as that of one
// reading a request's headers, and its reads then fail. A client sends a
// body at once, after its headers; one that declared a body and held it
// back kept its connection in a request, which nothing took back, for as
// long as its handler waited for it. Call it before a read of the body
// that may wait, and done once it is read: done reports whether the
// connection is still the request's, not taken meanwhile (its read
// deadline past, which ends the request's context).
func AwaitBody(ctx context.Context) (done func() (kept bool)) {
	c := await(ctx)
	if c == nil {
		return func() bool { return true }
	}
	return func() bool {
		c.l.mu.Lock()
		defer c.l.mu.Unlock()
		delete(c.l.awaiting, c)
		return c.state.CompareAndSwap(awaiting, handling) // not if cut meanwhile
	}
}

// Leaving marks the connection of the request of ctx, whose handler is
// done and did not read its body whole, as AwaitBody does until the
// connection ends: what net/http reads of the rest of the body after the
// answer (up to smallbody.LeaveGrace, so that a client still sending it
// gets the answer, not a reset) may then give its place to another.
func Leaving(ctx context.Context) { await(ctx) }

// await marks the connection of the request of ctx awaiting its body, and
// returns it; nil if it is no Listener's, or not handling a request.
func await(ctx context.Context) *conn {
	c, ok := ctx.Value(connKey{}).(*conn)
	if !ok {
		return nil
	}
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if !c.state.CompareAndSwap(handling, awaiting) {
		return nil
	}
	c.l.awaiting[c] = time.Now()
	return c
}

// own returns the connection of l that nc is, or wraps (TLS), or nil.
func (l *Listener) own(nc net.Conn) *conn {
	for {
		switch c := nc.(type) {
		case *conn:
			if c.l == l {
				return c
			}
			return nil
		case interface{ NetConn() net.Conn }: // a tls.Conn, and what it wraps
			nc = c.NetConn()
		default:
			return nil
		}
	}
}

// ConnState is for http.Server's ConnState (see Limit): it keeps track of
// the connections idle between requests.
func (l *Listener) ConnState(nc net.Conn, state http.ConnState) {
	c := l.own(nc)
	if c == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch state {
	case http.StateNew: // reading since it was accepted
	case http.StateIdle:
		delete(l.reading, c)
		delete(l.awaiting, c)
		// Reading still, if a request's answer came without its handler;
		// awaiting, if its body was read whole after its handler (Leaving).
		if c.state.CompareAndSwap(handling, idle) || c.state.CompareAndSwap(reading, idle) || c.state.CompareAndSwap(awaiting, idle) {
			l.idle[c] = time.Now()
			tell(l.idled)
		}
	case http.StateActive:
		// A request its server had read ahead (pipelined, or in TLS's
		// buffer) reads nothing from the connection: it is reading all
		// the same.
		if c.state.CompareAndSwap(idle, reading) {
			delete(l.idle, c)
			l.reading[c] = time.Now()
		}
	default: // hijacked, or closed
		delete(l.idle, c)
		delete(l.reading, c)
		delete(l.awaiting, c)
	}
}

// handling marks the connection's request as begun, unless the connection
// was cut off as it read the request. One evicted while idle, with a
// request its server had read ahead, answers that request first.
func (c *conn) handling() bool {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	delete(c.l.reading, c)
	return c.state.CompareAndSwap(reading, handling) || c.state.Load() != cut
}

// admit counts a connection from addr in its network, and returns that
// network (none, invalid, where no bound applies: Total orders queued
// connections by it), or false if the network has as many connections
// open as it may.
func (l *Listener) admit(addr net.Addr) (network netip.Prefix, ok bool) {
	tcp, isTCP := addr.(*net.TCPAddr)
	if l.lim.PerNetwork <= 0 && l.lim.RatePerNetwork <= 0 && l.lim.Total <= 0 || !isTCP {
		return netip.Prefix{}, true
	}
	ip := tcp.AddrPort().Addr().Unmap()
	if l.lim.Exempt != nil && l.lim.Exempt(ip) {
		return netip.Prefix{}, true
	}
	network = clientaddr.Network(ip, 32, 64)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lim.PerNetwork > 0 && l.open[network] >= l.lim.PerNetwork {
		if l.lim.Logger != nil {
			l.warnRefuse.Do(func() {
				l.lim.Logger.Warn("closed a connection: its network has as many open as one may (others may follow, unlogged for a minute)",
					"network", network.String(), "open", l.open[network])
			})
		}
		return netip.Prefix{}, false
	}
	// Paced after the bound above, whose refusals take none of the rate.
	if !l.paced(network) {
		if l.lim.Logger != nil {
			l.warnRate.Do(func() {
				l.lim.Logger.Warn("closed a connection: its network opens connections faster than one may (others may follow, unlogged for a minute)",
					"network", network.String(), "per_second", l.lim.RatePerNetwork)
			})
		}
		return netip.Prefix{}, false
	}
	if l.lim.PerNetwork <= 0 && l.lim.Total <= 0 {
		return netip.Prefix{}, true
	}
	l.open[network]++
	return network, true
}

// maxPaced is how many networks' paces a Listener keeps before it forgets
// those whose bucket is full again.
const maxPaced = 4096

// paced reports whether network may open a connection now, and counts it
// (RatePerNetwork). Call it with l.mu held.
func (l *Listener) paced(network netip.Prefix) bool {
	if l.lim.RatePerNetwork <= 0 {
		return true
	}
	burst := max(1, int(l.lim.RatePerNetwork))
	now := time.Now()
	lim := l.opened[network]
	if lim == nil {
		if len(l.opened) >= maxPaced {
			maps.DeleteFunc(l.opened, func(_ netip.Prefix, lim *rate.Limiter) bool { return lim.TokensAt(now) >= float64(burst) })
		}
		lim = rate.NewLimiter(rate.Limit(l.lim.RatePerNetwork), burst)
		l.opened[network] = lim
	}
	return lim.AllowN(now, 1)
}

func (l *Listener) release() {
	if l.slots != nil {
		<-l.slots
	}
}

// Close closes the listener and the connections queued; those Accept
// returned stay open.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	err := l.Listener.Close()
	l.mu.Lock()
	queued := l.queued
	l.queued = nil
	l.mu.Unlock()
	for _, c := range queued {
		c.Close()
	}
	return err
}

// conn gives back its slot and its network's count once closed.
type conn struct {
	net.Conn
	l       *Listener
	network netip.Prefix // the network counted; invalid for none
	slotted bool         // holds a slot
	once    sync.Once
	state   atomic.Int32 // reading, handling, awaiting, idle, evicted or cut
	// deadlines orders setting the read deadline with an eviction, which
	// pins it in the past.
	deadlines sync.Mutex
}

// A connection's states: reading a request's headers; handling the
// request, from its handler's start (Limit); awaiting its body, within
// that (AwaitBody); idle between requests, as http.Server tells; once
// taken to make room, evicted (while idle) or cut (while reading, or
// awaiting), when it reads nothing more.
const (
	reading int32 = iota
	handling
	idle
	evicted
	cut
	awaiting
)

// gone reports whether the connection was taken to make room.
func (c *conn) gone() bool {
	s := c.state.Load()
	return s == evicted || s == cut
}

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
	if c.gone() {
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

// Read reads, and marks an idle connection reading once bytes of a next
// request come: an evicted one gives them up, as closed, so that no
// request read from it runs.
func (c *conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n == 0 {
		return n, err
	}
	switch c.state.Load() {
	case evicted, cut:
		return 0, net.ErrClosed
	case idle:
		c.l.mu.Lock()
		became := c.state.CompareAndSwap(idle, reading)
		if became {
			delete(c.l.idle, c)
			c.l.reading[c] = time.Now()
		}
		c.l.mu.Unlock()
		if !became {
			return 0, net.ErrClosed // evicted meanwhile
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
		delete(c.l.reading, c)
		delete(c.l.awaiting, c)
		if c.network.IsValid() {
			if c.l.open[c.network]--; c.l.open[c.network] == 0 {
				delete(c.l.open, c.network)
			}
			if c.slotted {
				if c.l.held[c.network]--; c.l.held[c.network] == 0 {
					delete(c.l.held, c.network)
				}
			}
		}
		c.l.mu.Unlock()
		if c.slotted {
			c.l.release()
		}
	})
	return err
}
