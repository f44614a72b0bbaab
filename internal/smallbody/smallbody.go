// Package smallbody reads the small bodies of requests anyone may send
// (an OCSP request, a console form) within a bound of time, and leaves
// those a handler has no use for unread within one too (Leave). The
// server's read timeout is a minute, and a connection in the middle of a
// request is never idle, so it cannot be taken for a new client's: a body
// sent a byte every 20 s held its connection a minute, and sixteen
// addresses could hold all of the server's connections so.
package smallbody

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// Time is how long a body may take to arrive. Bodies read here are at
// most 64 KiB: the API's own pacing (3 s, and 1 s more per 128 KiB) would
// give them under 4 s, and 10 s is the headers' own bound.
const Time = 10 * time.Second

// ErrTooLarge is a body of more than the limit.
var ErrTooLarge = errors.New("the request's body is too large")

// Read reads r's body, of at most limit bytes, within Time. When the body
// is not read whole (too large, too slow, cut), its deadline stays: what
// net/http reads of the rest after the answer, to use the connection
// again, it reads within it too.
func Read(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	rc := http.NewResponseController(w)
	// Not every ResponseWriter can (a test's recorder): then the server's
	// own read timeout still ends a trickle.
	_ = rc.SetReadDeadline(time.Now().Add(Time))
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err == nil && int64(len(body)) > limit {
		err = ErrTooLarge
	}
	if err != nil {
		return nil, err
	}
	// No deadline is left for net/http's read behind the handler, whose
	// expiry would cancel the request.
	_ = rc.SetReadDeadline(time.Time{})
	return body, nil
}

// LeaveGrace is how long, once a request is answered unread (Leave), what
// comes of its body is still read: a client that sent its body whole gets
// the answer, not a reset from a connection closed on unread bytes.
const LeaveGrace = 3 * time.Second

// Leave answers r, whose body its handler does not read, with its
// connection's end. Otherwise net/http reads up to 256 KiB of the body
// before the answer, for as long as the sender holds it back; it still
// reads the body after the answer, before it closes the connection, but
// for LeaveGrace at most.
func Leave(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength == 0 {
		return
	}
	w.Header().Set("Connection", "close")
	// Not every ResponseWriter can (a test's recorder).
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(LeaveGrace))
}
