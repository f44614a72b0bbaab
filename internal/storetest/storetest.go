// Package storetest is the contract every openpca.Store must keep. Each
// store's tests run it unchanged against a real database.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/openpca/openpca"
)

// Open returns a new, empty store; the test closes it.
type Open func(t *testing.T) openpca.Store

// contractCase is a case of the store contract.
type contractCase struct {
	name string
	fn   func(*testing.T, openpca.Store)
}

// Run runs the contract against stores from open: its cases named in only,
// or all of them if none is.
func Run(t *testing.T, open Open, only ...string) {
	tests := []contractCase{
		{"CreateFind", testCreateFind},
		{"Isolation", testIsolation},
		{"List", testList},
		{"Update", testUpdate},
		{"UpdateConflict", testUpdateConflict},
		{"Idempotency", testIdempotency},
		{"IdempotencyConcurrent", testIdempotencyConcurrent},
		{"Limit", testLimit},
		{"Count", testCount},
		{"Purge", testPurge},
		{"KeysMade", testKeysMade},
		{"Issue", testIssue},
		{"IssueRefused", testIssueRefused},
		{"IssueIdempotency", testIssueIdempotency},
		{"OCSPResponses", testOCSPResponses},
		{"IssueConcurrent", testIssueConcurrent},
		{"IssueConcurrentFailures", testIssueConcurrentFailures},
		{"Revoke", testRevoke},
		{"AuditReportWindow", testAuditReportWindow},
		{"AuditReportWindowConcurrent", testAuditReportWindowConcurrent},
		{"AuditReportLease", testAuditReportLease},
		{"AuditReportFairness", testAuditReportFairness},
		{"AuditEntries", testAuditEntries},
		{"AccountsAndKeys", testAccountsAndKeys},
		{"OperatorLog", testOperatorLog},
		{"Settings", testSettings},
		{"Buckets", testBuckets},
		{"SharingAndPermissions", testSharingAndPermissions},
		{"CRLPublication", testCRLPublication},
		{"CRLOrder", testCRLOrder},
		{"CRLReadUnpublished", testCRLReadUnpublished},
		{"CRLWhenItChanges", testCRLWhenItChanges},
		{"LargeCA", testLargeCA},
		{"Witnessing", testWitnessing},
		{"ConsoleSessions", testConsoleSessions},
		{"ConsoleQueries", testConsoleQueries},
	}
	for _, name := range only {
		if !slices.ContainsFunc(tests, func(c contractCase) bool { return c.name == name }) {
			t.Fatalf("the store contract has no case %s", name)
		}
	}
	for _, tt := range tests {
		if len(only) > 0 && !slices.Contains(only, tt.name) {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.fn(t, s)
		})
	}
}

var ctx = context.Background()

const account = "111122223333"

// newCA returns a CA record with every field set.
func newCA(accountID string, created time.Time) *openpca.CA {
	id := uuid.Must(uuid.NewV7()).String()
	enabled := true
	return &openpca.CA{
		ID:                id,
		AccountID:         accountID,
		ARN:               openpca.CAARN("us-east-1", accountID, id),
		Type:              openpca.CertificateAuthorityTypeRoot,
		Status:            openpca.CertificateAuthorityStatusPendingCertificate,
		CreatedAt:         created,
		LastStateChangeAt: created,
		Config: openpca.CertificateAuthorityConfiguration{
			KeyAlgorithm:     openpca.KeyAlgorithmEcPrime256v1,
			SigningAlgorithm: openpca.SigningAlgorithmSha256withecdsa,
			Subject:          &openpca.ASN1Subject{CommonName: "Test CA", Country: "US"},
		},
		Revocation:                 &openpca.RevocationConfiguration{OcspConfiguration: &openpca.OcspConfiguration{Enabled: &enabled}},
		KeyStorageSecurityStandard: openpca.KeyStorageSecurityStandardFips1402Level3OrHigher,
		UsageMode:                  openpca.CertificateAuthorityUsageModeGeneralPurpose,
		KeyStore:                   "software",
		KeyHandle:                  []byte{1, 2, 3},
		CSR:                        []byte{4, 5, 6},
		Tags:                       []openpca.Tag{{Key: "team", Value: "pki"}},
	}
}

// createCA creates ca with its CSR's key use.
func createCA(s openpca.Store, ca *openpca.CA, token openpca.IdempotencyToken, limit int) (*openpca.CA, error) {
	return s.CreateCA(ctx, ca, openpca.CSRUse(ca, "tester", "request-1"), token, limit)
}

func create(t *testing.T, s openpca.Store, ca *openpca.CA) *openpca.CA {
	t.Helper()
	got, err := createCA(s, ca, openpca.IdempotencyToken{Now: ca.CreatedAt}, 1000)
	if err != nil {
		t.Fatalf("CreateCA: %v", err)
	}
	return got
}

func equalCA(t *testing.T, got, want *openpca.CA) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("stored CA differs:\n got %s\nwant %s", g, w)
	}
}

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

var active = []openpca.CertificateAuthorityStatus{openpca.CertificateAuthorityStatusActive}

// activeCA stores an ACTIVE CA whose certificate is valid for a year.
func activeCA(t *testing.T, s openpca.Store) *openpca.CA {
	t.Helper()
	ca := newCA(account, now())
	ca.Status, ca.NotBefore, ca.NotAfter = openpca.CertificateAuthorityStatusActive, now().Add(-time.Hour), now().AddDate(1, 0, 0)
	return create(t, s, ca)
}

var serials int

func newCertificate(ca *openpca.CA) *openpca.Certificate {
	serials++
	serial := fmt.Sprintf("%032x", serials)
	at := now()
	return &openpca.Certificate{
		CAID: ca.ID, AccountID: ca.AccountID, Serial: serial, ARN: ca.ARN + "/certificate/" + serial,
		DER: []byte{0x30, byte(serials)}, Subject: "CN=leaf,O=Test", NotBefore: at.Add(-time.Hour), NotAfter: at.Add(24 * time.Hour),
		IssuedAt: at, TemplateARN: "arn:aws:acm-pca:::template/EndEntityCertificate/V1", RequestedBy: "tester", RequestID: "request-2",
	}
}

func issuance(ca *openpca.CA, c *openpca.Certificate) *openpca.Issuance {
	return &openpca.Issuance{Certificate: c, Use: openpca.IssueUse(ca.ARN, c), Statuses: active}
}

func logKinds(t *testing.T, s openpca.Store, ca *openpca.CA) string {
	t.Helper()
	uses, err := s.KeyUses(ctx, ca.ID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for i, u := range uses {
		if u.Seq != int64(i) || u.CAID != ca.ID {
			t.Errorf("log entry %d has seq %d of CA %s", i, u.Seq, u.CAID)
		}
		var rec map[string]any
		if err := json.Unmarshal(u.Record, &rec); err != nil || rec["kind"] != u.Kind {
			t.Errorf("log entry %d: record %s", i, u.Record)
		}
		kinds = append(kinds, u.Kind)
	}
	return fmt.Sprint(kinds)
}
