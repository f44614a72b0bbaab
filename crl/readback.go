package crl

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/openpca/openpca"
)

// readBacks are when, after it wrote a CRL, the publisher reads it back.
// A server that died while it wrote a CRL may have left its request on
// the way (held by a proxy, or resent by its kernel for up to about 15
// minutes): landing after a newer CRL of another server's, it would put
// back fewer revoked certificates under a lower number, for days. A CRL
// read back older than the one written is followed by another. A write
// held longer than the last read-back is put right by the CA's next CRL.
var readBacks = []time.Duration{2 * time.Minute, 20 * time.Minute}

const (
	// readBackPoll is how often the publisher looks for read-backs due.
	readBackPoll = 30 * time.Second
	// readBackTries is how many reads that fail (the bucket out of
	// reach) a read-back is given before it is given up for the next.
	readBackTries = 5
	// writeTimeout bounds the write of a CRL to its bucket, and
	// writeRate adds to it by the CRL's size: a bucket out of reach would
	// hold the CA's CRL on this server for the S3 client's retries of
	// minutes each, renewing its lease, while another server could write
	// it. A CRL of a million entries, about 50 MB, has 5 minutes more.
	writeTimeout = 2 * time.Minute
	writeRate    = 160 << 10 // bytes a second
)

// writeTime is how long the write of a CRL of size bytes may take.
func (p *Publisher) writeTime(size int) time.Duration {
	return p.writeTimeout + time.Duration(size)*time.Second/writeRate
}

// written is a CRL the publisher wrote, to read back.
type written struct {
	object   openpca.Object
	issuer   []byte // the CA certificate's subject, the CRL's issuer
	number   int64
	size     int
	due      []time.Time
	failures int
}

// readBackState is the publisher's CRLs to read back, one by CA: the
// latest written here.
type readBackState struct {
	mu      sync.Mutex
	written map[string]*written
	stop    context.CancelFunc
	done    sync.WaitGroup
}

// startReadBacks reads back CRLs as they are due, until stopReadBacks.
func (p *Publisher) startReadBacks() {
	ctx, stop := context.WithCancel(context.Background())
	p.readBack.stop = stop
	p.readBack.done.Go(func() {
		t := time.NewTicker(readBackPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				p.readBackDue(ctx)
			}
		}
	})
}

func (p *Publisher) stopReadBacks() {
	p.readBack.stop()
	p.readBack.done.Wait()
}

// wrote has the CRL number of ca, of size bytes, just written to o, read
// back later.
func (p *Publisher) wrote(ca *openpca.CA, o openpca.Object, number int64, size int) {
	cert, err := p.cfg.Keys.Certificate(ca)
	if err != nil {
		return // it signed the CRL: not to be
	}
	w := &written{object: o, issuer: cert.RawSubject, number: number, size: size}
	for _, d := range readBacks {
		w.due = append(w.due, p.cfg.Now().Add(d))
	}
	p.readBack.mu.Lock()
	defer p.readBack.mu.Unlock()
	p.readBack.written[ca.ID] = w
}

// readBackDue reads back the CRLs due, and asks for another CRL of a CA
// whose bucket holds an older one than it wrote.
func (p *Publisher) readBackDue(ctx context.Context) {
	now := p.cfg.Now()
	due := map[string]*written{}
	p.readBack.mu.Lock()
	for id, w := range p.readBack.written {
		if !w.due[0].After(now) {
			due[id] = w
		}
	}
	p.readBack.mu.Unlock()
	for id, w := range due {
		number, err := p.readNumber(ctx, w)
		if ctx.Err() != nil {
			return
		}
		p.readBack.mu.Lock()
		if p.readBack.written[id] != w {
			p.readBack.mu.Unlock() // a newer CRL was written meanwhile
			continue
		}
		older := err == nil && number < w.number
		switch {
		case older, errors.Is(err, errNotACRL), errors.Is(err, openpca.ErrBucketAccess):
			delete(p.readBack.written, id) // no other read would tell more
		case err != nil:
			if w.failures++; w.failures < readBackTries {
				break
			}
			// Given up for the next: a bucket away for minutes leaves
			// the later read-back.
			w.failures = 0
			if w.due = w.due[1:]; len(w.due) == 0 {
				delete(p.readBack.written, id)
			}
		case len(w.due) == 1:
			delete(p.readBack.written, id)
		default:
			w.due = w.due[1:]
		}
		p.readBack.mu.Unlock()
		log := p.cfg.Logger.With("ca_id", id, "bucket", w.object.Bucket, "key", w.object.Key, "number", w.number)
		switch {
		case older:
			log.ErrorContext(ctx, "the CA's CRL in its bucket is older than the one this server wrote: a late write of a server that died as it wrote; another CRL is published", "found", number)
			// Claimed at the workers' next look, within Poll.
			if err := p.cfg.Store.WantCRL(ctx, id); err != nil {
				log.ErrorContext(ctx, "asking for a CRL", "error", err)
			}
		case errors.Is(err, errNotACRL):
			log.WarnContext(ctx, "the object in the CA's CRL's place is not a CRL of the CA: written over by someone else", "error", err)
		case errors.Is(err, openpca.ErrBucketAccess):
			log.WarnContext(ctx, "reading back a CRL written: the server's credentials cannot read the bucket (s3:GetObject), and a CRL put back by a late write would go unnoticed", "error", err)
		case err != nil:
			log.WarnContext(ctx, "reading back a CRL written", "error", err)
		}
	}
}

// errNotACRL is an object in a CRL's place that is not one of its CA's.
var errNotACRL = errors.New("not a CRL of the CA")

// readNumber returns the CRL number of the CRL in w's place.
func (p *Publisher) readNumber(ctx context.Context, w *written) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.writeTime(w.size))
	defer cancel()
	r, err := p.cfg.Objects.Get(ctx, w.object.Bucket, w.object.Key)
	if errors.Is(err, openpca.ErrNotFound) {
		return 0, errors.Join(errNotACRL, err) // removed by the bucket's owner
	}
	if err != nil {
		return 0, err
	}
	defer r.Close()
	// A CRL older than the one written is smaller, or not by much (its
	// expired entries not yet left out): what else the bucket's owner
	// may have put there is not read whole.
	limit := int64(max(4*w.size, 1<<20))
	der, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return 0, err
	}
	if int64(len(der)) > limit {
		return 0, errNotACRL
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil || !bytes.Equal(crl.RawIssuer, w.issuer) || crl.Number == nil || !crl.Number.IsInt64() {
		return 0, errors.Join(errNotACRL, err)
	}
	return crl.Number.Int64(), nil
}
