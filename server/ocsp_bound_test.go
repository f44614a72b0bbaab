package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/openpca/openpca/awsjson"
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
