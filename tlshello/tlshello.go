// Package tlshello bounds what a TLS client may send before the server has
// read its ClientHello. Go's crypto/tls reads a ClientHello of up to 64 KiB
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
)

// MaxHello is how many bytes a connection reads before its ClientHello is
// parsed, and as many again before its handshake ends (the client's
// second ClientHello, after the server's HelloRetryRequest, and its
// Finished): browsers' hellos are 2 KiB or less, post-quantum key shares
// included.
const MaxHello = 16 << 10

// errTooLarge ends a handshake whose ClientHello is past MaxHello.
var errTooLarge = errors.New("tlshello: the ClientHello is longer than the server reads")

// NewListener returns a listener that serves TLS with config on the
// connections l accepts, each reading at most MaxHello bytes before its
// ClientHello is parsed, and MaxHello more before its handshake ends. A
// connection it returns has NetConn, as its tls.Conn has, for the
// connection l accepted. config's GetConfigForClient is not called.
func NewListener(l net.Listener, config *tls.Config) net.Listener {
	c := config.Clone()
	c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		b, ok := hello.Conn.(*conn)
		if !ok {
			return nil, nil
		}
		// Go reads a second ClientHello, after a HelloRetryRequest,
		// without asking again: the bound holds until the handshake is
		// all but done, which VerifyConnection is told of, with or
		// without a client's certificate.
		b.left = MaxHello
		each := config.Clone()
		verify := each.VerifyConnection
		each.VerifyConnection = func(cs tls.ConnectionState) error {
			b.done.Store(true)
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

// conn is a connection whose reads stop at MaxHello bytes, twice, until
// done says its handshake is.
type conn struct {
	net.Conn
	done atomic.Bool
	left int // read by the handshake alone, before done is set
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
