package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openpca/openpca"
)

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
	if err := s.UpdateCA(ctx, ca, nil); err != nil {
		t.Fatal(err)
	}
	job, err := s.ClaimCRL(ctx, "a", t0, lease)
	if err != nil || job.CAID != ca.ID || job.AccountID != ca.AccountID || job.Number != 0 || !job.LastThisUpdate.IsZero() || !job.FirstSigned.IsZero() || !job.SignedBefore.IsZero() || job.RevocationsRead != -1 {
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
	use := openpca.CRLUse(ca, 1, t0, t0.AddDate(0, 0, 7), &openpca.CRLEntries{}, []byte("crl"))
	if err := s.RecordCRL(ctx, job, "b", use, 1, active); !errors.Is(err, openpca.ErrConflict) {
		t.Errorf("a CRL recorded by a server that does not hold it: %v", err)
	}
	if err := s.RecordCRL(ctx, job, "a", use, 1, active); err != nil {
		t.Fatal(err)
	}
	if kinds := logKinds(t, s, ca); kinds != "[CSR CRL]" {
		t.Errorf("log %s after a CRL", kinds)
	}
	// The CRL's entry is found by its thisUpdate, to the second: not
	// another second's, not another CA's, not the CSR's of the same second.
	second := t0.Truncate(time.Second)
	if uses, err := s.CRLKeyUses(ctx, ca.ID, second); err != nil || len(uses) != 1 || uses[0].Seq != 1 || !bytes.Equal(uses[0].Record, use.Record) {
		t.Errorf("the CRL's entries by its thisUpdate: %v, %v", uses, err)
	}
	for _, tc := range []struct {
		name, caID string
		at         time.Time
	}{
		{"a second later", ca.ID, second.Add(time.Second)},
		{"a second before", ca.ID, second.Add(-time.Second)},
		{"another CA", "no-such-ca", second},
	} {
		if uses, err := s.CRLKeyUses(ctx, tc.caID, tc.at); err != nil || len(uses) != 0 {
			t.Errorf("the CRL's entries, %s: %v, %v", tc.name, uses, err)
		}
	}
	// The CA's creation logged its CSR's signing microseconds before the
	// CRL: in the same second, most often.
	uses, err := s.CRLKeyUses(ctx, ca.ID, ca.CreatedAt.Truncate(time.Second))
	if err != nil || len(uses) > 1 || len(uses) == 1 && uses[0].Kind != openpca.KeyUseCRL {
		t.Errorf("the CRL's entries, of the second of the CSR's: %v, %v", uses, err)
	}
	if at, err := s.LatestCRL(ctx, ca.ID); err != nil || !at.IsZero() {
		t.Errorf("the latest CRL before one was published: %v, %v", at, err)
	}
	// The next CRL no sooner than a second on.
	if err := s.FinishCRL(ctx, ca.ID, "a", job.Wanted, t0, 1, t0.Add(time.Hour), t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if at, err := s.LatestCRL(ctx, ca.ID); err != nil || !at.Equal(t0) {
		t.Errorf("the latest CRL: %v, %v, want %v", at, err, t0)
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
	// RetryCRLNow ends the waits of failures alone.
	if err := s.RetryCRLNow(ctx, ca.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimCRL(ctx, "b", t0, lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Fatalf("a claim after a revocation, before the last CRL's pause is over: %v", err)
	}
	job, err = s.ClaimCRL(ctx, "b", t0.Add(time.Second), lease)
	if err != nil || job.Number != 1 || !job.LastThisUpdate.Equal(t0) || !job.FirstSigned.Equal(t0) || !job.SignedBefore.Equal(t0) || job.RevocationsRead != 1 {
		t.Fatalf("claim after a revocation: %+v, %v", job, err)
	}
	var revoked []*openpca.RevokedCertificate
	collect := func(r *openpca.RevokedCertificate) error { revoked = append(revoked, r); return nil }
	size, err := s.LogSize(ctx, ca.ID)
	if err != nil {
		t.Fatal(err)
	}
	if before, used, err := s.RevokedCertificates(ctx, ca.ID, t0, -1, collect); err != nil || len(revoked) != 1 || before != size || !used.Equal(t0) ||
		revoked[0].Serial != c.Serial || !revoked[0].RevokedAt.Equal(at) || revoked[0].Reason != openpca.RevocationReasonSuperseded {
		t.Fatalf("revoked certificates %v before entry %d of %d, after %v, %v", revoked, before, size, used, err)
	}
	// A certificate that expired by the cutoff is not listed, unless
	// revoked at an entry from listedFrom on: then the cutoff moves back
	// to before its end's second, and lists what expires from then.
	revokedAt := size - 1
	ended := c.NotAfter.Truncate(time.Second).Add(-time.Microsecond)
	for _, tc := range []struct {
		name       string
		listedFrom int64
		listed     bool
		used       time.Time
	}{
		{"none listed whatever its end", -1, false, c.NotAfter},
		{"those revoked from the revocation on", revokedAt, true, ended},
		{"those revoked from the entry after it", revokedAt + 1, false, c.NotAfter},
		{"those revoked from the first entry on", 0, true, ended},
	} {
		revoked = nil
		before, used, err := s.RevokedCertificates(ctx, ca.ID, c.NotAfter, tc.listedFrom, collect)
		if err != nil || before != size || (len(revoked) == 1) != tc.listed || len(revoked) > 1 || !used.Equal(tc.used) {
			t.Errorf("a certificate expired at the cutoff, %s: listed %v after %v, want listed %v after %v, %v", tc.name, revoked, used, tc.listed, tc.used, err)
		}
	}
	// A certificate still valid at the cutoff leaves it as it is.
	revoked = nil
	if _, used, err := s.RevokedCertificates(ctx, ca.ID, c.NotAfter.Add(-time.Minute), 0, collect); err != nil || len(revoked) != 1 || !used.Equal(c.NotAfter.Add(-time.Minute)) {
		t.Errorf("a certificate valid at the cutoff, revoked since listedFrom: listed %v after %v, %v", revoked, used, err)
	}

	// A failure releases the claim until the retry time; then it is
	// claimed again, by another owner too, with the failures in a row
	// counted; after publishing, it comes due for refresh.
	if job.Failures != 0 {
		t.Errorf("the first claim counts %d failures", job.Failures)
	}
	failing := func(want int, at time.Time, when string) {
		t.Helper()
		if n, err := s.CountFailingCRLs(ctx, at); err != nil || n != want {
			t.Errorf("CAs whose CRLs are failing, %s: %d, %v; want %d", when, n, err, want)
		}
	}
	failing(0, t0, "before a failure")
	if err := s.ReleaseCRL(ctx, ca.ID, "b", t0.Add(time.Minute), true); err != nil {
		t.Fatal(err)
	}
	failing(1, t0, "after a failure")
	failing(1, ca.NotAfter, "at the end of the CA's certificate")
	failing(0, ca.NotAfter.Add(time.Microsecond), "once the CA's certificate ended")
	if _, err := s.ClaimCRL(ctx, "a", t0, lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("claimed before the retry time: %v", err)
	}
	if err := s.RetryCRLNow(ctx, ca.ID); err != nil {
		t.Fatal(err)
	}
	if job, err = s.ClaimCRL(ctx, "a", t0, lease); err != nil || job.Failures != 1 {
		t.Fatalf("a claim after RetryCRLNow ended a failure's wait: %+v, %v", job, err)
	}
	if err := s.ReleaseCRL(ctx, ca.ID, "a", t0.Add(time.Minute), false); err != nil {
		t.Fatal(err)
	}
	job, err = s.ClaimCRL(ctx, "a", t0.Add(2*time.Minute), lease)
	if err != nil || job.Failures != 1 {
		t.Fatalf("the claim after a failure: %+v, %v", job, err)
	}
	// RetryCRLsNow ends a retry's wait, and leaves an owner's hold alone.
	if err := s.RetryCRLsNow(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimCRL(ctx, "b", t0.Add(2*time.Minute), lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("RetryCRLsNow let another owner claim a held CRL: %v", err)
	}
	if err := s.ReleaseCRL(ctx, ca.ID, "a", t0.Add(time.Hour), true); err != nil {
		t.Fatal(err)
	}
	if err := s.RetryCRLsNow(ctx); err != nil {
		t.Fatal(err)
	}
	if job, err = s.ClaimCRL(ctx, "b", t0.Add(2*time.Minute), lease); err != nil || job.Failures != 2 {
		t.Fatalf("a CRL waiting to retry, after RetryCRLsNow: %+v, %v", job, err)
	}
	// A release that is not a failure (an account's turn) counts none.
	if err := s.ReleaseCRL(ctx, ca.ID, "b", t0, false); err != nil {
		t.Fatal(err)
	}
	if job, err = s.ClaimCRL(ctx, "a", t0.Add(2*time.Minute), lease); err != nil || job.Failures != 2 {
		t.Fatalf("the claim after a release that was no failure: %+v, %v", job, err)
	}
	failing(1, t0, "after a release that was no failure")
	if err := s.FinishCRL(ctx, ca.ID, "a", job.Wanted, t0.Add(2*time.Minute), -1, t0.Add(time.Hour), time.Time{}); err != nil {
		t.Fatal(err)
	}
	failing(0, t0, "once a CRL was published")
	if _, err := s.ClaimCRL(ctx, "a", t0.Add(30*time.Minute), lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("claimed before the refresh time: %v", err)
	}
	// A server that wrote a CRL after it lost its hold asks for another.
	if err := s.WantCRL(ctx, ca.ID); err != nil {
		t.Fatal(err)
	}
	job, err = s.ClaimCRL(ctx, "b", t0.Add(30*time.Minute), lease)
	if err != nil || job.Failures != 0 {
		t.Fatalf("the claim of a CRL asked for, after one published: %+v, %v", job, err)
	}
	if err := s.RenewCRL(ctx, ca.ID, "a", t0.Add(time.Hour)); !errors.Is(err, openpca.ErrConflict) {
		t.Errorf("a server renewed a hold another took: %v", err)
	}
	if err := s.FinishCRL(ctx, ca.ID, "b", job.Wanted, t0.Add(30*time.Minute), -1, t0.Add(time.Hour), time.Time{}); err != nil {
		t.Fatal(err)
	}
	// A CRL finished with no read given keeps what the last one read.
	job, err = s.ClaimCRL(ctx, "a", t0.Add(time.Hour), lease)
	if err != nil || job.Number != 1 || job.RevocationsRead != 1 {
		t.Fatalf("refresh: %+v, %v", job, err)
	}
	// A CRL dated ahead (a clock since stepped back) wants another, past
	// openpca.ClockSlack; a wait set by that clock, ending more than
	// openpca.ClockStep after now, does not hold it.
	ahead := t0.Add(3 * time.Hour)
	if err := s.FinishCRL(ctx, ca.ID, "a", job.Wanted, ahead, -1, ahead.Add(time.Hour), ahead.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimCRL(ctx, "b", ahead.Add(-openpca.ClockSlack+time.Second), lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("claimed a CRL dated ahead of now by less than the slack: %v", err)
	}
	now := t0.Add(time.Hour)
	job, err = s.ClaimCRL(ctx, "b", now, lease)
	if err != nil || !job.LastThisUpdate.Equal(ahead) || !job.FirstSigned.Equal(t0) || !job.SignedBefore.Equal(t0) {
		t.Fatalf("the claim of a CA whose last CRL is dated 2 hours ahead: %+v, %v", job, err)
	}
	// FirstSigned is the earliest CRL's of the log, and SignedBefore the
	// latest's at or before the claim: a clock set back dates a CRL before
	// the one signed earlier, and one ahead after the claim. What the last
	// CRL published read stays: these are signed, not published.
	for i, at := range []time.Time{t0.Add(-time.Hour), now.Add(-time.Minute), now.Add(time.Microsecond)} {
		if err := s.RecordCRL(ctx, job, "b", openpca.CRLUse(ca, job.Number+1, at, at.Add(time.Hour), &openpca.CRLEntries{}, []byte("crl")), int64(i)+5, active); err != nil {
			t.Fatal(err)
		}
		if err := s.ReleaseCRL(ctx, ca.ID, "b", now, false); err != nil {
			t.Fatal(err)
		}
		if job, err = s.ClaimCRL(ctx, "b", now, lease); err != nil || job.Number != int64(i)+2 || job.RevocationsRead != 1 || !job.FirstSigned.Equal(t0.Add(-time.Hour)) ||
			!job.SignedBefore.Equal([]time.Time{t0, now.Add(-time.Minute), now.Add(-time.Minute)}[i]) {
			t.Fatalf("the claim after a CRL dated %v: %+v, %v", at, job, err)
		}
	}
	// A wait set now holds it, dated ahead as it still is: a publication
	// that fails is retried after its wait, not at once, again and again.
	if err := s.ReleaseCRL(ctx, ca.ID, "b", now.Add(30*time.Second), true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimCRL(ctx, "a", now, lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a CRL dated ahead was claimed before the retry its server set: %v", err)
	}
	if _, err := s.ClaimCRL(ctx, "a", now.Add(31*time.Second), lease); err != nil {
		t.Errorf("a CRL dated ahead, after its retry: %v", err)
	}
	// A hold, though it ends more than openpca.ClockStep after now (its
	// owner's clock runs ahead), is its owner's while it renews it.
	ahead = now.Add(2 * openpca.ClockStep)
	if err := s.RenewCRL(ctx, ca.ID, "a", ahead.Add(lease)); err != nil {
		t.Fatal(err)
	}
	if job, err := s.ClaimCRL(ctx, "b", now.Add(time.Minute), lease); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a hold renewed by a clock hours ahead was taken: %+v, %v", job, err)
	}
	if err := s.RenewCRL(ctx, ca.ID, "a", ahead.Add(2*lease)); err != nil {
		t.Errorf("its owner lost the hold: %v", err)
	}
}

// testCRLOrder: of two CAs that want a CRL, the one whose last CRL is
// older goes first, though the other, with shorter-lived CRLs, is due for
// refresh sooner: a CA that keeps revoking does not hold back the others.
// testCRLReadUnpublished: while none of a CA's CRLs was published, what
// the first signed read is what the next lists from; once one is, what
// it read; and after a CRL published by a version that kept no read,
// none is known until the next published.
func testCRLReadUnpublished(t *testing.T, s openpca.Store) {
	t0, lease := now(), time.Minute
	ca := activeCA(t, s)
	ca.Revocation = &openpca.RevocationConfiguration{CrlConfiguration: &openpca.CrlConfiguration{Enabled: new(true), S3BucketName: "crls"}}
	if err := s.UpdateCA(ctx, ca, nil); err != nil {
		t.Fatal(err)
	}
	// signed records CRL job.Number+1, having read the log before entry
	// read, and gives it up unpublished; claimed returns the next claim.
	signed := func(job *openpca.CRLJob, read int64) {
		t.Helper()
		if err := s.RecordCRL(ctx, job, "a", openpca.CRLUse(ca, job.Number+1, t0, t0.Add(time.Hour), &openpca.CRLEntries{}, []byte("crl")), read, active); err != nil {
			t.Fatal(err)
		}
		if err := s.ReleaseCRL(ctx, ca.ID, "a", t0, true); err != nil {
			t.Fatal(err)
		}
	}
	claimed := func(step string, read int64) *openpca.CRLJob {
		t.Helper()
		job, err := s.ClaimCRL(ctx, "a", t0, lease)
		if err != nil || job.CAID != ca.ID || job.RevocationsRead != read {
			t.Fatalf("the claim %s: %+v, %v; want what was read %d", step, job, err, read)
		}
		return job
	}
	job := claimed("before any CRL", -1)
	signed(job, 3)
	signed(claimed("after the first CRL signed, not published", 3), 5)
	job = claimed("after the second, not published", 3)
	if err := s.FinishCRL(ctx, ca.ID, "a", job.Wanted, t0, 7, t0.Add(time.Hour), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.WantCRL(ctx, ca.ID); err != nil {
		t.Fatal(err)
	}
	signed(claimed("after one published", 7), 9)
	job = claimed("after one published, and one signed since", 7)
	if err := s.FinishCRL(ctx, ca.ID, "a", job.Wanted, t0, -1, t0.Add(time.Hour), time.Time{}); err != nil {
		t.Fatal(err)
	}

	// A CRL published by a version that kept no read (FinishCRL without
	// one, on a CA with none) leaves none known, signed since or not.
	earlier := activeCA(t, s)
	earlier.Revocation = ca.Revocation
	if err := s.UpdateCA(ctx, earlier, nil); err != nil {
		t.Fatal(err)
	}
	ca = earlier // signed's and claimed's
	job = claimed("of a CA with none published", -1)
	if err := s.FinishCRL(ctx, ca.ID, "a", job.Wanted, t0, -1, t0.Add(time.Hour), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.WantCRL(ctx, ca.ID); err != nil {
		t.Fatal(err)
	}
	signed(claimed("after a CRL published with no read", -1), 4)
	claimed("after a CRL published with no read, and one signed since", -1)
}

func testCRLOrder(t *testing.T, s openpca.Store) {
	t0, lease := now(), time.Minute
	enable := func(ca *openpca.CA) {
		t.Helper()
		ca.Revocation = &openpca.RevocationConfiguration{CrlConfiguration: &openpca.CrlConfiguration{Enabled: new(true), S3BucketName: "crls"}}
		if err := s.UpdateCA(ctx, ca, nil); err != nil { // asks for a CRL
			t.Fatal(err)
		}
	}
	quiet, busy := activeCA(t, s), activeCA(t, s)
	enable(quiet)
	enable(busy)
	for range 2 {
		job, err := s.ClaimCRL(ctx, "a", t0, lease)
		if err != nil {
			t.Fatal(err)
		}
		thisUpdate, refresh := t0, t0.Add(84*time.Hour) // 7-day CRLs
		if job.CAID == busy.ID {
			thisUpdate, refresh = t0.Add(time.Minute), t0.Add(time.Minute+12*time.Hour) // 1-day CRLs, published after
		}
		if err := s.FinishCRL(ctx, job.CAID, "a", job.Wanted, thisUpdate, -1, refresh, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ca := range []*openpca.CA{busy, quiet} {
		if err := s.WantCRL(ctx, ca.ID); err != nil { // a revocation's, say
			t.Fatal(err)
		}
	}
	if job, err := s.ClaimCRL(ctx, "a", t0.Add(2*time.Minute), lease); err != nil || job.CAID != quiet.ID {
		t.Errorf("claimed %+v, %v; want the CA whose last CRL is older, %s", job, err, quiet.ID)
	}
}

// RevocationOfCRLCA stores an ACTIVE CA that publishes CRLs and a
// certificate it issued, and returns the certificate's revocation, ready
// to record: for tests of a store's locks beside its contract.
func RevocationOfCRLCA(t *testing.T, s openpca.Store) *openpca.Revocation {
	t.Helper()
	ca := activeCA(t, s)
	ca.Revocation = &openpca.RevocationConfiguration{CrlConfiguration: &openpca.CrlConfiguration{Enabled: new(true), S3BucketName: "crls"}}
	if err := s.UpdateCA(ctx, ca, nil); err != nil {
		t.Fatal(err)
	}
	c := newCertificate(ca)
	if _, err := s.RecordIssuance(ctx, issuance(ca, c)); err != nil {
		t.Fatal(err)
	}
	at := now()
	return &openpca.Revocation{CAID: ca.ID, Serial: c.Serial, At: at, Reason: openpca.RevocationReasonSuperseded,
		Use: openpca.RevokeUse(ca.ARN, c, at, openpca.RevocationReasonSuperseded, "t", "r"), Statuses: active}
}

// testLargeCA: a CA's revoked certificates come each once, in the order
// of revocation, past the chunks a store may read them in (sqlstore reads
// 2000 at a time), without those that expired before the cutoff, nor one
// revoked while they are read, after the log's size was; and a purge,
// which sqlstore does 5000 log entries at a time, leaves nothing of the
// CA.
func testLargeCA(t *testing.T, s openpca.Store) {
	ca := activeCA(t, s)
	const n, phases = 2600, 3 // 2080 listed; three phases of revocations, whose ends are not a chunk's
	cutoff := now()
	certs := make([]*openpca.Certificate, n)
	for i := range certs {
		certs[i] = newCertificate(ca)
		if i%5 == 0 {
			certs[i].NotAfter = cutoff.Add(-time.Minute)
		}
	}
	each := func(from, to int, fn func(c *openpca.Certificate) error) {
		var next atomic.Int64
		next.Store(int64(from))
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < to; i = int(next.Add(1) - 1) {
					if err := fn(certs[i]); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	each(0, n, func(c *openpca.Certificate) error { _, err := s.RecordIssuance(ctx, issuance(ca, c)); return err })
	phase := map[string]int{}
	for p := range phases {
		from, to := p*n/phases, (p+1)*n/phases
		each(from, to, func(c *openpca.Certificate) error {
			at := now()
			return s.RecordRevocation(ctx, &openpca.Revocation{CAID: ca.ID, Serial: c.Serial, At: at, Reason: openpca.RevocationReasonKeyCompromise,
				Use: openpca.RevokeUse(ca.ARN, c, at, openpca.RevocationReasonKeyCompromise, "t", "r"), Statuses: active})
		})
		for _, c := range certs[from:to] {
			phase[c.Serial] = p
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	late := newCertificate(ca)
	if _, err := s.RecordIssuance(ctx, issuance(ca, late)); err != nil {
		t.Fatal(err)
	}
	seen, last := map[string]bool{}, 0
	listedBefore, _, err := s.RevokedCertificates(ctx, ca.ID, cutoff, -1, func(r *openpca.RevokedCertificate) error {
		if len(seen) == 0 { // read by a later chunk, were it not for the log's size
			at := now()
			if err := s.RecordRevocation(ctx, &openpca.Revocation{CAID: ca.ID, Serial: late.Serial, At: at, Reason: openpca.RevocationReasonKeyCompromise,
				Use: openpca.RevokeUse(ca.ARN, late, at, openpca.RevocationReasonKeyCompromise, "t", "r"), Statuses: active}); err != nil {
				return err
			}
		}
		switch p, ok := phase[r.Serial]; {
		case !ok || seen[r.Serial]:
			return fmt.Errorf("certificate %s is listed, or listed twice", r.Serial)
		case p < last:
			return fmt.Errorf("certificate %s, revoked in phase %d, comes after one of phase %d", r.Serial, p, last)
		default:
			seen[r.Serial], last = true, p
		}
		return nil
	})
	if err != nil || listedBefore != 2*n+2 {
		t.Fatalf("read before entry %d, want %d: %v", listedBefore, 2*n+2, err)
	}
	for i, c := range certs {
		if expired := i%5 == 0; seen[c.Serial] == expired {
			t.Errorf("certificate %d (expired: %v) listed: %v", i, expired, seen[c.Serial])
		}
	}

	ca, err = s.FindCA(ctx, ca.AccountID, ca.ID)
	if err != nil {
		t.Fatal(err)
	}
	if size, err := s.LogSize(ctx, ca.ID); err != nil || size != 2*n+3 {
		t.Fatalf("the log has %d entries (%v), want %d", size, err, 2*n+3)
	}
	ca.Status, ca.RestorableUntil = openpca.CertificateAuthorityStatusDeleted, now().Add(-time.Minute)
	if err := s.UpdateCA(ctx, ca, nil); err != nil {
		t.Fatal(err)
	}
	// A server that read the CA before the purge claimed it (its clock
	// behind, so that the CA is still restorable to it) cannot restore it
	// while its rows go.
	stale := *ca
	// Read past every cache, the CA counts toward its account's limit at
	// a time before its restoration period ended until the purge claims
	// it.
	before := ca.RestorableUntil.Add(-time.Minute)
	counted, err := s.AccountCAs(ctx, ca.AccountID, before)
	if err != nil {
		t.Fatal(err)
	}
	purgeDone := make(chan error, 1)
	var purged []*openpca.CA
	go func() {
		var err error
		purged, err = s.PurgeCAs(ctx, now())
		purgeDone <- err
	}()
	for claimed := false; !claimed; {
		select {
		case err := <-purgeDone:
			purgeDone <- err
			t.Log("the purge ended before its claim was seen: the restore during it goes untried")
			claimed = true
			continue
		default:
		}
		if n, err := s.AccountCAs(ctx, ca.AccountID, before); err == nil && n < counted {
			claimed = true
			restored := stale
			restored.Status, restored.RestorableUntil = openpca.CertificateAuthorityStatusDisabled, time.Time{}
			if err := s.UpdateCA(ctx, &restored, nil); !errors.Is(err, openpca.ErrConflict) && !errors.Is(err, openpca.ErrNotFound) {
				t.Errorf("a restore from a copy read before the purge's claim, during the purge: %v", err)
			}
		}
	}
	if err := <-purgeDone; err != nil || len(purged) != 1 || purged[0].ID != ca.ID {
		t.Fatalf("purged %v, %v", purged, err)
	}
	if _, err := s.FindCertificate(ctx, ca.ID, certs[n-1].Serial); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a certificate of the purged CA: %v", err)
	}
	if uses, err := s.KeyUses(ctx, ca.ID, 0, 10); err != nil || len(uses) != 0 {
		t.Errorf("log entries of the purged CA: %d, %v", len(uses), err)
	}
}

// testOCSPResponses: a response recorded with its signing is read back as
// kept, by CA and serial, and a later one replaces it; a signing the CA's
// status refuses keeps nothing, and an answer for a serial never issued
// is logged without being kept. A delegated responder's answer is kept
// without a log entry, whatever the CA's status, but not for a CA that
// is gone.
func testOCSPResponses(t *testing.T, s openpca.Store) {
	ca := activeCA(t, s)
	t0 := now()
	active := []openpca.CertificateAuthorityStatus{openpca.CertificateAuthorityStatusActive}
	if _, err := s.OCSPResponse(ctx, ca.ID, "01"); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a response never kept: %v", err)
	}
	good := &openpca.OCSPResponse{CAID: ca.ID, Serial: "01", Status: "good", SignedAt: t0, DER: []byte("signed good")}
	revoked := &openpca.OCSPResponse{CAID: ca.ID, Serial: "01", Status: "revoked", RevokedAt: t0.Add(time.Second), SignedAt: t0.Add(2 * time.Second), DER: []byte("signed revoked")}
	for _, kept := range []*openpca.OCSPResponse{good, revoked} {
		if err := s.RecordOCSP(ctx, openpca.OCSPUse(ca, "01", kept.Status, kept.SignedAt, kept.DER), kept, active); err != nil {
			t.Fatal(err)
		}
		got, err := s.OCSPResponse(ctx, ca.ID, "01")
		if err != nil || got.Status != kept.Status || !got.RevokedAt.Equal(kept.RevokedAt) || !got.SignedAt.Equal(kept.SignedAt) || string(got.DER) != string(kept.DER) {
			t.Errorf("kept %+v, read %+v, %v", kept, got, err)
		}
	}
	if err := s.RecordOCSP(ctx, openpca.OCSPUse(ca, "02", "unknown", t0, []byte("unknown")), nil, active); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OCSPResponse(ctx, ca.ID, "02"); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("an answer logged without being kept: %v", err)
	}
	refused := &openpca.OCSPResponse{CAID: ca.ID, Serial: "03", Status: "good", SignedAt: t0, DER: []byte("refused")}
	if err := s.RecordOCSP(ctx, openpca.OCSPUse(ca, "03", "good", t0, refused.DER), refused,
		[]openpca.CertificateAuthorityStatus{openpca.CertificateAuthorityStatusDisabled}); !errors.Is(err, openpca.ErrCAState) {
		t.Errorf("a signing the CA's status refuses: %v, want ErrCAState", err)
	}
	if _, err := s.OCSPResponse(ctx, ca.ID, "03"); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a signing refused kept its response: %v", err)
	}
	delegated := &openpca.OCSPResponse{CAID: ca.ID, Serial: "04", Status: "good", SignedAt: t0, DER: []byte("by the responder")}
	if err := s.RecordOCSP(ctx, nil, delegated, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.OCSPResponse(ctx, ca.ID, "04"); err != nil || string(got.DER) != string(delegated.DER) {
		t.Errorf("a responder's answer: kept %+v, read %+v, %v", delegated, got, err)
	}
	if kinds := logKinds(t, s, ca); kinds != "[CSR OCSP OCSP OCSP]" {
		t.Errorf("log %s, want the three signings by the CA's key recorded", kinds)
	}
	orphan := &openpca.OCSPResponse{CAID: "another-ca", Serial: "01", Status: "good", SignedAt: t0, DER: []byte("no CA")}
	if err := s.RecordOCSP(ctx, nil, orphan, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OCSPResponse(ctx, "another-ca", "01"); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("a response for a CA that does not exist: %v", err)
	}
}

// testCRLWhenItChanges: each change alone of what a CRL depends on asks
// for one: its configuration, the CA's certificate, its validity, a status
// that signs CRLs or not (deleted, restored). A change of the CA's tags,
// policy, OCSP, or a move between ACTIVE and DISABLED asks for none: each
// would be a signing of the CA's key, which any account could have made at
// the rate of its writes.
func testCRLWhenItChanges(t *testing.T, s openpca.Store) {
	t0, lease := now(), time.Minute
	ca := activeCA(t, s)
	ca.Revocation = &openpca.RevocationConfiguration{CrlConfiguration: &openpca.CrlConfiguration{Enabled: new(true), S3BucketName: "crls"}}
	if err := s.UpdateCA(ctx, ca, nil); err != nil {
		t.Fatal(err)
	}
	// settle publishes the CRL wanted, if one is, and returns its job.
	settle := func() *openpca.CRLJob {
		t.Helper()
		job, err := s.ClaimCRL(ctx, "a", t0, lease)
		if errors.Is(err, openpca.ErrNotFound) {
			return nil
		}
		if err == nil {
			err = s.FinishCRL(ctx, ca.ID, "a", job.Wanted, t0, -1, t0.AddDate(0, 0, 7), time.Time{})
		}
		if err != nil {
			t.Fatal(err)
		}
		return job
	}
	if settle() == nil {
		t.Fatal("no CRL asked for a CA whose CRLs are enabled")
	}
	for _, tc := range []struct {
		what   string
		change func()
		wanted bool
	}{
		{"tags", func() { ca.Tags = append(ca.Tags, openpca.Tag{Key: "team", Value: "x"}) }, false},
		{"the policy", func() { ca.Policy = `{"Version":"2012-10-17","Statement":[]}` }, false},
		{"OCSP enabled", func() { ca.Revocation.OcspConfiguration = &openpca.OcspConfiguration{Enabled: new(true)} }, false},
		{"OCSP disabled", func() { ca.Revocation.OcspConfiguration = &openpca.OcspConfiguration{Enabled: new(false)} }, false},
		{"disabled", func() { ca.Status = openpca.CertificateAuthorityStatusDisabled }, false},
		{"the certificate", func() { ca.Certificate = []byte{0x30, 0x01} }, true},
		{"not after", func() { ca.NotAfter = ca.NotAfter.Add(time.Hour) }, true},
		{"the CRL's validity", func() { ca.Revocation.CrlConfiguration.ExpirationInDays = 30 }, true},
		{"deleted", func() { ca.StatusBeforeDeletion, ca.Status = ca.Status, openpca.CertificateAuthorityStatusDeleted }, true},
		{"restored", func() { ca.Status, ca.StatusBeforeDeletion = ca.StatusBeforeDeletion, "" }, true},
	} {
		tc.change()
		var imported *openpca.KeyUse
		if tc.what == "the certificate" || tc.what == "not after" {
			imported, _ = openpca.ImportUse(ca, "tester", "r", now())
		}
		if err := s.UpdateCA(ctx, ca, imported); err != nil {
			t.Fatal(err)
		}
		if wanted := settle() != nil; wanted != tc.wanted {
			t.Errorf("%s alone: a CRL asked for %v, want %v", tc.what, wanted, tc.wanted)
		}
	}
}
