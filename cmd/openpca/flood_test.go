package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/acmpca"

	"github.com/openpca/openpca/app"
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

// TestHeldBodiesMemory: what anyone can send without a key, an OCSP
// request and a console form, each of the largest body taken held back
// one byte short, from 1,024 connections of eight addresses, adds to a
// running server's peak memory what their budgets allow, not each body's
// buffer: before them, 4,096 connections took a server to 1.5 GB.
func TestHeldBodiesMemory(t *testing.T) {
	const addresses, each = 8, 128
	for path, size := range map[string]int{"/ocsp": 64 << 10, "/console/sign-in": 4 << 10} {
		// A server of its own: its peak memory never goes down.
		srv := startServer(t, t.TempDir(), nil)
		host := strings.TrimPrefix(srv.url, "http://")
		before := srv.peakRSS(t)
		var conns []net.Conn
		for a := range addresses {
			dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(2+a), 2)}}
			for range each {
				c, err := dialer.Dial("tcp", host)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
				fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n", path, host, srv.url, size)
				c.Write(bytes.Repeat([]byte("a"), size-1)) // fails once the server has closed it
			}
		}
		time.Sleep(2 * time.Second) // the bodies' wait for room, and more
		added := (srv.peakRSS(t) - before) >> 20
		for _, c := range conns {
			c.Close()
		}
		srv.stop(t)
		t.Logf("%s: %d connections each holding %d KiB back: peak RSS +%d MiB", path, len(conns), size>>10, added)
		if added > 64 {
			t.Errorf("%s: bodies held back added %d MiB to the server's peak memory, more than 64 MiB", path, added)
		}
	}
}

// TestSlowConnections opens 2,000 connections to a running server from one
// address, each sending most of the headers a request may have and then
// nothing more, as an outsider holding the server's memory would: the
// server closes those past the bound of one address, keeps its memory,
// and still answers a client at another address.
func TestSlowConnections(t *testing.T) {
	srv := startServer(t, t.TempDir(), nil)
	defer srv.stop(t)
	host := strings.TrimPrefix(srv.url, "http://")
	before := srv.peakRSS(t)
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	head := "POST / HTTP/1.1\r\nHost: " + host + "\r\nX-Padding: " + strings.Repeat("a", 15<<10)
	const n = 2000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := dialer.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		c.Write([]byte(head)) // fails once the server has closed it
	}
	// A connection the server closed reads its end at once; one it keeps
	// waits out the deadline.
	var closed atomic.Int64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				closed.Add(1)
			}
		})
	}
	wg.Wait()
	if want := int64(n - app.DefaultMaxConnectionsPerNetwork); closed.Load() < want {
		t.Errorf("the server closed %d of %d connections from one address, want %d", closed.Load(), n, want)
	}
	client := testenv.NewClient(srv.url, &http.Transport{})
	if _, err := client.ListCertificateAuthorities(t.Context(), &acmpca.ListCertificateAuthoritiesInput{}); err != nil {
		t.Errorf("a client at another address, meanwhile: %v", err)
	}
	added := (srv.peakRSS(t) - before) >> 20
	t.Logf("%d slow connections: %d closed at once, +%d MiB of peak memory", n, closed.Load(), added)
	if added > 32 {
		t.Errorf("the slow connections added %d MiB to the server's peak memory, more than 32 MiB", added)
	}
}

// TestIdleConnectionsMakeRoom fills a running server's connections with
// idle ones, each of which made a request and keeps its connection open,
// as an outsider could with a request every two minutes: a new client is
// served all the same, in the room of one of them.
func TestIdleConnectionsMakeRoom(t *testing.T) {
	srv := startServer(t, t.TempDir(), []string{"--max-connections", "64"})
	defer srv.stop(t)
	host := strings.TrimPrefix(srv.url, "http://")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 64 {
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(fmt.Sprintf("127.0.0.%d", 2+i%16))}}
		c, err := dialer.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	client := testenv.NewClient(srv.url, &http.Transport{})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := client.ListCertificateAuthorities(ctx, &acmpca.ListCertificateAuthoritiesInput{}); err != nil {
		t.Errorf("a client, with the server's connections all held idle: %v", err)
	}
}
