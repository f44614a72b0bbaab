// Package tlshello bounds what a TLS client may send before its handshake
// ends. Go's crypto/tls reads a ClientHello of up to 64 KiB
// (padded with ALPN values, say), before any bound of the HTTP server's
// applies, and its buffers keep the size they grew to for as long as the
// connection is open: 4,096 connections each idle after one such hello
// held 467 MB, where HTTP's 16 KiB bound on headers meant to hold them to
// about 70.
package tlshello

import (
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// MaxHello is how many bytes a connection reads before its ClientHello is
// parsed, as many again until the handshake has its keys (the client's
// second ClientHello, after the server's HelloRetryRequest), and as many
// again until it ends (the client's Finished; Go reads a handshake message
// of 256 KiB there): browsers' hellos are 2 KiB or less, post-quantum key
// shares included.
const MaxHello = 16 << 10

// errTooLarge ends a handshake whose client sent more than MaxHello at
// one of its steps.
var errTooLarge = errors.New("tlshello: the client's handshake is longer than the server reads")

// NewListener returns a listener that serves TLS with config on the
// connections l accepts, each reading at most MaxHello bytes before its
// ClientHello is parsed, and twice that more before its handshake ends. A
// connection it returns has NetConn, as its tls.Conn has, for the
// connection l accepted. config's GetConfigForClient is not called.
//
// The handshake's end is told by net/http, which sets the connection's
// read deadline once the handshake is done: clears the one it set for the
// handshake, or sets a request's, which is none without a ReadTimeout or
// ReadHeaderTimeout. The first deadline cleared after VerifyConnection
// ends the bound.
func NewListener(l net.Listener, config *tls.Config) net.Listener {
	c := config.Clone()
	c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		b, ok := hello.Conn.(*conn)
		if !ok {
			return nil, nil
		}
		// Go reads a second ClientHello, after a HelloRetryRequest,
		// without asking again; then VerifyConnection is told, with or
		// without a client's certificate, before the client's last
		// messages are read.
		b.left = MaxHello
		each := config.Clone()
		verify := each.VerifyConnection
		each.VerifyConnection = func(cs tls.ConnectionState) error {
			b.left = MaxHello
			b.verified.Store(true)
			if verify != nil {
				return verify(cs)
			}
			return nil
		}
		return each, nil
	}
	return tls.NewListener(listener{l}, c)
}

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, left: MaxHello}, nil
}

// conn is a connection whose reads stop at MaxHello bytes, three times,
// until done says its handshake is.
type conn struct {
	net.Conn
	verified, done atomic.Bool
	left           int // read by the handshake alone, before done is set
}

// SetReadDeadline ends the bound once the handshake is verified and
// net/http clears the deadline it set for it: the handshake is done.
func (c *conn) SetReadDeadline(t time.Time) error {
	if t.IsZero() && c.verified.Load() {
		c.done.Store(true)
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *conn) Read(p []byte) (int, error) {
	if c.done.Load() {
		return c.Conn.Read(p)
	}
	if c.left <= 0 {
		return 0, errTooLarge
	}
	if len(p) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	c.left -= n
	return n, err
}

// NetConn returns the connection the listener accepted.
func (c *conn) NetConn() net.Conn { return c.Conn }
