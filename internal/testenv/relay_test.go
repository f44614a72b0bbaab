package testenv

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestRelay: a Relay passes connections to the server it is set to, both
// ways and with half-closes; with none, a client is reset; set to another,
// new connections reach that one; a connection ends with its server's.
func TestRelay(t *testing.T) {
	r := NewRelay(t)
	// serve runs a server that greets a client with its name, reads what
	// the client sends until it is done sending, and answers with that.
	// stop ends it and its connections.
	serve := func(name string) (addr string, stop func()) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var conns []net.Conn
		stop = func() {
			l.Close()
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
		}
		t.Cleanup(stop)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				go func() {
					defer c.Close()
					io.WriteString(c, name+">")
					b, _ := io.ReadAll(c)
					io.WriteString(c, string(b))
				}()
			}
		}()
		return l.Addr().String(), stop
	}
	// dial connects; a reset can come before it returns.
	dial := func(t *testing.T) (net.Conn, error) {
		c, err := net.Dial("tcp", r.Addr())
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, nil
	}
	ask := func(t *testing.T) (string, error) {
		c, err := dial(t)
		if err != nil {
			return "", err
		}
		if _, err := io.WriteString(c, "hello"); err != nil {
			return "", err
		}
		c.(*net.TCPConn).CloseWrite()
		b, err := io.ReadAll(c)
		return string(b), err
	}
	reset := func(t *testing.T) {
		t.Helper()
		if got, err := ask(t); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("answer %q, %v; want the connection reset", got, err)
		}
	}

	t.Run("none", reset)
	a, _ := serve("a")
	r.To(a)
	if got, err := ask(t); got != "a>hello" || err != nil {
		t.Errorf("to a: %q, %v", got, err)
	}
	b, stopB := serve("b")
	r.To(b)
	if got, err := ask(t); got != "b>hello" || err != nil {
		t.Errorf("to b: %q, %v", got, err)
	}
	kept, err := dial(t)
	if err != nil {
		t.Fatal(err)
	}
	greeting := make([]byte, 2)
	if _, err := io.ReadFull(kept, greeting); err != nil || string(greeting) != "b>" {
		t.Fatalf("greeting %q, %v", greeting, err)
	}
	stopB()
	if _, err := io.ReadAll(kept); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("a connection outlived its server's")
	}
	r.To("")
	t.Run("away", reset)
	// Cut ends the connections the server still holds, as a network cut
	// would, not only new ones.
	c, _ := serve("c")
	r.To(c)
	open, err := dial(t)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(open, greeting); err != nil || string(greeting) != "c>" {
		t.Fatalf("greeting %q, %v", greeting, err)
	}
	r.Cut()
	if _, err := io.ReadAll(open); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("a connection outlived the cut")
	}
	t.Run("cut", reset)
}
