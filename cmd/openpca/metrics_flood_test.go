package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openpca/openpca/internal/testenv"
)

// TestMetricsListenerSlowConnections: the listener of --metrics-listen
// bounds what an outsider who reaches it can hold, as the API's does: 500
// connections from one address, each sending 512 KiB of headers and then
// nothing, are mostly closed at once and add little to the server's peak
// memory; headers past the API's bound are refused (431); and connections
// left idle after a scrape are few. Unbounded, each connection held its
// headers (Go's default allows 1 MiB) for 10 s, and an idle one for good:
// the process's file descriptors, which the API's listener and the
// database share, ran out.
func TestMetricsListenerSlowConnections(t *testing.T) {
	srv := startServer(t, t.TempDir(), []string{"--metrics-listen", listenAny})
	defer srv.stop(t)
	metrics := strings.TrimSuffix(strings.TrimPrefix(servedURL(t, srv.logs, "serving the metrics", func() bool { return false }), "http://"), "/metrics")
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}

	// Headers larger than the API's bound.
	c, err := net.Dial("tcp", metrics)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: %s\r\n\r\n", strings.Repeat("a", 100<<10))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if res, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
		t.Errorf("a request with 100 KiB of headers: %v", err)
	} else if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a request with 100 KiB of headers: %s, want 431", res.Status)
	}
	c.Close()

	// A body, which a scraper never sends, declared and held back:
	// refused at once, the connection ended, as the API's listener does.
	for _, head := range []string{"POST /metrics HTTP/1.1\r\nContent-Length: 102400", "GET /metrics HTTP/1.1\r\nContent-Length: 1",
		"POST /elsewhere HTTP/1.1\r\nTransfer-Encoding: chunked"} {
		if res := testenv.WantBodyLeftUnread(t, metrics, head+"\r\nHost: x\r\n"); res != nil && res.StatusCode != http.StatusBadRequest {
			t.Errorf("%q, its body held back: %s, want 400", head, res.Status)
		}
	}

	// Slow connections.
	before := srv.peakRSS(t)
	const n = 500
	head := "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: " + strings.Repeat("a", 512<<10)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var mu sync.Mutex
	var wg sync.WaitGroup
	// dial connects from the one address, and keeps the connection to be
	// closed; nil if it cannot.
	dial := func() net.Conn {
		c, err := dialer.Dial("tcp", metrics)
		if err != nil {
			t.Error(err)
			return nil
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		return c
	}
	for range n {
		wg.Go(func() {
			c := dial()
			if c == nil {
				return
			}
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, head) // fails once the server has closed it
		})
	}
	wg.Wait()
	added := (srv.peakRSS(t) - before) >> 20
	var open atomic.Int64
	for _, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
				open.Add(1)
			}
		})
	}
	wg.Wait()
	t.Logf("%d slow connections to the metrics listener: %d held, +%d MiB of peak memory", n, open.Load(), added)
	if open.Load() > 64 {
		t.Errorf("the metrics listener held %d of %d slow connections from one address", open.Load(), n)
	}
	if added > 64 {
		t.Errorf("the slow connections added %d MiB to the server's peak memory, more than 64 MiB", added)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil

	// Idle connections, each after a scrape.
	var idle atomic.Int64
	for range 200 {
		wg.Go(func() {
			c := dial()
			if c == nil {
				return
			}
			c.SetDeadline(time.Now().Add(20 * time.Second))
			fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, res.Body); err != nil {
				return
			}
			// Kept by the server: a read waits.
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
				idle.Add(1)
			}
		})
	}
	wg.Wait()
	t.Logf("200 connections idle after a scrape: %d kept", idle.Load())
	if idle.Load() > 64 {
		t.Errorf("the metrics listener kept %d idle connections from one address", idle.Load())
	}
}
