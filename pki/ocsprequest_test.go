package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"
)

// FuzzParseOCSPRequest: a request x/crypto/ocsp reads is read the same, or
// refused as one about more than one certificate (x/crypto reads the
// first), which encoding/asn1 counts too.
func FuzzParseOCSPRequest(f *testing.F) {
	for _, req := range ocspRequests(f) {
		f.Add(req)
		f.Add(rewrap(f, req, func(*cryptobyte.Builder, bool) {}, true))
		f.Add(twoCertificates(f, req))
	}
	f.Fuzz(func(t *testing.T, req []byte) {
		got, err := ParseOCSPRequest(req)
		want, werr := ocsp.ParseRequest(req)
		if werr != nil || paddedExplicitFields(req) {
			return
		}
		if errors.Is(err, ErrOCSPRequestMany) {
			var r struct {
				TBS struct {
					Version   int           `asn1:"explicit,tag:0,default:0,optional"`
					Requestor asn1.RawValue `asn1:"explicit,tag:1,optional"`
					List      []asn1.RawValue
				}
			}
			if _, err := asn1.Unmarshal(req, &r); err != nil || len(r.TBS.List) < 2 {
				t.Fatalf("%x: refused as a request about several certificates, of which encoding/asn1 counts %d (%v)", req, len(r.TBS.List), err)
			}
			return
		}
		if err != nil {
			t.Fatalf("x/crypto reads %x, and ParseOCSPRequest refuses it: %v", req, err)
		}
		if got.HashAlgorithm != want.HashAlgorithm || !bytes.Equal(got.IssuerNameHash, want.IssuerNameHash) ||
			!bytes.Equal(got.IssuerKeyHash, want.IssuerKeyHash) || got.SerialNumber.Cmp(want.SerialNumber) != 0 {
			t.Fatalf("%x: %+v, x/crypto reads %+v", req, got, want)
		}
	})
}

// paddedExplicitFields reports whether req's version or requestorName
// holds more than its one element (paddedExplicit).
func paddedExplicitFields(req []byte) bool {
	in := cryptobyte.String(req)
	var outer, tbs cryptobyte.String
	return in.ReadASN1(&outer, cbasn1.SEQUENCE) && outer.ReadASN1(&tbs, cbasn1.SEQUENCE) && paddedExplicit(tbs, 0, 1)
}

// paddedExplicit reports whether any of the EXPLICIT fields numbered
// fields, which begin the structure whose content is in, holds more than
// its one element: encoding/asn1, which x/crypto reads with, goes on
// after the element, not after the field, and reads what follows
// otherwise than a cryptobyte reader does.
func paddedExplicit(in cryptobyte.String, fields ...int) bool {
	for _, n := range fields {
		var field cryptobyte.String
		var present bool
		var tag cbasn1.Tag
		if !in.ReadOptionalASN1(&field, &present, explicit(n)) {
			return false
		}
		if present && (!field.ReadAnyASN1Element(&cryptobyte.String{}, &tag) || !field.Empty()) {
			return true
		}
	}
	return false
}

// ocspRequests are requests x/crypto/ocsp makes, for SHA-1 and SHA-256
// CertIDs.
func ocspRequests(t testing.TB) [][]byte {
	t.Helper()
	issuer, _ := ocspIssuer(t, "Issuer")
	leaf := &x509.Certificate{SerialNumber: new(big.Int).Lsh(big.NewInt(0x7f), 150), RawIssuer: issuer.RawSubject}
	var out [][]byte
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		req, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{Hash: h})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, req)
	}
	return out
}

// ocspIssuer returns a new CA's certificate, named name, and its key.
func ocspIssuer(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return issuer, key
}

// rewrap reads an unsigned request's TBSRequest and builds another
// request: add may add to the TBSRequest before (its first call, with
// before true) and after its requestList, and signed adds a signature.
func rewrap(t testing.TB, req []byte, add func(b *cryptobyte.Builder, before bool), signed bool) []byte {
	t.Helper()
	in := cryptobyte.String(req)
	var outer, tbs, list cryptobyte.String
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !outer.ReadASN1(&tbs, cbasn1.SEQUENCE) || !tbs.ReadASN1Element(&list, cbasn1.SEQUENCE) {
		t.Fatal("not a request")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			add(b, true)
			b.AddBytes(list)
			add(b, false)
		})
		if signed {
			b.AddASN1(explicit(0), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier([]int{1, 2, 840, 10045, 4, 3, 2}) })
					b.AddASN1BitString([]byte{1, 2, 3})
					b.AddASN1(explicit(0), func(b *cryptobyte.Builder) { b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {}) })
				})
			})
		}
	})
	return b.BytesOrPanic()
}

// twoCertificates returns an unsigned request that asks about its one
// certificate twice.
func twoCertificates(t testing.TB, req []byte) []byte {
	t.Helper()
	in := cryptobyte.String(req)
	var outer, tbs, list cryptobyte.String
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !outer.ReadASN1(&tbs, cbasn1.SEQUENCE) || !tbs.ReadASN1(&list, cbasn1.SEQUENCE) {
		t.Fatal("not a request")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddBytes(list)
				b.AddBytes(list)
			})
		})
	})
	return b.BytesOrPanic()
}

func TestParseOCSPRequest(t *testing.T) {
	none := func(*cryptobyte.Builder, bool) {}
	for _, req := range ocspRequests(t) {
		want, err := ocsp.ParseRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ocsp.ParseRequest(twoCertificates(t, req)); err != nil {
			t.Fatalf("x/crypto does not read a request about two certificates: %v", err)
		}
		for _, tc := range []struct {
			name string
			req  []byte
			ok   bool
		}{
			{"as x/crypto makes it", req, true},
			{"version, requestorName and extensions", rewrap(t, req, func(b *cryptobyte.Builder, before bool) {
				if before {
					b.AddASN1(explicit(0), func(b *cryptobyte.Builder) { b.AddASN1Int64(0) })
					b.AddASN1(explicit(1), func(b *cryptobyte.Builder) { // a directoryName
						b.AddASN1(explicit(4), func(b *cryptobyte.Builder) { b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {}) })
					})
				} else {
					b.AddASN1(explicit(2), func(b *cryptobyte.Builder) { b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {}) })
				}
			}, false), true},
			{"signed", rewrap(t, req, none, true), true},
			{"trailing bytes", append(bytes.Clone(req), 0), false},
			{"a field after the extensions", rewrap(t, req, func(b *cryptobyte.Builder, before bool) {
				if !before {
					b.AddASN1Int64(1)
				}
			}, false), true},
			{"an empty requestList", []byte{0x30, 0x04, 0x30, 0x02, 0x30, 0x00}, false},
			{"two certificates", twoCertificates(t, req), false},
			{"cut short", req[:len(req)-1], false},
			{"another hash algorithm", bytes.Replace(req, []byte{6, 5, 0x2b, 0x0e, 3, 2, 0x1a}, []byte{6, 5, 0x2b, 0x0e, 3, 2, 0x1b}, 1), want.HashAlgorithm != crypto.SHA1},
		} {
			got, err := ParseOCSPRequest(tc.req)
			if (err == nil) != tc.ok {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			if tc.ok && (got.HashAlgorithm != want.HashAlgorithm || !bytes.Equal(got.IssuerNameHash, want.IssuerNameHash) ||
				!bytes.Equal(got.IssuerKeyHash, want.IssuerKeyHash) || got.SerialNumber.Cmp(want.SerialNumber) != 0) {
				t.Errorf("%s: %+v, want %+v", tc.name, got, want)
			}
		}
	}
}
