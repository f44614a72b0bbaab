package crl

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/openpca/openpca"
)

// TestFailuresInARowAcrossServers: servers of one database publish a CA's
// CRLs in turn. A server whose writes failed five times in a row, after
// which another server published the CA's CRL, counts its next failure as
// the first in a row, and retries it 30 s later, not 15 minutes, as a
// failure after a success is (README: "tried again after 30 seconds,
// then twice as long each time, up to 15 minutes").
func TestFailuresInARowAcrossServers(t *testing.T) {
	db, objects, dir := newCRLStores(t, "crls")
	bucket := filepath.Join(dir, "s3", "crls")
	now := time.Now().UTC().Truncate(time.Second)
	ca, key, cert := newCRLCA(t, db, "111122223333", "crls", now)
	clock := now
	cfg := Config{Store: db, Objects: objects, Keys: caKey{key, cert}, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return clock }}
	a, b := newPublisher(cfg), newPublisher(cfg)
	// do has server p claim the CA's CRL at the clock, and publish it.
	do := func(p *Publisher, owner string) {
		t.Helper()
		job, err := db.ClaimCRL(t.Context(), owner, clock, Lease)
		if err != nil {
			t.Fatalf("%s claims nothing at +%s: %v", owner, clock.Sub(now), err)
		}
		queue{p}.Do(t.Context(), job, owner)
	}
	// The bucket goes: server a fails five times in a row, each retry
	// waiting its turn.
	if err := os.RemoveAll(bucket); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		do(a, "a")
		clock = clock.Add(retryAfter(i) + time.Second)
	}
	// The bucket is back; server b publishes the CRL.
	if err := os.Mkdir(bucket, 0o700); err != nil {
		t.Fatal(err)
	}
	do(b, "b")
	if _, err := os.Stat(filepath.Join(bucket, Key(ca, ca.CRL()))); err != nil {
		t.Fatalf("server b published no CRL: %v", err)
	}
	// Days later a revocation asks for a CRL; server a takes it, and the
	// bucket is away for a moment.
	clock = clock.Add(48 * time.Hour)
	if err := db.WantCRL(t.Context(), ca.ID); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(bucket); err != nil {
		t.Fatal(err)
	}
	do(a, "a")
	if err := os.Mkdir(bucket, 0o700); err != nil {
		t.Fatal(err)
	}
	// The first failure in a row is tried again 30 s later.
	clock = clock.Add(Retry + time.Second)
	job, err := db.ClaimCRL(t.Context(), "b", clock, Lease)
	if errors.Is(err, openpca.ErrNotFound) {
		a.mu.Lock()
		n := a.failures[ca.ID].n
		a.mu.Unlock()
		t.Fatalf("the first failure after another server's CRL is not tried again after %s: server a counts %d failures in a row, and waits %s", Retry, n, retryAfter(n))
	}
	if err != nil {
		t.Fatal(err)
	}
	queue{b}.Do(t.Context(), job, "b")
}
