package storetest

import (
	"testing"
	"time"

	"github.com/openpca/openpca"
)

// ActiveCA stores an ACTIVE CA whose certificate is valid for a year, for
// tests of a store shared by several servers (package postgres's), which
// the contract, of one store alone, leaves out.
func ActiveCA(t *testing.T, s openpca.Store) *openpca.CA { return activeCA(t, s) }

// NewIssuance returns the issuance of a new certificate of ca, without an
// idempotency token. Not safe for concurrent use.
func NewIssuance(ca *openpca.CA) *openpca.Issuance { return issuance(ca, newCertificate(ca)) }

// RevocationsOfCRLCA stores an ACTIVE CA that publishes CRLs and n
// certificates it issued, and returns their revocations, ready to record.
func RevocationsOfCRLCA(t *testing.T, s openpca.Store, n int) []*openpca.Revocation {
	t.Helper()
	ca := activeCA(t, s)
	ca.Revocation = &openpca.RevocationConfiguration{CrlConfiguration: &openpca.CrlConfiguration{Enabled: new(true), S3BucketName: "crls"}}
	if err := s.UpdateCA(ctx, ca, nil); err != nil {
		t.Fatal(err)
	}
	var rs []*openpca.Revocation
	for range n {
		c := newCertificate(ca)
		if _, err := s.RecordIssuance(ctx, issuance(ca, c)); err != nil {
			t.Fatal(err)
		}
		at := now()
		rs = append(rs, &openpca.Revocation{CAID: ca.ID, Serial: c.Serial, At: at, Reason: openpca.RevocationReasonSuperseded,
			Use: openpca.RevokeUse(ca.ARN, c, at, openpca.RevocationReasonSuperseded, "t", "r"), Statuses: active})
	}
	return rs
}

// NewReport returns a CREATING report of ca, asked for at at.
func NewReport(ca *openpca.CA, at time.Time) *openpca.AuditReport { return newReport(ca, at) }
