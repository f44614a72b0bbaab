package app_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/internal/testenv"
)

// TestStoreAwayLogsSampled: while the database is away, what fails of
// requests anyone can send without a secret (an API request signed with
// a key the server must look up, a console page with a made-up session
// cookie, a scrape of /metrics) is logged a few lines a second, not a
// line per request; and a console sign-in says the server failed, not
// that the secret is wrong.
func TestStoreAwayLogsSampled(t *testing.T) {
	db := testenv.NewRelayedPostgresDB(t)
	var logs testenv.SyncBuffer
	env := testenv.Start(t, func(c *app.Config) {
		c.Database, c.ObjectStore = db.DSN, "local"
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	client := &http.Client{Transport: env.Transport(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	cookie := "openpca_console"
	if strings.HasPrefix(env.URL, "https:") {
		cookie = "__Host-openpca_console"
	}

	db.Away(t)

	do := func(r *http.Request) (int, string) {
		t.Helper()
		res, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	kinds := []struct {
		name string
		line string // what each failed request logs
		ok   bool   // answered 200 all the same, with what it has
		send func(i int) *http.Request
	}{
		{"API request of a key looked up", `msg="a dependency failed"`, false, func(i int) *http.Request {
			body := []byte(`{}`)
			r, _ := http.NewRequest(http.MethodPost, env.URL, strings.NewReader(string(body)))
			r.Header.Set("Content-Type", "application/x-amz-json-1.1")
			r.Header.Set("X-Amz-Target", "ACMPrivateCA.ListCertificateAuthorities")
			sum := sha256.Sum256(body)
			creds := aws.Credentials{AccessKeyID: fmt.Sprintf("AKIASTOREAWAY%07d", i), SecretAccessKey: "not the key's"}
			if err := v4.NewSigner().SignHTTP(t.Context(), creds, r, hex.EncodeToString(sum[:]), "acm-pca", "us-east-1", time.Now()); err != nil {
				t.Fatal(err)
			}
			return r
		}},
		{"console page with a made-up session", `msg="console: a dependency failed"`, false, func(i int) *http.Request {
			r, _ := http.NewRequest(http.MethodGet, env.URL+"/console/cas", nil)
			r.AddCookie(&http.Cookie{Name: cookie, Value: fmt.Sprintf("made-up-%d", i)})
			return r
		}},
		{"scrape of /metrics", `msg="counting CAs for metrics"`, true, func(int) *http.Request {
			r, _ := http.NewRequest(http.MethodGet, env.URL+"/metrics", nil)
			return r
		}},
	}
	const sent = 600
	for _, k := range kinds {
		start := time.Now()
		for i := range sent {
			if status, body := do(k.send(i)); (status == http.StatusOK) != k.ok {
				t.Fatalf("%s with the database away: %d\n%.300s", k.name, status, body)
			}
		}
		elapsed := time.Since(start)
		lines := strings.Count(logs.String(), k.line)
		// The sampler's bound: its burst, and its rate for the time taken.
		if most := 100 + int(20*elapsed.Seconds()) + 2; lines > most || lines == 0 {
			t.Errorf("%s: %d lines of %d requests in %v, want 1 to %d", k.name, lines, sent, elapsed, most)
		}
	}

	r, _ := http.NewRequest(http.MethodPost, env.URL+"/console/sign-in", strings.NewReader(url.Values{
		"access_key_id": {testenv.AccessKeyID}, "secret_access_key": {testenv.SecretAccessKey}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if status, page := do(r); status != http.StatusServiceUnavailable || !strings.Contains(page, "ServiceUnavailableException") {
		t.Errorf("a sign-in with the database away: %d, want 503 naming ServiceUnavailableException:\n%.400s", status, page)
	}
}
