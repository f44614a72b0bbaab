package authority_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"golang.org/x/crypto/ocsp"

	"github.com/openpca/openpca/app"
)

// TestOCSPCachingHeaders: an OCSP answer to a GET carries RFC 5019's
// caching headers (section 6.2; RFC 9919 keeps them), so that an HTTP cache
// (a CDN) in front of the server may serve it: Last-Modified and Expires
// are its thisUpdate and nextUpdate, and max-age is --ocsp-max-age, never
// past nextUpdate, and 0 by default, so that a cache asks each time and a
// revocation shows at once. A cache asking again with the answer's ETag is
// told it has not changed (304, to a HEAD too), until a revocation
// changes it. An error
// response (unauthorized, tryLater) is not to be kept.
func TestOCSPCachingHeaders(t *testing.T) {
	for _, c := range []struct {
		maxAge   time.Duration
		min, max int64 // max-age's seconds
	}{
		{0, 0, 0},
		{time.Hour, 3600, 3600},
		// Capped at nextUpdate, 24 hours after thisUpdate.
		{48 * time.Hour, 86400 - 120, 86400},
	} {
		t.Run(fmt.Sprint(c.maxAge), func(t *testing.T) {
			e := newOCSPEnv(t, func(cfg *app.Config) { cfg.OCSPMaxAge = c.maxAge })
			ask := func(method string, serial *big.Int, etag string) (*http.Response, []byte) {
				t.Helper()
				u := e.env.URL + "/ocsp/" + url.PathEscape(base64.StdEncoding.EncodeToString(ocspRequest(t, e.root, serial)))
				req, err := http.NewRequest(method, u, nil)
				if err != nil {
					t.Fatal(err)
				}
				if etag != "" {
					req.Header.Set("If-None-Match", etag)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				body, err := io.ReadAll(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				return res, body
			}
			res, body := ask(http.MethodGet, e.cert.SerialNumber, "")
			answer, err := ocsp.ParseResponse(body, e.root)
			if err != nil {
				t.Fatal(err)
			}
			h := res.Header
			var seconds int64
			if _, err := fmt.Sscanf(h.Get("Cache-Control"), "max-age=%d, public, no-transform, must-revalidate", &seconds); err != nil || seconds < c.min || seconds > c.max {
				t.Errorf("Cache-Control: %q, want max-age between %d and %d", h.Get("Cache-Control"), c.min, c.max)
			}
			for name, want := range map[string]time.Time{"Last-Modified": answer.ThisUpdate, "Expires": answer.NextUpdate} {
				if got, err := http.ParseTime(h.Get(name)); err != nil || !got.Equal(want) {
					t.Errorf("%s: %q, want %v", name, h.Get(name), want)
				}
			}
			etag := h.Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			// A condition that is false is 304 for GET and HEAD alike (RFC
			// 9110, 13.1.2).
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				if res, body := ask(method, e.cert.SerialNumber, "W/"+etag); res.StatusCode != http.StatusNotModified || len(body) != 0 {
					t.Errorf("%s again with its ETag: %s, %d bytes, want 304", method, res.Status, len(body))
				}
			}
			if _, err := e.env.Client.RevokeCertificate(ctx, &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &e.caARN,
				CertificateSerial: aws.String(e.cert.SerialNumber.Text(16)), RevocationReason: types.RevocationReasonKeyCompromise}); err != nil {
				t.Fatal(err)
			}
			res, body = ask(http.MethodGet, e.cert.SerialNumber, etag)
			if answer, err := ocsp.ParseResponse(body, e.root); res.StatusCode != http.StatusOK || err != nil || answer.Status != ocsp.Revoked {
				t.Errorf("asked with the ETag of the answer before the revocation: %s, %v", res.Status, err)
			}
			if res.Header.Get("ETag") == etag {
				t.Error("the revoked answer has the good one's ETag")
			}
			// Another CA's hashes: unauthorized.
			other := *e.root
			other.RawSubject = []byte("another")
			u := e.env.URL + "/ocsp/" + url.PathEscape(base64.StdEncoding.EncodeToString(ocspRequest(t, &other, e.cert.SerialNumber)))
			res, err = http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if cc, tag := res.Header.Get("Cache-Control"), res.Header.Get("ETag"); cc != "no-store" || tag != "" {
				t.Errorf("an error response: Cache-Control %q, ETag %q, want no-store and none", cc, tag)
			}
		})
	}
}
