package server

import (
	"net/http"
	"time"
)

// An answer is written at answerRate at least (512 kbit/s), after
// answerGrace from its first byte (its headers', or its body's): a
// client that takes nothing (its requests pipelined, their answers never
// read) holds its connection for the grace and what the socket's buffers
// took (a few MB), not the server's write timeout of two minutes, counted
// from the request. Past the rate, an answer still goes on while each
// chunk of it goes within the grace (26 kbit/s): a client on a slow link
// gets a console's page, or its verifier of 2 MB. A CRL, which anyone may
// fetch, and large, is held to the rate (strict): one that reads at it
// gets a CRL of any size (34 MB, a million entries, in nine minutes), and
// one that reads slower holds no connection for hours.
const (
	answerGrace = 10 * time.Second
	answerRate  = 64 << 10
)

// paceAnswers writes the answers of h at answerRate, after answerGrace.
func paceAnswers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(paced(w, answerGrace, answerRate), r)
	})
}

// pacedWriter writes its response within grace of its first byte, and a
// second more for each rate bytes written; or else, unless strict, each
// chunk within grace of its start.
type pacedWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	grace   time.Duration
	rate    int64
	strict  bool
	end     time.Time // of the grace; zero before the first byte
	written int64
}

// paced returns a writer of w's response at rate bytes a second at least,
// after grace.
func paced(w http.ResponseWriter, grace time.Duration, rate int64) *pacedWriter {
	return &pacedWriter{ResponseWriter: w, rc: http.NewResponseController(w), grace: grace, rate: rate}
}

// holdToRate has the pacedWriter that w writes through (paceAnswers')
// hold its answer to its rate.
func holdToRate(w http.ResponseWriter) {
	for {
		switch v := w.(type) {
		case *pacedWriter:
			v.strict = true
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = v.Unwrap()
		default:
			return
		}
	}
}

// pace sets the deadline of the answer's next write, once n more bytes
// of it are written.
func (p *pacedWriter) pace(n int) {
	now := time.Now()
	if p.end.IsZero() {
		p.end = now.Add(p.grace)
	}
	p.written += int64(n)
	deadline := p.end.Add(time.Duration(p.written/p.rate)*time.Second + time.Duration(p.written%p.rate)*time.Second/time.Duration(p.rate))
	if stalled := now.Add(p.grace); !p.strict && stalled.After(deadline) {
		deadline = stalled
	}
	// Not every ResponseWriter can (a test's recorder): then the server's
	// own write timeout stands.
	_ = p.rc.SetWriteDeadline(deadline)
}

// WriteHeader starts the grace: the headers may go alone, at the
// handler's end, to a client that takes nothing.
func (p *pacedWriter) WriteHeader(code int) {
	p.pace(0)
	p.ResponseWriter.WriteHeader(code)
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	var n int
	for len(b) > 0 {
		// A chunk at a time, each with its own deadline: one large write
		// would have the time of all of it from the start.
		chunk := b[:min(len(b), paceChunk)]
		p.pace(len(chunk))
		m, err := p.ResponseWriter.Write(chunk)
		if n += m; err != nil {
			return n, err
		}
		b = b[m:]
	}
	return n, nil
}

// Unwrap gives http.ResponseController the server's writer: the read
// deadlines of bodies, and flushes.
func (p *pacedWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// paceChunk is what pacedWriter writes at once.
const paceChunk = 32 << 10
