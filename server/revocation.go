package server

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/openpca/openpca/internal/smallbody"
)

// OCSPResponder answers OCSP requests; *authority.Service implements it.
type OCSPResponder interface {
	OCSP(ctx context.Context, request []byte) []byte
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

// handleOCSP serves the OCSP responder. Every answer is an OCSP response,
// an error response (malformedRequest, ...) for a request that is not one.
// It returns the handler of GET requests, which must see their path
// before the mux cleans it (see New).
func (s *Server) handleOCSP(mux *http.ServeMux, responder OCSPResponder) http.HandlerFunc {
	answer := func(w http.ResponseWriter, r *http.Request, request []byte) {
		resp := responder.OCSP(r.Context(), request)
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(resp)
	}
	mux.HandleFunc("POST "+PathOCSP, func(w http.ResponseWriter, r *http.Request) {
		body, err := smallbody.Read(w, r, maxOCSPRequest)
		if err != nil {
			body = nil // too large, too slow or cut: malformed
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
		http.ServeContent(w, r, "", fi.ModTime(), f)
	})
}
