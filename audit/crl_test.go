package audit

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
)

// TestCheckCRLEntries: a CRL must list what the log revoked before the
// CA's previous CRL (and is still valid), and nothing the log did not
// revoke, at its date and for its reason. An operator who cleared a
// revocation in the store had the next CRLs leave it out, every other
// check passing (a red-team's finding).
func TestCheckCRLEntries(t *testing.T) {
	f := newLogFixture(t, 10, openpca.AuditReportResponseFormatJson) // revokes the 1st and the 6th
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	issuer := &x509.Certificate{Subject: pkix.Name{CommonName: "CA"}, SubjectKeyId: []byte{1}, KeyUsage: x509.KeyUsageCRLSign}
	type entry struct {
		row    int // in f.rows; -1 a serial never issued
		reason int
		at     time.Time
	}
	revoked := func(row int) entry { return entry{row, 1, f.rows[row].RevokedAt} }
	makeCRL := func(number int64, thisUpdate time.Time, entries ...entry) *x509.RevocationList {
		list := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(24 * time.Hour)}
		for _, e := range entries {
			serial := big.NewInt(0xbad)
			if e.row >= 0 {
				serial, _ = new(big.Int).SetString(f.rows[e.row].Serial, 16)
			}
			list.RevokedCertificateEntries = append(list.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: serial, RevocationTime: e.at, ReasonCode: e.reason})
		}
		der, err := x509.CreateRevocationList(rand.Reader, list, issuer, key)
		if err != nil {
			t.Fatal(err)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		return crl
	}
	log := func(crl *x509.RevocationList) int64 {
		f.records = append(f.records, openpca.CRLUse(f.ca, crl.Number.Int64(), crl.ThisUpdate, crl.NextUpdate, &openpca.CRLEntries{Count: len(crl.RevokedCertificateEntries)}, crl.Raw).Record)
		return int64(len(f.records) - 1)
	}
	base := f.rows[0].IssuedAt.Add(2 * time.Hour)
	first := makeCRL(1, base, revoked(0), revoked(5))
	firstAt := log(first)
	// The 3rd certificate is revoked after the first CRL.
	third := f.rows[2]
	third.RevokedAt, third.RevocationReason = base.Add(time.Minute), openpca.RevocationReasonKeyCompromise
	f.records = append(f.records, openpca.RevokeUse(f.ca.ARN, third, third.RevokedAt, third.RevocationReason, "account:111122223333", "req").Record)
	thisUpdate := base.Add(2 * time.Minute)
	expired := f.rows[0].NotAfter.Add(time.Second)
	cases := []struct {
		name string
		crl  *x509.RevocationList
		want string // "": it holds
	}{
		{"every revocation", makeCRL(2, thisUpdate, revoked(0), revoked(5), revoked(2)), ""},
		{"one after the previous CRL left for the next", makeCRL(2, thisUpdate, revoked(0), revoked(5)), ""},
		{"one before the previous CRL left out", makeCRL(2, thisUpdate, revoked(5), revoked(2)), "leaves out the certificate " + f.rows[0].Serial},
		{"one the log did not revoke", makeCRL(2, thisUpdate, revoked(0), revoked(5), entry{1, 1, base}), "lists the certificate 02, which the log has not revoked"},
		{"a serial never issued", makeCRL(2, thisUpdate, revoked(0), revoked(5), entry{-1, 1, base}), "lists the certificate 0bad,"},
		{"another reason", makeCRL(2, thisUpdate, revoked(0), entry{5, 0, f.rows[5].RevokedAt}), "for reason 0; the log's revocation"},
		{"another date", makeCRL(2, thisUpdate, revoked(0), entry{5, 1, f.rows[5].RevokedAt.Add(time.Second)}), "the log's revocation (entry"},
		{"the expired left out", makeCRL(2, expired), ""},
		{"one that ends at its thisUpdate left out", makeCRL(2, f.rows[0].NotAfter), "leaves out the certificate " + f.rows[0].Serial},
		{"the expired listed", makeCRL(2, expired, revoked(0), revoked(5), revoked(2)), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := *f
			g.records = append(g.records[:len(g.records):len(g.records)], nil)
			at := int64(len(g.records) - 1)
			g.records[at] = openpca.CRLUse(f.ca, 2, tc.crl.ThisUpdate, tc.crl.NextUpdate, &openpca.CRLEntries{Count: len(tc.crl.RevokedCertificateEntries)}, tc.crl.Raw).Record
			err := checkCRL(t, &g, tc.crl, at)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("%v; want %q", err, tc.want)
			}
		})
	}
	// A CA's first CRL has no previous one to hold it to.
	if err := checkCRL(t, f, makeCRL(1, base), firstAt); err != nil {
		t.Errorf("the first CRL, empty: %v", err)
	}
	// A proof file whose records are not the checkpoint's log.
	honest := cases[0].crl
	at := log(honest)
	tampered := *f
	other := append(f.records[:len(f.records)-1:len(f.records)-1], openpca.CRLUse(f.ca, 2, thisUpdate, thisUpdate, &openpca.CRLEntries{}, nil).Record)
	tampered.checkpoint = signedCheckpoint(t, f.ca.ARN, other, f.signer)
	if err := checkCRL(t, &tampered, honest, at); err == nil || !strings.Contains(err.Error(), "not the checkpoint's") {
		t.Errorf("a log that is not the checkpoint's: %v", err)
	}
}

// checkCRL runs CheckCRLEntries on crl, whose signing is f's entry at.
func checkCRL(t *testing.T, f *logFixture, crl *x509.RevocationList, at int64) error {
	t.Helper()
	_, proof := f.write(t)
	signed := f.checkpoint
	if signed == nil {
		signed = signedCheckpoint(t, f.ca.ARN, f.records, f.signer)
	}
	checkpoint, err := auditlog.OpenCheckpoint(signed, f.vkey)
	if err != nil {
		t.Fatal(err)
	}
	return CheckCRLEntries(bytes.NewReader(proof), &checkpoint, crl, at)
}
