package connlimit

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// serve listens on 127.0.0.1 with lim and hands over the connections it
// accepts.
func serve(t *testing.T, lim Limits) (addr string, accepted chan net.Conn) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(raw, lim)
	t.Cleanup(func() { l.Close() })
	accepted = make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	return raw.Addr().String(), accepted
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer reports whether the server closed c: a read ends at once
// with EOF (or a reset), rather than waiting for data.
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

// open reports whether c is still open: a read waits for data.
func open(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// TestPerNetwork: a network's connections past its bound are closed at
// once; one closed makes room for another; an exempt address (a proxy's)
// has no bound.
func TestPerNetwork(t *testing.T) {
	for _, tc := range []struct {
		name   string
		exempt bool
	}{{"bounded", false}, {"exempt", true}} {
		t.Run(tc.name, func(t *testing.T) {
			lim := Limits{PerNetwork: 2}
			if tc.exempt {
				lim.Exempt = func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.1") }
			}
			addr, accepted := serve(t, lim)
			first, second, third := dial(t, addr), dial(t, addr), dial(t, addr)
			held := <-accepted
			<-accepted
			if !open(first) || !open(second) {
				t.Fatal("a connection within the bound was closed")
			}
			if tc.exempt {
				<-accepted
				if !open(third) {
					t.Fatal("a connection from an exempt address past the bound was closed")
				}
				return
			}
			if !closedByServer(third) {
				t.Fatal("a connection past the bound stayed open")
			}
			held.Close()
			fourth := dial(t, addr)
			<-accepted
			if !open(fourth) {
				t.Fatal("a connection within the bound, once another closed, was closed")
			}
		})
	}
}

// TestRatePerNetwork: a network's connections opened past its rate are
// closed at once, whether or not the first are still open (a TLS
// handshake is paid for as the connection opens); another network's, and
// an exempt address's, are not; a network's pace forgotten once its
// bucket is full again is not lost while it is not.
func TestRatePerNetwork(t *testing.T) {
	for _, tc := range []struct {
		name   string
		exempt bool
	}{{"bounded", false}, {"exempt", true}} {
		t.Run(tc.name, func(t *testing.T) {
			lim := Limits{RatePerNetwork: 0.01} // one, then one each 100 s
			if tc.exempt {
				lim.Exempt = func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.1") }
			}
			addr, accepted := serve(t, lim)
			first := dial(t, addr)
			(<-accepted).Close()
			if !closedByServer(first) {
				t.Fatal("the first connection, closed by its server, stayed open")
			}
			second := dial(t, addr)
			if tc.exempt {
				<-accepted
				if !open(second) {
					t.Fatal("a connection from an exempt address past the rate was closed")
				}
				return
			}
			if !closedByServer(second) {
				t.Fatal("a connection past the rate stayed open")
			}
		})
	}
}

// TestPacedForgotten: past maxPaced networks, those whose bucket is full
// again are forgotten, and those still paced are kept.
func TestPacedForgotten(t *testing.T) {
	l := Listen(nil, Limits{RatePerNetwork: 1})
	busy := netip.MustParsePrefix("192.0.2.0/32")
	if !l.paced(busy) || l.paced(busy) {
		t.Fatal("a network of rate 1 opened two connections at once")
	}
	for i := range maxPaced {
		l.opened[netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)] = rate.NewLimiter(1, 1)
	}
	if !l.paced(netip.MustParsePrefix("198.51.100.0/32")) {
		t.Fatal("a new network was refused")
	}
	if len(l.opened) != 2 || l.paced(busy) {
		t.Errorf("%d networks paced, the busy one refused %v; want 2, and refused", len(l.opened), !l.paced(busy))
	}
}

// TestTotal: past the total, the listener accepts no connection until
// one of those open closes.
func TestTotal(t *testing.T) {
	addr, accepted := serve(t, Limits{Total: 2})
	dial(t, addr)
	dial(t, addr)
	first := <-accepted
	<-accepted
	third := dial(t, addr)
	select {
	case <-accepted:
		t.Fatal("a connection past the total was accepted")
	case <-time.After(100 * time.Millisecond):
	}
	first.Close()
	select {
	case c := <-accepted:
		c.Write([]byte("x"))
		third.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(third, make([]byte, 1)); err != nil {
			t.Fatalf("the waiting connection, accepted: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a connection closed made no room")
	}
}

// TestNetworks: IPv4 addresses count alone (mapped into IPv6 or not),
// IPv6 ones by /64.
func TestNetworks(t *testing.T) {
	l := Listen(nil, Limits{PerNetwork: 1})
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"192.0.2.1", true},
		{"::ffff:192.0.2.1", false},
		{"192.0.2.2", true},
		{"2001:db8::1", true},
		{"2001:db8::ffff:1", false},
		{"2001:db8:0:1::1", true},
		{"fe80::1%eth0", true},
		{"fe80::2%eth1", false},
	} {
		ip, zone, _ := strings.Cut(tc.addr, "%")
		_, ok := l.admit(&net.TCPAddr{IP: net.ParseIP(ip), Zone: zone})
		if ok != tc.ok {
			t.Errorf("%s: admitted %v, want %v", tc.addr, ok, tc.ok)
		}
	}
}

// TestCloseWrite: a connection shuts its writing as a TCP connection
// does, which net/http needs to answer a request whose body it refused
// without the client seeing a reset, and keeps reading.
func TestCloseWrite(t *testing.T) {
	addr, accepted := serve(t, Limits{Total: 4, PerNetwork: 2})
	client := dial(t, addr)
	c := <-accepted
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		t.Fatal("the connection cannot shut its writing")
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the client read %v, want the end of the server's writing", err)
	}
	client.Write([]byte("x"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatalf("the server, after shutting its writing, read: %v", err)
	}
}

// TestIdleMakesRoom: with the listener full, a new connection takes the
// slot of the connection idle the longest, closing it, and waits while
// every connection is in a request, none of which is cut off.
func TestIdleMakesRoom(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(raw, Limits{Total: 2})
	release, entered := make(chan struct{}), make(chan struct{}, 2)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	})}
	l.Limit(srv)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	url := "http://" + raw.Addr().String()
	get := func(path string) error {
		c := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second} // a connection of its own, kept idle after
		res, err := c.Get(url + path)
		if err == nil {
			_, err = io.ReadAll(res.Body)
			res.Body.Close()
		}
		return err
	}
	// Two connections idle: a third takes the slot of one.
	for range 3 {
		if err := get("/"); err != nil {
			t.Fatalf("with the listener full of idle connections: %v", err)
		}
	}
	// Two connections in requests: a third waits for one to end.
	slow := make(chan error, 2)
	for range 2 {
		go func() { slow <- get("/slow") }()
	}
	<-entered
	<-entered
	third := make(chan error, 1)
	go func() { third <- get("/") }()
	select {
	case err := <-third:
		t.Fatalf("a connection got in while the others were in requests: %v", err)
	case <-time.After(readingGrace + 500*time.Millisecond): // requests are not cut off, however long
	}
	close(release)
	for range 2 {
		if err := <-slow; err != nil {
			t.Errorf("a request in progress when the listener was full: %v", err)
		}
	}
	if err := <-third; err != nil {
		t.Errorf("the waiting connection: %v", err)
	}
}

// TestEvictionCutsNoRequest: clients that keep their connections and
// outnumber the listener's slots have idle connections closed under them
// all the time, and a request may meet such a close; but no request the
// server ran goes unanswered: one that reached a connection first keeps
// it (a certificate issued would be lost to its client otherwise).
func TestEvictionCutsNoRequest(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(raw, Limits{Total: 4})
	var ran atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		ran.Add(1)
		io.WriteString(w, "ok")
	})}
	l.Limit(srv)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	url := "http://" + raw.Addr().String()
	var answered atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(2 * time.Second)
	for range 16 {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
			for time.Now().Before(stop) {
				res, err := c.Post(url, "text/plain", strings.NewReader("request"))
				if err != nil {
					continue // a close it met: the request did not run
				}
				if _, err := io.ReadAll(res.Body); err == nil && res.StatusCode == http.StatusOK {
					answered.Add(1)
				}
				res.Body.Close()
			}
		})
	}
	wg.Wait()
	t.Logf("%d requests ran, %d answered", ran.Load(), answered.Load())
	if ran.Load() != answered.Load() || answered.Load() == 0 {
		t.Errorf("%d requests ran and %d were answered: %d ran on a connection closed under them", ran.Load(), answered.Load(), ran.Load()-answered.Load())
	}
}

// TestReadAheadRequests: requests a server read ahead of the connection
// (pipelined, two in one write) leave it evictable once idle, and a
// request read ahead when its connection is evicted is still answered
// before the connection closes.
func TestReadAheadRequests(t *testing.T) {
	pipelined := func(c net.Conn, paths ...string) error {
		var reqs strings.Builder
		for _, p := range paths {
			fmt.Fprintf(&reqs, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", p)
		}
		io.WriteString(c, reqs.String())
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		for _, p := range paths {
			res, err := http.ReadResponse(r, nil)
			if err != nil {
				return fmt.Errorf("the answer to %s: %w", p, err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		return nil
	}
	serve := func(t *testing.T, total int, state func(*Listener) func(net.Conn, http.ConnState)) (*Listener, string) {
		raw, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l := Listen(raw, Limits{Total: total})
		srv := &http.Server{ConnState: state(l), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
		l.Limit(srv)
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
		return l, raw.Addr().String()
	}
	get := func(addr string) error {
		c := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
		res, err := c.Get("http://" + addr)
		if err == nil {
			res.Body.Close()
		}
		return err
	}
	t.Run("evictable once idle", func(t *testing.T) {
		_, addr := serve(t, 2, func(*Listener) func(net.Conn, http.ConnState) { return nil })
		for range 2 {
			if err := pipelined(dial(t, addr), "/1", "/2"); err != nil {
				t.Fatal(err)
			}
		}
		if err := get(addr); err != nil {
			t.Fatalf("with the listener full of idle connections that pipelined: %v", err)
		}
	})
	t.Run("answered when evicted", func(t *testing.T) {
		idled, proceed := make(chan struct{}), make(chan struct{})
		var once sync.Once
		l, addr := serve(t, 1, func(l *Listener) func(net.Conn, http.ConnState) {
			return func(c net.Conn, s http.ConnState) {
				if s == http.StateIdle {
					// After the first answer, with the second request read
					// ahead: the server waits here while another connection
					// comes and evicts this one.
					once.Do(func() { close(idled); <-proceed })
				}
			}
		})
		first := make(chan error, 1)
		go func() { first <- pipelined(dial(t, addr), "/1", "/2") }()
		<-idled
		other := make(chan error, 1)
		go func() { other <- get(addr) }()
		for evicted := false; !evicted; time.Sleep(10 * time.Millisecond) {
			l.mu.Lock()
			evicted = len(l.idle) == 0
			l.mu.Unlock()
		}
		close(proceed)
		if err := <-first; err != nil {
			t.Errorf("a request read ahead on the evicted connection: %v", err)
		}
		if err := <-other; err != nil {
			t.Errorf("the connection that evicted the other: %v", err)
		}
	})
}

// TestReadingMakesRoom: with the listener full of connections that send
// nothing, or a request's first bytes and no more, a new connection takes
// the place of the one reading the longest, once it has read for
// readingGrace, rather than wait for the server's bound on headers: from
// sixteen addresses, silent connections made again as they closed held
// every slot of a server for its 10 s.
func TestReadingMakesRoom(t *testing.T) {
	for _, sent := range []string{"", "GET / HTTP/1.1\r\nHo"} {
		t.Run(fmt.Sprintf("%q", sent), func(t *testing.T) {
			raw, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			l := Listen(raw, Limits{Total: 2})
			// An hour for headers, so that only the listener makes room.
			srv := &http.Server{ReadHeaderTimeout: time.Hour, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
			l.Limit(srv)
			go srv.Serve(l)
			t.Cleanup(func() { srv.Close() })
			var held []net.Conn
			for range 2 {
				c := dial(t, raw.Addr().String())
				io.WriteString(c, sent)
				held = append(held, c)
			}
			time.Sleep(readingGrace + 200*time.Millisecond)
			c := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
			res, err := c.Get("http://" + raw.Addr().String())
			if err != nil {
				t.Fatalf("with the listener full of connections reading for %v: %v", readingGrace, err)
			}
			res.Body.Close()
			// Closed, after whatever the server answered of the headers.
			closed := 0
			for _, c := range held {
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, err := io.ReadAll(c); !errors.Is(err, os.ErrDeadlineExceeded) {
					closed++
				}
			}
			if closed != 1 {
				t.Errorf("%d connections that were reading closed to make room for one, want 1", closed)
			}
		})
	}
}

// awaitingServer serves, on a listener of total connections, a handler
// that awaits its request's body (AwaitBody), and answers 400 if it does
// not come, or its connection was taken meanwhile; it returns its address.
func awaitingServer(t *testing.T, total int) string {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(raw, Limits{Total: total})
	// An hour to read, so that only the listener makes room.
	srv := &http.Server{ReadTimeout: time.Hour, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		done := AwaitBody(r.Context())
		_, err := io.ReadAll(r.Body)
		if !done() || err != nil {
			http.Error(w, "the body did not come", http.StatusBadRequest)
			return
		}
		io.WriteString(w, "ok")
	})}
	l.Limit(srv)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return raw.Addr().String()
}

// TestAwaitingBodyMakesRoom: with the listener full of connections whose
// requests' handlers wait for bodies held back (AwaitBody), past
// readingGrace a new connection takes the place of the one that waited
// the longest, whose read of its body fails. Before, such a connection was
// in a request, which nothing took back.
func TestAwaitingBodyMakesRoom(t *testing.T) {
	addr := awaitingServer(t, 2)
	var held [2]net.Conn
	for i := range held {
		held[i] = dial(t, addr)
		io.WriteString(held[i], "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
		time.Sleep(100 * time.Millisecond) // the first waits the longest
	}
	time.Sleep(readingGrace + 200*time.Millisecond)
	c := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	res, err := c.Post("http://"+addr, "text/plain", strings.NewReader("a body"))
	if err != nil {
		t.Fatalf("with the listener full of connections awaiting bodies for %v: %v", readingGrace, err)
	}
	res.Body.Close()
	held[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if res, err := http.ReadResponse(bufio.NewReader(held[0]), nil); err != nil || res.StatusCode != http.StatusBadRequest {
		t.Errorf("the connection that waited the longest: %v, %v; want 400, its body's read cut off", res, err)
	}
	if !open(held[1]) {
		t.Error("the other connection awaiting its body was cut too, or answered")
	}
}

// TestAwaitingBodyInTime: a connection awaiting its body for less than
// readingGrace is not taken for a new one, which waits; once answered, it
// is idle, and taken then.
func TestAwaitingBodyInTime(t *testing.T) {
	addr := awaitingServer(t, 1)
	c := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
	newcomer := make(chan error, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		c := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
		res, err := c.Get("http://" + addr)
		if err == nil {
			res.Body.Close()
		}
		newcomer <- err
	}()
	time.Sleep(readingGrace * 3 / 10) // well within the grace, on a loaded machine too
	io.WriteString(c, "0123456789")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if res, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("a body that came within the grace, with a new connection waiting: %v, %v; want 200", res, err)
	}
	if err := <-newcomer; err != nil {
		t.Errorf("the new connection, once the other was idle: %v", err)
	}
	if !closedByServer(c) {
		t.Error("the idle connection was not taken for the new one")
	}
}

// TestOptionsStarIdle: a connection idle after "OPTIONS *", which net/http
// answers without the server's handler unless told not to, makes room as
// any idle one: it was left reading, in no list, unevictable, and one
// such request each idle timeout held a slot for good.
func TestOptionsStarIdle(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(raw, Limits{Total: 1})
	srv := &http.Server{ReadHeaderTimeout: time.Hour, IdleTimeout: time.Hour, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	l.Limit(srv)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	c := dial(t, raw.Addr().String())
	io.WriteString(c, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	time.Sleep(100 * time.Millisecond) // for the server to wait for the next request
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	res, err = hc.Get("http://" + raw.Addr().String())
	if err != nil {
		t.Fatalf("with the listener full of a connection idle after OPTIONS *: %v", err)
	}
	res.Body.Close()
}

// TestIdleTrickleMakesRoom: a connection idle between requests that then
// sends a byte or three of a next request, and nothing more, is still
// made room from: it must not hold its slot for the server's idle timeout
// (2 minutes) unevictable, which let an outsider hold every connection
// with a request every two minutes and a byte after each, as idle
// connections were to stop it from doing.
func TestIdleTrickleMakesRoom(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(raw, Limits{Total: 2})
	// The server's own timeouts: headers within 10 s, idle 2 minutes; an
	// hour here, so that only the listener can make the room.
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Hour,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	l.Limit(srv)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	addr := raw.Addr().String()
	var held []net.Conn
	for range 2 {
		c := dial(t, addr)
		held = append(held, c)
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	// Once the server waits for the next requests: the first byte of one,
	// and no more.
	time.Sleep(100 * time.Millisecond)
	for _, c := range held {
		io.WriteString(c, "G")
	}
	time.Sleep(100 * time.Millisecond)
	c := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	res, err := c.Get("http://" + addr)
	if err != nil {
		t.Fatalf("with the listener full of connections that each sent a byte after their request: %v", err)
	}
	res.Body.Close()
}

// wrapper is a connection that wraps another, as tlshello's does.
type wrapper struct{ net.Conn }

func (w wrapper) NetConn() net.Conn { return w.Conn }

// TestOwnUnwraps: a connection of the listener is known through what
// wraps it, TLS and what wraps it for TLS (tlshello's bound on a
// ClientHello), so that the idle ones among them make room; another
// listener's is not.
func TestOwnUnwraps(t *testing.T) {
	addr, accepted := serve(t, Limits{})
	dial(t, addr)
	c := <-accepted
	l := c.(*conn).l
	for _, tc := range []struct {
		name string
		nc   net.Conn
		own  bool
	}{
		{"itself", c, true},
		{"under TLS", tls.Server(c, &tls.Config{}), true},
		{"under TLS and a wrapper", tls.Server(wrapper{c}, &tls.Config{}), true},
		{"another listener's", tls.Server(wrapper{&conn{Conn: c, l: &Listener{}}}, &tls.Config{}), false},
		{"none of a listener", wrapper{c.(*conn).Conn}, false},
	} {
		if got := l.own(tc.nc) != nil; got != tc.own {
			t.Errorf("%s: owned %v; want %v", tc.name, got, tc.own)
		}
	}
}

// TestCutOffLast: with the listener full, and networks that each keep
// connections open, every one sending part of its headers, and another as
// soon as one is cut off, a client of another network is served within
// about readingGrace: its connections take the next slots, before theirs
// that queued first, whose networks were cut off. In the kernel's queue
// it waited for every one ahead of it, 7 s with these numbers (a slot
// taken back from each after readingGrace); and in the second case, with
// the listener's queue weighing connections open, the client's
// connections past its first were closed (a red-team's finding).
func TestCutOffLast(t *testing.T) {
	for _, tc := range []struct {
		name                                     string
		total, perNetwork, networks, keep, conns int
	}{
		{"networks of 4 connections", 8, 4, 16, 4, 1},
		{"networks of 2, a client of 3 at once", 8, 4, 36, 2, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := flooded(t, tc.total, tc.perNetwork, tc.networks, tc.keep)
			for i := range 3 {
				d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 2, byte(i+1))}}
				var clients sync.WaitGroup
				for range tc.conns {
					clients.Go(func() {
						c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 10 * time.Second}
						start := time.Now()
						res, err := c.Get("http://" + addr)
						if err != nil {
							t.Errorf("client %d, of a network with none open before: %v", i, err)
							return
						}
						res.Body.Close()
						if took := time.Since(start); took > 3*readingGrace {
							t.Errorf("client %d, of a network with none open before, answered in %v; want within about %v", i, took, readingGrace)
						}
					})
				}
				clients.Wait()
			}
		})
	}
}

// flooded serves a listener of total connections, perNetwork from one
// network, and has networks each keep keep open, sending part of their
// headers and dialling again as each is closed, until the test ends; it
// returns the listener's address once the listener is full and
// connections wait.
func flooded(t *testing.T, total, perNetwork, networks, keep int) string {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(raw, Limits{Total: total, PerNetwork: perNetwork})
	// An hour for headers, so that only the listener makes room.
	srv := &http.Server{ReadHeaderTimeout: time.Hour, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	l.Limit(srv)
	go srv.Serve(l)
	addr := raw.Addr().String()
	stop := make(chan struct{})
	var attackers sync.WaitGroup
	t.Cleanup(func() {
		close(stop)
		srv.Close()
		attackers.Wait()
	})
	for n := range networks {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(n+1))}}
		for range keep {
			attackers.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					c, err := d.Dial("tcp", addr)
					if err != nil {
						time.Sleep(10 * time.Millisecond)
						continue
					}
					io.WriteString(c, "GET / HTTP/1.1\r\nHo")
					io.Copy(io.Discard, c) // until the server closes it
					c.Close()
					time.Sleep(50 * time.Millisecond)
				}
			})
		}
	}
	time.Sleep(2 * readingGrace)
	return addr
}

// TestQueueOrder: a slot goes to the queued connection of the network that
// holds the fewest slots, then with the fewest of its network's queued
// before it, the longest queued of those: networks take turns. A proxy's
// connections are each a network's of its own.
func TestQueueOrder(t *testing.T) {
	proxy := netip.MustParseAddr("192.0.2.9")
	l := Listen(nil, Limits{Total: 8, Exempt: func(a netip.Addr) bool { return a == proxy }})
	var want []*conn
	for _, ip := range []string{"192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.3", "192.0.2.9"} {
		want = append(want, queue(t, l, ip))
	}
	// Each network's first, then its second, then its third.
	want = []*conn{want[0], want[3], want[4], want[6], want[1], want[5], want[2]}
	for i, w := range want {
		if err := l.slot(); err != nil {
			t.Fatal(err)
		}
		if got := l.dequeue(); got != w {
			t.Fatalf("slot %d went to another connection than the one of %v", i, w.RemoteAddr())
		}
	}
	if got := l.dequeue(); got != nil {
		t.Fatal("a slot went to a connection with none queued")
	}
	for _, c := range want {
		c.Close()
	}
	if len(l.open) != 0 || len(l.held) != 0 {
		t.Errorf("with every connection closed, networks count %v open, %v holding slots", l.open, l.held)
	}
}

// queueListener is a Listener of total connections on 127.0.0.1, whose
// queue the test fills itself (queue), closed at the test's end.
func queueListener(t *testing.T, total int) *Listener {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(raw, Limits{Total: total})
	t.Cleanup(func() { l.Close() })
	return l
}

// queue counts a connection from ip in l and queues it, as acceptQueued
// does, and returns it once queued (or closed).
func queue(t *testing.T, l *Listener, ip string) *conn {
	network, ok := l.admit(&net.TCPAddr{IP: net.ParseIP(ip)})
	if !ok {
		t.Errorf("%s refused", ip)
	}
	nc, _ := net.Pipe()
	c := &conn{Conn: addrConn{nc, ip}, l: l, network: network}
	l.enqueue(c)
	return c
}

// addrConn is a connection from addr.
type addrConn struct {
	net.Conn
	addr string
}

func (c addrConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.ParseIP(c.addr)} }

// TestQueueFull: past the queue's bound, a new connection takes the place
// of the queued one last in place, if that is of a network cut off lately
// and after its own; or else it is closed if its own network was cut off
// lately; or else it waits for a slot to be taken. No connection of a
// network not cut off is closed, whatever the slots it holds (red-teams'
// findings: weighing connections open, then slots held, others closed
// clients' connections that waited).
func TestQueueFull(t *testing.T) {
	l := queueListener(t, 4)
	cut := func(c *conn) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.wasCut(c.network)
	}
	take := func() *conn {
		t.Helper()
		if err := l.slot(); err != nil {
			t.Fatal(err)
		}
		return l.dequeue()
	}
	a := []*conn{queue(t, l, "192.0.2.1"), queue(t, l, "192.0.2.1"), queue(t, l, "192.0.2.1")}
	var others []*conn
	for i := range minQueued - len(a) {
		others = append(others, queue(t, l, fmt.Sprintf("198.51.100.%d", i+1)))
	}
	// 192.0.2.1 was cut off: its queued connections give their places,
	// the last first, and go last.
	cut(a[0])
	b, c := queue(t, l, "192.0.2.2"), queue(t, l, "192.0.2.3")
	if !closedConn(a[2]) || !closedConn(a[1]) || closedConn(a[0]) {
		t.Fatal("a new network's connections did not take the places of those of a network cut off")
	}
	if take() != others[0] {
		t.Fatal("the slot went to another connection than the longest queued of networks not cut off")
	}
	queue(t, l, "192.0.2.4")
	// 192.0.2.1's next, after its queued one: closed at once.
	waiting := make(chan *conn)
	go func() { waiting <- queue(t, l, "192.0.2.1") }()
	select {
	case c := <-waiting:
		if !closedConn(c) {
			t.Fatal("past the queue's bound, a connection of a network cut off was queued")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("past the queue's bound, a connection of a network cut off waited")
	}
	// 198.51.100.1 holds a slot: its next takes the place of a[0], then
	// its one after waits, as does a new network's, and neither closes
	// the other.
	d := queue(t, l, "198.51.100.1")
	if !closedConn(a[0]) || closedConn(d) {
		t.Fatal("a connection of a network not cut off did not take the place of one of a network cut off")
	}
	var late []*conn
	for _, ip := range []string{"198.51.100.1", "192.0.2.5"} {
		go func() { waiting <- queue(t, l, ip) }()
		select {
		case c := <-waiting:
			t.Fatalf("past the queue's bound, a connection of %s, not cut off, was queued or closed rather than waiting (closed: %v)", ip, closedConn(c))
		case <-time.After(100 * time.Millisecond):
		}
	}
	if closedConn(d) || closedConn(b) || closedConn(c) {
		t.Fatal("a connection waiting closed one queued of a network not cut off")
	}
	l.Close()
	late = append(late, <-waiting, <-waiting)
	for _, c := range append(late, b, c, d) {
		if !closedConn(c) {
			t.Errorf("a connection from %v, queued or waiting, was not closed with its listener", c.RemoteAddr())
		}
	}
	if closedConn(others[0]) {
		t.Error("a connection taken from the queue was closed with its listener")
	}
}

// TestQueueFullTurns: past the queue's bound, of networks cut off as
// often that hold as many slots, the one with the most queued gives its
// newest's place.
func TestQueueFullTurns(t *testing.T) {
	l := queueListener(t, 4)
	for _, ip := range []string{"192.0.2.1", "192.0.2.2"} {
		queue(t, l, ip)
		if err := l.slot(); err != nil {
			t.Fatal(err)
		}
		l.dequeue()
	}
	x := []*conn{queue(t, l, "192.0.2.1"), queue(t, l, "192.0.2.1"), queue(t, l, "192.0.2.1")}
	y := queue(t, l, "192.0.2.2")
	l.mu.Lock()
	l.wasCut(x[0].network)
	l.wasCut(y.network)
	l.mu.Unlock()
	for i := range minQueued - 4 {
		queue(t, l, fmt.Sprintf("198.51.100.%d", i+1))
	}
	queue(t, l, "192.0.2.3")
	if !closedConn(x[2]) || closedConn(y) {
		t.Error("a new connection took the place of another than the newest of the network with the most queued, of those cut off that hold a slot")
	}
}

// TestCutsForgotten: a network's cut connections count for cutMemory after
// the last; past maxCutNetworks networks, those older are forgotten, and
// else the one cut the longest ago.
func TestCutsForgotten(t *testing.T) {
	l := Listen(nil, Limits{Total: 1})
	n := netip.MustParsePrefix("192.0.2.1/32")
	l.wasCut(n)
	l.wasCut(n)
	if got := l.recentCuts(n); got != 2 {
		t.Fatalf("%d cuts counted; want 2", got)
	}
	l.cuts[n] = cutRecord{n: 2, last: time.Now().Add(-cutMemory)}
	if got := l.recentCuts(n); got != 0 {
		t.Errorf("%d cuts counted a minute after the last; want none", got)
	}
	l.wasCut(n)
	if got := l.recentCuts(n); got != 1 {
		t.Errorf("%d cuts counted of one a minute after the last; want 1", got)
	}
	l.cuts[n] = cutRecord{n: 2, last: time.Now().Add(-cutMemory)}
	for i := range maxCutNetworks - 1 {
		l.wasCut(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 32))
	}
	l.wasCut(netip.MustParsePrefix("198.51.100.1/32"))
	if len(l.cuts) != maxCutNetworks {
		t.Errorf("%d networks' cuts kept; want %d, the one forgotten whose last was a minute ago", len(l.cuts), maxCutNetworks)
	}
	if _, ok := l.cuts[n]; ok {
		t.Error("a network's cuts a minute old were kept past the bound")
	}
	// All cut within the minute: the one cut the longest ago is
	// forgotten, and the new one counted (a red-team's finding: it was
	// not, so that networks past the bound were never counted).
	first := netip.MustParsePrefix("10.0.0.0/32")
	l.cuts[first] = cutRecord{n: 1, last: time.Now().Add(-cutMemory / 2)}
	last := netip.MustParsePrefix("198.51.100.2/32")
	l.wasCut(last)
	if _, ok := l.cuts[first]; ok || l.recentCuts(last) != 1 || len(l.cuts) != maxCutNetworks {
		t.Error("past the bound, with every network cut within the minute, the one cut the longest ago was not forgotten for the new one")
	}
}

// TestQueueBound: however large Total, at most maxQueued connections wait
// in the queue; the next, of a network that holds no slot, waits outside.
func TestQueueBound(t *testing.T) {
	l := queueListener(t, 4*maxQueued)
	for i := range maxQueued {
		queue(t, l, netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String())
	}
	waiting := make(chan *conn)
	go func() { waiting <- queue(t, l, "192.0.2.1") }()
	select {
	case <-waiting:
		t.Fatalf("a connection past %d queued was queued, or closed another", maxQueued)
	case <-time.After(100 * time.Millisecond):
	}
	l.Close()
	<-waiting
}

// closedConn reports whether c, over a net.Pipe, was closed.
func closedConn(c *conn) bool { return c.Conn.SetReadDeadline(time.Time{}) != nil }
