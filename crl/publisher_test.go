package crl

import (
	"crypto/x509"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/sqlstore"
)

// TestRetryAfter: a publication that keeps failing is retried after 30 s,
// then twice as long each time, up to 15 minutes.
func TestRetryAfter(t *testing.T) {
	for failures, want := range map[int]time.Duration{
		1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 5: 8 * time.Minute, 6: 15 * time.Minute, 100: 15 * time.Minute,
	} {
		if got := retryAfter(failures); got != want {
			t.Errorf("after %d failures: %v, want %v", failures, got, want)
		}
	}
}

// TestPause: a large CA's next CRL waits 50 µs for each entry of its
// last; a small one's is not held back.
func TestPause(t *testing.T) {
	for _, tc := range []struct {
		revoked int
		want    time.Duration
	}{
		{0, 0},
		{199, 0},
		{200, 10 * time.Millisecond},
		{2000, 100 * time.Millisecond},
		{97_000, 4850 * time.Millisecond},
		{1_000_000, 50 * time.Second},
		{100_000_000, MaxRetry},
	} {
		if got := pause(tc.revoked); got != tc.want {
			t.Errorf("after a CRL of %d entries: %s, want %s", tc.revoked, got, tc.want)
		}
	}
}

// TestAccountPause: after a CRL that pauses its CA, the other CAs of its
// account wait too, on this server, for the pauses of its CRLs added up;
// another account's CA does not.
func TestAccountPause(t *testing.T) {
	db, objects, dir := newCRLStores(t, "crls", "crls-b")
	now := time.Now().UTC().Truncate(time.Second)
	const a, b = "111122223333", "444455556666"
	giveBucket(t, db, "crls-b", b)
	first, key, cert := newCRLCA(t, db, a, "crls", now)
	second, _, _ := newCRLCA(t, db, a, "crls", now)
	third, _, _ := newCRLCA(t, db, a, "crls", now)
	clock := now
	p := newPublisher(Config{Store: db, DefaultAccount: "111122223333", Objects: objects, Keys: caKey{key, cert}, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return clock }})
	p.pause = func(int) time.Duration { return time.Minute }
	// Two of account a's CRLs at once, as two workers that both found the
	// account free publish them: the account's next waits for both pauses.
	var jobs []*openpca.CRLJob
	for _, worker := range []string{"a", "b"} {
		job, err := db.ClaimCRL(t.Context(), worker, clock, Lease)
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, job)
	}
	// Which two were claimed is the store's choice; the third is the other.
	cas := map[string]*openpca.CA{first.ID: first, second.ID: second, third.ID: third}
	done := []*openpca.CA{cas[jobs[0].CAID], cas[jobs[1].CAID]}
	delete(cas, jobs[0].CAID)
	delete(cas, jobs[1].CAID)
	var waiting *openpca.CA
	for _, ca := range cas {
		waiting = ca
	}
	other, _, _ := newCRLCA(t, db, b, "crls-b", now)
	for i, worker := range []string{"a", "b"} {
		if err := p.publish(t.Context(), jobs[i], worker); err != nil {
			t.Fatal(err)
		}
	}
	// The rest, each claimed in turn: account b's is published, account
	// a's third waits, at every time until both pauses have passed.
	published := func(ca *openpca.CA) bool {
		_, err := os.Stat(filepath.Join(dir, "s3", ca.CRL().S3BucketName, Key(ca, ca.CRL())))
		return err == nil
	}
	drain := func() {
		for {
			job, err := db.ClaimCRL(t.Context(), "a", clock, Lease)
			if errors.Is(err, openpca.ErrNotFound) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			queue{p}.Do(t.Context(), job, "a")
		}
	}
	for _, step := range []struct {
		at        time.Duration
		published bool
	}{{0, false}, {time.Minute + time.Second, false}, {2*time.Minute + time.Second, true}} {
		clock = now.Add(step.at)
		drain()
		if got := published(waiting); got != step.published {
			t.Errorf("at +%s: the third CRL of account a published %v, want %v", step.at, got, step.published)
		}
	}
	for _, ca := range append(done, other) {
		if !published(ca) {
			t.Errorf("%s has no CRL", ca.ARN)
		}
	}
}

// giveBucket gives bucket to account, which it makes.
func giveBucket(t *testing.T, db *sqlstore.DB, bucket, account string) {
	t.Helper()
	if err := db.CreateAccount(t.Context(), &openpca.Account{ID: account, Name: "account " + account, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutBucket(t.Context(), &openpca.Bucket{Name: bucket, AccountID: account, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// TestBucketGivenAway: a CA whose CRL bucket the operator gave to another
// account since its configuration named it signs no CRL for it, nor
// writes one there; given back, it does.
func TestBucketGivenAway(t *testing.T) {
	db, objects, dir := newCRLStores(t, "crls")
	now := time.Now().UTC().Truncate(time.Second)
	ca, key, cert := newCRLCA(t, db, "111122223333", "crls", now)
	giveBucket(t, db, "crls", "444455556666")
	p := newPublisher(Config{Store: db, DefaultAccount: "111122223333", Objects: objects, Keys: caKey{key, cert}, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	job, err := db.ClaimCRL(t.Context(), "a", now, Lease)
	if err != nil {
		t.Fatal(err)
	}
	crlPath := filepath.Join(dir, "s3", "crls", Key(ca, ca.CRL()))
	if err := p.publish(t.Context(), job, "a"); err == nil || !strings.Contains(err.Error(), "belongs to account 444455556666, not the CA's") {
		t.Errorf("a CRL for a bucket given away: %v", err)
	}
	if _, err := os.Stat(crlPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a CRL written to a bucket given away: %v", err)
	}
	// Given back: its first CRL, none signed before.
	if err := db.DeleteBucket(t.Context(), "crls"); err != nil {
		t.Fatal(err)
	}
	if err := p.publish(t.Context(), job, "a"); err != nil {
		t.Fatal(err)
	}
	der, err := os.ReadFile(crlPath)
	if err != nil {
		t.Fatal(err)
	}
	if list, err := x509.ParseRevocationList(der); err != nil || list.Number.Int64() != 1 {
		t.Errorf("the CRL once the bucket is given back: %v; want number 1", err)
	}
}

// TestDisabledAfterClockStepsBack: a CA whose CRLs were disabled, its last
// CRL dated ahead, is claimed once for it, not again and again.
func TestDisabledAfterClockStepsBack(t *testing.T) {
	db, objects, _ := newCRLStores(t, "crls")
	now := time.Now().UTC().Truncate(time.Second)
	ca, key, cert := newCRLCA(t, db, "111122223333", "crls", now)
	clock := now.Add(48 * time.Hour)
	p := newPublisher(Config{Store: db, DefaultAccount: "111122223333", Objects: objects, Keys: caKey{key, cert}, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return clock }})
	job, err := db.ClaimCRL(t.Context(), "a", clock, Lease)
	if err != nil {
		t.Fatal(err)
	}
	queue{p}.Do(t.Context(), job, "a")
	ca, err = db.FindCA(t.Context(), ca.AccountID, ca.ID)
	if err != nil {
		t.Fatal(err)
	}
	ca.Revocation.CrlConfiguration.Enabled = new(false)
	if err := db.UpdateCA(t.Context(), ca, nil); err != nil {
		t.Fatal(err)
	}
	clock = now
	for i := range 2 {
		job, err := db.ClaimCRL(t.Context(), "a", clock, Lease)
		if i == 1 {
			if err == nil {
				t.Errorf("claimed again: %+v", job)
			}
			break
		}
		if err != nil {
			t.Fatalf("no claim of a CA whose last CRL is dated ahead: %v", err)
		}
		queue{p}.Do(t.Context(), job, "a")
	}
}

// TestCRLsOfOneSecond: a CRL wanted in the second of the last one waits
// for the next second, on a server whose clock is a little behind too,
// rather than be dated as the last (or earlier): relying parties tell CRLs
// apart by thisUpdate alone, and OpenSSL, given two of one second, passed
// over the one listing a revocation made since. A clock far behind
// (stepped back) has the CRL dated earlier all the same.
func TestCRLsOfOneSecond(t *testing.T) {
	db, objects, dir := newCRLStores(t, "crls")
	now := time.Now().UTC().Truncate(time.Second)
	ca, key, cert := newCRLCA(t, db, "111122223333", "crls", now)
	clock := now
	p := newPublisher(Config{Store: db, DefaultAccount: "111122223333", Objects: objects, Keys: caKey{key, cert}, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return clock }})
	published := func() (int64, time.Time) {
		t.Helper()
		der, err := os.ReadFile(filepath.Join(dir, "s3", "crls", Key(ca, ca.CRL())))
		if err != nil {
			t.Fatal(err)
		}
		list, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		return list.Number.Int64(), list.ThisUpdate
	}
	for _, step := range []struct {
		name    string
		at      time.Duration // from now
		claimed bool
		number  int64
		dated   time.Duration
	}{
		{"the first", 0, true, 1, 0},
		{"another, in its second", 900 * time.Millisecond, true, 1, 0},
		{"still in its second", 900 * time.Millisecond, false, 1, 0},
		{"the next second", time.Second, true, 2, time.Second},
		{"on a server two minutes behind", time.Second - 2*time.Minute, true, 3, time.Second - 2*time.Minute},
		{"then on one 30 s behind that", time.Second - 2*time.Minute - 30*time.Second, true, 3, time.Second - 2*time.Minute},
		{"and when its clock has passed it", 2*time.Second - 2*time.Minute, true, 4, 2*time.Second - 2*time.Minute},
	} {
		clock = now.Add(step.at)
		if step.claimed {
			if err := db.WantCRL(t.Context(), ca.ID); err != nil {
				t.Fatal(err)
			}
		}
		job, err := db.ClaimCRL(t.Context(), "a", clock, Lease)
		if claimed := err == nil; claimed != step.claimed {
			t.Fatalf("%s: claimed %v (%v), want %v", step.name, claimed, err, step.claimed)
		}
		if err == nil {
			queue{p}.Do(t.Context(), job, "a")
		}
		if number, thisUpdate := published(); number != step.number || !thisUpdate.Equal(now.Add(step.dated)) {
			t.Errorf("%s: CRL %d of %s, want %d of %s", step.name, number, thisUpdate, step.number, now.Add(step.dated))
		}
	}
}
