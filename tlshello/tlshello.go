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
// parsed: browsers' are 2 KiB or less, post-quantum key shares included.
const MaxHello = 16 << 10

// errTooLarge ends a handshake whose ClientHello is past MaxHello.
var errTooLarge = errors.New("tlshello: the ClientHello is longer than the server reads")

// NewListener returns a listener that serves TLS with config on the
// connections l accepts, each reading at most MaxHello bytes before its
// ClientHello is parsed. A connection it returns has NetConn, as its
// tls.Conn has, for the connection l accepted.
func NewListener(l net.Listener, config *tls.Config) net.Listener {
	c := config.Clone()
	next := c.GetConfigForClient
	c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if b, ok := hello.Conn.(*conn); ok {
			b.read.Store(true)
		}
		if next != nil {
			return next(hello)
		}
		return nil, nil
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

// conn is a connection whose reads stop at MaxHello bytes until read says
// its ClientHello was.
type conn struct {
	net.Conn
	read atomic.Bool
	left int // read by the handshake alone, before read is set
}

func (c *conn) Read(p []byte) (int, error) {
	if c.read.Load() {
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
