package crl

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/openpca/openpca"
)

// TestFailuresInARowAcrossServers: servers of one database publish a CA's
// CRLs in turn, and count the failures in a row of its CRL as one (README:
// "tried again after 30 seconds, then twice as long each time, up to 15
// minutes"). A server whose writes failed five times in a row, after
// which another server published the CA's CRL, counts its next failure as
// the first in a row, and retries it 30 s later, not 15 minutes; servers
// that fail in turns wait twice as long each time, as one server would.
func TestFailuresInARowAcrossServers(t *testing.T) {
	db, objects, dir := newCRLStores(t, "crls")
	bucket := filepath.Join(dir, "s3", "crls")
	now := time.Now().UTC().Truncate(time.Second)
	ca, key, cert := newCRLCA(t, db, "111122223333", "crls", now)
	clock := now
	cfg := Config{Store: db, DefaultAccount: "111122223333", Objects: objects, Keys: caKey{key, cert}, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return clock }}
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
	do(b, "b")
	// The bucket goes again, and the servers take turns failing.
	clock = clock.Add(time.Second)
	if err := db.WantCRL(t.Context(), ca.ID); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(bucket); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 4; n++ {
		if n%2 == 1 {
			do(a, "a")
		} else {
			do(b, "b")
		}
		if job, err := db.ClaimCRL(t.Context(), "c", clock.Add(retryAfter(n)-time.Second), Lease); !errors.Is(err, openpca.ErrNotFound) {
			t.Fatalf("after %d failures in a row, by servers in turn, the CRL is tried again before %s: %+v, %v", n, retryAfter(n), job, err)
		}
		clock = clock.Add(retryAfter(n) + time.Second)
	}
}

// deletingKey is a CA's key whose signature of a CRL comes as another
// server deletes the CA.
type deletingKey struct {
	caKey
	deleteCA func()
}

func (k deletingKey) Signer(ctx context.Context, ca *openpca.CA) (crypto.Signer, error) {
	return deletingSigner{k.key, k.deleteCA}, nil
}

type deletingSigner struct {
	crypto.Signer
	deleteCA func()
}

func (s deletingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	s.deleteCA()
	return s.Signer.Sign(r, digest, opts)
}

// TestCAStatusChangedWhileSigned: a CRL signed as another server deletes
// its CA is refused at its record, and dropped, which is no failure: the
// CA is looked at again a Poll later, not 30 s, with no failure counted
// and no ERROR line, and, deleted, it gets no CRL.
func TestCAStatusChangedWhileSigned(t *testing.T) {
	db, objects, dir := newCRLStores(t, "crls")
	now := time.Now().UTC().Truncate(time.Second)
	ca, key, cert := newCRLCA(t, db, "111122223333", "crls", now)
	var logs bytes.Buffer
	deleteCA := func() {
		stored, err := db.FindCA(t.Context(), ca.AccountID, ca.ID)
		if err != nil {
			t.Fatal(err)
		}
		stored.Status, stored.RestorableUntil = openpca.CertificateAuthorityStatusDeleted, now.AddDate(0, 0, 30)
		if err := db.UpdateCA(t.Context(), stored, nil); err != nil {
			t.Fatal(err)
		}
	}
	p := newPublisher(Config{Store: db, DefaultAccount: "111122223333", Objects: objects, Keys: deletingKey{caKey{key, cert}, deleteCA},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }})
	job, err := db.ClaimCRL(t.Context(), "a", now, Lease)
	if err != nil {
		t.Fatal(err)
	}
	queue{p}.Do(t.Context(), job, "a")
	if strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "dropped") {
		t.Errorf("the log:\n%s", logs.String())
	}
	if _, err := db.ClaimCRL(t.Context(), "b", now, Lease); err == nil {
		t.Error("the CA is looked at again at once, where each look would sign another CRL")
	}
	again, err := db.ClaimCRL(t.Context(), "b", now.Add(Poll), Lease)
	if err != nil {
		t.Fatalf("the CA is not looked at again a Poll later: %v", err)
	}
	if again.Failures != 0 {
		t.Errorf("%d failures counted", again.Failures)
	}
	if _, err := os.Stat(filepath.Join(dir, "s3", "crls", Key(ca, ca.CRL()))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a CRL was written: %v", err)
	}
}

// TestCRLMetrics: a CRL whose bucket is gone counts as failed, and its CA
// as failing, on this server's metrics and on another's that shares the
// database; once a CRL is written the CA is failing no more.
func TestCRLMetrics(t *testing.T) {
	db, objects, dir := newCRLStores(t, "crls")
	bucket := filepath.Join(dir, "s3", "crls")
	now := time.Now().UTC().Truncate(time.Second)
	_, key, cert := newCRLCA(t, db, "111122223333", "crls", now)
	clock := now
	cfg := Config{Store: db, DefaultAccount: "111122223333", Objects: objects, Keys: caKey{key, cert}, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return clock }}
	a, b := newPublisher(cfg), newPublisher(cfg)
	want := func(p *Publisher, written, failed, failing int) {
		t.Helper()
		expected := fmt.Sprintf(`# HELP openpca_crl_publications_total CRLs this server wrote to their buckets (written), and its attempts to publish one that failed (failed; see the log; one whose CRL was written but not recorded after counts in both).
# TYPE openpca_crl_publications_total counter
openpca_crl_publications_total{outcome="failed"} %d
openpca_crl_publications_total{outcome="written"} %d
# HELP openpca_crls_failing Certificate authorities whose last attempt to publish a CRL failed, on any server sharing the database; each is tried again after 30 s, then twice as long each time, up to 15 minutes.
# TYPE openpca_crls_failing gauge
openpca_crls_failing %d
`, failed, written, failing)
		if err := testutil.CollectAndCompare(p.Collector(), strings.NewReader(expected)); err != nil {
			t.Error(err)
		}
	}
	do := func(p *Publisher) {
		t.Helper()
		job, err := db.ClaimCRL(t.Context(), "a", clock, Lease)
		if err != nil {
			t.Fatalf("nothing to claim at +%s: %v", clock.Sub(now), err)
		}
		queue{p}.Do(t.Context(), job, "a")
	}
	want(a, 0, 0, 0)
	if err := os.RemoveAll(bucket); err != nil {
		t.Fatal(err)
	}
	do(a)
	want(a, 0, 1, 1)
	want(b, 0, 0, 1)
	if err := os.Mkdir(bucket, 0o700); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(Retry + time.Second)
	do(a)
	want(a, 1, 1, 0)
}
