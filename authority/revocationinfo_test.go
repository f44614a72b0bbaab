package authority

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
)

// TestWithoutOCSP: an authority information access extension passed
// through keeps what is not an OCSP responder, and goes if nothing else
// is left, or if it is malformed.
func TestWithoutOCSP(t *testing.T) {
	aia := func(ocsp, issuers []string) []byte {
		c := &x509.Certificate{OCSPServer: ocsp, IssuingCertificateURL: issuers}
		for _, e := range extensionsOf(t, c) {
			if e.Id.Equal(oidAuthorityInfoAccess) {
				return e.Value
			}
		}
		return nil
	}
	both := aia([]string{"http://elsewhere.example/ocsp"}, []string{"http://elsewhere.example/ca.crt"})
	issuers := aia(nil, []string{"http://elsewhere.example/ca.crt"})
	for _, tc := range []struct {
		name     string
		in, want []byte
	}{
		{"a responder and the issuer", both, issuers},
		{"the issuer alone", issuers, issuers},
		{"two responders", aia([]string{"http://a.example/ocsp", "http://b.example/ocsp"}, nil), nil},
		{"trailing data", append(bytes.Clone(issuers), 0), nil},
		{"a description that is no SEQUENCE", []byte{0x30, 0x03, 0x02, 0x01, 0x01}, nil},
		{"a description without its method", []byte{0x30, 0x02, 0x30, 0x00}, nil},
		{"not a SEQUENCE", []byte{0x04, 0x00}, nil},
	} {
		if got := withoutOCSP(tc.in); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: %x, want %x", tc.name, got, tc.want)
		}
	}
}

// extensionsOf returns the extensions Go gives a certificate of c.
func extensionsOf(t *testing.T, c *x509.Certificate) []pkix.Extension {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c.SerialNumber = big.NewInt(1)
	der, err := x509.CreateCertificate(rand.Reader, c, c, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return parsed.Extensions
}
