package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca/internal/testenv"
)

// freeAddr returns an address on 127.0.0.1 that nothing listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestMetricsListen: with --metrics-listen, /metrics is served there, and
// not on the API's listener, which every account reaches.
func TestMetricsListen(t *testing.T) {
	api, metrics := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var logs testenv.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", api, "--metrics-listen", metrics, "--data-dir", t.TempDir(), "--log-format", "text"},
			&logs, &logs, func(string) (string, bool) { return "", false })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("openpca serve: %v\n%s", err, logs.String())
		}
	})
	get := func(url string) (int, string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			res, err := http.Get(url)
			if err == nil {
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				return res.StatusCode, string(b)
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %v\n%s", url, err, logs.String())
			}
		}
	}
	if status, body := get("http://" + metrics + "/metrics"); status != http.StatusOK || !strings.Contains(body, "openpca_certificate_authorities") {
		t.Errorf("--metrics-listen's /metrics: %d\n%.300s", status, body)
	}
	if status, body := get("http://" + api + "/metrics"); status == http.StatusOK || strings.Contains(body, "openpca_") {
		t.Errorf("the API's /metrics: %d\n%.300s", status, body)
	}
}
