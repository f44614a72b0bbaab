package tlshello_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openpca/openpca/connlimit"
	"github.com/openpca/openpca/tlshello"
)

// TestHelloBounded: a ClientHello past MaxHello (one padded with ALPN
// values: Go's server read 64 KiB, and kept its buffers for the
// connection's life) ends the handshake; one under it, and a browser's,
// over TLS 1.3 and 1.2, are served, and so are the requests after (the
// bound ends with the handshake), on a connection of connlimit's, as the
// server's are, and a session resumed.
func TestHelloBounded(t *testing.T) {
	config, cert := serverConfig(t)
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
	l := tlshello.NewListener(limited, config)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	for _, tc := range []struct {
		name    string
		padded  int // bytes of ALPN values the hello carries
		version uint16
		served  bool
	}{
		{"a browser's", 0, tls.VersionTLS13, true},
		{"a browser's, TLS 1.2", 0, tls.VersionTLS12, true},
		{"a long one under the bound", tlshello.MaxHello - 2048, tls.VersionTLS13, true},
		{"one past the bound", tlshello.MaxHello + 1024, tls.VersionTLS13, false},
		{"one of 60 KiB", 60 << 10, tls.VersionTLS13, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var protos []string
			for n := 0; n < tc.padded; n += 201 {
				protos = append(protos, strings.Repeat("p", 200))
			}
			// Three clients at once (each connection's handshake has a
			// configuration of its own), each with two requests on
			// connections of their own, the second resuming the first's
			// session.
			var wg sync.WaitGroup
			for range 3 {
				wg.Go(func() {
					c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: roots,
						NextProtos: protos, MaxVersion: tc.version, ClientSessionCache: tls.NewLRUClientSessionCache(1)}}}
					for i := range 2 {
						res, err := c.Post("https://"+raw.Addr().String()+"/", "text/plain", bytes.NewReader(make([]byte, 64<<10)))
						if err == nil {
							res.Body.Close()
						}
						if served := err == nil && res.StatusCode == http.StatusOK; served != tc.served {
							t.Errorf("request %d: served %v (%v); want %v", i, served, err, tc.served)
						}
						if err == nil && i == 1 && !res.TLS.DidResume {
							t.Error("the second connection did not resume the first's session")
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestSecondHelloBounded: a ClientHello sent again after the server's
// HelloRetryRequest (the first offered no key share the server takes) is
// bounded too, on its own: lifted after the first, the bound let a second
// of 50 KiB in (a review's finding); two of 14 KiB are read.
func TestSecondHelloBounded(t *testing.T) {
	config, _ := serverConfig(t)
	for _, tc := range []struct {
		name          string
		first, second int // bytes of padding
		read          bool
	}{
		{"a second hello of 50 KiB", 0, 50 << 10, false},
		{"two of 14 KiB", 14 << 10, 14 << 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			l := tlshello.NewListener(raw, config)
			defer l.Close()
			handshake := make(chan error, 1)
			go func() {
				c, err := l.Accept()
				if err == nil {
					defer c.Close()
					err = c.(*tls.Conn).Handshake()
				}
				handshake <- err
			}()
			c, err := net.Dial("tcp", raw.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			random := make([]byte, 32)
			rand.Read(random)
			if _, err := c.Write(clientHello(random, nil, tc.first)); err != nil {
				t.Fatal(err)
			}
			// The HelloRetryRequest: a ServerHello (handshake type 2).
			if body := handshakeRecord(t, c); body[0] != 2 {
				t.Fatalf("the answer to a hello without a key share: %x", body[:min(len(body), 8)])
			}
			share := make([]byte, 32)
			rand.Read(share)
			if _, err := c.Write(clientHello(random, share, tc.second)); err != nil {
				t.Fatal(err)
			}
			if !tc.read {
				select {
				case err := <-handshake:
					if err == nil || !strings.Contains(err.Error(), "longer than the server reads") {
						t.Errorf("%v; want the handshake ended", err)
					}
				case <-time.After(10 * time.Second):
					t.Error("the second ClientHello was read whole: the handshake waits for the client's Finished")
				}
				return
			}
			if body := handshakeRecord(t, c); body[0] != 2 {
				t.Errorf("the answer to the second hello: %x; want a ServerHello", body[:min(len(body), 8)])
			}
		})
	}
}

// handshakeRecord reads from c the body of the next handshake record,
// past the ChangeCipherSpec records a TLS 1.3 server sends for
// middleboxes.
func handshakeRecord(t *testing.T, c net.Conn) []byte {
	t.Helper()
	for {
		typ, body := record(t, c)
		switch {
		case typ == 20:
		case typ != 22 || len(body) == 0:
			t.Fatalf("record %d %x; want a handshake record", typ, body[:min(len(body), 8)])
		default:
			return body
		}
	}
}

// clientHello is a TLS 1.3 ClientHello's records: one suite, X25519 alone,
// its key share (none if share is nil), and an unknown extension of pad
// bytes, which a second hello may add.
func clientHello(random, share []byte, pad int) []byte {
	u16 := func(b []byte, v int) []byte { return binary.BigEndian.AppendUint16(b, uint16(v)) }
	extension := func(b []byte, typ int, body []byte) []byte { return append(u16(u16(b, typ), len(body)), body...) }
	var exts []byte
	exts = extension(exts, 43, []byte{2, 3, 4})     // supported_versions: TLS 1.3
	exts = extension(exts, 10, []byte{0, 2, 0, 29}) // supported_groups: X25519
	exts = extension(exts, 13, []byte{0, 2, 4, 3})  // signature_algorithms: ecdsa_secp256r1_sha256
	var shares []byte
	if share != nil {
		shares = append(u16(u16(shares, 29), len(share)), share...)
	}
	exts = extension(exts, 51, append(u16(nil, len(shares)), shares...)) // key_share
	if pad > 0 {
		exts = extension(exts, 0x7a7a, make([]byte, pad))
	}
	body := append([]byte{3, 3}, random...)
	body = append(body, 0)                // no session id
	body = append(body, 0, 2, 0x13, 0x01) // TLS_AES_128_GCM_SHA256
	body = append(body, 1, 0)             // no compression
	body = append(u16(body, len(exts)), exts...)
	msg := append([]byte{1, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
	// A first hello's records say TLS 1.0, as clients write them; a
	// second's TLS 1.2, as the server's HelloRetryRequest did.
	version := byte(1)
	if share != nil {
		version = 3
	}
	var out []byte
	for len(msg) > 0 { // in records of 16 KiB at most
		n := min(len(msg), 16<<10)
		out = append(u16(append(out, 22, 3, version), n), msg[:n]...)
		msg = msg[n:]
	}
	return out
}

// record reads a TLS record from c: its type and body.
func record(t *testing.T, c net.Conn) (byte, []byte) {
	t.Helper()
	head := make([]byte, 5)
	if _, err := io.ReadFull(c, head); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint16(head[3:]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatal(err)
	}
	return head[0], body
}

// serverConfig is the TLS configuration of a server at 127.0.0.1, and its
// certificate, self-signed.
func serverConfig(tb testing.TB) (*tls.Config, *x509.Certificate) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, cert
}
