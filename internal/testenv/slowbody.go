package testenv

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/openpca/openpca/internal/smallbody"
)

// WantSlowBodyCut sends a POST to rawURL whose body of 1,000 bytes comes
// a byte a second, as a client holding the connection would send it, and
// checks that it is answered with status once smallbody.Time is out, not
// after the server's minute of read timeout.
func WantSlowBodyCut(t testing.TB, rawURL, contentType string, status int) {
	t.Helper()
	got, took := slowPost(t, rawURL, contentType)
	if got != status || took > smallbody.Time+5*time.Second {
		t.Errorf("POST %s, its body sent a byte a second: %d after %v, want %d after %v", rawURL, got, took, status, smallbody.Time)
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
