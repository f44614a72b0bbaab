package crl

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/localfs"
)

// TestReadBack: a CRL read back older than the one written (a late write
// of a server that died as it wrote) is followed by another; one read back
// as written is read twice and let be; an object that is not the CA's CRL
// is not answered with CRLs.
func TestReadBack(t *testing.T) {
	for _, tt := range []struct {
		name   string
		over   func(first []byte) []byte // what lands over the second CRL; nil: nothing
		wanted bool
	}{
		{"nothing lands over it", nil, false},
		{"the first CRL lands over it", func(first []byte) []byte { return first }, true},
		{"another object lands over it", func([]byte) []byte { return []byte("not a CRL") }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			db, objects, _ := newCRLStores(t, "crls")
			now := time.Now().UTC().Truncate(time.Second)
			ca, key, cert := newCRLCA(t, db, "111122223333", "crls", now)
			p := newPublisher(Config{Store: db, Objects: objects, Keys: caKey{key, cert}, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
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
			publish()
			if tt.over != nil {
				if err := objects.Put(ctx, openpca.Object{Bucket: "crls", Key: Key(ca, ca.CRL())}, bytes.NewReader(tt.over(first))); err != nil {
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

// hung is an object store whose writes never answer.
type hung struct{ openpca.ObjectStore }

func (hung) Put(ctx context.Context, _ openpca.Object, _ io.Reader) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestWriteTimeout: a bucket that does not answer fails the CRL's write in
// its time, not the S3 client's, and the CRL is let go, for any server to
// take after the retry's wait.
func TestWriteTimeout(t *testing.T) {
	ctx := t.Context()
	db, objects, _ := newCRLStores(t, "crls")
	now := time.Now().UTC().Truncate(time.Second)
	_, key, cert := newCRLCA(t, db, "111122223333", "crls", now)
	var logs bytes.Buffer
	p := newPublisher(Config{Store: db, Objects: hung{objects}, Keys: caKey{key, cert}, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }})
	p.writeTimeout = 50 * time.Millisecond
	job, err := db.ClaimCRL(ctx, "a", now, Lease)
	if err != nil {
		t.Fatal(err)
	}
	// The job's context ends only as a job's does, cancelled.
	jctx, cancel := context.WithCancel(ctx)
	defer time.AfterFunc(10*time.Second, cancel).Stop()
	queue{p}.Do(jctx, job, "a")
	if !strings.Contains(logs.String(), "publishing a CRL") || !strings.Contains(logs.String(), context.DeadlineExceeded.Error()) {
		t.Fatalf("a write to a bucket that does not answer:\n%s", logs.String())
	}
	if _, err := db.ClaimCRL(ctx, "b", now.Add(Retry), Lease); err != nil {
		t.Errorf("the CRL is not let go after a write that failed: %v", err)
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
	p := newPublisher(Config{Store: db, Objects: failing{objects}, Keys: caKey{key, cert}, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	p.wrote(ca, openpca.Object{Bucket: "crls", Key: Key(ca, ca.CRL())}, 2, 100)
	now = now.Add(readBacks[0])
	for range readBackTries {
		p.readBackDue(ctx)
	}
	w := p.readBack.written[ca.ID]
	if w == nil || len(w.due) != 1 || w.failures != 0 {
		t.Fatalf("after the first read-back's tries: %+v, want the second read-back left", w)
	}
	now = now.Add(readBacks[1])
	for range readBackTries {
		p.readBackDue(ctx)
	}
	if n := len(p.readBack.written); n != 0 {
		t.Errorf("%d read-backs left after every try failed", n)
	}
}
