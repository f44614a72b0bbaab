package crl

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/readback"
	"github.com/openpca/openpca/localfs"
	"github.com/openpca/openpca/pki"
)

// crlSigner signs a CRL of number with entries revoked certificates, as
// the CA signs them or with a key of the CA's name that is not its.
type crlSigner func(number int64, entries int, own bool) []byte

// TestReadBack: a CRL read back older than the one written (a late write
// of a server that died as it wrote) is followed by another, however much
// larger; one read back as written, or newer, is read twice and let be; an
// object that is not a CRL the CA signed is not answered with CRLs.
func TestReadBack(t *testing.T) {
	for _, tt := range []struct {
		name   string
		over   func(first []byte, sign crlSigner) []byte // what lands over the second CRL; nil: nothing
		wanted bool
		slow   bool // the bucket's reads take longer than readTimeout, but not between two bytes
	}{
		{"nothing lands over it", nil, false, false},
		{"the first CRL lands over it", func(first []byte, _ crlSigner) []byte { return first }, true, false},
		// An older CRL may be much larger: its entries have since expired.
		{"an older CRL of 40,000 entries lands over it", func(_ []byte, sign crlSigner) []byte { return sign(1, 40000, true) }, true, false},
		{"an older CRL of 4,000 entries lands over it, read slowly", func(_ []byte, sign crlSigner) []byte { return sign(1, 4000, true) }, true, true},
		{"a newer CRL lands over it", func(_ []byte, sign crlSigner) []byte { return sign(3, 1, true) }, false, false},
		{"an older CRL of the CA's name, not its key, lands over it", func(_ []byte, sign crlSigner) []byte { return sign(1, 1, false) }, false, false},
		{"another object lands over it", func([]byte, crlSigner) []byte { return []byte("not a CRL") }, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			db, objects, _ := newCRLStores(t, "crls")
			now := time.Now().UTC().Truncate(time.Second)
			ca, key, cert := newCRLCA(t, db, "111122223333", "crls", now)
			var store openpca.ObjectStore = objects
			if tt.slow {
				store = slowReads{objects}
			}
			p := newPublisher(Config{Store: db, DefaultAccount: "111122223333", Objects: store, Keys: caKey{key, cert}, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
			if tt.slow {
				p.readTimeout = time.Second
			}
			publish := func() {
				t.Helper()
				job, err := db.ClaimCRL(ctx, "a", now, Lease)
				if err != nil {
					t.Fatal(err)
				}
				if err := p.publish(ctx, job, "a"); err != nil {
					t.Fatal(err)
				}
			}
			read := func() []byte {
				t.Helper()
				r, err := objects.Get(ctx, "crls", Key(ca, ca.CRL()))
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				b, _ := io.ReadAll(r)
				return b
			}
			publish()
			first := read()
			if err := db.WantCRL(ctx, ca.ID); err != nil {
				t.Fatal(err)
			}
			now = now.Add(time.Second) // a CRL of its own second
			publish()
			sign := func(number int64, entries int, own bool) []byte {
				issuer, signer := cert, key
				if !own {
					signer, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
					tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), RawSubject: cert.RawSubject, NotBefore: cert.NotBefore, NotAfter: cert.NotAfter,
						IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
					der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
					if err != nil {
						t.Fatal(err)
					}
					issuer, _ = x509.ParseCertificate(der)
				}
				var revoked pki.RevokedCertificates
				for i := range entries {
					if err := revoked.Add(big.NewInt(int64(i+1)), now, 1); err != nil {
						t.Fatal(err)
					}
				}
				der, err := pki.CreateRevocationList(&x509.RevocationList{Number: big.NewInt(number), ThisUpdate: now, NextUpdate: now.Add(time.Hour),
					SignatureAlgorithm: x509.ECDSAWithSHA256}, &revoked, issuer, signer)
				if err != nil {
					t.Fatal(err)
				}
				return der
			}
			if tt.over != nil {
				if err := objects.Put(ctx, openpca.Object{Bucket: "crls", Key: Key(ca, ca.CRL())}, bytes.NewReader(tt.over(first, sign))); err != nil {
					t.Fatal(err)
				}
			}
			now = now.Add(readBacks[0])
			p.readBackDue(ctx)
			if tt.wanted {
				if _, err := db.ClaimCRL(ctx, "b", now, Lease); err != nil {
					t.Errorf("no CRL is wanted after an older one landed over the last: %v", err)
				}
				return
			}
			now = now.Add(readBacks[1])
			p.readBackDue(ctx)
			if _, err := db.ClaimCRL(ctx, "b", now, Lease); !errors.Is(err, openpca.ErrNotFound) {
				t.Errorf("a CRL is wanted: %v", err)
			}
			if n := len(p.readBack.written); n != 0 {
				t.Errorf("%d CRLs still to read back", n)
			}
		})
	}
}

// staleReads is an object store whose reads of CRLs give old once it is
// set, as a cache before the bucket, or a replica behind it, may.
type staleReads struct {
	*localfs.Store
	old []byte
}

func (s *staleReads) Get(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
	if s.old == nil {
		return s.Store.Get(ctx, bucket, key)
	}
	return io.NopCloser(bytes.NewReader(s.old)), nil
}

// TestStaleReads: a bucket whose reads keep serving an older CRL than
// the one written has the CA given maxPublished CRLs for it in a row, and
// then no more, rather than one every few minutes for good, until an hour
// after the last, or a CRL read back as written.
func TestStaleReads(t *testing.T) {
	ctx := t.Context()
	db, objects, _ := newCRLStores(t, "crls")
	now := time.Now().UTC().Truncate(time.Second)
	ca, key, cert := newCRLCA(t, db, "111122223333", "crls", now)
	store := &staleReads{Store: objects}
	var logs bytes.Buffer
	p := newPublisher(Config{Store: db, DefaultAccount: "111122223333", Objects: store, Keys: caKey{key, cert}, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }})
	publish := func() bool {
		t.Helper()
		job, err := db.ClaimCRL(ctx, "a", now, Lease)
		if errors.Is(err, openpca.ErrNotFound) {
			return false
		}
		if err == nil {
			err = p.publish(ctx, job, "a")
		}
		if err != nil {
			t.Fatal(err)
		}
		return true
	}
	publish()
	r, err := objects.Get(ctx, "crls", Key(ca, ca.CRL()))
	if err != nil {
		t.Fatal(err)
	}
	stale, _ := io.ReadAll(r)
	r.Close()
	store.old = stale
	if err := db.WantCRL(ctx, ca.ID); err != nil {
		t.Fatal(err)
	}
	published := -1 // the CRL wanted above
	for range 2 * maxPublished {
		now = now.Add(time.Second) // a CRL of its own second
		if !publish() {
			break
		}
		published++
		now = now.Add(readBacks[0])
		p.readBackDue(ctx)
	}
	if published != maxPublished {
		t.Errorf("%d CRLs published for older ones read back, want %d", published, maxPublished)
	}
	if !strings.Contains(logs.String(), "no other is published for it") {
		t.Errorf("the last older CRL read back is not logged as such:\n%s", logs.String())
	}
	// A CRL wanted, published and read back; then whether another is
	// wanted for it.
	round := func() bool {
		t.Helper()
		if err := db.WantCRL(ctx, ca.ID); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
		publish()
		now = now.Add(readBacks[0])
		p.readBackDue(ctx)
		now = now.Add(time.Second)
		return publish()
	}
	// An hour after the last CRL given, the count starts again.
	now = now.Add(publishedFor)
	for i := range maxPublished + 1 {
		if round() != (i < maxPublished) {
			t.Errorf("an hour after the last CRL given for an older one read back, CRL %d given: %v", i+1, i < maxPublished)
		}
	}
	// The bucket's reads catch up: a CRL read back as written counts the
	// next older one anew.
	store.old = nil
	round()
	store.old = stale
	if !round() {
		t.Error("no CRL published for an older one read back, after one read back as written")
	}
}

// slowReads is an object store whose reads give 8 KB each tenth of a
// second, until their context ends, as an S3 client's do.
type slowReads struct{ *localfs.Store }

func (s slowReads) Get(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
	r, err := s.Store.Get(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	return slowReader{r, ctx}, nil
}

type slowReader struct {
	io.ReadCloser
	ctx context.Context
}

func (s slowReader) Read(p []byte) (int, error) {
	select {
	case <-s.ctx.Done():
		return 0, s.ctx.Err()
	case <-time.After(100 * time.Millisecond):
	}
	return s.ReadCloser.Read(p[:min(len(p), 8<<10)])
}

// hung is an object store whose writes never answer.
type hung struct{ openpca.ObjectStore }

func (hung) Put(ctx context.Context, _ openpca.Object, _ io.Reader) error {
	<-ctx.Done()
	return ctx.Err()
}

// hungKey is a CA key in a token that hangs: its signer, as the
// service's Keys bind it to the context it was had with, answers once
// that context ends, unavailable, and not before.
type hungKey struct{ caKey }

func (k hungKey) Signer(ctx context.Context, _ *openpca.CA) (crypto.Signer, error) {
	return hungSigner{k.key, ctx}, nil
}

type hungSigner struct {
	crypto.Signer
	ctx context.Context
}

func (s hungSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	<-s.ctx.Done()
	return nil, openpca.Errorf(openpca.CodeServiceUnavailable, "The key store did not answer in time (%v).", context.Cause(s.ctx))
}

// TestTimeouts: a bucket that does not answer fails the CRL's write in
// its time, not the S3 client's, and a CA key whose store hangs fails the
// CRL in its time; the CRL's round would otherwise renew its lease for
// good. The CRL is let go, for any server to take after the retry's
// wait.
func TestTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name string
		hang func(objects *localfs.Store, key caKey) (openpca.ObjectStore, Keys)
		set  func(p *Publisher)
	}{
		{"write", func(objects *localfs.Store, key caKey) (openpca.ObjectStore, Keys) { return hung{objects}, key },
			func(p *Publisher) { p.writeTimeout = 50 * time.Millisecond }},
		{"signature", func(objects *localfs.Store, key caKey) (openpca.ObjectStore, Keys) { return objects, hungKey{key} },
			func(p *Publisher) { p.signTimeout = 50 * time.Millisecond }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			db, objects, _ := newCRLStores(t, "crls")
			now := time.Now().UTC().Truncate(time.Second)
			_, key, cert := newCRLCA(t, db, "111122223333", "crls", now)
			var logs bytes.Buffer
			store, keys := tc.hang(objects, caKey{key, cert})
			p := newPublisher(Config{Store: db, DefaultAccount: "111122223333", Objects: store, Keys: keys, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }})
			tc.set(p)
			job, err := db.ClaimCRL(ctx, "a", now, Lease)
			if err != nil {
				t.Fatal(err)
			}
			// The job's context ends only as a job's does, cancelled.
			jctx, cancel := context.WithCancel(ctx)
			defer time.AfterFunc(10*time.Second, cancel).Stop()
			queue{p}.Do(jctx, job, "a")
			if !strings.Contains(logs.String(), "publishing a CRL") || !strings.Contains(logs.String(), context.DeadlineExceeded.Error()) {
				t.Fatalf("a CRL whose %s hangs:\n%s", tc.name, logs.String())
			}
			if _, err := db.ClaimCRL(ctx, "b", now.Add(Retry), Lease); err != nil {
				t.Errorf("the CRL is not let go after a %s that failed: %v", tc.name, err)
			}
		})
	}
}

// failing is an object store whose reads fail, as a bucket out of reach.
type failing struct{ *localfs.Store }

func (failing) Get(context.Context, string, string) (io.ReadCloser, error) {
	return nil, errors.New("connection refused")
}

// TestReadBackFails: reads that fail are tried again at each look, then
// given up for the next read-back, not for good.
func TestReadBackFails(t *testing.T) {
	ctx := t.Context()
	db, objects, _ := newCRLStores(t, "crls")
	now := time.Now().UTC().Truncate(time.Second)
	ca, key, cert := newCRLCA(t, db, "111122223333", "crls", now)
	p := newPublisher(Config{Store: db, DefaultAccount: "111122223333", Objects: failing{objects}, Keys: caKey{key, cert}, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	p.wrote(ca, openpca.Object{Bucket: "crls", Key: Key(ca, ca.CRL())}, 2, 100)
	now = now.Add(readBacks[0])
	for range readback.Tries {
		p.readBackDue(ctx)
	}
	w := p.readBack.written[ca.ID]
	if w == nil || len(w.Times) != 1 || w.Failures != 0 {
		t.Fatalf("after the first read-back's tries: %+v, want the second read-back left", w)
	}
	now = now.Add(readBacks[1])
	for range readback.Tries {
		p.readBackDue(ctx)
	}
	if n := len(p.readBack.written); n != 0 {
		t.Errorf("%d read-backs left after every try failed", n)
	}
}

// hungReads is an object store whose reads of one key never answer.
type hungReads struct {
	*localfs.Store
	key string
}

func (h hungReads) Get(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
	if key == h.key {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return h.Store.Get(ctx, bucket, key)
}

// TestReadBackTimeout: a read-back's read that does not answer fails in
// the read's time, not a CRL write's, and the other CAs' read-backs due are
// read meanwhile.
func TestReadBackTimeout(t *testing.T) {
	db, objects, _ := newCRLStores(t, "crls")
	now := time.Now().UTC().Truncate(time.Second)
	hungCA, key, cert := newCRLCA(t, db, "111122223333", "crls", now)
	otherCA, _, _ := newCRLCA(t, db, "111122223333", "crls", now)
	p := newPublisher(Config{Store: db, DefaultAccount: "111122223333", Objects: hungReads{objects, Key(hungCA, hungCA.CRL())}, Keys: caKey{key, cert},
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	p.writeTimeout, p.readTimeout = time.Hour, 50*time.Millisecond
	for _, ca := range []*openpca.CA{hungCA, otherCA} {
		p.wrote(ca, openpca.Object{Bucket: "crls", Key: Key(ca, ca.CRL())}, 2, 100)
	}
	now = now.Add(readBacks[0])
	// Were the read's time a write's, the pass would end with its context.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	p.readBackDue(ctx)
	if ctx.Err() != nil {
		t.Fatal("a read-back's read that does not answer held the pass for a CRL write's time")
	}
	if w := p.readBack.written[hungCA.ID]; w == nil || w.Failures != 1 {
		t.Errorf("the read-back of the bucket that does not answer: %+v, want one failure", w)
	}
	if w := p.readBack.written[otherCA.ID]; w != nil {
		t.Errorf("the other CA's read-back, of no CRL: %+v, want it given up", w)
	}
}
