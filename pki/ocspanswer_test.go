package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"
)

// ocspAnswers returns answers about a certificate of issuer, whose key
// is key, with each hash x/crypto/ocsp names an issuer by: signed by the
// CA, which names itself by its key's hash, and by a responder it
// certified, which names itself by its name.
func ocspAnswers(t testing.TB, issuer *x509.Certificate, key crypto.Signer) [][]byte {
	t.Helper()
	responderKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(8), Subject: pkix.Name{CommonName: "Responder"},
		NotBefore: now, NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}}, issuer, responderKey.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	responder, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		tmpl := ocsp.Response{Status: ocsp.Revoked, SerialNumber: new(big.Int).Lsh(big.NewInt(0x7f), 150), ThisUpdate: now, NextUpdate: now.Add(time.Hour),
			RevokedAt: now.Add(-time.Minute), IssuerHash: h}
		byCA, err := ocsp.CreateResponse(issuer, issuer, tmpl, key)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.Certificate, tmpl.RawResponderName = responder, responder.RawSubject
		byResponder, err := ocsp.CreateResponse(issuer, responder, tmpl, responderKey)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, byCA, byResponder)
	}
	return out
}

// FuzzOCSPAnswerCertID: the certificate an answer x/crypto/ocsp reads is
// about is read the same: its serial, and the hash algorithm that names
// its issuer.
func FuzzOCSPAnswerCertID(f *testing.F) {
	issuer, key := ocspIssuer(f, "Issuer")
	for _, der := range ocspAnswers(f, issuer, key) {
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		resp, err := ocsp.ParseResponse(der, nil)
		if err != nil {
			return
		}
		in := cryptobyte.String(resp.TBSResponseData)
		var data cryptobyte.String
		if !in.ReadASN1(&data, cbasn1.SEQUENCE) || paddedExplicit(data, 0) {
			return
		}
		id, err := OCSPAnswerCertID(resp.TBSResponseData)
		if err != nil {
			t.Fatalf("x/crypto reads %x, and OCSPAnswerCertID refuses it: %v", der, err)
		}
		if id.HashAlgorithm != resp.IssuerHash || id.SerialNumber.Cmp(resp.SerialNumber) != 0 {
			t.Fatalf("%x: %v of serial %x, x/crypto reads %v of %x", der, id.HashAlgorithm, id.SerialNumber, resp.IssuerHash, resp.SerialNumber)
		}
	})
}

// TestOCSPAnswerCertID: an answer names its certificate's issuer by the
// hashes x/crypto's request about that certificate names it by, which
// OCSPIssuerHashes gives, whoever signed it, and with a version field
// too; and a malformed one is refused.
func TestOCSPAnswerCertID(t *testing.T) {
	issuer, key := ocspIssuer(t, "Issuer")
	for _, der := range ocspAnswers(t, issuer, key) {
		resp, err := ocsp.ParseResponse(der, issuer)
		if err != nil {
			t.Fatal(err)
		}
		req, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: resp.SerialNumber}, issuer, &ocsp.RequestOptions{Hash: resp.IssuerHash})
		if err != nil {
			t.Fatal(err)
		}
		want, err := ocsp.ParseRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		name := resp.IssuerHash.String()
		if resp.Certificate != nil {
			name += ", a responder's"
		}
		nameHash, keyHash, err := OCSPIssuerHashes(issuer, resp.IssuerHash)
		if err != nil || !bytes.Equal(nameHash, want.IssuerNameHash) || !bytes.Equal(keyHash, want.IssuerKeyHash) {
			t.Errorf("%s: OCSPIssuerHashes: %x, %x, %v; want %x, %x", name, nameHash, keyHash, err, want.IssuerNameHash, want.IssuerKeyHash)
		}
		tbs := resp.TBSResponseData
		in := cryptobyte.String(tbs)
		var data cryptobyte.String
		if !in.ReadASN1(&data, cbasn1.SEQUENCE) {
			t.Fatal("no tbsResponseData")
		}
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(explicit(0), func(b *cryptobyte.Builder) { b.AddASN1Int64(0) })
			b.AddBytes(data)
		})
		for _, tc := range []struct {
			name string
			tbs  []byte
			ok   bool
		}{
			{"as x/crypto makes it", tbs, true},
			{"with its version", b.BytesOrPanic(), true},
			{"cut short", tbs[:len(tbs)-1], false},
			{"trailing bytes", append(bytes.Clone(tbs), 0), false},
			{"no responses", []byte{0x30, 0x17, 0xa2, 0x02, 0x04, 0x00, 0x18, 0x0f, '2', '0', '2', '6', '0', '1', '0', '1', '0', '0', '0', '0', '0', '0', 'Z', 0x30, 0x00}, false},
			{"another hash algorithm", bytes.Replace(tbs, []byte{6, 5, 0x2b, 0x0e, 3, 2, 0x1a}, []byte{6, 5, 0x2b, 0x0e, 3, 2, 0x1b}, 1), resp.IssuerHash != crypto.SHA1},
		} {
			got, err := OCSPAnswerCertID(tc.tbs)
			if (err == nil) != tc.ok {
				t.Errorf("%s, %s: %v", name, tc.name, err)
				continue
			}
			if tc.ok && (got.HashAlgorithm != want.HashAlgorithm || !bytes.Equal(got.IssuerNameHash, want.IssuerNameHash) ||
				!bytes.Equal(got.IssuerKeyHash, want.IssuerKeyHash) || got.SerialNumber.Cmp(want.SerialNumber) != 0) {
				t.Errorf("%s, %s: %+v, want %+v", name, tc.name, got, want)
			}
		}
	}
}
