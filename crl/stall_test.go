package crl

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/localfs"
	"github.com/openpca/openpca/sqlite"
	"github.com/openpca/openpca/sqlstore"
)

// caKey is a CA's key and certificate, as the service's Keys give them.
type caKey struct {
	key  crypto.Signer
	cert *x509.Certificate
}

func (k caKey) Signer(context.Context, *openpca.CA) (crypto.Signer, error) { return k.key, nil }
func (k caKey) Certificate(*openpca.CA) (*x509.Certificate, error)         { return k.cert, nil }
func (caKey) SigningError(_ crypto.Signer, err error) error                { return err }

// newCRLStores opens a SQLite store and a local object store with
// buckets, in a folder of the test's, which it returns too.
func newCRLStores(t *testing.T, buckets ...string) (*sqlstore.DB, *localfs.Store, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "openpca.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	objects, err := localfs.New(filepath.Join(dir, "s3"), "http://pca.example/s3", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range buckets {
		if err := os.MkdirAll(filepath.Join(dir, "s3", b), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return db, objects, dir
}

// newCRLCA stores an active root CA of account whose CRLs go to bucket,
// and returns it with its key and certificate.
func newCRLCA(t *testing.T, db *sqlstore.DB, account, bucket string, now time.Time) (*openpca.CA, crypto.Signer, *x509.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CRL CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: []byte{1, 2, 3, 4}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	id := uuid.NewString()
	enabled := true
	ca := &openpca.CA{ID: id, AccountID: account, ARN: openpca.CAARN("us-east-1", account, id), Type: openpca.CertificateAuthorityTypeRoot,
		Status: openpca.CertificateAuthorityStatusActive, CreatedAt: now, LastStateChangeAt: now, Certificate: der, NotBefore: cert.NotBefore, NotAfter: cert.NotAfter,
		Config: openpca.CertificateAuthorityConfiguration{KeyAlgorithm: openpca.KeyAlgorithmEcPrime256v1, SigningAlgorithm: openpca.SigningAlgorithmSha256withecdsa,
			Subject: &openpca.ASN1Subject{CommonName: "CRL CA"}},
		Revocation: &openpca.RevocationConfiguration{CrlConfiguration: &openpca.CrlConfiguration{Enabled: &enabled, S3BucketName: bucket}},
		KeyStore:   "software", KeyHandle: []byte{1}, CSR: []byte{2}, UsageMode: openpca.CertificateAuthorityUsageModeGeneralPurpose}
	if _, err := db.CreateCA(t.Context(), ca, openpca.CSRUse(ca, "tester", "r"), openpca.IdempotencyToken{Now: now}, 10); err != nil {
		t.Fatal(err)
	}
	return ca, key, cert
}

// stalled is the local object store of a server that stalls while it
// writes a CRL: meanwhile, another server takes the CRL over (the first's
// lease ran out) and writes a newer one; then the first's write lands,
// over it, and either its worker, seeing the lease lost, ends the job's
// context, or the write's answer is lost.
type stalled struct {
	*localfs.Store
	other    func()
	cancel   context.CancelFunc
	answered bool
}

func (s *stalled) Put(ctx context.Context, o openpca.Object, r io.Reader) error {
	s.other()
	if s.answered {
		s.cancel()
	}
	err := s.Store.Put(context.WithoutCancel(ctx), o, r) // the write was on its way
	if err == nil && !s.answered {
		err = errors.New("the connection was reset")
	}
	return err
}

// TestStalledWriterAsksForAnother: a CRL written after its server lost its
// hold, over a newer one, is followed by another, whether the server finds
// its hold lost or the write's answer is lost.
func TestStalledWriterAsksForAnother(t *testing.T) {
	for _, answered := range []bool{true, false} {
		t.Run(fmt.Sprintf("answered=%v", answered), func(t *testing.T) { stalledWriter(t, answered) })
	}
}

func stalledWriter(t *testing.T, answered bool) {
	ctx := context.Background()
	db, objects, _ := newCRLStores(t, "crls")
	now := time.Now().UTC().Truncate(time.Second)
	ca, key, cert := newCRLCA(t, db, "111122223333", "crls", now)
	job, err := db.ClaimCRL(ctx, "a", now, Lease)
	if err != nil {
		t.Fatal(err)
	}
	jctx, cancel := context.WithCancel(ctx)
	store := &stalled{Store: objects, cancel: cancel, answered: answered, other: func() {
		later := now.Add(2 * Lease)
		other, err := db.ClaimCRL(ctx, "b", later, Lease)
		if err != nil {
			t.Fatalf("the other server's claim: %v", err)
		}
		if err := db.RecordCRL(ctx, other, "b", openpca.CRLUse(ca, other.Number+1, later, later.Add(time.Hour), &openpca.CRLEntries{}, []byte("newer")), 0, []openpca.CertificateAuthorityStatus{openpca.CertificateAuthorityStatusActive}); err != nil {
			t.Fatal(err)
		}
		if err := objects.Put(ctx, openpca.Object{Bucket: "crls", Key: Key(ca, ca.CRL())}, bytes.NewReader([]byte("newer"))); err != nil {
			t.Fatal(err)
		}
		if err := db.FinishCRL(ctx, ca.ID, "b", other.Wanted, later, -1, later.Add(time.Hour), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}}
	p := newPublisher(Config{Store: db, DefaultAccount: "111122223333", Objects: store, Keys: caKey{key, cert}, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	if err := p.publish(jctx, job, "a"); err == nil {
		t.Error("a CRL written after its hold was lost was taken as published")
	}
	// The older CRL is in the bucket: another is wanted, to go over it.
	if _, err := db.ClaimCRL(ctx, "c", now.Add(3*Lease), Lease); err != nil {
		t.Errorf("no CRL is wanted after a late one was written over a newer one: %v", err)
	}
}

// slowBucket is a local object store whose writes to one bucket wait
// until release is closed, as a bucket that answers in minutes.
type slowBucket struct {
	*localfs.Store
	bucket  string
	release chan struct{}
}

func (s *slowBucket) Put(ctx context.Context, o openpca.Object, r io.Reader) error {
	if o.Bucket == s.bucket {
		<-s.release
	}
	return s.Store.Put(ctx, o, r)
}

// TestSlowBucketHoldsBackNoOther: while one CA's bucket takes its time
// over a CRL, another CA's CRL is published.
func TestSlowBucketHoldsBackNoOther(t *testing.T) {
	db, objects, dir := newCRLStores(t, "slow", "fast")
	now := time.Now().UTC().Truncate(time.Second)
	// Of CAs that never had a CRL, the first made is claimed first.
	slowCA, key, cert := newCRLCA(t, db, "111122223333", "slow", now)
	fastCA, _, _ := newCRLCA(t, db, "111122223333", "fast", now)
	store := &slowBucket{Store: objects, bucket: "slow", release: make(chan struct{})}
	p := Start(Config{Store: db, DefaultAccount: "111122223333", Objects: store, Keys: caKey{key, cert}, Logger: slog.New(slog.DiscardHandler), Owner: "a"})
	defer p.Close()
	defer close(store.release)
	p.Wake()
	fast := filepath.Join(dir, "s3", "fast", Key(fastCA, fastCA.CRL()))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(fast); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CRL of %s while the bucket of %s is slow", fastCA.ARN, slowCA.ARN)
		}
	}
}
