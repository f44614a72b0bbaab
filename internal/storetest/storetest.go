// Package storetest is the contract every openpca.Store must keep. Each
// store's tests run it unchanged against a real database.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
)

// Open returns a new, empty store; the test closes it.
type Open func(t *testing.T) openpca.Store

// Run runs the contract against stores from open.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, openpca.Store)
	}{
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
		{"Issue", testIssue},
		{"IssueRefused", testIssueRefused},
		{"IssueIdempotency", testIssueIdempotency},
		{"IssueConcurrent", testIssueConcurrent},
		{"IssueConcurrentFailures", testIssueConcurrentFailures},
		{"Revoke", testRevoke},
		{"AuditReportWindow", testAuditReportWindow},
		{"AuditReportWindowConcurrent", testAuditReportWindowConcurrent},
		{"AuditReportLease", testAuditReportLease},
		{"AuditRows", testAuditRows},
		{"AccountsAndKeys", testAccountsAndKeys},
		{"Settings", testSettings},
		{"Buckets", testBuckets},
		{"SharingAndPermissions", testSharingAndPermissions},
		{"CRLPublication", testCRLPublication},
	}
	for _, tt := range tests {
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

func testCreateFind(t *testing.T, s openpca.Store) {
	ca := newCA(account, now())
	create(t, s, ca)
	if ca.Version != 1 {
		t.Errorf("version %d after create, want 1", ca.Version)
	}
	got, err := s.FindCA(ctx, account, ca.ID)
	if err != nil {
		t.Fatal(err)
	}
	equalCA(t, got, ca)
	if _, err := s.FindCA(ctx, account, uuid.NewString()); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("FindCA of a missing CA: %v, want ErrNotFound", err)
	}
}

func testIsolation(t *testing.T, s openpca.Store) {
	ca := newCA(account, now())
	create(t, s, ca)
	if _, err := s.FindCA(ctx, "999999999999", ca.ID); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("another account found the CA: %v", err)
	}
	list, err := s.ListCAs(ctx, "999999999999", openpca.CACursor{}, 10)
	if err != nil || len(list) != 0 {
		t.Errorf("another account lists %d CAs (%v)", len(list), err)
	}
}

func testList(t *testing.T, s openpca.Store) {
	base := now()
	var ids []string
	for i := range 5 {
		ca := newCA(account, base.Add(time.Duration(i%3)*time.Second)) // ties on created_at
		create(t, s, ca)
		ids = append(ids, ca.ID)
	}
	create(t, s, newCA("999999999999", base))
	var got []string
	var cursor openpca.CACursor
	for {
		page, err := s.ListCAs(ctx, account, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, ca := range page {
			got = append(got, ca.ID)
		}
		if len(page) < 2 {
			break
		}
		last := page[len(page)-1]
		cursor = openpca.CACursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	// Order: created_at, then id.
	want := []string{ids[0], ids[3], ids[1], ids[4], ids[2]}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("listed %v, want %v", got, want)
	}
}

func testUpdate(t *testing.T, s openpca.Store) {
	ca := newCA(account, now())
	create(t, s, ca)
	ca.SetStatus(openpca.CertificateAuthorityStatusActive, now())
	ca.Certificate, ca.CertificateChain, ca.Serial = []byte{7}, []byte("chain"), "01:02"
	ca.NotBefore, ca.NotAfter = now(), now().Add(time.Hour)
	ca.Tags = append(ca.Tags, openpca.Tag{Key: "k", Value: "v"})
	ca.Revocation = nil
	if err := s.UpdateCA(ctx, ca); err != nil {
		t.Fatal(err)
	}
	if ca.Version != 2 {
		t.Errorf("version %d after update, want 2", ca.Version)
	}
	got, err := s.FindCA(ctx, account, ca.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != ca.Status || got.Serial != "01:02" || got.Revocation != nil || len(got.Tags) != 2 || !got.NotAfter.Equal(ca.NotAfter) || got.Version != 2 {
		t.Errorf("stored after update: %+v", got)
	}
	missing := newCA(account, now())
	if err := s.UpdateCA(ctx, missing); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("updating a missing CA: %v, want ErrNotFound", err)
	}
}

func testUpdateConflict(t *testing.T, s openpca.Store) {
	ca := newCA(account, now())
	create(t, s, ca)
	a, _ := s.FindCA(ctx, account, ca.ID)
	b, _ := s.FindCA(ctx, account, ca.ID)
	a.Tags = nil
	if err := s.UpdateCA(ctx, a); err != nil {
		t.Fatal(err)
	}
	b.SetStatus(openpca.CertificateAuthorityStatusDeleted, now())
	if err := s.UpdateCA(ctx, b); !errors.Is(err, openpca.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	got, _ := s.FindCA(ctx, account, ca.ID)
	if got.Status == openpca.CertificateAuthorityStatusDeleted {
		t.Error("a stale update was written")
	}
}

func testIdempotency(t *testing.T, s openpca.Store) {
	t0 := now()
	token := func(at time.Time) openpca.IdempotencyToken {
		return openpca.IdempotencyToken{Operation: "CreateCertificateAuthority", Token: "tok", Now: at, Since: at.Add(-5 * time.Minute)}
	}
	first := newCA(account, t0)
	got, err := createCA(s, first, token(t0), 1000)
	if err != nil || got.ID != first.ID {
		t.Fatalf("first create: %v, %v", got, err)
	}
	second := newCA(account, t0.Add(time.Minute))
	got, err = createCA(s, second, token(t0.Add(time.Minute)), 1000)
	if err != nil || got.ID != first.ID {
		t.Fatalf("retry within the window returned %v (%v), want the first CA", got, err)
	}
	if _, err := s.FindCA(ctx, account, second.ID); !errors.Is(err, openpca.ErrNotFound) {
		t.Error("the retry stored a second CA")
	}
	other := newCA("999999999999", t0)
	if got, err := createCA(s, other, token(t0), 1000); err != nil || got.ID != other.ID {
		t.Errorf("another account's same token: %v, %v", got, err)
	}
	late := newCA(account, t0.Add(6*time.Minute))
	if got, err := createCA(s, late, token(t0.Add(6*time.Minute)), 1000); err != nil || got.ID != late.ID {
		t.Errorf("a token past its window: %v, %v", got, err)
	}
}

func testIdempotencyConcurrent(t *testing.T, s openpca.Store) {
	t0 := now()
	tok := openpca.IdempotencyToken{Operation: "CreateCertificateAuthority", Token: "race", Now: t0, Since: t0.Add(-5 * time.Minute)}
	const n = 10
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got, err := createCA(s, newCA(account, t0), tok, 1000)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = got.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent creates with one token returned %v", ids)
		}
	}
	list, _ := s.ListCAs(ctx, account, openpca.CACursor{}, 100)
	if len(list) != 1 {
		t.Errorf("%d CAs stored, want 1", len(list))
	}
}

func testLimit(t *testing.T, s openpca.Store) {
	at := openpca.IdempotencyToken{Now: now()}
	for range 3 {
		if _, err := createCA(s, newCA(account, now()), at, 3); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := createCA(s, newCA(account, now()), at, 3); !errors.Is(err, openpca.ErrLimitExceeded) {
		t.Errorf("fourth CA with a limit of 3: %v, want ErrLimitExceeded", err)
	}
	if _, err := createCA(s, newCA("999999999999", now()), at, 3); err != nil {
		t.Errorf("the limit is per account: %v", err)
	}
}

func testCount(t *testing.T, s openpca.Store) {
	t0 := now()
	for range 2 {
		create(t, s, newCA(account, t0))
	}
	withStatus := func(status openpca.CertificateAuthorityStatus, notAfter, restorableUntil time.Time) {
		ca := newCA("999999999999", t0)
		ca.Status, ca.NotAfter, ca.RestorableUntil = status, notAfter, restorableUntil
		create(t, s, ca)
	}
	withStatus(openpca.CertificateAuthorityStatusActive, t0.Add(time.Hour), time.Time{})
	withStatus(openpca.CertificateAuthorityStatusDisabled, t0.Add(-time.Hour), time.Time{})  // expired
	withStatus(openpca.CertificateAuthorityStatusDeleted, time.Time{}, t0.Add(time.Hour))    // restorable
	withStatus(openpca.CertificateAuthorityStatusDeleted, time.Time{}, t0.Add(-time.Minute)) // gone
	counts, err := s.CountCAs(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[openpca.CAKind]int{
		{Status: openpca.CertificateAuthorityStatusPendingCertificate, KeyStore: "software"}: 2,
		{Status: openpca.CertificateAuthorityStatusActive, KeyStore: "software"}:             1,
		{Status: openpca.CertificateAuthorityStatusExpired, KeyStore: "software"}:            1,
		{Status: openpca.CertificateAuthorityStatusDeleted, KeyStore: "software"}:            1,
	}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
}

func testPurge(t *testing.T, s openpca.Store) {
	t0 := now()
	keep, gone := newCA(account, t0), activeCA(t, s)
	keep.Status, keep.RestorableUntil = openpca.CertificateAuthorityStatusDeleted, t0.Add(time.Second)
	create(t, s, keep)
	c := newCertificate(gone)
	if _, err := s.RecordIssuance(ctx, issuance(gone, c)); err != nil {
		t.Fatal(err)
	}
	gone.SetStatus(openpca.CertificateAuthorityStatusDeleted, t0)
	gone.RestorableUntil = t0
	if err := s.UpdateCA(ctx, gone); err != nil {
		t.Fatal(err)
	}
	// A CA deleted for good no longer counts toward the limit.
	if _, err := createCA(s, newCA(account, t0), openpca.IdempotencyToken{Now: t0}, 2); err != nil {
		t.Errorf("creating beside a CA deleted for good: %v", err)
	}
	purged, err := s.PurgeCAs(ctx, t0)
	if err != nil || len(purged) != 1 || purged[0].ID != gone.ID || string(purged[0].KeyHandle) != string(gone.KeyHandle) {
		t.Fatalf("PurgeCAs = %v, %v; want %s with its key handle", purged, err, gone.ID)
	}
	if _, err := s.FindCA(ctx, account, gone.ID); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a purged CA is still found: %v", err)
	}
	if _, err := s.FindCA(ctx, account, keep.ID); err != nil {
		t.Errorf("a restorable CA was purged: %v", err)
	}
	if _, err := s.FindCertificate(ctx, gone.ID, c.Serial); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a purged CA's certificate is still found: %v", err)
	}
	if uses, _ := s.KeyUses(ctx, gone.ID, 0, 10); len(uses) != 0 {
		t.Errorf("a purged CA's log has %d entries", len(uses))
	}
}

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

func testIssue(t *testing.T, s openpca.Store) {
	ca := activeCA(t, s)
	c := newCertificate(ca)
	got, err := s.RecordIssuance(ctx, issuance(ca, c))
	if err != nil {
		t.Fatal(err)
	}
	if got != c {
		t.Errorf("RecordIssuance returned another certificate")
	}
	found, err := s.FindCertificate(ctx, ca.ID, c.Serial)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := json.Marshal(found)
	w, _ := json.Marshal(c)
	if string(g) != string(w) {
		t.Errorf("stored certificate differs:\n got %s\nwant %s", g, w)
	}
	if kinds := logKinds(t, s, ca); kinds != "[CSR ISSUE]" {
		t.Errorf("log %s, want [CSR ISSUE]", kinds)
	}
	other := activeCA(t, s)
	if _, err := s.FindCertificate(ctx, other.ID, c.Serial); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("another CA's certificate found: %v", err)
	}
}

func testIssueRefused(t *testing.T, s openpca.Store) {
	ca := activeCA(t, s)
	c := newCertificate(ca)
	if _, err := s.RecordIssuance(ctx, issuance(ca, c)); err != nil {
		t.Fatal(err)
	}
	dup := newCertificate(ca)
	dup.Serial = c.Serial
	if _, err := s.RecordIssuance(ctx, issuance(ca, dup)); !errors.Is(err, openpca.ErrConflict) {
		t.Errorf("a second certificate with one serial: %v, want ErrConflict", err)
	}

	disabled := activeCA(t, s)
	disabled.SetStatus(openpca.CertificateAuthorityStatusDisabled, now())
	if err := s.UpdateCA(ctx, disabled); err != nil {
		t.Fatal(err)
	}
	refused := newCertificate(disabled)
	if _, err := s.RecordIssuance(ctx, issuance(disabled, refused)); !errors.Is(err, openpca.ErrCAState) {
		t.Errorf("issuing from a DISABLED CA: %v, want ErrCAState", err)
	}
	late := newCertificate(ca)
	late.IssuedAt = ca.NotAfter.Add(time.Second)
	if _, err := s.RecordIssuance(ctx, issuance(ca, late)); !errors.Is(err, openpca.ErrCAState) {
		t.Errorf("issuing after the CA certificate expired: %v, want ErrCAState", err)
	}
	for _, serial := range []string{refused.Serial, late.Serial} {
		if _, err := s.FindCertificate(ctx, refused.CAID, serial); !errors.Is(err, openpca.ErrNotFound) {
			t.Errorf("a refused issuance stored certificate %s", serial)
		}
	}
	if kinds := logKinds(t, s, ca); kinds != "[CSR ISSUE]" {
		t.Errorf("refused issuances changed the log: %s", kinds)
	}
	if kinds := logKinds(t, s, disabled); kinds != "[CSR]" {
		t.Errorf("refused issuances changed the log: %s", kinds)
	}
}

func testIssueIdempotency(t *testing.T, s openpca.Store) {
	ca := activeCA(t, s)
	t0 := now()
	token := openpca.IdempotencyToken{Operation: "IssueCertificate:" + ca.ID, Token: "tok", Now: t0, Since: t0.Add(-5 * time.Minute)}
	first := issuance(ca, newCertificate(ca))
	first.Token = token
	if _, err := s.RecordIssuance(ctx, first); err != nil {
		t.Fatal(err)
	}
	retry := issuance(ca, newCertificate(ca))
	retry.Token = token
	got, err := s.RecordIssuance(ctx, retry)
	if err != nil {
		t.Fatal(err)
	}
	if got.Serial != first.Certificate.Serial {
		t.Errorf("retry returned %s, want the first certificate %s", got.Serial, first.Certificate.Serial)
	}
	if serial, err := s.FindIdempotent(ctx, account, token.Operation, "tok", token.Since); err != nil || serial != first.Certificate.Serial {
		t.Errorf("FindIdempotent = %q, %v", serial, err)
	}
	if _, err := s.FindIdempotent(ctx, account, token.Operation, "tok", t0.Add(time.Second)); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("FindIdempotent of an expired token: %v", err)
	}
	if _, err := s.FindCertificate(ctx, ca.ID, retry.Certificate.Serial); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("the retry stored its certificate")
	}
	if kinds := logKinds(t, s, ca); kinds != "[CSR ISSUE]" {
		t.Errorf("log %s after a retry", kinds)
	}
}

func testIssueConcurrent(t *testing.T, s openpca.Store) {
	ca := activeCA(t, s)
	const n = 200
	certs := make([]*openpca.Certificate, n)
	for i := range certs {
		certs[i] = newCertificate(ca)
	}
	var wg sync.WaitGroup
	for _, c := range certs {
		wg.Go(func() {
			if _, err := s.RecordIssuance(ctx, issuance(ca, c)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	uses, err := s.KeyUses(ctx, ca.ID, 0, 2*n)
	if err != nil {
		t.Fatal(err)
	}
	if len(uses) != n+1 {
		t.Fatalf("%d log entries, want %d", len(uses), n+1)
	}
	seen := map[string]bool{}
	for i, u := range uses {
		if u.Seq != int64(i) {
			t.Fatalf("entry %d has seq %d: the log has a gap or a duplicate", i, u.Seq)
		}
		seen[u.Serial] = true
	}
	for _, c := range certs {
		if !seen[c.Serial] {
			t.Errorf("certificate %s has no log entry", c.Serial)
		}
	}
	checkTree(t, s, ca)
}

// checkTree checks the Merkle tree the store keeps over a CA's log against
// one built from the log's records: the same root at every size, and
// inclusion and consistency proofs from the store's hashes that hold.
func checkTree(t *testing.T, s openpca.Store, ca *openpca.CA) {
	t.Helper()
	size, err := s.LogSize(ctx, ca.ID)
	if err != nil {
		t.Fatal(err)
	}
	uses, err := s.KeyUses(ctx, ca.ID, 0, int(size)+1)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(uses)) != size {
		t.Fatalf("log size %d, %d entries", size, len(uses))
	}
	for _, n := range []int64{size, size - 1} {
		var records [][]byte
		err := s.LogRecords(ctx, ca.ID, n, func(r []byte) error {
			records = append(records, bytes.Clone(r))
			return nil
		})
		if err != nil || int64(len(records)) != n {
			t.Fatalf("LogRecords(%d): %d records, %v", n, len(records), err)
		}
		for i, r := range records {
			if !bytes.Equal(r, uses[i].Record) {
				t.Fatalf("LogRecords(%d): record %d is %s, the log's is %s", n, i, r, uses[i].Record)
			}
		}
	}
	if err := s.LogRecords(ctx, ca.ID, size+1, func([]byte) error { return nil }); err == nil {
		t.Errorf("LogRecords past the log's end (%d) succeeded", size+1)
	}
	var tree auditlog.Tree
	for _, u := range uses {
		if err := tree.Add(u.Record); err != nil {
			t.Fatal(err)
		}
	}
	stored := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		hs, err := s.LogHashes(ctx, ca.ID, indexes)
		out := make([]tlog.Hash, len(hs))
		for i, h := range hs {
			out[i] = h
		}
		return out, err
	})
	for n := int64(1); n <= size; n++ {
		want, _ := tree.Root(n)
		got, err := tlog.TreeHash(n, stored)
		if err != nil || got != want {
			t.Fatalf("root of the first %d entries: %v, %v; built from the records: %v", n, got, err, want)
		}
	}
	root, _ := tree.Root(size)
	for _, n := range []int64{0, size / 3, size - 1} {
		p, err := tlog.ProveRecord(size, n, stored)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(p, size, root, n, tlog.RecordHash(uses[n].Record)); err != nil {
			t.Errorf("inclusion of entry %d: %v", n, err)
		}
		old, _ := tree.Root(n + 1)
		tp, err := tlog.ProveTree(size, n+1, stored)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckTree(tp, size, root, n+1, old); err != nil {
			t.Errorf("consistency of %d with %d entries: %v", n+1, size, err)
		}
	}
}

// testIssueConcurrentFailures sends, at once, issuances that succeed and
// issuances that must fail (a taken serial, a disabled CA) or return an
// earlier certificate (a token used before): each gets its own outcome,
// and only the successes reach the certificates and the log.
func testIssueConcurrentFailures(t *testing.T, s openpca.Store) {
	ca := activeCA(t, s)
	taken := newCertificate(ca)
	if _, err := s.RecordIssuance(ctx, issuance(ca, taken)); err != nil {
		t.Fatal(err)
	}
	t0 := now()
	token := openpca.IdempotencyToken{Operation: "IssueCertificate:" + ca.ID, Token: "used", Now: t0, Since: t0.Add(-5 * time.Minute)}
	first := issuance(ca, newCertificate(ca))
	first.Token = token
	if _, err := s.RecordIssuance(ctx, first); err != nil {
		t.Fatal(err)
	}
	disabled := activeCA(t, s)
	disabled.SetStatus(openpca.CertificateAuthorityStatusDisabled, now())
	if err := s.UpdateCA(ctx, disabled); err != nil {
		t.Fatal(err)
	}

	type want struct {
		is     *openpca.Issuance
		err    error
		serial string // of the certificate returned
	}
	var cases []want
	for i := range 300 {
		switch c := newCertificate(ca); i % 6 {
		case 1:
			c.Serial = taken.Serial
			cases = append(cases, want{is: issuance(ca, c), err: openpca.ErrConflict})
		case 3:
			cases = append(cases, want{is: issuance(disabled, newCertificate(disabled)), err: openpca.ErrCAState})
		case 5:
			is := issuance(ca, c)
			is.Token = token
			cases = append(cases, want{is: is, serial: first.Certificate.Serial})
		default:
			cases = append(cases, want{is: issuance(ca, c), serial: c.Serial})
		}
	}
	var wg sync.WaitGroup
	for i, w := range cases {
		wg.Go(func() {
			got, err := s.RecordIssuance(ctx, w.is)
			switch {
			case w.err != nil && !errors.Is(err, w.err):
				t.Errorf("issuance %d: %v, want %v", i, err, w.err)
			case w.err == nil && err != nil:
				t.Errorf("issuance %d: %v", i, err)
			case w.err == nil && got.Serial != w.serial:
				t.Errorf("issuance %d returned %s, want %s", i, got.Serial, w.serial)
			}
		})
	}
	wg.Wait()

	logged := map[string]int{}
	uses, err := s.KeyUses(ctx, ca.ID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range uses {
		if u.Seq != int64(i) {
			t.Fatalf("entry %d has seq %d: the log has a gap or a duplicate", i, u.Seq)
		}
		logged[u.Serial]++
	}
	if want := 3 + 300/6*3; len(uses) != want { // CSR, taken, first, then the new ones
		t.Errorf("%d log entries, want %d", len(uses), want)
	}
	for i, w := range cases {
		if w.err != nil || w.is.Token.Token != "" {
			continue
		}
		if logged[w.serial] != 1 {
			t.Errorf("issuance %d is logged %d times", i, logged[w.serial])
		}
		if _, err := s.FindCertificate(ctx, ca.ID, w.serial); err != nil {
			t.Errorf("issuance %d: %v", i, err)
		}
	}
	if logged[taken.Serial] != 1 || logged[first.Certificate.Serial] != 1 {
		t.Errorf("a refused or repeated issuance was logged: %d, %d", logged[taken.Serial], logged[first.Certificate.Serial])
	}
	if kinds := logKinds(t, s, disabled); kinds != "[CSR]" {
		t.Errorf("refused issuances changed the disabled CA's log: %s", kinds)
	}
	checkTree(t, s, ca)
	checkTree(t, s, disabled)
}

func testRevoke(t *testing.T, s openpca.Store) {
	ca := activeCA(t, s)
	c := newCertificate(ca)
	if _, err := s.RecordIssuance(ctx, issuance(ca, c)); err != nil {
		t.Fatal(err)
	}
	revocation := func(serial string) *openpca.Revocation {
		at := now()
		return &openpca.Revocation{CAID: ca.ID, Serial: serial, At: at, Reason: openpca.RevocationReasonKeyCompromise,
			Use: openpca.RevokeUse(ca.ARN, c, at, openpca.RevocationReasonKeyCompromise, "tester", "request-3"), Statuses: active}
	}
	if err := s.RecordRevocation(ctx, revocation("ffff")); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("revoking an unknown serial: %v", err)
	}
	r := revocation(c.Serial)
	if err := s.RecordRevocation(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, _ := s.FindCertificate(ctx, ca.ID, c.Serial)
	if !got.RevokedAt.Equal(r.At) || got.RevocationReason != openpca.RevocationReasonKeyCompromise {
		t.Errorf("revoked certificate: %v %s", got.RevokedAt, got.RevocationReason)
	}
	if err := s.RecordRevocation(ctx, revocation(c.Serial)); !errors.Is(err, openpca.ErrAlreadyRevoked) {
		t.Errorf("second revocation: %v, want ErrAlreadyRevoked", err)
	}
	if kinds := logKinds(t, s, ca); kinds != "[CSR ISSUE REVOKE]" {
		t.Errorf("log %s", kinds)
	}
	checkTree(t, s, ca)
	uses, err := s.CertificateKeyUses(ctx, ca.ID, c.Serial)
	if err != nil || len(uses) != 2 || uses[0].Kind != openpca.KeyUseIssue || uses[1].Kind != openpca.KeyUseRevoke {
		t.Errorf("CertificateKeyUses = %v, %v; want its ISSUE and REVOKE entries", uses, err)
	}
	if _, err := s.CertificateKeyUses(ctx, ca.ID, "0abc"); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("CertificateKeyUses of an unknown serial: %v", err)
	}
}

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

func testAuditRows(t *testing.T, s openpca.Store) {
	ca := activeCA(t, s)
	t0 := now()
	var certs []*openpca.Certificate
	for i := range 5 {
		c := newCertificate(ca)
		c.IssuedAt = t0.Add(time.Duration(5-i) * time.Second) // recorded out of issue order
		if _, err := s.RecordIssuance(ctx, issuance(ca, c)); err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	revoke := func(c *openpca.Certificate) {
		t.Helper()
		at := now()
		if err := s.RecordRevocation(ctx, &openpca.Revocation{CAID: ca.ID, Serial: c.Serial, At: at, Reason: openpca.RevocationReasonSuperseded,
			Use: openpca.RevokeUse(ca.ARN, c, at, openpca.RevocationReasonSuperseded, "t", "r"), Statuses: active}); err != nil {
			t.Fatal(err)
		}
	}
	revoke(certs[1])
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

	var got []string
	err := s.AuditRows(ctx, ca.ID, r.LogSize, func(c *openpca.Certificate) error {
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
	want := []string{certs[4].Serial, certs[3].Serial, certs[2].Serial, certs[1].Serial + "revoked:SUPERSEDED", certs[0].Serial}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows\n got %v\nwant %v (issue order, snapshot at the report)", got, want)
	}
	stop := errors.New("stop")
	if err := s.AuditRows(ctx, ca.ID, r.LogSize, func(*openpca.Certificate) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("AuditRows did not pass fn's error on: %v", err)
	}
}

func testAccountsAndKeys(t *testing.T, s openpca.Store) {
	t0 := now()
	if err := s.CreateAccount(ctx, &openpca.Account{ID: "222233334444", Name: "b", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, &openpca.Account{ID: "111122223333", Name: "a", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, &openpca.Account{ID: "111122223333", CreatedAt: t0}); !errors.Is(err, openpca.ErrConflict) {
		t.Errorf("a second account with one id: %v", err)
	}
	if a, err := s.FindAccount(ctx, "111122223333"); err != nil || a.Name != "a" || !a.CreatedAt.Equal(t0) {
		t.Errorf("FindAccount = %+v, %v", a, err)
	}
	if _, err := s.FindAccount(ctx, "999999999999"); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a missing account: %v", err)
	}
	if list, err := s.ListAccounts(ctx); err != nil || len(list) != 2 || list[0].ID != "111122223333" {
		t.Errorf("ListAccounts = %v, %v", list, err)
	}
	key := &openpca.AccessKey{ID: "OPCATESTKEY1", AccountID: "111122223333", SealedSecret: []byte{1, 2}, CreatedAt: t0}
	if err := s.PutAccessKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAccessKey(ctx, &openpca.AccessKey{ID: "OPCATESTKEY2", AccountID: "999999999999", SealedSecret: []byte{3}, CreatedAt: t0}); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a key of a missing account: %v", err)
	}
	key.SealedSecret = []byte{9}
	if err := s.PutAccessKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindAccessKey(ctx, key.ID); err != nil || string(got.SealedSecret) != "\x09" || got.AccountID != "111122223333" || !got.RevokedAt.IsZero() {
		t.Errorf("FindAccessKey after replacing = %+v, %v", got, err)
	}
	readOnly := []openpca.KeyPolicy{{Name: "ReadOnly", Managed: true}}
	if err := s.PutAccessKey(ctx, &openpca.AccessKey{ID: "OPCATESTKEY3", AccountID: "222233334444", SealedSecret: []byte{4}, CreatedAt: t0.Add(time.Second), Policies: readOnly}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindAccessKey(ctx, "OPCATESTKEY3"); err != nil || !reflect.DeepEqual(got.Policies, readOnly) {
		t.Errorf("a key with a policy reads back as %+v, %v", got, err)
	}
	if got, _ := s.FindAccessKey(ctx, key.ID); got.Policies != nil {
		t.Errorf("a key without policies reads back with %v", got.Policies)
	}
	inline := []openpca.KeyPolicy{{Name: "issue", Document: `{"Statement":[]}`}, {Name: "ReadOnly", Managed: true}}
	if err := s.SetKeyPolicies(ctx, "OPCATESTKEY3", inline); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.FindAccessKey(ctx, "OPCATESTKEY3"); !reflect.DeepEqual(got.Policies, inline) {
		t.Errorf("after SetKeyPolicies the key has %+v", got.Policies)
	}
	if err := s.SetKeyPolicies(ctx, "OPCANOSUCHKEY", inline); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("policies of a missing key: %v", err)
	}
	if list, _ := s.ListAccessKeys(ctx, "111122223333"); len(list) != 1 {
		t.Errorf("keys of one account: %d", len(list))
	}
	if list, _ := s.ListAccessKeys(ctx, ""); len(list) != 2 {
		t.Errorf("keys of every account: %d", len(list))
	}
	if err := s.RevokeAccessKey(ctx, key.ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAccessKey(ctx, key.ID, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.FindAccessKey(ctx, key.ID); !got.RevokedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("revoked at %v, want the first revocation's time", got.RevokedAt)
	}
	// Storing the key again, as an unrevoked key with a new secret, leaves
	// it revoked.
	unrevoked := *key
	unrevoked.RevokedAt, unrevoked.SealedSecret = time.Time{}, []byte{9}
	if err := s.PutAccessKey(ctx, &unrevoked); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.FindAccessKey(ctx, key.ID); !got.RevokedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("a revoked key stored again is revoked at %v, want %v", got.RevokedAt, t0.Add(time.Minute))
	}
	if err := s.RevokeAccessKey(ctx, "OPCANOSUCHKEY", t0); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("revoking a missing key: %v", err)
	}
}

// testSharingAndPermissions: a CA's policy and the accounts it names are
// kept with it, and other accounts list it; permissions are kept, listed
// in pages and removed; purging the CA removes both.
func testSharingAndPermissions(t *testing.T, s openpca.Store) {
	t0 := now()
	shared, other := create(t, s, newCA(account, t0)), create(t, s, newCA(account, t0.Add(time.Second)))
	shared.Policy, shared.SharedWith = `{"Statement":[]}`, []string{"222233334444", "333344445555"}
	if err := s.UpdateCA(ctx, shared); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindCA(ctx, account, shared.ID); err != nil || got.Policy != shared.Policy {
		t.Errorf("the CA's policy reads back as %q, %v", got.Policy, err)
	}
	for acct, want := range map[string]int{"222233334444": 1, "333344445555": 1, "444455556666": 0, account: 0} {
		if list, err := s.ListSharedCAs(ctx, acct, openpca.CACursor{}, 10); err != nil || len(list) != want || want == 1 && list[0].ID != shared.ID {
			t.Errorf("CAs shared with %s: %d, %v; want %d", acct, len(list), err, want)
		}
	}
	// An update that keeps the policy keeps the sharing, though the record
	// read back does not carry the accounts.
	again, _ := s.FindCA(ctx, account, shared.ID)
	again.Tags = []openpca.Tag{{Key: "k", Value: "v"}}
	if err := s.UpdateCA(ctx, again); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListSharedCAs(ctx, "222233334444", openpca.CACursor{}, 10); len(list) != 1 {
		t.Errorf("after a tag change, %d CAs are shared", len(list))
	}
	again.Policy, again.SharedWith = "", nil
	if err := s.UpdateCA(ctx, again); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListSharedCAs(ctx, "222233334444", openpca.CACursor{}, 10); len(list) != 0 {
		t.Errorf("after the policy was removed, %d CAs are shared", len(list))
	}

	perm := func(principal, source string) *openpca.CAPermission {
		return &openpca.CAPermission{CAID: other.ID, Principal: principal, SourceAccount: source,
			Actions: []openpca.ActionType{openpca.ActionTypeIssueCertificate, openpca.ActionTypeGetCertificate}, CreatedAt: t0}
	}
	for _, p := range []*openpca.CAPermission{perm("b", "1"), perm("a", "2"), perm("a", "1")} {
		if err := s.CreatePermission(ctx, p, 3); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreatePermission(ctx, perm("a", "1"), 10); !errors.Is(err, openpca.ErrConflict) {
		t.Errorf("a permission again: %v", err)
	}
	if err := s.CreatePermission(ctx, perm("c", "1"), 3); !errors.Is(err, openpca.ErrLimitExceeded) {
		t.Errorf("a permission past the limit: %v", err)
	}
	page, err := s.ListPermissions(ctx, other.ID, openpca.PermissionCursor{}, 2)
	if err != nil || len(page) != 2 || page[0].Principal != "a" || page[0].SourceAccount != "1" || page[1].SourceAccount != "2" ||
		!reflect.DeepEqual(page[0].Actions, perm("a", "1").Actions) || !page[0].CreatedAt.Equal(t0) {
		t.Fatalf("first page %+v, %v", page, err)
	}
	if rest, _ := s.ListPermissions(ctx, other.ID, openpca.PermissionCursor{Principal: "a", SourceAccount: "2"}, 2); len(rest) != 1 || rest[0].Principal != "b" {
		t.Errorf("second page %+v", rest)
	}
	if err := s.DeletePermission(ctx, other.ID, "a", "2"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePermission(ctx, other.ID, "a", "2"); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("deleting again: %v", err)
	}

	other.Policy, other.SharedWith = `{"Statement":[]}`, []string{"222233334444"}
	other.SetStatus(openpca.CertificateAuthorityStatusDeleted, t0)
	other.RestorableUntil = t0
	if err := s.UpdateCA(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PurgeCAs(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListSharedCAs(ctx, "222233334444", openpca.CACursor{}, 10); len(list) != 0 {
		t.Errorf("a purged CA is still shared")
	}
	if list, _ := s.ListPermissions(ctx, other.ID, openpca.PermissionCursor{}, 10); len(list) != 0 {
		t.Errorf("a purged CA still has %d permissions", len(list))
	}
}

// testBuckets: a bucket belongs to at most one account, which must
// exist; its record can be forgotten.
func testBuckets(t *testing.T, s openpca.Store) {
	t0 := now()
	for _, id := range []string{"111122223333", "222233334444"} {
		if err := s.CreateAccount(ctx, &openpca.Account{ID: id, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.FindBucket(ctx, "reports"); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a bucket without an owner: %v", err)
	}
	if err := s.PutBucket(ctx, &openpca.Bucket{Name: "reports", AccountID: "999999999999", CreatedAt: t0}); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a bucket of a missing account: %v", err)
	}
	if err := s.PutBucket(ctx, &openpca.Bucket{Name: "reports", AccountID: "222233334444", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBucket(ctx, &openpca.Bucket{Name: "reports", AccountID: "222233334444", CreatedAt: t0.Add(time.Hour)}); err != nil {
		t.Errorf("the owner's bucket again: %v", err)
	}
	if err := s.PutBucket(ctx, &openpca.Bucket{Name: "reports", AccountID: "111122223333", CreatedAt: t0}); !errors.Is(err, openpca.ErrConflict) {
		t.Errorf("another account's bucket: %v", err)
	}
	if err := s.PutBucket(ctx, &openpca.Bucket{Name: "crls", AccountID: "111122223333", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if b, err := s.FindBucket(ctx, "reports"); err != nil || b.AccountID != "222233334444" || !b.CreatedAt.Equal(t0) {
		t.Errorf("FindBucket = %+v, %v", b, err)
	}
	if list, err := s.ListBuckets(ctx); err != nil || len(list) != 2 || list[0].Name != "crls" || list[1].Name != "reports" {
		t.Errorf("ListBuckets = %v, %v", list, err)
	}
	if owner, err := openpca.BucketOwner(ctx, s, "unrecorded", "111122223333"); err != nil || owner != "111122223333" {
		t.Errorf("the owner of a bucket without a record: %q, %v", owner, err)
	}
	if err := s.DeleteBucket(ctx, "reports"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBucket(ctx, "reports"); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("deleting again: %v", err)
	}
	if _, err := s.FindBucket(ctx, "reports"); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a deleted bucket record: %v", err)
	}
}

// testSettings: of concurrent first writers of a setting, one wins and all
// read its value; later writers and readers read it too.
func testSettings(t *testing.T, s openpca.Store) {
	if none, err := s.Setting(ctx, "check"); err != nil || none != nil {
		t.Fatalf("a setting never written: %q, %v", none, err)
	}
	got := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			var err error
			if got[i], err = s.InitSetting(ctx, "check", []byte{byte(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range got {
		if len(got[i]) != 1 || got[i][0] != got[0][0] {
			t.Fatalf("writers read different values: %v", got)
		}
	}
	if later, err := s.InitSetting(ctx, "check", []byte("other")); err != nil || string(later) != string(got[0]) {
		t.Errorf("a later writer read %q, %v", later, err)
	}
	if read, err := s.Setting(ctx, "check"); err != nil || string(read) != string(got[0]) {
		t.Errorf("a reader read %q, %v", read, err)
	}
	if other, err := s.InitSetting(ctx, "other", []byte("x")); err != nil || string(other) != "x" {
		t.Errorf("another setting: %q, %v", other, err)
	}
}

// testCRLPublication: enabling CRLs, revocations and changes of the CA ask
// for a new CRL; one owner at a time publishes it; a recorded CRL takes the
// next number and logs its key use; refreshes come due.
func testCRLPublication(t *testing.T, s openpca.Store) {
	t0 := now()
	lease := time.Minute
	if _, err := s.ClaimCRL(ctx, "a", t0, lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Fatalf("a claim with no CRL enabled: %v", err)
	}
	ca := activeCA(t, s)
	ca.Revocation = &openpca.RevocationConfiguration{CrlConfiguration: &openpca.CrlConfiguration{Enabled: new(true), S3BucketName: "crls"}}
	if err := s.UpdateCA(ctx, ca); err != nil {
		t.Fatal(err)
	}
	job, err := s.ClaimCRL(ctx, "a", t0, lease)
	if err != nil || job.CAID != ca.ID || job.AccountID != ca.AccountID || job.Number != 0 || !job.LastThisUpdate.IsZero() {
		t.Fatalf("claim after enabling CRLs: %+v, %v", job, err)
	}
	if _, err := s.ClaimCRL(ctx, "b", t0, lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Fatalf("a second owner claimed a held CRL: %v", err)
	}
	// A renewed lease holds past its first end; another owner cannot renew.
	if err := s.RenewCRL(ctx, ca.ID, "a", t0.Add(3*lease)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimCRL(ctx, "b", t0.Add(2*lease), lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Fatalf("a renewed CRL lease was claimed: %v", err)
	}
	if err := s.RenewCRL(ctx, ca.ID, "b", t0.Add(3*lease)); !errors.Is(err, openpca.ErrConflict) {
		t.Errorf("an owner renewed a lease it does not hold: %v", err)
	}
	use := openpca.CRLUse(ca, 1, t0, t0.AddDate(0, 0, 7), 0, []byte("crl"))
	if err := s.RecordCRL(ctx, job, "b", use, active); !errors.Is(err, openpca.ErrConflict) {
		t.Errorf("a CRL recorded by a server that does not hold it: %v", err)
	}
	if err := s.RecordCRL(ctx, job, "a", use, active); err != nil {
		t.Fatal(err)
	}
	if kinds := logKinds(t, s, ca); kinds != "[CSR CRL]" {
		t.Errorf("log %s after a CRL", kinds)
	}
	if err := s.FinishCRL(ctx, ca.ID, "a", job.Wanted, t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimCRL(ctx, "b", t0, lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Fatalf("a claim with the CRL published: %v", err)
	}

	// A revocation asks for a new CRL, which lists it.
	c := newCertificate(ca)
	if _, err := s.RecordIssuance(ctx, issuance(ca, c)); err != nil {
		t.Fatal(err)
	}
	at := now()
	if err := s.RecordRevocation(ctx, &openpca.Revocation{CAID: ca.ID, Serial: c.Serial, At: at, Reason: openpca.RevocationReasonSuperseded,
		Use: openpca.RevokeUse(ca.ARN, c, at, openpca.RevocationReasonSuperseded, "t", "r"), Statuses: active}); err != nil {
		t.Fatal(err)
	}
	job, err = s.ClaimCRL(ctx, "b", t0, lease)
	if err != nil || job.Number != 1 || !job.LastThisUpdate.Equal(t0) {
		t.Fatalf("claim after a revocation: %+v, %v", job, err)
	}
	var revoked []*openpca.RevokedCertificate
	collect := func(r *openpca.RevokedCertificate) error { revoked = append(revoked, r); return nil }
	if err := s.RevokedCertificates(ctx, ca.ID, t0, collect); err != nil || len(revoked) != 1 ||
		revoked[0].Serial != c.Serial || !revoked[0].RevokedAt.Equal(at) || revoked[0].Reason != openpca.RevocationReasonSuperseded {
		t.Fatalf("revoked certificates %v, %v", revoked, err)
	}
	revoked = nil
	if err := s.RevokedCertificates(ctx, ca.ID, c.NotAfter, collect); err != nil || len(revoked) != 0 {
		t.Errorf("a certificate expired before the cutoff is listed: %v, %v", revoked, err)
	}

	// A failure releases the claim until the retry time; then it is
	// claimed again, and after publishing, comes due for refresh.
	if err := s.ReleaseCRL(ctx, ca.ID, "b", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimCRL(ctx, "a", t0, lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("claimed before the retry time: %v", err)
	}
	job, err = s.ClaimCRL(ctx, "a", t0.Add(2*time.Minute), lease)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishCRL(ctx, ca.ID, "a", job.Wanted, t0.Add(2*time.Minute), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimCRL(ctx, "a", t0.Add(30*time.Minute), lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("claimed before the refresh time: %v", err)
	}
	if job, err := s.ClaimCRL(ctx, "a", t0.Add(time.Hour), lease); err != nil || job.Number != 1 {
		t.Errorf("refresh: %+v, %v", job, err)
	}
}
