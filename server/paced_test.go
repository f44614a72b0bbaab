package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPacedWriter: a paced response goes on past the server's write
// timeout for a reader that takes it at the rate, and ends soon for one
// that takes nothing, however long the server's write timeout; one that
// reads slower than the rate, but reads, gets it whole unless held to the
// rate.
func TestPacedWriter(t *testing.T) {
	for _, tc := range []struct {
		name         string
		size         int
		writeTimeout time.Duration
		rate         int64
		strict       bool
		pause        time.Duration // between reads of 64 KiB; 0: no reads at all
		whole        bool
	}{
		{"a slow reader", 32 << 20, 2 * time.Second, 512 << 10, true, 20 * time.Millisecond, true},
		{"a reader that takes nothing", 64 << 20, 10 * time.Minute, 1 << 20, false, 0, false},
		// Over small buffers, which take little of the answer ahead.
		{"a reader slower than the rate", 512 << 10, 10 * time.Minute, 128 << 10, false, time.Second, true},
		{"a reader slower than the rate, held to it", 512 << 10, 10 * time.Minute, 128 << 10, true, time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wrote := make(chan error, 1)
			body := make([]byte, tc.size) // before the grace begins: on a loaded machine, making it took seconds
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(tc.size))
				p := paced(w, 3*time.Second, tc.rate)
				p.strict = tc.strict
				_, err := io.Copy(p, bytes.NewReader(body))
				wrote <- err
			}))
			small := tc.rate < 512<<10
			if small {
				srv.Listener = smallSends{srv.Listener}
			}
			conn := startAndDial(t, srv, tc.writeTimeout)
			if small || tc.pause == 0 {
				conn.(*net.TCPConn).SetReadBuffer(4 << 10)
			}
			fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			if tc.pause == 0 {
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
				time.Sleep(tc.pause)
				m, err := io.ReadFull(res.Body, buf)
				n += m
				if err != nil {
					break
				}
			}
			if err := <-wrote; (n == tc.size && err == nil) != tc.whole {
				t.Errorf("the reader got %d bytes of %d, and the writer: %v; want it whole %v", n, tc.size, err, tc.whole)
			}
		})
	}
}

// crlFolder is a local object store of one folder per bucket.
type crlFolder string

func (d crlFolder) Open(bucket, key string) (*os.File, error) {
	return os.Open(filepath.Join(string(d), bucket, key))
}

// smallSends makes each accepted connection's send buffer small, so that
// what the system takes of a response for a reader that takes nothing is
// little: the pace's deadline grows with each byte taken.
type smallSends struct{ net.Listener }

func (l smallSends) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		err = c.(*net.TCPConn).SetWriteBuffer(16 << 10)
	}
	return c, err
}

// TestLocalCRLsPaced: the local buckets' CRLs, which anyone may fetch, are
// paced, as every answer is (answerGrace, answerRate): a reader that
// takes nothing has its connection ended within the grace and a little
// more, not held for the server's write timeout.
func TestLocalCRLsPaced(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "b"), 0o700); err != nil {
		t.Fatal(err)
	}
	const size = 64 << 20
	if err := os.WriteFile(filepath.Join(dir, "b", "ca.crl"), make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&Server{}).handleLocalCRLs(mux, crlFolder(dir))
	served := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(served)
		paceAnswers(mux).ServeHTTP(w, r)
	}))
	srv.Listener = smallSends{srv.Listener}
	conn := startAndDial(t, srv, 10*time.Minute)
	conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	fmt.Fprintf(conn, "GET /s3/b/ca.crl HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case <-served:
	case <-time.After(answerGrace + 50*time.Second):
		t.Fatalf("a reader that took nothing held its CRL's response %v", answerGrace+50*time.Second)
	}
	// The response was cut short: the connection ends before the CRL.
	n, _ := io.Copy(io.Discard, conn)
	if n >= size {
		t.Errorf("the whole CRL (%d bytes) went to a reader that took nothing", n)
	}
}

// TestPipelinedAnswersUnread: a client that sends requests one after the
// other on its connection and never reads their answers has the
// connection ended within answerGrace and a little more, once the
// socket's buffers are full, not held for the server's write timeout: a
// handler blocked writing is never taken for an idle connection, and a
// few such clients held all of a server's connections for two minutes
// at a time. The server ends the connection with requests unread, which
// fails the client's write of the next.
func TestPipelinedAnswersUnread(t *testing.T) {
	answer := make([]byte, 64<<10)
	metrics := New(Config{Logger: slog.New(slog.DiscardHandler)}).Metrics()
	for _, tc := range []struct {
		name    string
		handler http.Handler
		path    string
	}{
		{"the API's listener", paceAnswers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(answer) })), "/"},
		{"--metrics-listen", metrics, "/metrics"},
		{"--metrics-listen, not found", metrics, "/nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewUnstartedServer(tc.handler)
			srv.Listener = smallSends{srv.Listener}
			conn := startAndDial(t, srv, 10*time.Minute)
			conn.(*net.TCPConn).SetReadBuffer(4 << 10)
			ended := make(chan struct{})
			go func() {
				defer close(ended)
				for {
					if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", tc.path); err != nil {
						return
					}
				}
			}()
			select {
			case <-ended:
			case <-time.After(answerGrace + 30*time.Second):
				t.Fatalf("a client that reads no answers held its connection %v", answerGrace+30*time.Second)
			}
		})
	}
}

// startAndDial starts srv with writeTimeout, and connects to it; both
// end with the test.
func startAndDial(t *testing.T, srv *httptest.Server, writeTimeout time.Duration) net.Conn {
	srv.Config.WriteTimeout = writeTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// unwrapping is a writer over another, as smallbody.Bound's is.
type unwrapping struct{ http.ResponseWriter }

func (u unwrapping) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// TestHoldToRate: a handler under paceAnswers (a CRL's) holds its answer
// to the rate through the writers between.
func TestHoldToRate(t *testing.T) {
	var held bool
	paceAnswers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		holdToRate(unwrapping{w})
		held = w.(*pacedWriter).strict
	})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if !held {
		t.Error("the answer is not held to the rate")
	}
}
