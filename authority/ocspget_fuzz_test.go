package authority_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/openpca/openpca/app"
)

// FuzzOCSPGet sends the responder's GET form (RFC 6960, appendix A.1),
// which anyone can reach, whatever the fuzzer makes: any path under
// /ocsp/, as raw as a client can write it on the wire, with any
// If-None-Match. Every answer is an OCSP response (never a redirect, a
// 404 or a failure of the server's), the one to the request the path
// decodes to: a successful one answers exactly its CertID. 304 comes only
// for an If-None-Match that names the answer's ETag, or "*". And a request
// sent in the path, its base64 escaped as any client escapes it (all of
// it, none of '/' and '+', or only one of them), gets the answer it gets
// by POST.
func FuzzOCSPGet(f *testing.F) {
	e := newOCSPEnv(f, func(c *app.Config) { c.OCSPUnknownRate = 1e6 })
	host := strings.TrimPrefix(e.env.URL, "http://")
	for _, serial := range []*big.Int{e.cert.SerialNumber, big.NewInt(1), big.NewInt(0), new(big.Int).Lsh(big.NewInt(1), 200)} {
		req := ocspRequest(f, e.root, serial)
		b64 := base64.StdEncoding.EncodeToString(req)
		f.Add(url.PathEscape(b64), "", req, uint8(0))
		f.Add(b64, `W/"x", *`, req, uint8(1))
		f.Add(url.PathEscape(b64), `"00", W/""`, req, uint8(2))
	}
	f.Add("not-base64!", "", []byte(nil), uint8(2))
	f.Add("MA%3D%3D/../..//x?y#z", `"`, []byte{0x30, 0}, uint8(3))
	f.Add("%zz", "*", []byte("x"), uint8(4))

	f.Fuzz(func(t *testing.T, path, ifNoneMatch string, req []byte, escape uint8) {
		// The raw path. What the server refuses before any handler sees
		// it (a header value with a control character, a line break) is
		// net/http's, not the responder's.
		if !httpguts.ValidHeaderFieldValue(ifNoneMatch) || strings.ContainsAny(path, "\r\n") {
			ifNoneMatch, path = "", "x"
		}
		head := "GET /ocsp/" + path + " HTTP/1.1\r\nHost: " + host + "\r\nIf-None-Match: " + ifNoneMatch + "\r\nConnection: close\r\n\r\n"
		if parsed, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head))); err == nil && strings.HasPrefix(parsed.URL.EscapedPath(), "/ocsp/") {
			// What the path decodes to, as the responder reads it.
			var asked []byte
			if raw, err := url.PathUnescape(strings.TrimPrefix(parsed.URL.EscapedPath(), "/ocsp/")); err == nil {
				asked, _ = base64.StdEncoding.DecodeString(raw)
			}
			res, body := rawGet(t, host, head)
			switch res.StatusCode {
			case http.StatusOK:
				if ct := res.Header.Get("Content-Type"); ct != "application/ocsp-response" {
					t.Fatalf("GET /ocsp/%s: Content-Type %q", path, ct)
				}
				e.checkAnswer(t, asked, body)
			case http.StatusNotModified:
				etag := res.Header.Get("ETag")
				if etag == "" || !strings.Contains(ifNoneMatch, "*") && !strings.Contains(ifNoneMatch, etag) {
					t.Fatalf("GET /ocsp/%s: 304 for If-None-Match %q, ETag %q", path, ifNoneMatch, etag)
				}
			default:
				t.Fatalf("GET /ocsp/%s: status %d: %q", path, res.StatusCode, body)
			}
		}

		// The round trip: GET of req, escaped as a client would, answers
		// as POST of req does.
		b64 := base64.StdEncoding.EncodeToString(req)
		var p string
		switch escape % 4 {
		case 0:
			p = url.PathEscape(b64) // '/' and '+' escaped
		case 1:
			p = b64 // neither
		case 2:
			p = strings.ReplaceAll(b64, "/", "%2F")
		case 3:
			p = strings.ReplaceAll(b64, "+", "%2B")
		}
		head = "GET /ocsp/" + p + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"
		res, got := rawGet(t, host, head)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /ocsp/%s: status %d", p, res.StatusCode)
		}
		want := e.post(t, req)
		gotID, gotOK := responseCertID(t, got)
		wantID, wantOK := responseCertID(t, want)
		switch {
		case gotOK != wantOK:
			t.Fatalf("GET /ocsp/%s answered %x, POST of %x %x", p, got, req, want)
		case gotOK && !gotID.equal(wantID):
			t.Fatalf("GET /ocsp/%s answered about %+v, POST about %+v", p, gotID, wantID)
		case !gotOK && !bytes.Equal(got, want):
			t.Fatalf("GET /ocsp/%s answered %x, POST %x", p, got, want)
		}
		e.checkAnswer(t, req, got)
	})
}

// rawGet writes head on a connection of its own, as it is, and returns
// the answer.
func rawGet(t *testing.T, host, head string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", host, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: %v", head, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}
