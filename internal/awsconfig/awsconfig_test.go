package awsconfig_test

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/openpca/openpca/internal/awsconfig"
)

// TestHTTPClientKeepsTheCABundle: the bounded client still trusts the
// roots the standard configuration read from AWS_CA_BUNDLE, as a server
// behind a private CA (a KMS or S3 of its own) needs.
func TestHTTPClientKeepsTheCABundle(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CA_BUNDLE", bundle)
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	res, err := awsconfig.HTTPClient(cfg, 5*time.Second).Do(req)
	if err != nil {
		t.Fatalf("a server whose CA is in AWS_CA_BUNDLE: %v", err)
	}
	res.Body.Close()
}

// TestHTTPClientFollowsNoRedirect: a redirect of any kind, to any host,
// is answered as it came, and the place it names is not asked: a store
// that sends one must not make the server fetch instance metadata, or
// its own loopback listeners.
func TestHTTPClientFollowsNoRedirect(t *testing.T) {
	var asked atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { asked.Add(1) }))
	defer target.Close()
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	client := awsconfig.HTTPClient(cfg, 5*time.Second)
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/latest/meta-data/", status)
		}))
		req, _ := http.NewRequest(http.MethodGet, store.URL+"/bucket/key", nil)
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%d: %v", status, err)
		}
		res.Body.Close()
		store.Close()
		if res.StatusCode != status || asked.Load() != 0 {
			t.Errorf("a %d: answered %d, and the place it names asked %d times", status, res.StatusCode, asked.Load())
		}
	}
}

// TestBoundBodies: an answer's body is read up to the bound, and fails
// past it, whether its length is given or not.
func TestBoundBodies(t *testing.T) {
	const max = 1000
	for _, tc := range []struct {
		size       int
		chunked    bool
		status     int
		errorsOnly bool
		fails      bool
	}{
		{max, false, 200, false, false},
		{max, true, 200, false, false},
		{max + 1, false, 200, false, true},
		{max + 1, true, 200, false, true},
		{100 * max, true, 200, false, true},
		{max + 1, false, 500, false, true},
		// A stream's caller bounds it; its errors are bounded still.
		{100 * max, true, 200, true, false},
		{100 * max, true, 206, true, false},
		{max, true, 404, true, false},
		{max + 1, true, 404, true, true},
		{100 * max, false, 503, true, true},
		{max + 1, true, 301, true, true},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !tc.chunked {
				w.Header().Set("Content-Length", strconv.Itoa(tc.size))
			}
			w.WriteHeader(tc.status)
			for range tc.size {
				if _, err := w.Write([]byte{'x'}); err != nil {
					return
				}
			}
		}))
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		bound := awsconfig.BoundBodies
		if tc.errorsOnly {
			bound = awsconfig.BoundErrorBodies
		}
		client := srv.Client()
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		res, err := bound(client, max).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		srv.Close()
		if tc.fails != (err != nil) || !tc.fails && len(body) != tc.size || tc.fails && len(body) > max {
			t.Errorf("a body of %d bytes (status %d, chunked %v, errors only %v): read %d, %v", tc.size, tc.status, tc.chunked, tc.errorsOnly, len(body), err)
		}
	}
}
