package smallbody_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openpca/openpca/internal/smallbody"
)

// echoServer answers with the body of each request, read with
// smallbody.Read within limit and budget: 413 if it is too large, 503 if
// the budget has no room for it. A request comes from the network its
// Network header names, or from 127.0.0.0/24.
func echoServer(limit int64, budget *smallbody.Budgets) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who := netip.MustParsePrefix("127.0.0.0/24")
		if network := r.Header.Get("Network"); network != "" {
			who = netip.MustParsePrefix(network)
		}
		body, done, err := smallbody.Read(w, r, limit, budget, who)
		switch {
		case errors.Is(err, smallbody.ErrTooLarge):
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		case errors.Is(err, smallbody.ErrBusy):
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
		default:
			w.Write(body)
			done()
		}
	}))
}

// TestRead: bodies up to the limit are read whole, with or without a
// length; one past it is ErrTooLarge.
func TestRead(t *testing.T) {
	const limit = 1 << 10
	srv := echoServer(limit, smallbody.NewBudgets(limit, 1, time.Second))
	defer srv.Close()
	for _, tc := range []struct {
		name    string
		body    io.Reader
		status  int
		echoLen int
	}{
		{"empty", http.NoBody, http.StatusOK, 0},
		{"at the limit", bytes.NewReader(make([]byte, limit)), http.StatusOK, limit},
		{"at the limit, chunked", io.MultiReader(strings.NewReader(strings.Repeat("a", limit))), http.StatusOK, limit},
		{"past the limit", bytes.NewReader(make([]byte, limit+1)), http.StatusRequestEntityTooLarge, -1},
		{"past the limit, chunked", io.MultiReader(strings.NewReader(strings.Repeat("a", 4*limit))), http.StatusRequestEntityTooLarge, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := http.Post(srv.URL, "application/octet-stream", tc.body)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status || tc.echoLen >= 0 && len(b) != tc.echoLen {
				t.Errorf("%d, %d bytes back; want %d, %d", res.StatusCode, len(b), tc.status, tc.echoLen)
			}
		})
	}
}

// TestBound: a request whose body its handler does not read whole is
// answered at once with the connection's end, and the connection ends
// LeaveGrace after the answer, not at the server's read timeout: before
// that, a body its client sent whole is read, so that the client gets the
// answer and the connection's end, not a reset. A body read whole keeps
// its connection.
func TestBound(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		send    int // bytes of the body of 200 KiB the client sends
		status  int
		close   bool
		// within bounds the answer: at once, but for the handler's own
		// time (had net/http read the body first, it would have come
		// only when a deadline was out).
		within time.Duration
		// failed says a read of the body failed: the connection ends at
		// once after the answer, not once LeaveGrace is out.
		failed bool
	}{
		{"read whole", func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Write([]byte("ok"))
		}, 200 << 10, http.StatusOK, false, 2 * time.Second, false},
		{"held back, nothing written", func(w http.ResponseWriter, r *http.Request) {}, 0, http.StatusOK, true, 2 * time.Second, false},
		{"held back, refused", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusForbidden) }, 0, http.StatusForbidden, true, 2 * time.Second, false},
		// The deadline leaves the body a second to come whole, on a
		// loaded machine too: the case is a body in before it.
		{"sent whole, refused past its deadline", func(w http.ResponseWriter, r *http.Request) {
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(time.Second))
			time.Sleep(1200 * time.Millisecond) // a wait for room, or a slow key store
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}, 200 << 10, http.StatusServiceUnavailable, true, 1200*time.Millisecond + smallbody.LeaveGrace/2, false},
		{"sent whole, answered after LeaveGrace", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(smallbody.LeaveGrace + 500*time.Millisecond)
			w.Write(bytes.Repeat([]byte("a"), 1<<20))
		}, 200 << 10, http.StatusOK, true, smallbody.LeaveGrace + 2*time.Second, false},
		{"read in part", func(w http.ResponseWriter, r *http.Request) {
			r.Body.Read(make([]byte, 10))
			w.Write([]byte("ok"))
		}, 0, http.StatusOK, true, 2 * time.Second, false},
		{"held back, flushed first", func(w http.ResponseWriter, r *http.Request) {
			http.NewResponseController(w).Flush()
			w.Write([]byte("ok"))
		}, 0, http.StatusOK, true, 2 * time.Second, false},
		{"held back, closed by its handler", func(w http.ResponseWriter, r *http.Request) {
			r.Body.Close()
			w.Write([]byte("ok"))
		}, 0, http.StatusOK, true, 2 * time.Second, false},
		{"held back, waited for", func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				http.Error(w, "too slow", http.StatusBadRequest)
			}
		}, 0, http.StatusBadRequest, true, smallbody.Time + 4*time.Second, true}, // Time is its bound
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conn := dial(t, boundServer(t, tc.handler))
			const size = 200 << 10 // less than net/http reads after an answer
			body := strings.Repeat("a", tc.send)
			if tc.name == "read in part" {
				body = "0123456789"
			}
			start := time.Now()
			if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: "+strconv.Itoa(size)+"\r\n\r\n"+body); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(conn)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, res.Body); err != nil {
				t.Fatalf("the answer's body: %v", err)
			}
			answered := time.Since(start)
			if res.StatusCode != tc.status || res.Close != tc.close || answered > tc.within {
				t.Errorf("%d, the connection's end: %v, after %v; want %d, %v, within %v", res.StatusCode, res.Close, answered, tc.status, tc.close, tc.within)
			}
			if !tc.close {
				return
			}
			leaves, want := smallbody.LeaveGrace+4*time.Second, "once LeaveGrace is out"
			if tc.failed {
				// Short of LeaveGrace, before which it does not end if
				// waited for.
				leaves, want = smallbody.LeaveGrace-time.Second, "at once"
			}
			conn.SetReadDeadline(start.Add(answered + leaves))
			if n, err := io.Copy(io.Discard, br); err != nil || n != 0 {
				t.Errorf("after the answer: %d bytes, %v after %v; want the connection's end %s", n, err, time.Since(start), want)
			}
		})
	}
}

// TestBoundLargeBody: a body larger than net/http reads after an answer,
// refused unread while its client still sends it, leaves the client the
// answer, not a reset of the connection.
func TestBoundLargeBody(t *testing.T) {
	srv := boundServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	}))
	for range 5 { // a reset lost the answer 3 times in 5, or 5
		res, err := http.Post(srv.URL, "application/octet-stream", bytes.NewReader(make([]byte, 4<<20)))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("%d, want 413", res.StatusCode)
		}
	}
}

// TestBoundPanic: a handler that panics leaves its connection once
// LeaveGrace is out too (net/http reads the body before it closes it).
func TestBoundPanic(t *testing.T) {
	conn := dial(t, boundServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	})))
	start := time.Now()
	if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(start.Add(smallbody.LeaveGrace + 4*time.Second))
	if n, err := io.Copy(io.Discard, conn); n != 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("%d bytes, %v after %v; want the connection's end once LeaveGrace is out", n, err, time.Since(start))
	}
}

// boundServer serves h under Bound, with the server's minute of read
// timeout, until the test ends.
func boundServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(smallbody.Bound(h))
	srv.Config.ReadTimeout = time.Minute
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// dial opens a connection to srv, closed when the test ends.
func dial(t *testing.T, srv *httptest.Server) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestReadBusy: a body the budget has no room for, within its wait, is
// ErrBusy, unread; small bodies and large ones have budgets of their own.
func TestReadBusy(t *testing.T) {
	srv := echoServer(64<<10, smallbody.NewBudgets(8<<10, 1, 500*time.Millisecond))
	defer srv.Close()
	post := func(body io.Reader, n int64, network string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, body)
		req.ContentLength = n
		req.Header.Set("Network", network)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	// A small body held back takes the small budget, one connection's,
	// once its server reads it: its first bytes read from the pipe may not
	// have reached the server yet. It comes from a network of its own, so
	// that a small body sent before it reached the server makes it wait
	// (for the budget's room), not refuses it (for its network's share).
	held, holding := io.Pipe()
	defer holding.Close()
	heldStatus := make(chan int, 1)
	go func() { heldStatus <- post(held, smallbody.SmallBody, "10.0.0.0/24") }()
	holding.Write([]byte("the first bytes"))
	for deadline := time.Now().Add(5 * time.Second); post(strings.NewReader("a body"), 6, "") != http.StatusServiceUnavailable; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a small body with no room: still 200, want 503")
		}
	}
	if status := post(strings.NewReader(strings.Repeat("a", 5<<10)), 5<<10, ""); status != http.StatusOK {
		t.Errorf("a large body, in its own budget: %d, want 200", status)
	}
	holding.Write([]byte(strings.Repeat("a", smallbody.SmallBody-len("the first bytes"))))
	holding.Close()
	if status := <-heldStatus; status != http.StatusOK {
		t.Errorf("the held body: %d, want 200", status)
	}
	// Its room is given back once its answer is written: its client may
	// have the answer first.
	for deadline := time.Now().Add(5 * time.Second); post(strings.NewReader("a body"), 6, "") != http.StatusOK; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a small body, once the held one is in: still no room")
		}
	}
}
