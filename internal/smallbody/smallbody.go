// Package smallbody reads the small bodies of requests anyone may send
// (an OCSP request, a console form) within a bound of time, and bounds
// what a body a handler has no use for holds (Bound). The server's read
// timeout is a minute, and a connection in the middle of a request is
// never idle: a body sent a byte every 20 s held its connection a minute,
// and sixteen addresses could hold all of the server's connections so.
// While a body is awaited, its connection is one a new client's may take
// the place of (connlimit.AwaitBody, connlimit.Leaving).
package smallbody

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/openpca/openpca/connlimit"
)

// Time is how long a body may take to arrive. Bodies read here are at
// most 64 KiB: the API's own pacing (3 s, and 1 s more per 128 KiB) would
// give them under 4 s, and 10 s is the headers' own bound.
const Time = 10 * time.Second

// SmallTime is how long Read gives a body of at most SmallBody bytes,
// which comes in a packet or two with its headers: the API's pacing's
// floor. Such a body takes its connection for as long, which connlimit
// gives another client only once the listener is full: within Time (and
// LeaveGrace after), a request that declared a body of a byte and sent
// none held its connection 13 s, and sixteen networks that sent them
// again as they were answered held all of a server's.
const SmallTime = 3 * time.Second

// ErrTooLarge is a body of more than the limit.
var ErrTooLarge = errors.New("the request's body is too large")

// errTaken is a body read whole as its connection was taken for
// another's (connlimit.AwaitBody): answered as one that did not come.
var errTaken = errors.New("the request's connection was taken for another's")

// ErrBusy is a body the budget had no room for.
var ErrBusy = errors.New("the server is busy with other requests' bodies")

// Budgets are the budgets Read reads bodies in: one of its own for bodies
// that declare at most SmallBody bytes (an OCSP request, a console's
// sign-in), as large as that many bytes for every connection a server
// takes (so that held-back bodies can take it no sooner than they take
// the connections themselves), and one for larger or undeclared ones.
type Budgets struct{ small, large *Budget }

// SmallBody is the size of the bodies read in their own budget.
const SmallBody = 4 << 10

// NewBudgets returns Budgets of large bytes for large bodies (0 for a
// reader that takes none), and of SmallBody bytes for each of connections
// for small ones (for each of DefaultConnections if 0), whose room a body
// waits for at most wait.
func NewBudgets(large int64, connections int, wait time.Duration) *Budgets {
	connections = cmp.Or(connections, DefaultConnections)
	return &Budgets{small: NewBudget(int64(connections)*SmallBody, wait), large: NewBudget(large, wait)}
}

// DefaultConnections is how many connections a server takes at once by
// default (app.DefaultMaxConnections).
const DefaultConnections = 4096

// Read reads r's body, of at most limit bytes, within Time (SmallTime for
// one of at most SmallBody), in room it takes from budgets in the share of
// who, the network it comes from; a body whose declared length is larger
// is ErrTooLarge before a byte of it is read, and one the budget has no
// room for ErrBusy. done gives the room back: the body must not be used
// after. What is left of a body not read whole, Bound leaves.
func Read(w http.ResponseWriter, r *http.Request, limit int64, budgets *Budgets, who netip.Prefix) (body []byte, done func(), err error) {
	n := r.ContentLength
	switch {
	case n > limit:
		return nil, nil, ErrTooLarge
	case n < 0:
		n = limit
	}
	budget, wait := budgets.large, Time
	if n <= SmallBody {
		budget, wait = budgets.small, SmallTime
	}
	if !budget.Acquire(r.Context(), who, n) {
		return nil, nil, ErrBusy
	}
	done = func() { budget.Release(who, n) }
	rc := http.NewResponseController(w)
	// Not every ResponseWriter can (a test's recorder): then the server's
	// own read timeout still ends a trickle.
	_ = rc.SetReadDeadline(time.Now().Add(wait))
	// Of the size the room is for, and one byte more, to see a body
	// longer than it said: io.ReadAll, and bytes.Buffer, grow their
	// buffers to twice what they hold. Its connection is one another may
	// take the place of meanwhile, if the listener is full
	// (connlimit.AwaitBody).
	awaited := connlimit.AwaitBody(r.Context())
	body, err = Fill(r.Body, make([]byte, 0, n+1), nil)
	if !awaited() && err == nil {
		err = errTaken // its request's context ends
	}
	if err != nil {
		done()
		return nil, nil, err
	}
	// No deadline is left for net/http's read behind the handler, whose
	// expiry would cancel the request.
	_ = rc.SetReadDeadline(time.Time{})
	return body, done, nil
}

// Fill reads r to its end into buf's room past its length, whose last
// byte is there to see a body longer than it may be: one that fills it is
// ErrTooLarge. progress, if set, is told how many bytes buf holds after
// each read that got some.
func Fill(r io.Reader, buf []byte, progress func(int)) ([]byte, error) {
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if n > 0 && progress != nil {
			progress(len(buf))
		}
		switch {
		case len(buf) == cap(buf):
			return nil, ErrTooLarge
		case errors.Is(err, io.EOF):
			return buf, nil
		case err != nil:
			return nil, err
		}
	}
}

// LeaveGrace is how long, once a request is answered, what comes of a
// body its handler did not read whole is still read (Bound): a client
// that sent its body whole gets the answer, not a reset from a connection
// closed on unread bytes.
const LeaveGrace = 3 * time.Second

// Bound bounds what the bodies of requests to h hold of their
// connections. net/http reads what a handler left of a body, up to 256
// KiB, to use the connection again: before the answer (which waited for
// it), and after it, before the connection's next request, within the
// server's read timeout of a minute. A body held back held its connection
// that long, however quickly its request was refused, and a busy
// connection is never taken for a new client's.
//
// Under Bound, a body has Time to arrive unless its handler sets a
// deadline of its own as it reads it. The answer to a request whose body
// its handler did not read whole ends the connection, and goes at once;
// after it, what comes of the body is read for LeaveGrace, then the
// connection ends; at once, if a read of it failed (its deadline was out:
// a client that slow is not waited for twice). (Of a rest of more than
// 256 KiB, net/http reads nothing: it ends the connection half a second
// after the answer, and a client still sending may get a reset instead of
// the answer, unless it reads as it sends, as Go's does.)
func Bound(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Over HTTP/2, an unread body ends its own stream, and
		// "Connection: close" would end the connection: every request a
		// proxy sends on it. (An HTTP/1 connection's "PRI * HTTP/2.0" is
		// HTTP/1 all the same.)
		if r.ContentLength == 0 || r.ProtoMajor != 1 && r.Method != "PRI" {
			h.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		// Not every ResponseWriter can (a test's recorder).
		_ = rc.SetReadDeadline(time.Now().Add(Time))
		body := &wholeBody{ReadCloser: r.Body}
		// On a copy: net/http tells from the request it was given
		// whether a body was left unread, and then ends the connection
		// after a wait, not at once, on the bytes still coming (a reset
		// that lost the client the answer).
		r = r.WithContext(r.Context())
		r.Body = body
		lw := &leavingWriter{ResponseWriter: w, body: body}
		// Deferred, for a handler that panics too: net/http then reads
		// the body before it closes the connection.
		defer func() {
			if !body.whole.Load() {
				lw.leave() // net/http writes the answer's headers itself
				grace := LeaveGrace
				if body.failed.Load() {
					grace = 0
				}
				_ = rc.SetReadDeadline(time.Now().Add(grace))
				// What is read of it meanwhile holds the connection no
				// longer than another needs it.
				connlimit.Leaving(r.Context())
			}
		}()
		h.ServeHTTP(lw, r)
	})
}

// wholeBody is a request's body that says whether it was read to its
// end, or a read of it failed.
type wholeBody struct {
	io.ReadCloser
	whole, failed atomic.Bool
}

// Close leaves the body to the server, which closes it after the answer,
// within LeaveGrace: closed by its handler, it was read there, for as long
// as its sender held it back.
func (b *wholeBody) Close() error { return nil }

func (b *wholeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.whole.Store(true)
	case err != nil:
		b.failed.Store(true)
	}
	return n, err
}

// leavingWriter answers with the connection's end if the request's body
// was not read whole by the time its answer's headers go.
type leavingWriter struct {
	http.ResponseWriter
	body  *wholeBody
	wrote bool
}

func (l *leavingWriter) WriteHeader(code int) {
	if code >= 200 { // not an informational answer
		l.leave()
	}
	l.ResponseWriter.WriteHeader(code)
}

// leave marks the answer to end the connection, if its headers have not
// gone and the body was not read whole.
func (l *leavingWriter) leave() {
	if !l.wrote {
		l.wrote = true
		if !l.body.whole.Load() {
			l.Header().Set("Connection", "close")
		}
	}
}

// FlushError is what http.ResponseController's Flush calls: a flush
// sends the headers too.
func (l *leavingWriter) FlushError() error {
	l.leave()
	return http.NewResponseController(l.ResponseWriter).Flush()
}

func (l *leavingWriter) Write(p []byte) (int, error) {
	if !l.wrote {
		l.WriteHeader(http.StatusOK)
	}
	return l.ResponseWriter.Write(p)
}

// Unwrap gives http.ResponseController the server's writer.
func (l *leavingWriter) Unwrap() http.ResponseWriter { return l.ResponseWriter }

// Budget is a budget of bytes for request bodies, shared out among the
// networks requests come from (an IPv4 /24, an IPv6 /48): none holds or
// awaits more than an eighth of it (or one body, if that is more). Anyone
// can send the bodies of OCSP requests and console forms, or name an
// access key id, which is no secret, in an API request whose headers pass
// before its body is read: the networks that hold bodies back leave seven
// eighths to the others. (The API's, shared out by key and address, as
// it was, went whole to four requests' worth of addresses, each naming a
// key of its own; bodies of 64 KiB sent to the OCSP responder and the
// console, each held back its last byte, by 4,096 connections, took a
// server to 1.5 GB before they had a budget.)
type Budget struct {
	sem  *semaphore.Weighted
	size int64
	wait time.Duration

	mu   sync.Mutex
	held map[netip.Prefix]int64 // held or awaited, by network
}

// NewBudget returns a Budget of size bytes, whose room a body waits for
// at most wait.
func NewBudget(size int64, wait time.Duration) *Budget {
	return &Budget{sem: semaphore.NewWeighted(size), size: size, wait: wait, held: map[netip.Prefix]int64{}}
}

// bodyShares is how many networks share a budget out.
const bodyShares = 8

// Acquire makes room for n bytes of who's, waiting at most the budget's
// wait; it reports whether it did.
func (p *Budget) Acquire(ctx context.Context, who netip.Prefix, n int64) bool {
	if n > p.size {
		return false // never: no wait would make room
	}
	p.mu.Lock()
	ok := p.held[who] == 0 || p.held[who]+n <= p.size/bodyShares
	if ok {
		p.held[who] += n
	}
	p.mu.Unlock()
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, p.wait)
	defer cancel()
	if err := p.sem.Acquire(ctx, n); err != nil {
		p.forget(who, n)
		return false
	}
	return true
}

// Release gives back the room Acquire made.
func (p *Budget) Release(who netip.Prefix, n int64) {
	p.sem.Release(n)
	p.forget(who, n)
}

func (p *Budget) forget(who netip.Prefix, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held[who] -= n; p.held[who] == 0 {
		delete(p.held, who)
	}
}
