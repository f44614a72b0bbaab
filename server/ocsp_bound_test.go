package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/openpca/openpca/awsjson"
	"github.com/openpca/openpca/connlimit"
	"github.com/openpca/openpca/internal/smallbody"
	"github.com/openpca/openpca/server"
)

// deadlineResponder answers OCSP requests with whether their context ends
// by itself: as a store that waits on a database that stopped answering,
// or for a reader of its pool, would wait.
type deadlineResponder struct{ deadlines chan time.Duration }

func (d deadlineResponder) OCSP(ctx context.Context, _ []byte) ([]byte, string, time.Time, time.Time) {
	dl, ok := ctx.Deadline()
	if !ok {
		d.deadlines <- -1
	} else {
		d.deadlines <- time.Until(dl)
	}
	return []byte("answer"), "internalError", time.Time{}, time.Time{}
}

// TestOCSPRequestBounded: an OCSP request (unauthenticated) runs within a
// bound of time, as an API request or a console page does, not for as
// long as its client keeps its connection: a store that stopped answering
// held each one, and its connection, for good.
func TestOCSPRequestBounded(t *testing.T) {
	d := deadlineResponder{deadlines: make(chan time.Duration, 2)}
	srv := server.New(server.Config{OCSP: d, Authenticator: awsjson.StaticAuthenticator{}, Logger: slog.New(slog.DiscardHandler)})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l, nil)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	url := "http://" + l.Addr().String() + server.PathOCSP
	for _, req := range []func() (*http.Response, error){
		func() (*http.Response, error) {
			return http.Post(url, "application/ocsp-request", bytes.NewReader([]byte{0x30, 0}))
		},
		func() (*http.Response, error) { return http.Get(url + "/MAA%3D") },
	} {
		res, err := req()
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if left := <-d.deadlines; left < 0 || left > 2*time.Minute {
			t.Errorf("%s %s: the responder's context ends in %v (-1: never)", res.Request.Method, res.Request.URL.Path, left)
		}
	}
}

// answerResponder answers every OCSP request with "answer".
type answerResponder struct{}

func (answerResponder) OCSP(context.Context, []byte) ([]byte, string, time.Time, time.Time) {
	return []byte("answer"), "malformedRequest", time.Time{}, time.Time{}
}

// TestOCSPBodiesOfBothListeners: the OCSP responder, served on the API's
// listener and on --revocation-listen's, each taking MaxConnections, holds
// the small bodies of as many requests on each, and no more: sized for
// one listener, its budget went whole to half of both's, and an OCSP
// request on either was answered tryLater (a red-team's finding).
func TestOCSPBodiesOfBothListeners(t *testing.T) {
	const connections = 8
	srv := server.New(server.Config{OCSP: answerResponder{}, Authenticator: awsjson.StaticAuthenticator{}, MaxConnections: connections,
		Logger: slog.New(slog.DiscardHandler)})
	var listeners [2]net.Listener
	for i := range listeners {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listeners[i] = l
	}
	go srv.Serve(listeners[0], nil)
	go srv.ServeRevocation(listeners[1], nil)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	// dial connects to listener l from network 127.0.n.0/24: each network
	// holds an eighth of the budget at most.
	dial := func(l net.Listener, n int) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(n), 1)}}
		conn, err := d.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		return conn
	}
	// Each held request asks to be told to send its body: 100 Continue
	// says the responder took room for it.
	held := 0
	for _, l := range listeners {
		for range connections {
			held++
			conn := dial(l, held)
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", server.PathOCSP, smallbody.SmallBody)
			conn.Write(make([]byte, smallbody.SmallBody-1))
			if line, err := bufio.NewReader(conn).ReadString('\n'); strings.TrimSpace(line) != "HTTP/1.1 100 Continue" {
				t.Fatalf("held request %d of %d: %q, %v; want HTTP/1.1 100 Continue", held, 2*connections, line, err)
			}
		}
	}
	conn := dial(listeners[1], held+1)
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n0\x00", server.PathOCSP)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil || !bytes.Equal(body, ocsp.TryLaterErrorResponse) {
		t.Errorf("a request past the room of both listeners' connections: %q, %v; want tryLater", body, err)
	}
}

// TestHeldBodiesMakeRoom: with the listener full of requests whose bodies
// are held back, a new client's connection takes the place of one of them
// within a second or so (connlimit.AwaitBody, connlimit.Leaving), not once
// the body's time is out: 10 s for an OCSP request's of more than 4 KiB, 3 s
// for an API request's, and smallbody.LeaveGrace, 3 s, for one its handler
// refused unread. Before, a connection in a request was one nothing took
// back, and a few networks that sent such requests again as they were
// answered held all of a server's.
func TestHeldBodiesMakeRoom(t *testing.T) {
	const connections = 4
	for _, tc := range []struct {
		name, head string
		read       bool // the handler reads the body (100 Continue says when)
	}{
		{"OCSP", fmt.Sprintf("POST %s HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: %d\r\n", server.PathOCSP, 2*smallbody.SmallBody), true},
		{"API", "POST / HTTP/1.1\r\nX-Amz-Target: ACMPrivateCA.ListCertificateAuthorities\r\nContent-Type: application/x-amz-json-1.1\r\nExpect: 100-continue\r\nContent-Length: 100\r\n", true},
		{"refused unread", "POST /nowhere HTTP/1.1\r\nContent-Length: 100\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := server.New(server.Config{OCSP: answerResponder{}, Authenticator: awsjson.StaticAuthenticator{}, MaxConnections: connections,
				Logger: slog.New(slog.DiscardHandler)})
			raw, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			l := connlimit.Listen(raw, connlimit.Limits{Total: connections})
			go srv.Serve(l, l.Limit)
			t.Cleanup(func() { srv.Shutdown(context.Background()) })
			for n := range connections {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(n+1), 1)}} // a network's share is one body
				conn, err := d.Dial("tcp", raw.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { conn.Close() })
				fmt.Fprintf(conn, "%sHost: x\r\n\r\n", tc.head)
				conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				line, err := bufio.NewReader(conn).ReadString('\n')
				if want := "HTTP/1.1 100 Continue"; tc.read && strings.TrimSpace(line) != want {
					t.Fatalf("held request %d of %d: %q, %v; want %s", n+1, connections, line, err, want)
				} else if !tc.read && err != nil {
					t.Fatalf("held request %d of %d: %v, want its answer", n+1, connections, err)
				}
			}
			time.Sleep(time.Second) // connlimit's grace for a connection in a request
			// Short of what is left of the least of the times above (2 s),
			// with the grace's last ticks and the eviction's.
			c := &http.Client{Transport: &http.Transport{}, Timeout: 1500 * time.Millisecond}
			res, err := c.Post("http://"+raw.Addr().String()+server.PathOCSP, "application/ocsp-request", bytes.NewReader([]byte{0x30, 0}))
			if err != nil {
				t.Fatalf("with the listener full of requests whose bodies are held back: %v", err)
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || string(body) != "answer" {
				t.Errorf("%q, %v; want the responder's answer", body, err)
			}
		})
	}
}
