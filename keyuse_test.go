package openpca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

// FuzzAppendRecord: a record made without reflection is the record
// encoding/json makes, byte for byte, whatever its fields hold.
func FuzzAppendRecord(f *testing.F) {
	f.Add("ISSUE", "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/x", "CN=a.example,O=Example", "2026-11-30T12:00:00.123456Z", int64(0), -1)
	f.Add("CRL", "", "CN=<script>&\"\\\u2028\x01\xff", "", int64(12), 3)
	f.Fuzz(func(t *testing.T, kind, arn, subject, at string, crlNumber int64, revoked int) {
		r := KeyUseRecord{Kind: kind, CertificateAuth: arn, At: at, Account: arn, RequestedBy: subject, RequestID: at,
			CertificateArn: arn, Serial: kind, Subject: subject, NotBefore: at, NotAfter: subject, TemplateArn: arn,
			RevocationReason: kind, CRLNumber: crlNumber, ThisUpdate: at, NextUpdate: subject, ExpiringFrom: subject, EntriesSHA256: kind,
			CertificateSHA256: subject, ChainSHA256: at, CertStatus: kind, SignedSHA256: at}
		if revoked >= 0 {
			r.Revoked = &revoked
			from := int64(revoked) // not crlNumber: a member written under the other's name would pass
			r.RevocationsBefore = &crlNumber
			r.RevocationsFrom = &from
		}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendRecord(nil, &r); !bytes.Equal(got, want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
		r = KeyUseRecord{Kind: kind} // the members left out when empty
		want, _ = json.Marshal(r)
		if got := appendRecord(nil, &r); !bytes.Equal(got, want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	})
}

// TestChainSHA256: a chain is hashed as its certificates' DER, one after
// another, only as a server stores it: PEM blocks of certificates alone,
// with nothing around or between them, which clients are handed as they
// are and the hash would not show.
func TestChainSHA256(t *testing.T) {
	block := func(der ...byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	two := sha256.Sum256([]byte{1, 2, 3, 4})
	for _, tc := range []struct {
		name, chain, want string
		ok                bool
	}{
		{"none", "", "", true},
		{"two", block(1, 2) + block(3, 4), hex.EncodeToString(two[:]), true},
		{"text before", "issuer\n" + block(1, 2) + block(3, 4), "", false},
		{"text between", block(1, 2) + "hidden\n" + block(3, 4), "", false},
		{"text after", block(1, 2) + block(3, 4) + "more", "", false},
		{"a key", block(1, 2) + string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{3, 4}})), "", false},
		{"headers", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"A": "b"}, Bytes: []byte{1, 2, 3, 4}})), "", false},
		{"other lines", strings.Replace(block(make([]byte, 60)...), "\n", "\r\n", -1), "", false},
	} {
		got, err := ChainSHA256([]byte(tc.chain))
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("%s: %q, %v; want %q, ok %v", tc.name, got, err, tc.want, tc.ok)
		}
	}
}

// TestCheckImported: a CA holds what its log last imported, or nothing if
// its log imports nothing; each field changed since is found, and the
// error names the entry.
func TestCheckImported(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(4242), NotBefore: at, NotAfter: at.AddDate(1, 0, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	newCA := func() *CA {
		return &CA{ID: "ca", ARN: "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/ca", AccountID: "111122223333",
			Certificate: der, CertificateChain: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}),
			Serial: "4242", NotBefore: at, NotAfter: at.AddDate(1, 0, 0)}
	}
	use, err := ImportUse(newCA(), "p", "r", at)
	if err != nil {
		t.Fatal(err)
	}
	var last KeyUseRecord
	if err := json.Unmarshal(use.Record, &last); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(ca *CA)
		last   *KeyUseRecord
		want   string // "" for none
	}{
		{"as imported", func(*CA) {}, &last, ""},
		{"nothing imported, nothing held", func(ca *CA) { ca.Certificate = nil }, nil, ""},
		{"nothing imported", func(*CA) {}, nil, "entry 6 of the log of CA ca and those before it import no certificate"},
		{"the certificate gone", func(ca *CA) { ca.Certificate = nil }, &last, "entry 3 of the log of CA ca imported a certificate that the CA no longer holds"},
		{"another certificate", func(ca *CA) { ca.Certificate = append(ca.Certificate, 0) }, &last, "entry 3 of the log of CA ca is the last import"},
		{"another chain", func(ca *CA) { ca.CertificateChain = nil }, &last, "entry 3 of the log of CA ca is the last import"},
		{"a chain not stored so", func(ca *CA) { ca.CertificateChain = append([]byte("x"), ca.CertificateChain...) }, &last, "not PEM as a server stores it"},
		{"later expiry", func(ca *CA) { ca.NotAfter = ca.NotAfter.Add(time.Second) }, &last, "but the CA's row says from"},
		{"another serial", func(ca *CA) { ca.Serial = "4243" }, &last, "imported a certificate of serial 4242, but the CA's row says 4243"},
	} {
		ca := newCA()
		tc.change(ca)
		err := CheckImported(ca, tc.last, 3, 7)
		if tc.want == "" && err != nil || tc.want != "" && (!errors.Is(err, ErrLogIntegrity) || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
