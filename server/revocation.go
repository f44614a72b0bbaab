package server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/clientaddr"
	"github.com/openpca/openpca/internal/smallbody"
)

// OCSPResponder answers OCSP requests; *authority.Service implements it.
// Said is what the response says, which the metrics count: the
// certificate's status (good, revoked, unknown) or the error response's
// name (openpca.OCSPTryLater, ...). A successful response comes with its
// thisUpdate and nextUpdate, an error response with zero times.
type OCSPResponder interface {
	OCSP(ctx context.Context, request []byte) (resp []byte, said string, thisUpdate, nextUpdate time.Time)
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

// ocspHandlers returns the OCSP responder's handlers of POST and GET
// requests, the listeners' that serve it sharing their bodies' budget.
// Every answer is an OCSP response, an error response (malformedRequest,
// ...) for a request that is not one. A GET request must be handled
// before the mux cleans its path (see revocationRoutes).
func (s *Server) ocspHandlers(responder OCSPResponder) (post, get http.HandlerFunc) {
	answer := func(w http.ResponseWriter, r *http.Request, request []byte) {
		// Within requestTimeout, as the API's requests and the console's
		// pages: a store that stops answering (or a reader of its pool
		// that does not come) holds no request, and its connection, for
		// as long as its client waits.
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		start := time.Now()
		resp, said, thisUpdate, nextUpdate := responder.OCSP(ctx, request)
		s.counts.ocspAnswered(r, said, time.Since(start))
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
	// The API's listener and --revocation-listen's each take as many
	// connections: sized for one, the budget of small bodies went whole to
	// half of both's.
	budgets := smallbody.NewBudgets(ocspBodyBudget, 2*cmp.Or(s.connections, smallbody.DefaultConnections), ocspBodyWait)
	post = func(w http.ResponseWriter, r *http.Request) {
		body, done, err := smallbody.Read(w, r, maxOCSPRequest, budgets, clientaddr.Network(s.proxies.Nearest(r), 24, 48))
		switch {
		case errors.Is(err, smallbody.ErrBusy):
			s.counts.ocspAnswered(r, openpca.OCSPTryLater, 0)
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
	}
	get = func(w http.ResponseWriter, r *http.Request) {
		// The request is base64 in the path, URL-escaped; some clients
		// leave '/' and '+' as they are.
		raw, err := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), PathOCSP+"/"))
		var request []byte
		if err == nil {
			request, _ = base64.StdEncoding.DecodeString(raw)
		}
		answer(w, r, request)
	}
	return post, get
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
		// The ETag (the file's time, to the nanosecond, and size) tells
		// apart CRLs written in one second, which Last-Modified did not: a
		// cache asking If-Modified-Since kept the older, so none is sent.
		// Caches ask again each time (no-cache): a CRL published after a
		// revocation reaches relying parties behind them at once.
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Header().Set("ETag", `"`+strconv.FormatInt(fi.ModTime().UnixNano(), 36)+"-"+strconv.FormatInt(fi.Size(), 36)+`"`)
		w.Header().Set("Cache-Control", "no-cache")
		holdToRate(w)
		http.ServeContent(w, r, "", time.Time{}, f)
	})
}
