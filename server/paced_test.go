package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestPacedWriter: a paced response goes on past the server's write
// timeout for a reader that takes it at the rate, and ends soon for one
// that takes nothing, however long the server's write timeout.
func TestPacedWriter(t *testing.T) {
	for _, tc := range []struct {
		name         string
		size         int
		writeTimeout time.Duration
		rate         int64
		reads        bool // at 3.2 MB/s at most, else not at all
	}{
		{"a slow reader", 32 << 20, 2 * time.Second, 512 << 10, true},
		{"a reader that takes nothing", 64 << 20, 10 * time.Minute, 1 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wrote := make(chan error, 1)
			body := make([]byte, tc.size) // before the grace begins: on a loaded machine, making it took seconds
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(tc.size))
				_, err := io.Copy(paced(w, 3*time.Second, tc.rate), bytes.NewReader(body))
				wrote <- err
			}))
			srv.Config.WriteTimeout = tc.writeTimeout
			srv.Start()
			defer srv.Close()
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			if !tc.reads {
				conn.(*net.TCPConn).SetReadBuffer(4 << 10)
				select {
				case err := <-wrote:
					if err == nil {
						t.Fatal("the whole response was written to a reader that took nothing")
					}
				case <-time.After(30 * time.Second):
					t.Fatal("a reader that took nothing held its response 30 s")
				}
				return
			}
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			n, buf := 0, make([]byte, 64<<10)
			for {
				time.Sleep(20 * time.Millisecond)
				m, err := io.ReadFull(res.Body, buf)
				n += m
				if err != nil {
					break
				}
			}
			if n != tc.size || <-wrote != nil {
				t.Errorf("the slow reader got %d bytes of %d", n, tc.size)
			}
		})
	}
}
