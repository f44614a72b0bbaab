package testenv

import (
	"io"
	"net"
	"sync"
	"testing"
)

// A Relay holds one port on 127.0.0.1 for a test's whole run and passes
// each connection on to a server behind it, which may stop and start again
// on a port of its own. A server started again on the port it had before
// could find it taken, in between, by any other test that asked the system
// for a free port; clients given the Relay's address never see the change.
type Relay struct {
	l     net.Listener
	mu    sync.Mutex
	to    string // the server's address; "" while it is away
	cuts  int    // how many times Cut closed every connection
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewRelay starts a Relay with no server behind it; it stops when the test
// ends, with every connection it passed on.
func NewRelay(t testing.TB) *Relay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{l: l, conns: map[net.Conn]struct{}{}}
	r.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			r.wg.Go(func() { r.pass(c) })
		}
	})
	t.Cleanup(func() {
		l.Close()
		r.mu.Lock()
		for c := range r.conns {
			c.Close()
		}
		r.conns = nil
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

// Addr is the address clients connect to.
func (r *Relay) Addr() string { return r.l.Addr().String() }

// To passes new connections to the server at addr; "" says it is away.
func (r *Relay) To(addr string) {
	r.mu.Lock()
	r.to = addr
	r.mu.Unlock()
}

// Cut has the server away, as To(""), and closes every connection passed
// on, those being made included: a connection the server took just before
// would otherwise outlive its being away.
func (r *Relay) Cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.to = ""
	r.cuts++
	for c := range r.conns {
		c.Close()
		delete(r.conns, c)
	}
}

// pass joins c to a connection of its own to the server. With the server
// away, c is reset at once, which is what a client connecting to a
// stopped server's port sees too (there, before it is accepted).
func (r *Relay) pass(c net.Conn) {
	r.mu.Lock()
	to, cuts := r.to, r.cuts
	r.mu.Unlock()
	var s net.Conn
	if to != "" {
		s, _ = net.Dial("tcp", to)
	}
	if s == nil {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
		return
	}
	if !r.track(c, s, cuts) {
		return
	}
	defer r.untrack(c, s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(s, c)
		s.(*net.TCPConn).CloseWrite() // the client is done sending; the server may still answer
	}()
	io.Copy(c, s)
	c.Close()
	s.Close()
	<-done
}

// track records a connection pair for the Relay's end; it is false, with
// both closed, if the Relay has already ended, or was cut since the pair
// began (cuts is how many times it had been).
func (r *Relay) track(c, s net.Conn, cuts int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conns == nil || r.cuts != cuts {
		c.Close()
		s.Close()
		return false
	}
	r.conns[c], r.conns[s] = struct{}{}, struct{}{}
	return true
}

func (r *Relay) untrack(c, s net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.conns, c)
	delete(r.conns, s)
}
