package console_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/acmpca"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/internal/testenv"
)

// TestConsoleDatabaseAway: with its PostgreSQL out of reach, the console
// says so, 503 as the API answers, and logs why; it does not send a
// signed-in browser to sign in again as if its session had ended. Once
// the database is back, the session is there.
func TestConsoleDatabaseAway(t *testing.T) {
	db := testenv.NewRelayedPostgresDB(t)
	var logs testenv.SyncBuffer
	env := testenv.Start(t, func(c *app.Config) {
		c.Database, c.ObjectStore = db.DSN, "local"
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	caARN, _ := env.NewActiveRoot(t, "Database Away")
	b := newBrowser(t, env)
	b.signIn(env.Client)
	if status, _ := b.get(caPage(caARN)); status != http.StatusOK {
		t.Fatalf("the CA's page: %d", status)
	}

	db.Away(t)
	for _, path := range []string{caPage(caARN), "/console/cas"} {
		status, page := b.get(path)
		if status != http.StatusServiceUnavailable || !strings.Contains(page, "ServiceUnavailableException") {
			t.Errorf("%s with the database away: %d, want 503 naming ServiceUnavailableException:\n%.400s", path, status, page)
		}
	}
	if !strings.Contains(logs.String(), `level=WARN msg="console: a dependency failed"`) {
		t.Errorf("the console logged nothing of the database away:\n%s", logs.String())
	}

	// Back: connections the database ended fail once each, as a reload
	// would find, and then the session is there.
	db.Back()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		status, _ := b.get(caPage(caARN))
		if status == http.StatusOK {
			break
		}
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("the CA's page once the database is back: %d, want the session kept", status)
		}
	}
}

// TestReportDownloadCutShort: a report whose object's reading fails
// part-way (its S3 connection cut, or the request's time run out on a
// large one) is not answered as a whole file, which a browser would save
// as the report: the connection is cut, and the server says why. With
// S3 away, the download is a 503, as the API's answers are.
func TestReportDownloadCutShort(t *testing.T) {
	s3 := testenv.StartS3(t)
	s3.CreateBucket(t, "reports")
	// In front of S3: a report's object is cut after its first KiB once
	// cut is set, as a connection that broke would leave it.
	var cut atomic.Bool
	target, err := url.Parse(s3.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !cut.Load() || r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/audit-report/") {
			proxy.ServeHTTP(w, r)
			return
		}
		whole := httptest.NewRecorder()
		proxy.ServeHTTP(whole, r)
		for k, v := range whole.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(whole.Body.Len()))
		w.WriteHeader(whole.Code)
		w.Write(whole.Body.Bytes()[:min(1024, whole.Body.Len())])
	}))
	defer front.Close()
	var logs testenv.SyncBuffer
	env := testenv.Start(t, s3.Use(t, s3.AccessKey, s3.SecretKey), func(c *app.Config) {
		c.S3Endpoint = front.URL
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	caARN, _ := env.NewActiveRoot(t, "Reported")
	for range 20 {
		env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN,
			Csr: testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}}).CSRPEM})
	}
	report := newReport(t, env, caARN, "reports")
	out, err := env.Client.DescribeCertificateAuthorityAuditReport(t.Context(), &acmpca.DescribeCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &caARN, AuditReportId: &report})
	if err != nil {
		t.Fatal(err)
	}
	stored := s3.Get(t, "reports", *out.S3Key)
	if len(stored) <= 1024 {
		t.Fatalf("a report of %d bytes, too small to cut", len(stored))
	}
	b := newBrowser(t, env)
	b.signIn(env.Client)
	download := func() (int, []byte, error) {
		res, err := b.client.Get(env.URL + "/console/ca/report?" + url.Values{"arn": {caARN}, "id": {report}}.Encode())
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		return res.StatusCode, body, err
	}
	if status, body, err := download(); status != http.StatusOK || err != nil || string(body) != string(stored) {
		t.Fatalf("the whole report: %d, %d bytes of %d, %v", status, len(body), len(stored), err)
	}

	cut.Store(true)
	if status, body, err := download(); err == nil && status == http.StatusOK {
		t.Errorf("a report whose reading failed after 1 KiB arrived as a whole file of %d bytes, of %d", len(body), len(stored))
	}
	if !strings.Contains(logs.String(), "console: a report's download was cut short") {
		t.Errorf("the server did not say why the download was cut:\n%s", logs.String())
	}

	cut.Store(false)
	s3.Stop(t)
	if status, body, _ := download(); status != http.StatusServiceUnavailable {
		t.Errorf("a report with S3 away: %d, want 503:\n%.300s", status, body)
	}
}
