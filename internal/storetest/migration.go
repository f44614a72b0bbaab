package storetest

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
)

// OldCertificate is a CA's log of two entries, its CSR and the issuance of
// Certificate, as a store of an earlier version kept them: each entry with
// its whole record and the hashes it stored (Hashes), the certificate in
// one row with its DER. A migration test writes it in the old layout, migrates,
// and Checks the store.
type OldCertificate struct {
	CA          *openpca.CA
	Certificate *openpca.Certificate
	CSR, Issue  *openpca.KeyUse
	Hashes      [][]byte
}

// NewOldCertificate returns the fixture.
func NewOldCertificate(t *testing.T) *OldCertificate {
	t.Helper()
	at := time.Date(2026, 11, 30, 12, 0, 0, 123456000, time.UTC)
	ca := &openpca.CA{ID: "0193a0c0-0000-7000-8000-000000000001", AccountID: account, CSR: []byte{1}, CreatedAt: at}
	ca.ARN = openpca.CAARN("us-east-1", ca.AccountID, ca.ID)
	c := &openpca.Certificate{CAID: ca.ID, AccountID: ca.AccountID, Serial: "0a1b", ARN: openpca.CertificateARN(ca.ARN, "0a1b"), DER: []byte{0x30, 0x03, 1, 2, 3},
		Subject: "CN=old.example", NotBefore: at.Truncate(time.Second), NotAfter: at.AddDate(0, 0, 7).Truncate(time.Second), IssuedAt: at,
		TemplateARN: "arn:aws:acm-pca:::template/EndEntityCertificate/V1", RequestedBy: "arn:aws:iam::111122223333:root", RequestID: "req-1"}
	o := &OldCertificate{CA: ca, Certificate: c, CSR: openpca.CSRUse(ca, "p", "r"), Issue: openpca.IssueUse(ca.ARN, c)}
	var err error
	if o.Hashes, _, err = auditlog.Append(auditlog.Edge{}, [][]byte{o.CSR.Record, o.Issue.Record}); err != nil {
		t.Fatal(err)
	}
	return o
}

// Check checks that the migrated store reads the certificate back the
// same, keeps the log's records and hashes, lists the certificate in audit
// rows, and appends to the log.
func (o *OldCertificate) Check(t *testing.T, s openpca.Store) {
	t.Helper()
	c := o.Certificate
	got, err := s.FindCertificate(ctx, c.CAID, c.Serial)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("the certificate after the migration:\n got %+v, %v\nwant %+v", got, err, c)
	}
	var records [][]byte
	if err := s.LogRecords(ctx, c.CAID, 2, func(r []byte) error { records = append(records, bytes.Clone(r)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(records) != 2 || !bytes.Equal(records[0], o.CSR.Record) || !bytes.Equal(records[1], o.Issue.Record) {
		t.Fatalf("the log's records after the migration: %q", records)
	}
	stored, err := s.LogHashes(ctx, c.CAID, []int64{tlog.StoredHashIndex(0, 1)})
	if err != nil || tlog.Hash(stored[0]) != tlog.RecordHash(o.Issue.Record) {
		t.Errorf("the issuance's leaf hash: %x, %v", stored, err)
	}
	var rows []string
	err = s.AuditEntries(ctx, c.CAID, 2, 0, 2, func(e *openpca.AuditEntry) error {
		if e.Certificate != nil {
			rows = append(rows, e.Certificate.ARN+" "+e.Certificate.Subject)
		}
		return nil
	})
	if err != nil || len(rows) != 1 || rows[0] != c.ARN+" "+c.Subject {
		t.Errorf("audit rows after the migration: %v, %v", rows, err)
	}
	// The log, written before the store kept its tree's edge, grows on
	// from the hashes of its entries.
	for range 3 {
		if _, err := s.RecordIssuance(ctx, issuance(o.CA, newCertificate(o.CA))); err != nil {
			t.Fatal(err)
		}
	}
	CheckTree(t, s, o.CA)
}
