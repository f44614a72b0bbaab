package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca"
)

func newReport(ca *openpca.CA, at time.Time) *openpca.AuditReport {
	id := uuid.NewString()
	return &openpca.AuditReport{ID: id, CAID: ca.ID, AccountID: ca.AccountID, Bucket: "bucket", Key: "audit-report/" + ca.ID + "/" + id + ".json",
		Format: openpca.AuditReportResponseFormatJson, Status: openpca.AuditReportStatusCreating, CreatedAt: at}
}

func testAuditReportWindow(t *testing.T, s openpca.Store) {
	ca := activeCA(t, s)
	t0 := now()
	first := newReport(ca, t0)
	if _, err := s.CreateAuditReport(ctx, first, t0.Add(-30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if first.LogSize != 1 {
		t.Errorf("log size %d, want 1 (the CSR)", first.LogSize)
	}
	last, err := s.CreateAuditReport(ctx, newReport(ca, t0.Add(time.Minute)), t0.Add(-29*time.Minute))
	if !errors.Is(err, openpca.ErrTooSoon) || last == nil || last.ID != first.ID {
		t.Fatalf("second report within the window: %v, %v", last, err)
	}
	// A failed report frees the window.
	owner := "node/0"
	if _, err := s.ClaimAuditReport(ctx, owner, time.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishAuditReport(ctx, first.ID, owner, openpca.AuditReportStatusFailed, "bucket gone"); err != nil {
		t.Fatal(err)
	}
	second := newReport(ca, t0.Add(2*time.Minute))
	if _, err := s.CreateAuditReport(ctx, second, t0.Add(-28*time.Minute)); err != nil {
		t.Fatalf("after a failed report: %v", err)
	}
	got, err := s.FindAuditReport(ctx, ca.ID, first.ID)
	if err != nil || got.Status != openpca.AuditReportStatusFailed || got.Failure != "bucket gone" {
		t.Errorf("failed report: %+v, %v", got, err)
	}
	// Past the window, a new report is accepted.
	if _, err := s.CreateAuditReport(ctx, newReport(ca, t0.Add(33*time.Minute)), t0.Add(3*time.Minute)); err != nil {
		t.Errorf("after the window: %v", err)
	}
	other := activeCA(t, s)
	if _, err := s.FindAuditReport(ctx, other.ID, second.ID); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("another CA's report was found: %v", err)
	}
	if _, err := s.CreateAuditReport(ctx, newReport(other, t0), t0.Add(-time.Hour)); err != nil {
		t.Errorf("the window is per CA: %v", err)
	}
	// A report dated a little ahead (requests at once, on servers whose
	// clocks differ) holds the window; one dated far ahead (a clock gone
	// wrong) holds none until its date.
	ahead := activeCA(t, s)
	if _, err := s.CreateAuditReport(ctx, newReport(ahead, t0.Add(time.Second)), t0.Add(-30*time.Minute+time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAuditReport(ctx, newReport(ahead, t0), t0.Add(-30*time.Minute)); !errors.Is(err, openpca.ErrTooSoon) {
		t.Errorf("a report dated a second ahead did not hold the window: %v", err)
	}
	ahead = activeCA(t, s)
	later := t0.AddDate(1, 0, 0)
	if _, err := s.CreateAuditReport(ctx, newReport(ahead, later), later.Add(-30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAuditReport(ctx, newReport(ahead, t0), t0.Add(-30*time.Minute)); err != nil {
		t.Errorf("a report dated a year ahead held the window: %v", err)
	}
	// The CA's reports, the newest first, the failed one with its reason.
	reports, err := s.AuditReports(ctx, ca.ID, 10)
	if err != nil || len(reports) != 3 || reports[1].ID != second.ID || reports[2].ID != first.ID || reports[2].Failure != "bucket gone" {
		t.Errorf("the CA's reports: %+v, %v", reports, err)
	}
	if reports, err := s.AuditReports(ctx, ca.ID, 2); err != nil || len(reports) != 2 || reports[1].ID != second.ID {
		t.Errorf("the CA's latest 2 reports: %+v, %v", reports, err)
	}
}

func testAuditReportWindowConcurrent(t *testing.T, s openpca.Store) {
	ca := activeCA(t, s)
	t0 := now()
	const n = 10
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := s.CreateAuditReport(ctx, newReport(ca, t0), t0.Add(-30*time.Minute))
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, openpca.ErrTooSoon):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Errorf("%d of %d concurrent requests were accepted, want exactly 1", ok.Load(), n)
	}
}

// testAuditReportFairness: a second worker takes another account's
// report before more of the account whose report the first is making,
// though they are older.
func testAuditReportFairness(t *testing.T, s openpca.Store) {
	other := newCA("444455556666", now())
	other.Status, other.NotBefore, other.NotAfter = openpca.CertificateAuthorityStatusActive, now().Add(-time.Hour), now().AddDate(1, 0, 0)
	create(t, s, other)
	t0 := now()
	var reports []*openpca.AuditReport
	// Two CAs of one account (a CA has one report a window), then the other's.
	for i, ca := range []*openpca.CA{activeCA(t, s), activeCA(t, s), other} {
		r := newReport(ca, t0.Add(time.Duration(i)*time.Second))
		if _, err := s.CreateAuditReport(ctx, r, t0.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		reports = append(reports, r)
	}
	claimAt := t0.Add(time.Minute)
	if got, err := s.ClaimAuditReport(ctx, "a/0", claimAt, time.Minute); err != nil || got.ID != reports[0].ID {
		t.Fatalf("the first claim: %v, %v; want the oldest", got, err)
	}
	if got, err := s.ClaimAuditReport(ctx, "a/1", claimAt, time.Minute); err != nil || got.ID != reports[2].ID {
		t.Errorf("the second claim: %v, %v; want the other account's", got, err)
	}
}

func testAuditReportLease(t *testing.T, s openpca.Store) {
	ca := activeCA(t, s)
	r := newReport(ca, now())
	if _, err := s.CreateAuditReport(ctx, r, now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	got, err := s.ClaimAuditReport(ctx, "a/0", t0, time.Minute)
	if err != nil || got.ID != r.ID {
		t.Fatalf("claim: %v, %v", got, err)
	}
	if _, err := s.ClaimAuditReport(ctx, "b/0", t0.Add(30*time.Second), time.Minute); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a held report was claimed by another: %v", err)
	}
	if got, err := s.ClaimAuditReport(ctx, "a/0", t0.Add(30*time.Second), time.Minute); err != nil || got.ID != r.ID {
		t.Errorf("its owner, restarted, cannot reclaim it: %v", err)
	}
	if err := s.RenewAuditReport(ctx, r.ID, "a/0", t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimAuditReport(ctx, "b/0", t0.Add(90*time.Second), time.Minute); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a renewed lease was taken: %v", err)
	}
	// The lease runs out: b takes over, and a can no longer finish.
	if got, err := s.ClaimAuditReport(ctx, "b/0", t0.Add(3*time.Minute), time.Minute); err != nil || got.ID != r.ID {
		t.Fatalf("an expired lease was not taken over: %v", err)
	}
	if err := s.FinishAuditReport(ctx, r.ID, "a/0", openpca.AuditReportStatusSuccess, ""); !errors.Is(err, openpca.ErrConflict) {
		t.Errorf("a former owner finished the report: %v", err)
	}
	if err := s.RenewAuditReport(ctx, r.ID, "a/0", t0.Add(5*time.Minute)); !errors.Is(err, openpca.ErrConflict) {
		t.Errorf("a former owner renewed the lease: %v", err)
	}
	if err := s.FinishAuditReport(ctx, r.ID, "b/0", openpca.AuditReportStatusSuccess, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimAuditReport(ctx, "c/0", t0.Add(time.Hour), time.Minute); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a finished report was claimed: %v", err)
	}
}

func testAuditEntries(t *testing.T, s openpca.Store) {
	ca := activeCA(t, s)
	t0 := now()
	var certs []*openpca.Certificate
	for i := range 5 {
		c := newCertificate(ca)
		c.IssuedAt = t0.Add(time.Duration(5-i) * time.Second) // logged out of the order of issue times
		is := issuance(ca, c)
		if i == 3 { // a record the row does not make again, which the store keeps
			logged := *c
			logged.RequestID = "request-logged"
			is.Use = openpca.IssueUse(ca.ARN, &logged)
		}
		if _, err := s.RecordIssuance(ctx, is); err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	var revokedAt time.Time
	revoke := func(c *openpca.Certificate) {
		t.Helper()
		at := now()
		revokedAt = at
		if err := s.RecordRevocation(ctx, &openpca.Revocation{CAID: ca.ID, Serial: c.Serial, At: at, Reason: openpca.RevocationReasonSuperseded,
			Use: openpca.RevokeUse(ca.ARN, c, at, openpca.RevocationReasonSuperseded, "t", "r"), Statuses: active}); err != nil {
			t.Fatal(err)
		}
	}
	revoke(certs[1])
	wantRevoked := fmt.Sprintf("%s %v SUPERSEDED", certs[1].Serial, revokedAt)
	r := newReport(ca, t0)
	if _, err := s.CreateAuditReport(ctx, r, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	// After the report: a new certificate and a revocation it must not show.
	late := newCertificate(ca)
	if _, err := s.RecordIssuance(ctx, issuance(ca, late)); err != nil {
		t.Fatal(err)
	}
	revoke(certs[2])

	uses, err := s.KeyUses(ctx, ca.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got, revokedBy []string
	err = s.AuditEntries(ctx, ca.ID, r.LogSize, 0, r.LogSize, func(e *openpca.AuditEntry) error {
		if !bytes.Equal(e.Record, uses[e.Seq].Record) {
			t.Errorf("entry %d: record %s, the log's is %s", e.Seq, e.Record, uses[e.Seq].Record)
		}
		if e.Revoked != nil {
			revokedBy = append(revokedBy, fmt.Sprintf("%s %v %s", e.Revoked.Serial, e.Revoked.RevokedAt, e.Revoked.Reason))
			if !bytes.Contains(e.Record, []byte(openpca.KeyUseRevoke)) {
				t.Errorf("entry %d, not a revocation, is given the revocation of %s", e.Seq, e.Revoked.Serial)
			}
		}
		if e.Hash != tlog.RecordHash(e.Record) {
			t.Errorf("entry %d: hash %x, its record's is %x", e.Seq, e.Hash, tlog.RecordHash(e.Record))
		}
		c := e.Certificate
		if kept := c == nil || c.Serial == certs[3].Serial; e.RecordFromRow == kept {
			t.Errorf("entry %d: record made again from the row %t", e.Seq, e.RecordFromRow)
		}
		if c == nil {
			return nil
		}
		revoked := ""
		if !c.RevokedAt.IsZero() {
			revoked = "revoked:" + string(c.RevocationReason)
		}
		got = append(got, c.Serial+revoked)
		if c.Subject != "CN=leaf,O=Test" || c.AccountID != account || !strings.HasSuffix(c.ARN, c.Serial) || c.TemplateARN == "" {
			t.Errorf("row %+v", c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{certs[0].Serial, certs[1].Serial + "revoked:SUPERSEDED", certs[2].Serial, certs[3].Serial, certs[4].Serial}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows\n got %v\nwant %v (log order, as of the report)", got, want)
	}
	if fmt.Sprint(revokedBy) != fmt.Sprint([]string{wantRevoked}) {
		t.Errorf("the entries' revoked certificates: %q, want %q (the one revocation in the report)", revokedBy, wantRevoked)
	}
	// A part of the log is read alike.
	var part []int64
	if err := s.AuditEntries(ctx, ca.ID, r.LogSize, 2, 4, func(e *openpca.AuditEntry) error { part = append(part, e.Seq); return nil }); err != nil ||
		fmt.Sprint(part) != "[2 3]" {
		t.Errorf("entries 2 to 3: %v, %v", part, err)
	}
	stop := errors.New("stop")
	if err := s.AuditEntries(ctx, ca.ID, r.LogSize, 0, r.LogSize, func(*openpca.AuditEntry) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("AuditEntries did not pass fn's error on: %v", err)
	}
	if err := s.AuditEntries(ctx, ca.ID, r.LogSize+100, 0, r.LogSize+100, func(*openpca.AuditEntry) error { return nil }); !errors.Is(err, openpca.ErrLogIntegrity) {
		t.Errorf("entries past the log's end: %v, want ErrLogIntegrity", err)
	}
}
