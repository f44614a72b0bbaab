package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/fuzzhttp"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/server"
)

// beforeAuthentication are the codes of the answers a request can get
// without proving a key's secret: a refused signature, a request the
// envelope refuses before it looks at one (an unknown operation, a body
// too large, a server too busy), and a body that could not be read.
var beforeAuthentication = map[string]bool{
	openpca.CodeMissingAuthenticationToken: true, openpca.CodeIncompleteSignature: true,
	openpca.CodeInvalidSignature: true, openpca.CodeUnrecognizedClient: true,
	openpca.CodeUnknownOperation: true, openpca.CodeRequestEntityTooLarge: true,
	openpca.CodeServiceUnavailable: true, openpca.CodeSerialization: true,
}

// unsignedRoutes are the routes of the API's envelope: the AWS API on
// POST, and the audit log's signed endpoints.
var unsignedRoutes = []string{"POST /", "GET " + server.PathCheckpoint, "GET " + server.PathConsistency, "GET " + server.PathInclusion, "GET " + server.PathReports}

// FuzzUnsigned sends the API and the audit log's signed endpoints, on a
// server that authenticates requests against its store (FuzzAPI's does
// not), whatever headers, query and body the fuzzer makes: an
// Authorization of any form, any X-Amz-Date, X-Amz-Target, security
// token or content hash, naming the store's real key or none. The fuzzer
// does not know the key's secret, so no request of its may get past
// authentication: each answer is an AWS error (its code in __type and in
// X-Amzn-ErrorType, a request id) of those a request gets before it
// proves a signature, never 200, never an internal failure, and in time.
func FuzzUnsigned(f *testing.F) {
	env := testenv.Start(f)
	host := strings.TrimPrefix(env.URL, "http://")
	now := env.Clock.Now().Format("20060102T150405Z")
	day := now[:8]
	auth := func(key, scope, signed string) string {
		return "Authorization: AWS4-HMAC-SHA256 Credential=" + key + "/" + day + scope + ", SignedHeaders=" + signed + ", Signature=" + strings.Repeat("ab", 32) + "\r\n"
	}
	const scope = "/us-east-1/acm-pca/aws4_request"
	arn := "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/11111111-2222-3333-4444-555555555555"
	for _, seed := range []struct {
		route          uint8
		query, headers string
		body           string
	}{
		{0, "", "Content-Type: application/x-amz-json-1.1\r\nX-Amz-Target: ACMPrivateCA.ListCertificateAuthorities\r\n", "{}"},
		{0, "", "Content-Type: application/x-amz-json-1.1\r\nX-Amz-Target: ACMPrivateCA.ListCertificateAuthorities\r\nX-Amz-Date: " + now + "\r\n" +
			auth(testenv.AccessKeyID, scope, "content-type;host;x-amz-date;x-amz-target"), "{}"},
		{0, "", "Content-Type: application/x-amz-json-1.1\r\nX-Amz-Target: ACMPrivateCA.IssueCertificate\r\nX-Amz-Date: " + now + "\r\nX-Amz-Security-Token: tok\r\n" +
			"X-Amz-Content-Sha256: UNSIGNED-PAYLOAD\r\n" + auth("AKIDUNKNOWN0000000000", scope, "content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token;x-amz-target"),
			`{"CertificateAuthorityArn":"` + arn + `"}`},
		{0, "", "X-Amz-Target: ACMPrivateCA.ListCertificateAuthorities\r\nX-Amz-Date: " + now + "\r\n" + auth(testenv.AccessKeyID, "/us-east-1/s3/aws4_request", "host;x-amz-date"), ""},
		{0, "x?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + testenv.AccessKeyID + "%2F" + day + "%2Fus-east-1%2Facm-pca%2Faws4_request&X-Amz-Date=" + now +
			"&X-Amz-SignedHeaders=host&X-Amz-Signature=" + strings.Repeat("0", 64), "X-Amz-Target: ACMPrivateCA.GetCertificate\r\n", "{}"},
		{1, "certificateAuthorityArn=" + arn, "X-Amz-Date: " + now + "\r\n" + auth(testenv.AccessKeyID, scope, "host;x-amz-date"), ""},
		{2, "certificateAuthorityArn=" + arn + "&from=1&to=9223372036854775807", "X-Amz-Date: " + now + "\r\n" + auth(testenv.AccessKeyID, scope, "host;x-amz-date"), ""},
		{3, "certificateAuthorityArn=" + arn + "&serial=01", "X-Amz-Date: " + now + "\r\n" + auth("AKID\xff", scope, "host;x-amz-date"), ""},
		{4, "certificateAuthorityArn=" + arn, "", ""},
	} {
		f.Add(seed.route, seed.query, seed.headers, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, route uint8, query, headers string, body []byte) {
		method, path, _ := strings.Cut(unsignedRoutes[int(route)%len(unsignedRoutes)], " ")
		target := path
		if query != "" {
			if method == http.MethodPost {
				target += query // any path: all but the server's others are the API's
			} else {
				target += "?" + query
			}
		}
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" + headers + "\r\n")))
		if err != nil || !fuzzhttp.Servable(r) || !strings.HasPrefix(r.URL.Path, path) {
			return // not a request net/http would hand the server's handlers
		}
		if method == http.MethodPost {
			for _, other := range []string{"/console/", "/ocsp", "/s3/", "/audit-log/", "/healthz", "/readyz", "/metrics"} {
				if strings.HasPrefix(r.URL.Path, other) || strings.HasPrefix(r.URL.EscapedPath(), other) {
					return // another handler's
				}
			}
			if r.URL.Path != cleanPath(r.URL.Path) {
				return // the mux redirects it
			}
		}
		// The body as sent, whole and on a connection of its own.
		for _, h := range []string{"Content-Length", "Transfer-Encoding", "Connection", "Expect", "Trailer", "Upgrade"} {
			r.Header.Del(h)
		}
		r.Host, r.TransferEncoding, r.Close = host, nil, true
		r.ContentLength, r.Body = int64(len(body)), io.NopCloser(bytes.NewReader(body))
		res, out := send(t, host, r)
		if res == nil {
			return
		}
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(out, &e); err != nil || e.Type == "" || e.Type != res.Header.Get("X-Amzn-ErrorType") || res.Header.Get("X-Amzn-RequestId") == "" {
			t.Fatalf("%s %s answered %d with %q", method, target, res.StatusCode, out)
		}
		if res.StatusCode == http.StatusOK || res.StatusCode >= 500 && res.StatusCode != http.StatusServiceUnavailable || !beforeAuthentication[e.Type] {
			t.Fatalf("%s %s (headers %q) answered %d %s: %s", method, target, headers, res.StatusCode, e.Type, e.Message)
		}
	})
}

// cleanPath is the path the mux serves p at, as net/http cleans it (it
// redirects a request for another).
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// send writes r on a connection of its own and reads the answer, within
// 10 s: nil if the server closed the connection before answering, which
// it may do to a request it refuses without reading its body; it must
// still be there.
func send(t *testing.T, host string, r *http.Request) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", host, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	werr := r.Write(conn)
	res, err := http.ReadResponse(bufio.NewReader(conn), r)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("%s %s: no answer within 10 s", r.Method, r.URL)
		}
		if werr == nil {
			t.Fatalf("%s %s: %v", r.Method, r.URL, err)
		}
		alive, err := http.Get("http://" + host + "/healthz")
		if err != nil {
			t.Fatalf("the server is gone after %s %s: %v", r.Method, r.URL, err)
		}
		alive.Body.Close()
		return nil, nil
	}
	defer res.Body.Close()
	out, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", r.Method, r.URL, err)
	}
	if n, err := strconv.Atoi(res.Header.Get("Content-Length")); err == nil && n != len(out) {
		t.Fatalf("%s %s: Content-Length %d, body of %d bytes", r.Method, r.URL, n, len(out))
	}
	return res, out
}
