package pki

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"io"
	"math/big"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/openpca/openpca"
)

// newIssuer is a self-signed CA of a new key of alg that may sign CRLs,
// signing with sign.
func newIssuer(t testing.TB, alg openpca.KeyAlgorithm, sign openpca.SigningAlgorithm) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, err := GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	ski, err := SubjectKeyID(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	sigAlg, err := SignatureAlgorithm(alg, sign)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: string(alg) + " CA"}, NotBefore: now, NotAfter: now.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: ski, SignatureAlgorithm: sigAlg}
	der, err := CreateCertificate(tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return issuer, key
}

// TestCreateRevocationList: a CRL whose entries RevokedCertificates
// encodes is, but for its signature, the CRL Go's own
// x509.CreateRevocationList makes of them, for keys Go knows; for foreign
// keys, Go parses it and its signature holds. A signer whose signatures
// the issuer's certificate does not verify signs no CRL.
func TestCreateRevocationList(t *testing.T) {
	at := time.Date(2026, 12, 1, 4, 42, 40, 123456789, time.FixedZone("east", 3600))
	big20, _ := new(big.Int).SetString("7f0102030405060708090a0b0c0d0e0f10111213", 16)
	type entry struct {
		serial *big.Int
		at     time.Time
		reason int
	}
	many := make([]entry, 3000) // a length of three bytes
	for i := range many {
		many[i] = entry{new(big.Int).Lsh(big.NewInt(int64(i+1)), 120), at.Add(time.Duration(i) * time.Second), i % 11}
	}
	lists := map[string][]entry{
		"none": nil,
		"one":  {{big.NewInt(1), at, 0}},
		"edges": {
			{big.NewInt(0x80), time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), 1},
			{big20, time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC), 4},
			{big.NewInt(0xff00), time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC), 10},
			{big.NewInt(0), time.Date(1949, 12, 31, 23, 59, 59, 999, time.UTC), 9},
		},
		"many": many,
	}
	idp, err := asn1.Marshal(struct{ A int }{1})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		alg  openpca.KeyAlgorithm
		sign openpca.SigningAlgorithm
	}{
		{openpca.KeyAlgorithmEcPrime256v1, openpca.SigningAlgorithmSha256withecdsa},
		{openpca.KeyAlgorithmEcSecp384r1, openpca.SigningAlgorithmSha384withecdsa},
		{openpca.KeyAlgorithmEcSecp521r1, openpca.SigningAlgorithmSha512withecdsa},
		{openpca.KeyAlgorithmRsa2048, openpca.SigningAlgorithmSha256withrsa},
		{openpca.KeyAlgorithmRsa2048, openpca.SigningAlgorithmSha384withrsa},
		{openpca.KeyAlgorithmRsa2048, openpca.SigningAlgorithmSha512withrsa},
		{openpca.KeyAlgorithmSm2, openpca.SigningAlgorithmSm3withsm2},
		{openpca.KeyAlgorithmMlDsa44, openpca.SigningAlgorithmMlDsa44},
	} {
		issuer, key := newIssuer(t, k.alg, k.sign)
		sigAlg, err := SignatureAlgorithm(k.alg, k.sign)
		if err != nil {
			t.Fatal(err)
		}
		for name, entries := range lists {
			t.Run(string(k.sign)+"/"+name, func(t *testing.T) {
				list := &x509.RevocationList{Number: big.NewInt(42), ThisUpdate: at, NextUpdate: at.AddDate(0, 0, 7), SignatureAlgorithm: sigAlg,
					ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 28}, Critical: true, Value: idp}}}
				var revoked RevokedCertificates
				goList := *list
				for _, e := range entries {
					if err := revoked.Add(e.serial, e.at, e.reason); err != nil {
						t.Fatal(err)
					}
					goList.RevokedCertificateEntries = append(goList.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: e.serial, RevocationTime: e.at, ReasonCode: e.reason})
				}
				if revoked.Len() != len(entries) {
					t.Errorf("Len %d, want %d", revoked.Len(), len(entries))
				}
				der, err := CreateRevocationList(list, &revoked, issuer, key)
				if err != nil {
					t.Fatal(err)
				}
				crl, err := x509.ParseRevocationList(der)
				if err != nil {
					t.Fatal(err)
				}
				if err := checkSigned(der, issuer, sigAlg); err != nil {
					t.Errorf("the signature: %v", err)
				}
				if n, err := CRLNumber(der, issuer, sigAlg); err != nil || n.Int64() != 42 {
					t.Errorf("CRLNumber: %v, %v, want 42", n, err)
				}
				if got, want := revoked.SHA256(), sha256.Sum256(revokedCertificates(t, crl.RawTBSRevocationList)); got != want {
					t.Errorf("SHA256 %x; the CRL's entries have %x", got, want)
				}
				if foreign(key) {
					if len(crl.RevokedCertificateEntries) != len(entries) {
						t.Fatalf("%d entries, want %d", len(crl.RevokedCertificateEntries), len(entries))
					}
					for i, e := range entries {
						got := crl.RevokedCertificateEntries[i]
						if got.SerialNumber.Cmp(e.serial) != 0 || !got.RevocationTime.Equal(e.at.Truncate(time.Second)) || got.ReasonCode != e.reason {
							t.Errorf("entry %d: %v %v %d, want %v %v %d", i, got.SerialNumber, got.RevocationTime, got.ReasonCode, e.serial, e.at, e.reason)
						}
					}
					return
				}
				if err := crl.CheckSignatureFrom(issuer); err != nil {
					t.Errorf("CheckSignatureFrom: %v", err)
				}
				goDER, err := x509.CreateRevocationList(rand.Reader, &goList, issuer, key)
				if err != nil {
					t.Fatal(err)
				}
				goCRL, err := x509.ParseRevocationList(goDER)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(crl.RawTBSRevocationList, goCRL.RawTBSRevocationList) {
					t.Errorf("the TBSCertList differs from Go's:\n%x\n%x", crl.RawTBSRevocationList, goCRL.RawTBSRevocationList)
				}
			})
		}
	}

	t.Run("faulty signers", func(t *testing.T) {
		ec, ml := openpca.KeyAlgorithmEcPrime256v1, openpca.KeyAlgorithmMlDsa44
		issuer, key := newIssuer(t, ec, openpca.SigningAlgorithmSha256withecdsa)
		_, other := newIssuer(t, ec, openpca.SigningAlgorithmSha256withecdsa)
		_, mldsa := newIssuer(t, ml, openpca.SigningAlgorithmMlDsa44)
		mlIssuer, _ := newIssuer(t, ml, openpca.SigningAlgorithmMlDsa44)
		for name, tc := range map[string]struct {
			issuer *x509.Certificate
			signer crypto.Signer
		}{
			"another key":         {issuer, other},
			"another ML-DSA key":  {mlIssuer, mldsa},
			"a wrong signature":   {issuer, wrongSignature{key, other}},
			"no signature at all": {issuer, wrongSignature{key, nil}},
		} {
			t.Run(name, func(t *testing.T) {
				var revoked RevokedCertificates
				revoked.Add(big.NewInt(7), time.Now(), 1)
				sigAlg := x509.ECDSAWithSHA256
				if foreign(tc.signer) {
					sigAlg = x509.UnknownSignatureAlgorithm
				}
				list := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour), SignatureAlgorithm: sigAlg}
				if _, err := CreateRevocationList(list, &revoked, tc.issuer, tc.signer); err == nil {
					t.Error("a CRL the issuer's certificate does not verify was signed")
				}
			})
		}
	})
}

// wrongSignature has the public key of key and signs with other, or
// returns an empty signature.
type wrongSignature struct{ key, other crypto.Signer }

func (w wrongSignature) Public() crypto.PublicKey { return w.key.Public() }

func (w wrongSignature) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if w.other == nil {
		return nil, nil
	}
	return w.other.Sign(r, digest, opts)
}

// TestCRLNumberRefuses: CRLNumber gives no number for a CRL of another
// issuer, of the issuer's name but another key, altered, or not a CRL.
func TestCRLNumberRefuses(t *testing.T) {
	sigAlg := x509.ECDSAWithSHA256
	issuer, key := newIssuer(t, openpca.KeyAlgorithmEcPrime256v1, openpca.SigningAlgorithmSha256withecdsa)
	namesake, namesakeKey := newIssuer(t, openpca.KeyAlgorithmEcPrime256v1, openpca.SigningAlgorithmSha256withecdsa)
	other, otherKey := newIssuer(t, openpca.KeyAlgorithmEcSecp384r1, openpca.SigningAlgorithmSha256withecdsa)
	crl := func(issuer *x509.Certificate, key crypto.Signer) []byte {
		t.Helper()
		var revoked RevokedCertificates
		if err := revoked.Add(big.NewInt(7), time.Now(), 1); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		der, err := CreateRevocationList(&x509.RevocationList{Number: big.NewInt(9), ThisUpdate: now, NextUpdate: now.Add(time.Hour), SignatureAlgorithm: sigAlg}, &revoked, issuer, key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	good := crl(issuer, key)
	if n, err := CRLNumber(good, issuer, sigAlg); err != nil || n.Int64() != 9 {
		t.Fatalf("the issuer's own CRL: %v, %v", n, err)
	}
	altered := slices.Clone(good)
	i := bytes.Index(altered, []byte{0x02, 0x01, 0x07}) // the entry's serial
	altered[i+2] = 8
	// ecdsa-with-SHA256 named outside, as ecdsa-with-SHA384, and inside.
	relabelled := slices.Clone(good)
	sha256OID := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}
	i = bytes.LastIndex(relabelled, sha256OID)
	relabelled[i+len(sha256OID)-1] = 0x03
	extended := nullAfterSignature(t, good)
	for _, tt := range []struct {
		name string
		der  []byte
	}{
		{"another issuer's", crl(other, otherKey)},
		{"a namesake's, of another key", crl(namesake, namesakeKey)},
		{"an entry altered", altered},
		{"bytes after it", append(slices.Clone(good), 0)},
		{"another signature algorithm named outside", relabelled},
		{"an element after its signature", extended},
		{"cut short", good[:len(good)-1]},
		{"a certificate", issuer.Raw},
		{"nothing", nil},
	} {
		if n, err := CRLNumber(tt.der, issuer, sigAlg); err == nil {
			t.Errorf("%s: number %v", tt.name, n)
		}
	}
}

// BenchmarkCreateRevocationList signs a CRL of 100,000 entries, added as a
// CRL's publisher adds them: what it allocates per CRL is the memory a CA
// with many revocations costs.
func BenchmarkCreateRevocationList(b *testing.B) {
	issuer, key := newIssuer(b, openpca.KeyAlgorithmEcPrime256v1, openpca.SigningAlgorithmSha256withecdsa)
	serial := make([]byte, 16)
	b.ReportAllocs()
	for b.Loop() {
		var revoked RevokedCertificates
		for range 100_000 {
			rand.Read(serial)
			if err := revoked.Add(new(big.Int).SetBytes(serial), time.Now(), 1); err != nil {
				b.Fatal(err)
			}
		}
		list := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour), SignatureAlgorithm: x509.ECDSAWithSHA256}
		if _, err := CreateRevocationList(list, &revoked, issuer, key); err != nil {
			b.Fatal(err)
		}
	}
}

// revokedCertificates returns the contents of a TBSCertList's
// revokedCertificates, nil if it has none (RFC 5280, 5.1).
func revokedCertificates(t *testing.T, tbs []byte) []byte {
	t.Helper()
	in := cryptobyte.String(tbs)
	var list cryptobyte.String
	if !in.ReadASN1(&list, cbasn1.SEQUENCE) ||
		!list.SkipOptionalASN1(cbasn1.INTEGER) || !list.SkipASN1(cbasn1.SEQUENCE) || !list.SkipASN1(cbasn1.SEQUENCE) { // version, signature, issuer
		t.Fatal("a TBSCertList that does not parse")
	}
	for range 2 { // thisUpdate, and nextUpdate if there is one
		for _, tag := range []cbasn1.Tag{cbasn1.UTCTime, cbasn1.GeneralizedTime} {
			if list.PeekASN1Tag(tag) {
				list.SkipASN1(tag)
				break
			}
		}
	}
	var entries cryptobyte.String
	if !list.PeekASN1Tag(cbasn1.SEQUENCE) {
		return nil
	}
	if !list.ReadASN1(&entries, cbasn1.SEQUENCE) {
		t.Fatal("revokedCertificates that does not parse")
	}
	return entries
}
