package tlshello_test

import (
	"crypto/tls"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openpca/openpca/tlshello"
)

// counted is a connection that counts the bytes read from it.
type counted struct {
	net.Conn
	n *atomic.Int64
}

func (c counted) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// FuzzHandshake sends whatever the fuzzer makes, as what a client sends
// before it reads, to a TLS server behind the bound: before its handshake
// ends, the server reads no more than three times MaxHello, and the
// handshake ends (the client has left).
func FuzzHandshake(f *testing.F) {
	config, _ := serverConfig(f)
	// Seeds: a real client's first flight, one padded past the bound, and
	// a record that announces more than it holds.
	for _, pad := range []int{0, tlshello.MaxHello + 512} {
		var protos []string
		for n := 0; n < pad; n += 201 {
			protos = append(protos, string(make([]byte, 200)))
		}
		f.Add(firstFlight(protos))
	}
	f.Add([]byte{22, 3, 1, 0xff, 0xff, 1, 0, 0xff, 0xfc})
	// A hello the server answers with a HelloRetryRequest, then a second
	// one past the bound.
	random, share := make([]byte, 32), make([]byte, 32)
	f.Add(append(clientHello(random, nil, 0), clientHello(random, share, 40<<10)...))
	f.Fuzz(func(t *testing.T, flight []byte) { handshake(t, config, flight) })
}

// handshake sends flight to a TLS server of config behind the bound, and
// checks what it read.
func handshake(t *testing.T, config *tls.Config, flight []byte) {
	client, server := net.Pipe()
	var read atomic.Int64
	l := &oneConn{conn: counted{server, &read}}
	c, err := tlshello.NewListener(l, config).Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	done := make(chan error, 1)
	go func() { done <- c.(*tls.Conn).Handshake() }()
	go func() {
		client.Write(flight)
		client.Close()
	}()
	go func() { // what the server writes back, unread, would block it
		buf := make([]byte, 4096)
		for {
			if _, err := client.Read(buf); err != nil {
				return
			}
		}
	}()
	if err := <-done; err == nil {
		t.Fatal("a handshake ended with a client that sent one flight and left")
	}
	c.Close()
	if n := read.Load(); n > 3*tlshello.MaxHello {
		t.Errorf("read %d bytes before the handshake ended; want %d at most", n, 3*tlshello.MaxHello)
	}
}

// firstFlight is what Go's client sends first, with protos as its ALPN
// values.
func firstFlight(protos []string) []byte {
	client, server := net.Pipe()
	go tls.Client(client, &tls.Config{InsecureSkipVerify: true, NextProtos: protos}).Handshake()
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	var flight []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := server.Read(buf)
		flight = append(flight, buf[:n]...)
		if err != nil || n < len(buf) && len(flight) >= 5 && len(flight) >= 5+int(flight[3])<<8|int(flight[4]) {
			break
		}
	}
	client.Close()
	server.Close()
	return flight
}

// oneConn is a listener of one connection.
type oneConn struct {
	conn  net.Conn
	taken bool
}

func (l *oneConn) Accept() (net.Conn, error) {
	if l.taken {
		return nil, net.ErrClosed
	}
	l.taken = true
	return l.conn, nil
}

func (l *oneConn) Close() error   { return nil }
func (l *oneConn) Addr() net.Addr { return &net.TCPAddr{} }
