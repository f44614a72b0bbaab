package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/openpca/openpca/clientaddr"
	"github.com/openpca/openpca/internal/smallbody"
)

// OCSPResponder answers OCSP requests; *authority.Service implements it.
// A successful response comes with its thisUpdate and nextUpdate, an
// error response (tryLater, say) with zero times.
type OCSPResponder interface {
	OCSP(ctx context.Context, request []byte) (resp []byte, thisUpdate, nextUpdate time.Time)
}

// LocalObjects opens objects of the embedded object store: regular files
// only, never through a symbolic link.
type LocalObjects interface {
	Open(bucket, key string) (*os.File, error)
}

// The OCSP responder's paths (RFC 6960, appendix A): POST a request to
// PathOCSP, or GET PathOCSP/<base64 request, URL-escaped>.
const PathOCSP = "/ocsp"

// maxOCSPRequest bounds a request: one names a few certificates in a few
// hundred bytes.
const maxOCSPRequest = 64 << 10

// The bodies of OCSP requests a server holds at once, past those of a
// few KiB (smallbody.Budgets; a request is a few hundred bytes), are at
// most ocspBodyBudget bytes (64 of the largest), and one waits
// ocspBodyWait for room, then is answered tryLater.
const (
	ocspBodyBudget = 4 << 20
	ocspBodyWait   = time.Second
)

// handleOCSP serves the OCSP responder. Every answer is an OCSP response,
// an error response (malformedRequest, ...) for a request that is not one.
// It returns the handler of GET requests, which must see their path
// before the mux cleans it (see New).
func (s *Server) handleOCSP(mux *http.ServeMux, responder OCSPResponder) http.HandlerFunc {
	answer := func(w http.ResponseWriter, r *http.Request, request []byte) {
		// Within requestTimeout, as the API's requests and the console's
		// pages: a store that stops answering (or a reader of its pool
		// that does not come) holds no request, and its connection, for
		// as long as its client waits.
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		resp, thisUpdate, nextUpdate := responder.OCSP(ctx, request)
		h := w.Header()
		h.Set("Content-Type", "application/ocsp-response")
		if thisUpdate.IsZero() {
			// An error response (tryLater) is for now only.
			h.Set("Cache-Control", "no-store")
			w.Write(resp)
			return
		}
		sum := sha256.Sum256(resp)
		etag := `"` + hex.EncodeToString(sum[:16]) + `"`
		h.Set("ETag", etag)
		h.Set("Last-Modified", thisUpdate.UTC().Format(http.TimeFormat))
		h.Set("Expires", nextUpdate.UTC().Format(http.TimeFormat))
		maxAge := max(0, min(s.ocspMaxAge, time.Until(nextUpdate)))
		h.Set("Cache-Control", fmt.Sprintf("max-age=%d, public, no-transform, must-revalidate", int64(maxAge/time.Second)))
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && etagMatches(r.Header.Get("If-None-Match"), etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(resp)
	}
	budgets := smallbody.NewBudgets(ocspBodyBudget, s.connections, ocspBodyWait)
	mux.HandleFunc("POST "+PathOCSP, func(w http.ResponseWriter, r *http.Request) {
		body, done, err := smallbody.Read(w, r, maxOCSPRequest, budgets, clientaddr.Network(s.proxies.Nearest(r), 24, 48))
		switch {
		case errors.Is(err, smallbody.ErrBusy):
			w.Header().Set("Content-Type", "application/ocsp-response")
			w.Header().Set("Cache-Control", "no-store")
			w.Write(ocsp.TryLaterErrorResponse)
			return
		case err != nil:
			body = nil // too large, too slow or cut: malformed
		default:
			defer done()
		}
		answer(w, r, body)
	})
	get := func(w http.ResponseWriter, r *http.Request) {
		// The request is base64 in the path, URL-escaped; some clients
		// leave '/' and '+' as they are.
		raw, err := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), PathOCSP+"/"))
		var request []byte
		if err == nil {
			request, _ = base64.StdEncoding.DecodeString(raw)
		}
		answer(w, r, request)
	}
	mux.HandleFunc("GET "+PathOCSP+"/", get)
	return get
}

// etagMatches reports whether an If-None-Match header names etag, or any
// (RFC 9110, 13.1.2: a weak comparison).
func etagMatches(header, etag string) bool {
	for tag := range strings.SplitSeq(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == etag || tag == "*" {
			return true
		}
	}
	return false
}

// handleLocalCRLs serves the CRLs of the embedded object store's buckets
// at /s3/<bucket>/<key>, where their distribution points say. Only CRLs
// are served: audit reports stay private.
func (s *Server) handleLocalCRLs(mux *http.ServeMux, objects LocalObjects) {
	mux.HandleFunc("GET /s3/{bucket}/{key...}", func(w http.ResponseWriter, r *http.Request) {
		key := r.PathValue("key")
		if !strings.HasSuffix(key, ".crl") {
			http.NotFound(w, r)
			return
		}
		f, err := objects.Open(r.PathValue("bucket"), key)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		holdToRate(w)
		http.ServeContent(w, r, "", fi.ModTime(), f)
	})
}

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
