package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/sqlstore"
)

// newActiveCA stores an active CA.
func newActiveCA(t testing.TB, db *sqlstore.DB) *openpca.CA {
	t.Helper()
	now := time.Now()
	ca := &openpca.CA{ID: uuid.NewString(), AccountID: "111122223333", Status: openpca.CertificateAuthorityStatusActive,
		CreatedAt: now, LastStateChangeAt: now, NotAfter: now.AddDate(1, 0, 0), KeyStore: "software", KeyHandle: []byte{1}, CSR: []byte{2}}
	ca.ARN = openpca.CAARN("us-east-1", ca.AccountID, ca.ID)
	if _, err := db.CreateCA(t.Context(), ca, openpca.CSRUse(ca, "b", "r"), openpca.IdempotencyToken{Now: now}, 10); err != nil {
		t.Fatal(err)
	}
	return ca
}

// der is as long as a P-256 end-entity certificate.
var der = make([]byte, 650)

// serial is the serial of certificate i (see recordIssuance).
func serial(i int64) string { return fmt.Sprintf("%032x", i) }

// recordIssuance records certificate i of ca.
func recordIssuance(ctx context.Context, db *sqlstore.DB, ca *openpca.CA, i int64) error {
	now := time.Now().UTC().Truncate(time.Microsecond)
	c := &openpca.Certificate{CAID: ca.ID, AccountID: ca.AccountID, Serial: serial(i), DER: der,
		Subject: fmt.Sprintf("CN=host-%d.example.com", i), NotBefore: now.Truncate(time.Second), NotAfter: now.Add(time.Hour).Truncate(time.Second), IssuedAt: now,
		TemplateARN: "arn:aws:acm-pca:::template/EndEntityCertificate/V1", RequestedBy: "arn:aws:iam::111122223333:root", RequestID: uuid.NewString()}
	c.ARN = ca.ARN + "/certificate/" + c.Serial
	_, err := db.RecordIssuance(ctx, &openpca.Issuance{Certificate: c, Use: openpca.IssueUse(ca.ARN, c),
		Statuses: []openpca.CertificateAuthorityStatus{openpca.CertificateAuthorityStatusActive}})
	return err
}
