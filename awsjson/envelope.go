package awsjson

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/clientaddr"
	"github.com/openpca/openpca/connlimit"
	"github.com/openpca/openpca/internal/logsample"
	"github.com/openpca/openpca/internal/smallbody"
)

// Authenticator establishes who sent a request, in two steps, so that a
// request that cannot be genuine costs no memory for its body:
// Authenticate checks what the headers prove before the body is read, and
// the BodyCheck it returns finishes with the body.
type Authenticator interface {
	Authenticate(r *http.Request) (BodyCheck, error)
}

// BodyCheck finishes authenticating a request over its body, and returns
// who made it; with an error, a Caller only if the body proved who it is.
type BodyCheck func(body []byte) (openpca.Caller, error)

// Outcome describes one request once it has been answered.
type Outcome struct {
	RequestID string
	Operation string // "" when the request named no operation
	AccountID string
	// Key is the access key whose signature the request proved; "" for a
	// request that proved none.
	Key      string
	Status   int
	Code     string // AWS error code, or CodeClientClosed; "" on success
	Duration time.Duration
}

// The outcome of a request whose client hung up before it was answered,
// in the log and the metrics: nginx's status for it, and a code of
// OpenPCA's own. What is written to it, should it still read, is a 503.
const (
	StatusClientClosed = 499
	CodeClientClosed   = "ClientClosedRequest"
)

// Call is one operation of an authenticated endpoint, as Envelope.Serve
// runs it.
type Call struct {
	// Operation names the action, for authorization, logs and metrics.
	Operation string
	// MaxBody bounds the request body; 0 means the request has none, and
	// its body is never read.
	MaxBody int64
	// Run answers the request of the authenticated, authorized caller
	// that ctx carries.
	Run func(ctx context.Context, body []byte) (Reply, error)
}

// Reply is a successful answer.
type Reply struct {
	ContentType string
	Body        []byte
}

// BodyBudget bounds the bytes of large request bodies (see
// smallBody) that a server holds at once; small ones have a quarter of it
// of their own, so that they never wait behind a large one. A body is read
// only once its request's headers are known to be signed by a known key;
// the budgets cap what requests that pass that check and then fail (or
// are merely large) can pin in memory together.
const BodyBudget = 32 << 20

// bodyWait is how long a request waits for room in the body budget before
// it is answered ServiceUnavailableException, which clients retry.
const bodyWait = 10 * time.Second

// A body must keep coming once it has room in the budget: its bytes so
// far at minBodyRate, from bodyGrace after it got room. One that
// trickles, to hold its room, is cut off (4 MiB within 35 s), and one
// that never comes after 3 s, whatever its size. A client sends its body
// right after its headers; the grace is for a slow link, not for a body
// held back (10 s of it, and a deadline set by the size alone, let an
// attack hold 4 MiB of room for 42 s without sending a byte).
const (
	bodyGrace   = 3 * time.Second
	minBodyRate = 128 << 10 // bytes a second
)

// Envelope is what every authenticated endpoint of the server shares: a
// request id, authentication before the body is read, a bounded body, the
// caller and the operation in the context (for the service to authorize),
// recovery from panics, errors written the AWS way, and the outcome
// reported.
type Envelope struct {
	authn   Authenticator
	proxies clientaddr.Proxies
	logger  *slog.Logger
	// unproven logs, sampled, what failed of requests that proved no
	// signature: anyone can send them, as fast as they like, and while
	// the store fails each one fails.
	unproven *slog.Logger
	observe  func(*http.Request, Outcome)
	small    *smallbody.Budget // for bodies of at most smallBody
	large    *smallbody.Budget
	buffers  sync.Pool // *[]byte: buffers for bodies larger than smallBody
	accounts *AccountRates
	timeout  time.Duration
}

// DefaultRequestTimeout is how long a request may take, past which it is
// answered ServiceUnavailableException, which clients retry: a database
// or object store that stopped answering without closing its connection
// (a peer gone, a proxy between that holds it) would otherwise hold the
// request, and its client, for good.
const DefaultRequestTimeout = time.Minute

// Options are an Envelope's settings.
type Options struct {
	// AccountRates bounds the requests of each account, a second (as
	// many at once); past it they are ThrottlingException. nil: no bound.
	AccountRates *AccountRates
	// Proxies are the proxies in front of the server whose word on the
	// client's address it takes: for aws:SourceIp, and the body budget's
	// share of an address.
	Proxies clientaddr.Proxies
	// RequestTimeout bounds each request; 0 is DefaultRequestTimeout.
	RequestTimeout time.Duration
}

// NewEnvelope returns an Envelope. observe, if set, is told the outcome of
// every request.
func NewEnvelope(authn Authenticator, logger *slog.Logger, observe func(*http.Request, Outcome), opts Options) *Envelope {
	return &Envelope{authn: authn, proxies: opts.Proxies, logger: logger, unproven: logsample.Logger(logger), observe: observe, small: smallbody.NewBudget(BodyBudget/4, bodyWait), large: smallbody.NewBudget(BodyBudget, bodyWait),
		accounts: opts.AccountRates, timeout: cmp.Or(opts.RequestTimeout, DefaultRequestTimeout)}
}

// Serve answers r with the Call that route chooses for it. An error from
// route (an unknown operation, say) is answered before authentication.
func (e *Envelope) Serve(w http.ResponseWriter, r *http.Request, route func(*http.Request) (*Call, error)) {
	start := time.Now()
	out := Outcome{RequestID: uuid.NewString(), Status: http.StatusOK}
	w.Header().Set("x-amzn-RequestId", out.RequestID)
	defer func() {
		if p := recover(); p != nil {
			logger := e.loggerOf(&out)
			logger.Error("panic serving request", "request_id", out.RequestID, "operation", out.Operation,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			out.Status, out.Code = WriteError(w, logger, out.RequestID, fmt.Errorf("panic: %v", p))
		}
		out.Duration = time.Since(start)
		if e.observe != nil {
			e.observe(r, out)
		}
	}()
	ctx, cancel := context.WithTimeout(r.Context(), e.timeout)
	defer cancel()
	reply, err := e.serve(w, r.WithContext(ctx), &out, route)
	_, answered := errors.AsType[*openpca.Error](err)
	switch {
	case err == nil || answered:
	case openpca.Abandoned(r.Context(), err):
		// The client hung up, and the request failed for that alone:
		// not an internal failure (logged at ERROR, counted as a 500),
		// which anyone could cause as fast as they hang up. A client
		// that only closed its sending half still reads the answer, a
		// 503 it retries: without one, net/http sent an empty 200, which
		// the SDKs take for success.
		WriteError(w, e.loggerOf(&out), out.RequestID, openpca.Errorf(openpca.CodeServiceUnavailable, "The request's connection was closed before it was answered; retry."))
		out.Status, out.Code = StatusClientClosed, CodeClientClosed
		return
	case ctx.Err() == context.DeadlineExceeded:
		err = &openpca.Error{Code: openpca.CodeServiceUnavailable, Message: fmt.Sprintf("The request did not finish within %s; retry later.", e.timeout), Cause: err}
	}
	if err != nil {
		out.Status, out.Code = WriteError(w, e.loggerOf(&out), out.RequestID, err)
		return
	}
	if reply.ContentType != "" {
		w.Header().Set("Content-Type", reply.ContentType)
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(reply.Body)))
	w.WriteHeader(http.StatusOK)
	w.Write(reply.Body)
}

// loggerOf is the logger of what failed of the request of out.
func (e *Envelope) loggerOf(out *Outcome) *slog.Logger {
	if out.Key == "" {
		return e.unproven
	}
	return e.logger
}

func (e *Envelope) serve(w http.ResponseWriter, r *http.Request, out *Outcome, route func(*http.Request) (*Call, error)) (Reply, error) {
	call, err := route(r)
	if err != nil {
		return Reply{}, err
	}
	out.Operation = call.Operation
	check, err := e.authn.Authenticate(r)
	if err != nil {
		return Reply{}, err
	}
	body, done, err := e.readBody(w, r, call.MaxBody)
	if err != nil {
		return Reply{}, err
	}
	defer done()
	caller, err := check(body)
	// Set even with an error: a key that proved its signature and is
	// denied all the same is named in the log.
	out.AccountID, out.Key = caller.AccountID, caller.Principal
	if err != nil {
		return Reply{}, err
	}
	if err := e.accounts.Check(caller.AccountID); err != nil {
		return Reply{}, err
	}
	// What the connection tells, for the aws:SourceIp and
	// aws:SecureTransport condition keys. X-Forwarded-For and
	// X-Forwarded-Proto are believed from a trusted proxy alone: any
	// client can send them. A client whose
	// address cannot be told has no aws:SourceIp, which IpAddress
	// conditions do not match and NotIpAddress ones do.
	if addr := e.proxies.Of(r); addr.IsValid() {
		caller.SourceIP = addr.String()
	}
	caller.SecureTransport = e.proxies.Secure(r)
	ctx := openpca.WithCaller(r.Context(), caller)
	ctx = openpca.WithOperation(openpca.WithRequestID(ctx, out.RequestID), call.Operation)
	return call.Run(ctx, body)
}

// smallBody is the size up to which a body is read into a buffer of its
// own. Larger ones are read into buffers the envelope keeps for them, so
// that a flood of large requests reuses the same memory instead of leaving
// garbage for the collector to find late.
const smallBody = 64 << 10

// readBody reads the body of r, at most limit bytes, within the body
// budget, in the share of the network it comes from. done gives
// the budget back, and the body's buffer with it: the body must not be
// used after.
func (e *Envelope) readBody(w http.ResponseWriter, r *http.Request, limit int64) (body []byte, done func(), err error) {
	n := r.ContentLength
	// A body refused unread is left to package server (smallbody.Bound).
	switch {
	case limit == 0 || n == 0:
		return nil, func() {}, nil
	case n > limit:
		return nil, nil, tooLarge(limit)
	case n < 0 || n > smallBody: // a large buffer, or unknown until read
		n = limit
	}
	pool := e.large
	if n <= smallBody {
		pool = e.small
	}
	// An IPv4 /24 or IPv6 /48, which one site is often given whole.
	who := clientaddr.Network(e.proxies.Nearest(r), 24, 48)
	if !pool.Acquire(r.Context(), who, n) {
		return nil, nil, openpca.Errorf(openpca.CodeServiceUnavailable, "The server is busy with other large requests; retry.")
	}
	// Not every ResponseWriter can (a test's recorder): then the server's
	// own read timeout still ends a trickle.
	rc, start := http.NewResponseController(w), time.Now()
	pace := func(got int) {
		_ = rc.SetReadDeadline(start.Add(bodyGrace + time.Duration(got)*time.Second/minBodyRate))
	}
	pace(0)
	var buf []byte
	if n == limit {
		if b, ok := e.buffers.Get().(*[]byte); ok && int64(cap(*b)) > limit {
			buf = (*b)[:0]
		} else {
			buf = make([]byte, 0, limit+1)
		}
	} else {
		buf = make([]byte, 0, n+1) // +1: room to see that the body is not longer than it said
	}
	done = func() {
		if n == limit {
			e.buffers.Put(&buf)
		}
		pool.Release(who, n)
	}
	// Its connection is one another may take the place of meanwhile, if
	// the listener is full: anyone can name an access key id.
	awaited := connlimit.AwaitBody(r.Context())
	body, err = fill(r.Body, buf[:0:min(cap(buf), int(limit)+1)], limit, pace)
	if !awaited() && err == nil {
		err = &openpca.Error{Code: openpca.CodeSerialization, Message: "the request body did not arrive in time"}
	}
	if err != nil {
		done()
		return nil, nil, err
	}
	// The body is in: no deadline is left for net/http's read behind the
	// handler, whose expiry cancels the request (an issuance of more than
	// 3 s failed, and every later request on its connection).
	_ = rc.SetReadDeadline(time.Time{})
	return body, done, nil
}

// fill reads all of r into buf (smallbody.Fill), whose room is for limit
// bytes and one more, and tells progress how many it has after each read
// that got some.
func fill(r io.Reader, buf []byte, limit int64, progress func(int)) ([]byte, error) {
	body, err := smallbody.Fill(r, buf, progress)
	switch {
	case errors.Is(err, smallbody.ErrTooLarge):
		return nil, tooLarge(limit)
	case err != nil:
		// Not Go's error, which names the server's address and port
		// (behind a load balancer, its private ones); nor logged: it
		// is the client's, and anyone's to cause.
		msg := "cannot read request body"
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			msg = "the request body did not arrive in time"
		}
		return nil, &openpca.Error{Code: openpca.CodeSerialization, Message: msg}
	}
	return body, nil
}

func tooLarge(limit int64) error {
	return openpca.Errorf(openpca.CodeRequestEntityTooLarge, "request body exceeds %d bytes", limit)
}
