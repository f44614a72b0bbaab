package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/auditlogtest"
)

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

	// A store may keep an issuance's record as its certificate's fields;
	// one those fields would not make again (the certificate names an
	// account other than its CA's) comes back all the same.
	odd := newCertificate(ca)
	odd.AccountID = "444455556666"
	is := issuance(ca, odd)
	if _, err := s.RecordIssuance(ctx, is); err != nil {
		t.Fatal(err)
	}
	if uses, err := s.KeyUses(ctx, ca.ID, is.Use.Seq, 1); err != nil || len(uses) != 1 || !bytes.Equal(uses[0].Record, is.Use.Record) {
		t.Errorf("the log's entry of an issuance: %v, %v; want the record %s", uses, err, is.Use.Record)
	}
	CheckTree(t, s, ca)
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
	if err := s.UpdateCA(ctx, disabled, nil); err != nil {
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
	// EXPIRED alone takes a CA whose certificate has expired by the
	// issuance (a root's renewal), and no other.
	expired := func(ca *openpca.CA, c *openpca.Certificate) *openpca.Issuance {
		is := issuance(ca, c)
		is.Statuses = []openpca.CertificateAuthorityStatus{openpca.CertificateAuthorityStatusExpired}
		return is
	}
	early := newCertificate(ca)
	if _, err := s.RecordIssuance(ctx, expired(ca, early)); !errors.Is(err, openpca.ErrCAState) {
		t.Errorf("a renewal of an expired CA while its certificate is valid: %v, want ErrCAState", err)
	}
	// A certificate is valid through its notAfter (RFC 5280), and the CA
	// is ACTIVE then, as StatusAt says: it still signs, and renews not.
	last := newCertificate(ca)
	last.IssuedAt = ca.NotAfter
	if _, err := s.RecordIssuance(ctx, issuance(ca, last)); err != nil {
		t.Errorf("issuing at the CA certificate's notAfter (status %s): %v", ca.StatusAt(last.IssuedAt), err)
	}
	atEnd := newCertificate(ca)
	atEnd.IssuedAt = ca.NotAfter
	if _, err := s.RecordIssuance(ctx, expired(ca, atEnd)); !errors.Is(err, openpca.ErrCAState) {
		t.Errorf("a renewal at the CA certificate's notAfter (status %s): %v, want ErrCAState", ca.StatusAt(atEnd.IssuedAt), err)
	}
	renewal := newCertificate(ca)
	renewal.IssuedAt = ca.NotAfter.Add(time.Second)
	if _, err := s.RecordIssuance(ctx, expired(ca, renewal)); err != nil {
		t.Errorf("a renewal once the certificate expired: %v", err)
	}
	for _, c := range []*openpca.Certificate{refused, late, early, atEnd} {
		if _, err := s.FindCertificate(ctx, c.CAID, c.Serial); !errors.Is(err, openpca.ErrNotFound) {
			t.Errorf("a refused issuance stored certificate %s", c.Serial)
		}
	}
	if kinds := logKinds(t, s, ca); kinds != "[CSR ISSUE ISSUE ISSUE]" {
		t.Errorf("refused issuances changed the log: %s", kinds)
	}
	if kinds := logKinds(t, s, disabled); kinds != "[CSR]" {
		t.Errorf("refused issuances changed the log: %s", kinds)
	}
}

func testIssueIdempotency(t *testing.T, s openpca.Store) {
	ca := activeCA(t, s)
	t0 := now()
	token := openpca.IdempotencyToken{AccountID: account, Operation: "IssueCertificate:" + ca.ID, Token: "tok", Now: t0, Since: t0.Add(-5 * time.Minute)}
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
	if serial, err := s.FindIdempotent(ctx, token); err != nil || serial != first.Certificate.Serial {
		t.Errorf("FindIdempotent = %q, %v", serial, err)
	}
	expired := token
	expired.Since = t0.Add(time.Second)
	if _, err := s.FindIdempotent(ctx, expired); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("FindIdempotent of an expired token: %v", err)
	}

	// Another account the CA is shared with has tokens of its own: the
	// same token gets it its own certificate, and neither account finds
	// the other's.
	sharee := token
	sharee.AccountID = "999999999999"
	if _, err := s.FindIdempotent(ctx, sharee); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("FindIdempotent under another account = %v, want ErrNotFound", err)
	}
	theirs := issuance(ca, newCertificate(ca))
	theirs.Token = sharee
	got, err = s.RecordIssuance(ctx, theirs)
	if err != nil {
		t.Fatal(err)
	}
	if got.Serial != theirs.Certificate.Serial {
		t.Errorf("another account's request with the same token returned %s, want its own certificate %s", got.Serial, theirs.Certificate.Serial)
	}
	if serial, err := s.FindIdempotent(ctx, sharee); err != nil || serial != theirs.Certificate.Serial {
		t.Errorf("FindIdempotent under the other account = %q, %v", serial, err)
	}
	if serial, err := s.FindIdempotent(ctx, token); err != nil || serial != first.Certificate.Serial {
		t.Errorf("FindIdempotent after the other account's use = %q, %v", serial, err)
	}
	if _, err := s.FindCertificate(ctx, ca.ID, retry.Certificate.Serial); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("the retry stored its certificate")
	}
	if kinds := logKinds(t, s, ca); kinds != "[CSR ISSUE ISSUE]" {
		t.Errorf("log %s after a retry and another account's issuance", kinds)
	}

	// Tokens made before a time are removed, of every account; the
	// others stay.
	if n, err := s.ExpireIdempotencyTokens(ctx, t0, math.MaxInt64); err != nil || n != 0 {
		t.Errorf("removing the tokens made before theirs: %d, %v", n, err)
	}
	if serial, err := s.FindIdempotent(ctx, token); err != nil || serial != first.Certificate.Serial {
		t.Errorf("FindIdempotent after removing older tokens = %q, %v", serial, err)
	}
	later := t0.Add(time.Millisecond)
	if n, err := s.ExpireIdempotencyTokens(ctx, later, 1); err != nil || n != 1 {
		t.Errorf("removing one of the tokens made before a millisecond later: %d, %v", n, err)
	}
	if n, err := s.ExpireIdempotencyTokens(ctx, later, math.MaxInt64); err != nil || n < 1 {
		t.Errorf("removing the rest of them: %d, %v", n, err)
	}
	for _, tok := range []openpca.IdempotencyToken{token, sharee} {
		if _, err := s.FindIdempotent(ctx, tok); !errors.Is(err, openpca.ErrNotFound) {
			t.Errorf("FindIdempotent of a token removed (account %s): %v", tok.AccountID, err)
		}
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
	CheckTree(t, s, ca)
}

// CheckTree checks the Merkle tree the store keeps over a CA's log against
// one built from the log's records: the same root at every size, and
// inclusion and consistency proofs from the store's hashes that hold.
func CheckTree(t *testing.T, s openpca.Store, ca *openpca.CA) {
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
	var tree auditlogtest.Tree
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
	token := openpca.IdempotencyToken{AccountID: account, Operation: "IssueCertificate:" + ca.ID, Token: "used", Now: t0, Since: t0.Add(-5 * time.Minute)}
	first := issuance(ca, newCertificate(ca))
	first.Token = token
	if _, err := s.RecordIssuance(ctx, first); err != nil {
		t.Fatal(err)
	}
	disabled := activeCA(t, s)
	disabled.SetStatus(openpca.CertificateAuthorityStatusDisabled, now())
	if err := s.UpdateCA(ctx, disabled, nil); err != nil {
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
	CheckTree(t, s, ca)
	CheckTree(t, s, disabled)
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
	CheckTree(t, s, ca)
	uses, err := s.CertificateKeyUses(ctx, ca.ID, c.Serial)
	if err != nil || len(uses) != 2 || uses[0].Kind != openpca.KeyUseIssue || uses[1].Kind != openpca.KeyUseRevoke {
		t.Errorf("CertificateKeyUses = %v, %v; want its ISSUE and REVOKE entries", uses, err)
	}
	if _, err := s.CertificateKeyUses(ctx, ca.ID, "0abc"); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("CertificateKeyUses of an unknown serial: %v", err)
	}
}
