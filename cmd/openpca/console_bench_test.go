package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca/internal/testenv"
)

// BenchmarkConsole times the console's pages for a CA with many
// certificates (OPENPCA_BENCH_CERTS, default 1,000,000), seeded through
// the store, on SQLite: from the request to the last byte of the page,
// the median of a few loads of each.
func BenchmarkConsole(b *testing.B) {
	data, caARN := seededSQLite(b)
	srv := startServer(b, data, nil)
	defer srv.stop(b)

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	res, err := client.PostForm(srv.url+"/console/sign-in", url.Values{"access_key_id": {testenv.AccessKeyID}, "secret_access_key": {testenv.SecretAccessKey}})
	if err != nil || res.StatusCode != http.StatusOK {
		b.Fatalf("signing in: %v %v", err, res)
	}
	res.Body.Close()
	arn := url.QueryEscape(caARN)
	b.ResetTimer()
	for _, page := range []struct{ name, path string }{
		{"cas", "/console/cas"},
		{"ca", "/console/ca?arn=" + arn},
		{"certificates", "/console/ca/certificates?arn=" + arn},
		{"certificates-revoked", "/console/ca/certificates?status=revoked&arn=" + arn},
		{"subject-search", "/console/ca/certificates?q=host-12345.example&arn=" + arn},
		{"charts", "/console/ca/charts?arn=" + arn},
	} {
		var times []time.Duration
		for range 5 {
			start := time.Now()
			res, err := client.Get(srv.url + page.path)
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "</html>") {
				b.Fatalf("%s: %d\n%s", page.name, res.StatusCode, body)
			}
			times = append(times, time.Since(start))
		}
		slices.Sort(times)
		b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, page.name+"-ms")
	}
	b.ReportMetric(0, "ns/op")
}
