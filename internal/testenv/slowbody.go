package testenv

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca/internal/smallbody"
)

// WantSlowBodyCut sends a POST to rawURL whose body of 1,000 bytes comes
// a byte a second, as a client holding the connection would send it, and
// checks that it is answered with status once smallbody.SmallTime is out,
// not after smallbody.Time, nor the server's minute of read timeout.
func WantSlowBodyCut(t testing.TB, rawURL, contentType string, status int) {
	t.Helper()
	got, took := slowPost(t, rawURL, contentType)
	if got != status || took >= smallbody.Time {
		t.Errorf("POST %s, its body sent a byte a second: %d after %v, want %d after %v", rawURL, got, took, status, smallbody.SmallTime)
	}
}

// slowPost sends WantSlowBodyCut's request, and returns the status of the
// answer and how long it took to come.
func slowPost(t testing.TB, rawURL, contentType string) (int, time.Duration) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: 1000\r\n\r\n", u.RequestURI(), u.Host, contentType); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if _, err := conn.Write([]byte("a")); err != nil {
					return
				}
			}
		}
	}()
	conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("POST %s, its body sent slowly: %v after %v", rawURL, err, time.Since(start))
	}
	res.Body.Close()
	return res.StatusCode, time.Since(start)
}

// WantBodyLeftUnread sends head, a request's line and headers that
// announce a body, to the server at host, and never the body: the server
// must answer at once, with the connection's end, and end it once
// smallbody.LeaveGrace is out, not after its minute of read timeout. It
// returns the answer, its body read, or nil after reporting why there is
// none. A call takes a few seconds, and may run beside others in
// goroutines of the test.
func WantBodyLeftUnread(t testing.TB, host, head string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Error(err)
		return nil
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, head+"\r\n"); err != nil {
		t.Error(err)
		return nil
	}
	// Had the server waited for the body, it would have answered only
	// when a deadline was out: smallbody.LeaveGrace at the least.
	conn.SetReadDeadline(start.Add(smallbody.LeaveGrace - time.Second))
	br := bufio.NewReader(conn)
	method, _, _ := strings.Cut(head, " ") // an answer to HEAD has no body
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	var body []byte
	if err == nil {
		body, err = io.ReadAll(res.Body)
	}
	if err != nil {
		t.Errorf("%q: no answer without the body: %v after %v", head, err, time.Since(start))
		return nil
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	if !res.Close {
		t.Errorf("%q: answered without the connection's end", head)
	}
	conn.SetReadDeadline(time.Now().Add(smallbody.LeaveGrace + 4*time.Second))
	if n, err := io.Copy(io.Discard, br); err != nil {
		t.Errorf("%q: the server held the connection of a body never sent for %v and more (%v, %d bytes after the answer)", head, time.Since(start), err, n)
	}
	return res
}
