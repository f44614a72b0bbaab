package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openpca/openpca/internal/testenv"
)

// floodBody is the body each request of a flood announces and sends: the
// largest the API accepts.
const floodBody = 4 << 20

// flood sends n requests at once, each with a floodBody-byte body and the
// headers head adds, and waits for every answer (or for the server to
// close the connection).
func flood(t *testing.T, url string, n int, head func(*http.Request)) {
	t.Helper()
	host := strings.TrimPrefix(url, "http://")
	body := bytes.Repeat([]byte("A"), floodBody)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			conn, err := net.Dial("tcp", host)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(2 * time.Minute))
			r, _ := http.NewRequest(http.MethodPost, url, nil)
			r.Header.Set("Content-Type", "application/x-amz-json-1.1")
			r.Header.Set("X-Amz-Target", "ACMPrivateCA.ImportCertificateAuthorityCertificate")
			head(r)
			r.ContentLength = floodBody
			r.Body = io.NopCloser(bytes.NewReader(body))
			// The server may answer and close before the body is sent:
			// write and read at once.
			go r.Write(conn)
			res, err := http.ReadResponse(bufio.NewReader(conn), r)
			if err == nil {
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		})
	}
	wg.Wait()
}

// TestFloodMemory floods a running server with the largest bodies the API
// accepts, 48 at once, and measures how much each flood adds to the
// server's peak memory: unsigned requests, whose bodies are never read,
// and requests that name a real access key and the right time but are
// forged, whose bodies are read within the server's body budget.
func TestFloodMemory(t *testing.T) {
	srv := startServer(t, t.TempDir(), nil)
	defer srv.stop(t)
	const n = 48
	floods := []struct {
		name  string
		head  func(*http.Request)
		limit int64 // MiB the flood may add to the peak
	}{
		{"unsigned", func(*http.Request) {}, 16},
		{"forged with a real key", func(r *http.Request) {
			now := time.Now().UTC()
			r.Header.Set("X-Amz-Date", now.Format("20060102T150405Z"))
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testenv.AccessKeyID+"/"+now.Format("20060102")+
				"/us-east-1/acm-pca/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="+strings.Repeat("0", 64))
		}, 64},
	}
	for _, f := range floods {
		before := srv.peakRSS(t)
		for range 2 {
			flood(t, srv.url, n, f.head)
		}
		after := srv.peakRSS(t)
		added := (after - before) >> 20
		t.Logf("%s: %d requests of %d MiB, twice: peak RSS %d MiB -> %d MiB (+%d MiB)", f.name, n, floodBody>>20, before>>20, after>>20, added)
		if added > f.limit {
			t.Errorf("%s: the flood added %d MiB to the server's peak memory, more than %d MiB", f.name, added, f.limit)
		}
	}
}
