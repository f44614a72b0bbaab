package tlshello_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca/connlimit"
	"github.com/openpca/openpca/tlshello"
)

// TestHelloBounded: a ClientHello past MaxHello (one padded with ALPN
// values: Go's server read 64 KiB, and kept its buffers for the
// connection's life) ends the handshake; one under it, and a browser's,
// are served, and so are the requests after, behind the connection limits the server's listener has.
func TestHelloBounded(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limited := connlimit.Listen(raw, connlimit.Limits{})
	// Each request's body is read whole: the bound ends with the hello.
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n, err := io.Copy(io.Discard, r.Body); err != nil || n != 64<<10 {
			http.Error(w, "body cut", http.StatusBadRequest)
		}
	}), ErrorLog: log.New(io.Discard, "", 0)}
	limited.Limit(srv)
	l := tlshello.NewListener(limited, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	for _, tc := range []struct {
		name   string
		padded int // bytes of ALPN values the hello carries
		served bool
	}{
		{"a browser's", 0, true},
		{"a long one under the bound", tlshello.MaxHello - 2048, true},
		{"one past the bound", tlshello.MaxHello + 1024, false},
		{"one of 60 KiB", 60 << 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var protos []string
			for n := 0; n < tc.padded; n += 201 {
				protos = append(protos, strings.Repeat("p", 200))
			}
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, NextProtos: protos}}}
			res, err := c.Post("https://"+raw.Addr().String()+"/", "text/plain", bytes.NewReader(make([]byte, 64<<10)))
			if err == nil {
				res.Body.Close()
			}
			if served := err == nil && res.StatusCode == http.StatusOK; served != tc.served {
				t.Errorf("served %v (%v); want %v", served, err, tc.served)
			}
		})
	}
}
