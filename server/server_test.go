package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/server"
)

var ctx = context.Background()

func metrics(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func TestMetricsAndRequestLog(t *testing.T) {
	var logs testenv.SyncBuffer
	env := testenv.Start(t, func(c *app.Config) { c.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	arn := env.CreateCA(t, types.CertificateAuthorityTypeRoot, "Metrics")
	_, err := env.Client.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{
		CertificateAuthorityArn: aws.String(testenv.MissingCA(arn))})
	testenv.WantError(t, err, "ResourceNotFoundException")
	// A request that names the key but cannot sign for it: no key logged.
	forged := testenv.NewClientWith(env.URL, env.Transport(), testenv.AccessKeyID, strings.Repeat("x", 40))
	_, err = forged.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: aws.String(arn)})
	testenv.WantError(t, err, "InvalidSignatureException")
	// A key that proves its signature but whose policy no longer reads is
	// denied, and named.
	unreadable, unreadableKey := env.NewKey(t, app.DefaultAccountID, openpca.KeyPolicy{Name: "old",
		Document: `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"acm-pca:*","Resource":"arn:aws:acm-pca:*:${aws:PrincipalAccount}:*"}}`})
	_, err = unreadable.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: aws.String(arn)})
	testenv.WantError(t, err, "AccessDeniedException")

	m := metrics(t, env.URL)
	for _, want := range []string{
		`openpca_requests_total{error_code="none",operation="CreateCertificateAuthority"} 1`,
		`openpca_requests_total{error_code="ResourceNotFoundException",operation="DescribeCertificateAuthority"} 1`,
		`openpca_request_duration_seconds_count{operation="CreateCertificateAuthority"} 1`,
		`openpca_certificate_authorities{key_store="software",status="PENDING_CERTIFICATE"} 1`,
		`openpca_certificate_authorities{key_store="software",status="ACTIVE"} 0`,
		`openpca_requests_in_flight 0`,
		`openpca_store_commit_transactions_total `,
		`openpca_sqlite_wal_bytes `,
		`openpca_sqlite_checkpoint_failures_total 0`,
		`openpca_crl_publications_total{outcome="failed"} 0`,
		`openpca_crls_failing 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q is not JSON", sc.Text())
		}
		if l["msg"] == "request" {
			lines = append(lines, l)
		}
	}
	if len(lines) != 4 {
		t.Fatalf("%d request log lines, want 4:\n%s", len(lines), logs.String())
	}
	if l := lines[3]; l["key"] != unreadableKey || l["account"] != app.DefaultAccountID || l["error_code"] != "AccessDeniedException" {
		t.Errorf("a request of a key whose policy no longer reads logged as %v", l)
	}
	if l := lines[2]; l["key"] != "" || l["status"] == float64(200) {
		t.Errorf("a request with a forged signature logged as %v", l)
	}
	if l := lines[1]; l["operation"] != "DescribeCertificateAuthority" || l["status"] != float64(400) ||
		l["error_code"] != "ResourceNotFoundException" || l["latency_ms"] == nil || l["request_id"] == "" || l["key"] != testenv.AccessKeyID {
		t.Errorf("request log line %v", l)
	}
}

// TestGracefulShutdown stops the server while a request is in flight: the
// request completes, and what it wrote is there after a restart.
func TestGracefulShutdown(t *testing.T) {
	env := testenv.Start(t)
	done := make(chan error, 1)
	var arn string
	go func() {
		out, err := env.Client.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
			// RSA-4096 key generation keeps the request busy for a while.
			CertificateAuthorityConfiguration: testenv.Config(types.KeyAlgorithmRsa4096, "Slow"),
			CertificateAuthorityType:          types.CertificateAuthorityTypeRoot,
		})
		if err == nil {
			arn = *out.CertificateAuthorityArn
		}
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(metrics(t, env.URL), "openpca_requests_in_flight 1") {
		if time.Now().After(deadline) {
			t.Fatal("the request never showed as in flight")
		}
		time.Sleep(time.Millisecond)
	}
	env.Stop(t)
	if err := <-done; err != nil {
		t.Fatalf("request in flight during shutdown: %v", err)
	}
	env.Restart(t)
	if s := env.Status(t, arn); s != types.CertificateAuthorityStatusPendingCertificate {
		t.Errorf("after restart the CA is %s", s)
	}
}

// TestLocalCRLsFollowNoLink: a link in a local bucket to the master key is
// not served, while a real CRL file is.
func TestLocalCRLsFollowNoLink(t *testing.T) {
	env := testenv.Start(t)
	crlDir := filepath.Join(env.Config.DataDir, "s3", "crls", "crl")
	if err := os.MkdirAll(crlDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(crlDir, "real.crl"), []byte("not really a CRL"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(env.Config.DataDir, "master.key"), filepath.Join(crlDir, "key.crl")); err != nil {
		t.Fatal(err)
	}
	if status, _, body := testenv.Get(t, env.URL+"/s3/crls/crl/real.crl", false); status != 200 || string(body) != "not really a CRL" {
		t.Errorf("a CRL file: %d %q", status, body)
	}
	if status, _, body := testenv.Get(t, env.URL+"/s3/crls/crl/key.crl", false); status != 404 {
		t.Errorf("a link to the master key: %d %q", status, body)
	}
}

// FuzzLocalCRLs sends the local buckets' CRL endpoint, which anyone can
// reach, any path and Range: it serves the one CRL file there is, whole or
// in part, and nothing else (not the audit report beside it, not a link
// to the master key), and never fails.
func FuzzLocalCRLs(f *testing.F) {
	env := testenv.Start(f)
	const crl = "not really a CRL"
	bucket := filepath.Join(env.Config.DataDir, "s3", "crls")
	for name, content := range map[string]string{"crl/real.crl": crl, "audit-report/r.json": "a report", "audit-report/r.json.crl.proof": "a proof"} {
		os.MkdirAll(filepath.Join(bucket, filepath.Dir(name)), 0o700)
		if err := os.WriteFile(filepath.Join(bucket, name), []byte(content), 0o600); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(env.Config.DataDir, "master.key"), filepath.Join(bucket, "crl", "key.crl")); err != nil {
		f.Fatal(err)
	}
	for _, seed := range []struct{ path, ranges string }{
		{"crls/crl/real.crl", ""},
		{"crls/crl/real.crl", "bytes=0-3,5-7"},
		{"crls/crl/key.crl", ""},
		{"crls/audit-report/r.json", ""},
		{"crls/crl/../audit-report/r.json", ""},
		{"crls/audit-report/r.json.crl.proof", ""},
		{"crls/crl%2F..%2F..%2Fmaster.key.crl", "bytes=-1"},
		{"..%2F..%2Fmaster.key", ""},
	} {
		f.Add(seed.path, seed.ranges)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	f.Fuzz(func(t *testing.T, path, ranges string) {
		req, err := http.NewRequest(http.MethodGet, env.URL+"/s3/"+path, nil)
		if err != nil {
			return // not a request a client could send
		}
		req.Header.Set("Range", ranges)
		res, err := client.Do(req)
		if err != nil {
			res, err := client.Get(env.URL + "/healthz")
			if err != nil {
				t.Fatalf("the server is gone after GET /s3/%s: %v", path, err)
			}
			res.Body.Close()
			return
		}
		defer res.Body.Close()
		body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		switch res.StatusCode {
		case http.StatusOK:
			if string(body) != crl {
				t.Fatalf("GET /s3/%s served %q", path, body)
			}
		case http.StatusPartialContent:
			for _, part := range ranged(t, res, body) {
				if !strings.Contains(crl, part) {
					t.Fatalf("GET /s3/%s with Range %q served %q", path, ranges, part)
				}
			}
		case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusBadRequest,
			http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusRequestedRangeNotSatisfiable:
		default:
			t.Fatalf("GET /s3/%s: status %d", path, res.StatusCode)
		}
	})
}

// ranged returns the parts of a 206 answer's body: the body, or the
// parts of a multipart/byteranges one.
func ranged(t *testing.T, res *http.Response, body []byte) []string {
	t.Helper()
	media, params, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if err != nil || media != "multipart/byteranges" {
		return []string{string(body)}
	}
	var parts []string
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return parts
		}
		if err != nil {
			t.Fatalf("a multipart answer: %v", err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("a multipart answer: %v", err)
		}
		parts = append(parts, string(b))
	}
}

// TestReadiness: /readyz says whether the store makes writes durable, and
// /healthz only that the process answers. A store that refuses writes (as
// a full disk would) makes the server not ready until it takes writes
// again; the reason goes to the log, once, and not to whoever asks.
func TestReadiness(t *testing.T) {
	var logs testenv.SyncBuffer
	env := testenv.Start(t, func(c *app.Config) { c.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	get := func(path string) (int, string) {
		t.Helper()
		res, err := http.Get(env.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	waitFor := func(want int) string {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			status, body := get("/readyz")
			if status == want {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz answers %d %q, want %d", status, body, want)
			}
		}
	}
	waitFor(http.StatusOK)
	db := env.DB(t)
	for _, trigger := range []string{"insert", "update"} {
		if _, err := db.Exec(`CREATE TRIGGER refuse_` + trigger + ` BEFORE ` + trigger + ` ON settings BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`); err != nil {
			t.Fatal(err)
		}
	}
	if body := waitFor(http.StatusServiceUnavailable); strings.Contains(body, "disk is full") || !strings.Contains(body, "not ready") {
		t.Errorf("/readyz answers %q: it must say not ready, and keep the reason to the log", body)
	}
	get("/readyz")
	if n := strings.Count(logs.String(), "disk is full"); n != 1 {
		t.Errorf("the log says why %d times, want once:\n%s", n, logs.String())
	}
	if status, _ := get("/healthz"); status != http.StatusOK {
		t.Errorf("/healthz answers %d while the store refuses writes; the process is alive", status)
	}
	for _, trigger := range []string{"insert", "update"} {
		db.Exec(`DROP TRIGGER refuse_` + trigger)
	}
	waitFor(http.StatusOK)
	if !strings.Contains(logs.String(), "ready: the store makes writes durable again") {
		t.Error("the log does not say the server is ready again")
	}
}

// TestHeaderBound: a request's headers are bounded well below Go's
// default of a megabyte, which each of an outsider's connections could
// otherwise hold; a signed request's fit many times over.
func TestHeaderBound(t *testing.T) {
	env := testenv.Start(t)
	for _, tc := range []struct {
		size int
		want int
	}{{8 << 10, http.StatusOK}, {200 << 10, http.StatusRequestHeaderFieldsTooLarge}} {
		req, _ := http.NewRequest(http.MethodGet, env.URL+"/healthz", nil)
		req.Header.Set("X-Padding", strings.Repeat("a", tc.size))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("a header of %d bytes: %d, want %d", tc.size, res.StatusCode, tc.want)
		}
	}
}

// TestRequestsSampled: requests that prove no signature, which anyone
// can send, and those refused for their account's rate, which it can send
// as fast as it likes, are logged a few a second, the next line let
// through counting those held back; a signed request's line is never
// held back.
func TestRequestsSampled(t *testing.T) {
	for _, throttled := range []bool{false, true} {
		t.Run(fmt.Sprintf("throttled %v", throttled), func(t *testing.T) {
			var logs testenv.SyncBuffer
			env := testenv.Start(t, func(c *app.Config) {
				c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
				if throttled {
					c.AccountRequestRate = 0.001 // the least: no token again within the test
				}
			})
			// The account's own request, let through by its rate's burst.
			if _, err := env.Client.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{}); err != nil {
				t.Fatal(err)
			}
			sampled := func() {
				if throttled {
					_, err := env.Client.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{}, func(o *acmpca.Options) { o.RetryMaxAttempts = 1 })
					if code, _ := testenv.ErrorCode(err); code != "ThrottlingException" {
						t.Fatalf("past the account's rate: %v", err)
					}
					return
				}
				req, _ := http.NewRequest(http.MethodPost, env.URL, strings.NewReader(`{}`))
				req.Header.Set("Content-Type", "application/x-amz-json-1.1")
				req.Header.Set("X-Amz-Target", "ACMPrivateCA.ListCertificateAuthorities")
				res, err := env.Transport().RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
			const sent = 1000
			start := time.Now()
			for range sent {
				sampled()
			}
			elapsed := time.Since(start)
			time.Sleep(200 * time.Millisecond) // room for a line again
			sampled()
			var lines, other, held int
			sc := bufio.NewScanner(strings.NewReader(logs.String()))
			for sc.Scan() {
				var l map[string]any
				if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l["msg"] != "request" {
					continue
				}
				if l["key"] == "" || l["error_code"] == "ThrottlingException" {
					lines++
				} else {
					other++
				}
				if n, ok := l["held_back"].(float64); ok {
					held += int(n)
				}
			}
			// The limiter's bound: its burst, and its rate for the time taken.
			if most := 100 + int(20*elapsed.Seconds()) + 2; lines > most {
				t.Errorf("%d lines of %d requests in %v, more than %d", lines, sent+1, elapsed, most)
			}
			if other != 1 {
				t.Errorf("%d lines of the signed request let through", other)
			}
			if lines+held != sent+1 {
				t.Errorf("%d lines and %d held back of %d requests", lines, held, sent+1)
			}
		})
	}
}

// TestBodiesNotRead: a request that announces a body its handler has no
// use for, and never sends it, is answered at once, and its connection
// ends smallbody.LeaveGrace after the answer (net/http read what it could
// of the body after the answer, within the server's read timeout of a
// minute).
func TestBodiesNotRead(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t)
	host := strings.TrimPrefix(env.URL, "http://")
	var wg sync.WaitGroup // each request takes a few seconds: all at once
	for _, tc := range []struct {
		request, headers string
		length, status   int
	}{
		{"GET /healthz", "", 1000, http.StatusOK},
		{"GET /readyz", "", 1000, http.StatusOK},
		{"GET /metrics", "", 1000, http.StatusOK},
		{"HEAD /healthz", "", 1000, http.StatusOK},
		{"GET " + server.PathPublicKey, "", 1000, http.StatusOK},
		{"GET " + server.PathCheckpoint + "?certificateAuthorityArn=x", "", 1000, http.StatusForbidden}, // unsigned
		{"GET " + server.PathOCSP + "/MAo%3D", "", 1000, http.StatusOK},                                 // malformedRequest
		{"DELETE /", "", 1000, http.StatusBadRequest},                                                   // not an API request
		{"POST /console/sign-in", "Sec-Fetch-Site: cross-site\r\n", 1000, http.StatusForbidden},
		{"POST /console", "", 1000, http.StatusTemporaryRedirect}, // the mux's, to /console/
		{"POST /console/sign-in", "Content-Type: application/x-www-form-urlencoded\r\n", 100_000, http.StatusRequestEntityTooLarge},
		{"POST " + server.PathOCSP, "Content-Type: application/ocsp-request\r\n", 100_000, http.StatusOK}, // malformedRequest
		{"OPTIONS *", "", 1000, http.StatusBadRequest},
		{"PRI * HTTP/2.0", "", 1000, http.StatusBadRequest}, // an HTTP/1 request all the same
	} {
		wg.Go(func() {
			line := tc.request
			if !strings.HasSuffix(line, "HTTP/2.0") {
				line += " HTTP/1.1"
			}
			res := testenv.WantBodyLeftUnread(t, host, line+"\r\nHost: "+host+"\r\nContent-Length: "+strconv.Itoa(tc.length)+"\r\n"+tc.headers)
			if res != nil && res.StatusCode != tc.status {
				t.Errorf("%s with a body of %d: %d, want %d", tc.request, tc.length, res.StatusCode, tc.status)
			}
		})
	}
	wg.Wait()
}

// TestSlowOCSPBody: an OCSP request whose body comes slowly holds its
// connection for smallbody.SmallTime, not smallbody.Time nor the server's
// minute of read timeout, and is answered as malformed.
func TestSlowOCSPBody(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t)
	testenv.WantSlowBodyCut(t, env.URL+"/ocsp", "application/ocsp-request", http.StatusOK) // malformedRequest
}
