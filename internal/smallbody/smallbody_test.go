package smallbody_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca/internal/smallbody"
)

// TestRead: bodies up to the limit are read whole, with or without a
// length; one past it is ErrTooLarge.
func TestRead(t *testing.T) {
	const limit = 1 << 10
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := smallbody.Read(w, r, limit)
		switch {
		case errors.Is(err, smallbody.ErrTooLarge):
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
		default:
			w.Write(body)
		}
	}))
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

// TestLeave: a request answered without its body being read, late (past
// the deadline the server gave the body), is answered with the
// connection's end, and the body its client had sent whole is still read
// after the answer: the client reads the answer and the connection's end,
// not a reset of a connection closed on unread bytes.
func TestLeave(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		time.Sleep(300 * time.Millisecond) // a wait for room, or a slow key store
		smallbody.Leave(w, r)
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const size = 200 << 10 // less than net/http reads after an answer
	if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: "+strconv.Itoa(size)+"\r\n\r\n"+strings.Repeat("a", size)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusServiceUnavailable || !res.Close {
		t.Errorf("%d, the connection's end: %v; want 503 and its end", res.StatusCode, res.Close)
	}
	if n, err := io.Copy(io.Discard, br); err != nil || n != 0 {
		t.Errorf("after the answer: %d bytes, %v; want the connection's end", n, err)
	}
}
