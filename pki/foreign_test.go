package pki

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"io"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/openpca/openpca"
)

// countedSigner counts its signatures, and gets those from the wrong-th
// on wrong (a faulty token; 0: none).
type countedSigner struct {
	crypto.Signer
	n, wrong int
}

func (s *countedSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	s.n++
	sig, err := s.Signer.Sign(r, digest, opts)
	if err == nil && s.wrong > 0 && s.n >= s.wrong {
		sig[len(sig)/2] ^= 1
	}
	return sig, err
}

// TestCreateCertificateSignsOnce: a CA's key signs a certificate once,
// whatever the keys (a CA certifying a key Go cannot use once signed for a
// stand-in key besides, outside every log), and a certificate whose
// signature does not verify is refused.
func TestCreateCertificateSignsOnce(t *testing.T) {
	algs := []openpca.KeyAlgorithm{openpca.KeyAlgorithmEcPrime256v1, openpca.KeyAlgorithmRsa2048, openpca.KeyAlgorithmMlDsa65, openpca.KeyAlgorithmSm2}
	keys := map[openpca.KeyAlgorithm]crypto.Signer{}
	for _, alg := range algs {
		k, err := GenerateKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		keys[alg] = k
	}
	now := time.Now()
	signing := map[openpca.KeyAlgorithm]openpca.SigningAlgorithm{openpca.KeyAlgorithmEcPrime256v1: openpca.SigningAlgorithmSha256withecdsa,
		openpca.KeyAlgorithmRsa2048: openpca.SigningAlgorithmSha256withrsa, openpca.KeyAlgorithmMlDsa65: openpca.SigningAlgorithmMlDsa65, openpca.KeyAlgorithmSm2: openpca.SigningAlgorithmSm3withsm2}
	for _, caAlg := range algs {
		sigAlg, err := SignatureAlgorithm(caAlg, signing[caAlg])
		if err != nil {
			t.Fatal(err)
		}
		root := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}, NotBefore: now, NotAfter: now.Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SignatureAlgorithm: sigAlg}
		der, err := CreateCertificate(root, root, keys[caAlg].Public(), keys[caAlg])
		if err != nil {
			t.Fatal(err)
		}
		ca, err := ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		// A foreign key wrapped would be taken for none: those sign as
		// they are.
		wrongs, wrapped := []int{0, 1}, !foreign(keys[caAlg])
		if !wrapped {
			wrongs = []int{0}
		}
		for _, alg := range algs {
			for _, wrong := range wrongs {
				t.Run(fmt.Sprintf("%s CA/%s key/wrong %v", caAlg, alg, wrong > 0), func(t *testing.T) {
					signer := &countedSigner{Signer: keys[caAlg], wrong: wrong}
					leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "leaf"}, NotBefore: now, NotAfter: now.Add(time.Hour),
						KeyUsage: x509.KeyUsageDigitalSignature, SignatureAlgorithm: sigAlg}
					var s crypto.Signer = signer
					if !wrapped {
						s, signer.n = keys[caAlg], 1
					}
					der, err := CreateCertificate(leaf, ca, keys[alg].Public(), s)
					switch {
					case signer.n != 1:
						t.Fatalf("the CA's key signed %d times", signer.n)
					case wrong > 0 && err == nil:
						t.Fatal("a certificate whose signature went wrong was returned")
					case wrong > 0:
						return
					case err != nil:
						t.Fatal(err)
					}
					if err := checkSigned(der, ca, sigAlg); err != nil {
						t.Fatalf("the certificate does not verify: %v", err)
					}
				})
			}
			// A key store that gives another key than the CA's.
			t.Run(fmt.Sprintf("%s CA/%s key/another CA key", caAlg, alg), func(t *testing.T) {
				other, err := GenerateKey(caAlg)
				if err != nil {
					t.Fatal(err)
				}
				leaf := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "leaf"}, NotBefore: now, NotAfter: now.Add(time.Hour), SignatureAlgorithm: sigAlg}
				if _, err := CreateCertificate(leaf, ca, keys[alg].Public(), other); err == nil {
					t.Fatal("a certificate signed by another key than its issuer's was returned")
				}
			})
		}
	}
}

// TestParseCSRKeys: a CSR whose public key does not read is refused with
// what is wrong with it, whatever the key; one with an element after the
// key's bits (which Go's and gmsm's parsers skip) too. Each CSR is signed
// by its key, over what it says.
func TestParseCSRKeys(t *testing.T) {
	keys := map[openpca.KeyAlgorithm]crypto.Signer{}
	for _, alg := range []openpca.KeyAlgorithm{openpca.KeyAlgorithmEcPrime256v1, openpca.KeyAlgorithmMlDsa65, openpca.KeyAlgorithmSm2} {
		k, err := GenerateKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		keys[alg] = k
	}
	// spki rebuilds a SubjectPublicKeyInfo from its algorithm
	// identifier's contents and its key's bits, and what follows.
	spki := func(alg, bits []byte, after ...byte) []byte {
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(alg) })
			b.AddASN1BitString(bits)
			b.AddBytes(after)
		})
		return b.BytesOrPanic()
	}
	for _, tc := range []struct {
		name   string
		alg    openpca.KeyAlgorithm
		change func(alg, bits []byte) []byte // nil: as made
		want   string                        // "": accepted
	}{
		{"EC", openpca.KeyAlgorithmEcPrime256v1, nil, ""},
		{"EC, an element after the key", openpca.KeyAlgorithmEcPrime256v1, func(a, b []byte) []byte { return spki(a, b, 5, 0) }, "BIT STRING alone"},
		{"EC, a point off the curve", openpca.KeyAlgorithmEcPrime256v1, func(a, b []byte) []byte {
			b = bytes.Clone(b)
			b[len(b)-1] ^= 1
			return spki(a, b)
		}, "point"},
		{"SM2", openpca.KeyAlgorithmSm2, nil, ""},
		{"SM2, an element after the key", openpca.KeyAlgorithmSm2, func(a, b []byte) []byte { return spki(a, b, 5, 0) }, "BIT STRING alone"},
		{"SM2, a point off the curve", openpca.KeyAlgorithmSm2, func(a, b []byte) []byte {
			b = bytes.Clone(b)
			b[len(b)-1] ^= 1
			return spki(a, b)
		}, "as an SM2 key's"},
		{"ML-DSA", openpca.KeyAlgorithmMlDsa65, nil, ""},
		{"ML-DSA, a byte short", openpca.KeyAlgorithmMlDsa65, func(a, b []byte) []byte { return spki(a, b[:len(b)-1]) }, "SubjectPublicKeyInfo"},
		{"ML-DSA, NULL parameters", openpca.KeyAlgorithmMlDsa65, func(a, b []byte) []byte { return spki(append(bytes.Clone(a), 5, 0), b) }, "has parameters"},
		{"ML-DSA, an element after the key", openpca.KeyAlgorithmMlDsa65, func(a, b []byte) []byte { return spki(a, b, 5, 0) }, "BIT STRING alone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := keys[tc.alg]
			der, err := CreateCertificateRequest(key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}})
			if err != nil {
				t.Fatal(err)
			}
			if tc.change != nil {
				sigAlg := x509.SignatureAlgorithm(0)
				if !foreign(key) {
					sigAlg = x509.ECDSAWithSHA256
				}
				der, err = resign(der, key, sigAlg, nil, func(cri [][]byte) ([][]byte, error) {
					in := cryptobyte.String(cri[2])
					var info, alg cryptobyte.String
					var bits asn1.BitString
					if !in.ReadASN1(&info, cbasn1.SEQUENCE) || !info.ReadASN1(&alg, cbasn1.SEQUENCE) || !info.ReadASN1BitString(&bits) {
						t.Fatal("the SubjectPublicKeyInfo made does not read")
					}
					cri[2] = tc.change(alg, bits.Bytes)
					return cri, nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			_, err = ParseCSR(der)
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("%v, want an error that says %q", err, tc.want)
			case err != nil && tc.alg != openpca.KeyAlgorithmSm2 && strings.Contains(err.Error(), "SM2"):
				t.Fatalf("%v: the key is not SM2's", err)
			}
		})
	}
}

// nullAfterSignature returns the signed object der (a certificate, a CSR,
// a CRL) with a NULL after its signature, inside its SEQUENCE.
func nullAfterSignature(t *testing.T, der []byte) []byte {
	t.Helper()
	in := cryptobyte.String(der)
	var outer cryptobyte.String
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) {
		t.Fatal("not a signed object")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(outer)
		b.AddASN1NULL()
	})
	return b.BytesOrPanic()
}

// TestParseCSRElementAfterSignature: a CSR with an element after its
// signature, which Go's parser skips and no encoder writes, is refused,
// whatever its key.
func TestParseCSRElementAfterSignature(t *testing.T) {
	for _, alg := range []openpca.KeyAlgorithm{openpca.KeyAlgorithmEcPrime256v1, openpca.KeyAlgorithmRsa2048, openpca.KeyAlgorithmMlDsa65, openpca.KeyAlgorithmSm2} {
		key, err := GenerateKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		der, err := CreateCertificateRequest(key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseCSR(der); err != nil {
			t.Fatalf("%s: the CSR as made: %v", alg, err)
		}
		if _, err := ParseCSR(nullAfterSignature(t, der)); err == nil || !strings.Contains(err.Error(), "elements after its signature") {
			t.Errorf("%s: a CSR with NULL after its signature: %v", alg, err)
		}
	}
}

// TestCheckCertificateElements: a certificate with an element past its
// fields, which Go's parser skips and OpenSSL's refuses, is refused,
// wherever the element is; one as made, with and without unique
// identifiers' room (version 3, extensions), is taken.
func TestCheckCertificateElements(t *testing.T) {
	key, err := GenerateKey(openpca.KeyAlgorithmEcPrime256v1)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "ca"}, NotBefore: now, NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, DNSNames: []string{"ca.example"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	null := []byte{5, 0}
	// rebuilt makes der again with its TBS's elements as edit leaves them.
	rebuilt := func(edit func(fields [][]byte) [][]byte) []byte {
		in := cryptobyte.String(der)
		var outer, tbs, rest cryptobyte.String
		if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !outer.ReadASN1(&tbs, cbasn1.SEQUENCE) {
			t.Fatal("not a certificate")
		}
		rest = outer
		var fields [][]byte
		for !tbs.Empty() {
			var f cryptobyte.String
			var tag cbasn1.Tag
			if !tbs.ReadAnyASN1Element(&f, &tag) {
				t.Fatal("a field does not read")
			}
			fields = append(fields, f)
		}
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, f := range edit(fields) {
					b.AddBytes(f)
				}
			})
			b.AddBytes(rest)
		})
		return b.BytesOrPanic()
	}
	// within appends null inside the element f (a SEQUENCE, or [3]
	// wrapping the extensions' SEQUENCE, whose last extension gets it).
	var within func(f []byte, depth int) []byte
	within = func(f []byte, depth int) []byte {
		in := cryptobyte.String(f)
		var body cryptobyte.String
		var tag cbasn1.Tag
		if !in.ReadAnyASN1(&body, &tag) {
			t.Fatal("an element does not read")
		}
		var b cryptobyte.Builder
		b.AddASN1(tag, func(b *cryptobyte.Builder) {
			if depth == 0 {
				b.AddBytes(body)
				b.AddBytes(null)
				return
			}
			var last cryptobyte.String
			var lastTag cbasn1.Tag
			var before []byte
			for !body.Empty() {
				if len(last) > 0 {
					before = append(before, last...)
				}
				if !body.ReadAnyASN1Element(&last, &lastTag) {
					t.Fatal("an element does not read")
				}
			}
			b.AddBytes(before)
			b.AddBytes(within(last, depth-1))
		})
		return b.BytesOrPanic()
	}
	// The TBS's fields: version, serial, signature, issuer, validity,
	// subject, key, extensions.
	for _, tc := range []struct {
		name string
		der  []byte
		want string
	}{
		{"as made", der, ""},
		{"after the signature", nullAfterSignature(t, der), "after its signature"},
		{"after the validity's times", rebuilt(func(f [][]byte) [][]byte { f[4] = within(f[4], 0); return f }), "up to its public key"},
		{"after the key's bits", rebuilt(func(f [][]byte) [][]byte { f[6] = within(f[6], 0); return f }), "public key"},
		{"after an extension's value", rebuilt(func(f [][]byte) [][]byte { f[7] = within(f[7], 2); return f }), "extension"},
		{"after the extensions", rebuilt(func(f [][]byte) [][]byte { return append(f, null) }), "after its extensions"},
		{"after a subject attribute's value", rebuilt(func(f [][]byte) [][]byte { f[5] = within(f[5], 2); return f }), "its subject"},
		{"after the key algorithm's parameters", rebuilt(func(f [][]byte) [][]byte {
			in := cryptobyte.String(f[6])
			var spki, alg cryptobyte.String
			if !in.ReadASN1(&spki, cbasn1.SEQUENCE) || !spki.ReadASN1Element(&alg, cbasn1.SEQUENCE) {
				t.Fatal("the key does not read")
			}
			var b cryptobyte.Builder
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(within(alg, 0)); b.AddBytes(spki) })
			f[6] = b.BytesOrPanic()
			return f
		}), "public key"},
	} {
		if _, err := x509.ParseCertificate(tc.der); err != nil && tc.want != "after its signature" {
			t.Errorf("%s: Go's parser refuses it (%v): the case tests nothing", tc.name, err)
		}
		err := CheckCertificateElements(tc.der)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestCheckCSRElements: a CSR with an element after its attributes, which
// Go's parser skips, is refused.
func TestCheckCSRElements(t *testing.T) {
	key, err := GenerateKey(openpca.KeyAlgorithmEcPrime256v1)
	if err != nil {
		t.Fatal(err)
	}
	der, err := CreateCertificateRequest(key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckCSRElements(der); err != nil {
		t.Fatalf("the CSR as made: %v", err)
	}
	in := cryptobyte.String(der)
	var outer, info cryptobyte.String
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !outer.ReadASN1(&info, cbasn1.SEQUENCE) {
		t.Fatal("the CSR made does not read")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(info); b.AddBytes([]byte{5, 0}) })
		b.AddBytes(outer)
	})
	bad := b.BytesOrPanic()
	if _, err := x509.ParseCertificateRequest(bad); err != nil {
		t.Fatalf("Go's parser refuses it (%v): the case tests nothing", err)
	}
	if err := CheckCSRElements(bad); err == nil || !strings.Contains(err.Error(), "after its attributes") {
		t.Errorf("a CSR with NULL after its attributes: %v", err)
	}
}
