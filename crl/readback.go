package crl

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/idleread"
	"github.com/openpca/openpca/internal/readback"
	"github.com/openpca/openpca/pki"
)

// readBacks are when, after it wrote a CRL, the publisher reads it back
// (readback.After). A server that died while it wrote a CRL may have left
// its request on the way: landing after a newer CRL of another server's,
// it would put back fewer revoked certificates under a lower number, for
// days. A CRL read back older than the one written is followed by
// another. A write held longer than the last read-back is put right by
// the CA's next CRL.
var readBacks = readback.After

const (
	// readBackPoll is how often the publisher looks for read-backs due.
	readBackPoll = 30 * time.Second
	// readTimeout bounds how long a read-back's read may go without a
	// byte: read-backs are read one after the other, and a bucket that
	// does not answer holds back the others'. A read has, in all, the
	// time of what it may read at writeRate.
	readTimeout = 30 * time.Second
	// readMax bounds what is read of an object read back, if the CRL
	// written was not a quarter of it: an older CRL may be much larger
	// than a newer one, whose expired entries have been left out, and the
	// object may be anyone's who can write to the bucket.
	readMax = 64 << 20
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
	object openpca.Object
	issuer *x509.Certificate
	sigAlg x509.SignatureAlgorithm
	number int64
	size   int
	*readback.Schedule
}

// readBackState is the publisher's CRLs to read back, one by CA: the
// latest written here.
type readBackState struct {
	mu      sync.Mutex
	written map[string]*written
	// published are the CRLs a CA was given in a row, by id, for older
	// ones read back: at most maxPublished within publishedFor.
	published map[string]published
	loop      *readback.Loop
}

// published counts the CRLs a CA was given in a row for older ones read
// back, and when the last was asked for.
type published struct {
	n    int
	last time.Time
}

// maxPublished bounds the CRLs a CA is given in a row for older ones read
// back in its bucket, within publishedFor of the last. A late write is
// put right by one; a bucket whose reads serve an older copy (a cache
// before it, a replica behind) would have a CRL signed, logged and
// written every few minutes, for good. The count is this server's, and
// ends with a CRL read back as written, or publishedFor after the last:
// another server may have written the CA's CRLs meanwhile, which this
// one does not read back.
const (
	maxPublished = 2
	publishedFor = time.Hour
)

// startReadBacks reads back CRLs as they are due, until stopReadBacks.
func (p *Publisher) startReadBacks() { p.readBack.loop = readback.Start(readBackPoll, p.readBackDue) }

func (p *Publisher) stopReadBacks() { p.readBack.loop.Stop() }

// wrote has the CRL number of ca, of size bytes, just written to o, read
// back later.
func (p *Publisher) wrote(ca *openpca.CA, o openpca.Object, number int64, size int) {
	cert, err := p.cfg.Keys.Certificate(ca)
	if err != nil {
		return // it signed the CRL: not to be
	}
	sigAlg, err := pki.SignatureAlgorithm(ca.Config.KeyAlgorithm, ca.Config.SigningAlgorithm)
	if err != nil {
		return // as above
	}
	w := &written{object: o, issuer: cert, sigAlg: sigAlg, number: number, size: size, Schedule: readback.NewSchedule(p.cfg.Now(), readBacks)}
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
		if w.DueAt(now) {
			due[id] = w
		}
	}
	for id, c := range p.readBack.published {
		if now.Sub(c.last) > publishedFor {
			delete(p.readBack.published, id)
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
		older := err == nil && number.Cmp(big.NewInt(w.number)) < 0
		republished := p.readBack.published[id].n
		switch {
		case older && republished < maxPublished:
			p.readBack.published[id] = published{republished + 1, now}
		case err == nil && !older:
			delete(p.readBack.published, id) // read back as written
		}
		switch {
		case older, errors.Is(err, errNotACRL), errors.Is(err, errTooLarge), errors.Is(err, openpca.ErrBucketAccess):
			delete(p.readBack.written, id) // no other read would tell more
		case w.Read(err != nil):
			delete(p.readBack.written, id)
		}
		p.readBack.mu.Unlock()
		log := p.cfg.Logger.With("ca_id", id, "bucket", w.object.Bucket, "key", w.object.Key, "number", w.number)
		switch {
		case older && republished >= maxPublished:
			log.ErrorContext(ctx, "the CA's CRL in its bucket is older than the one this server wrote, again after the CRLs published for it: the bucket's reads serve an older copy "+
				"(a cache before it, a replica behind), or another server keeps writing old ones; no other is published for it until a CRL is read back as written",
				"found", number, "published", republished)
		case older:
			log.ErrorContext(ctx, "the CA's CRL in its bucket is older than the one this server wrote: a late write of a server that died as it wrote; another CRL is published", "found", number)
			// Claimed at the workers' next look, within Poll; asked for
			// even if the server is stopping meanwhile.
			if err := p.cfg.Store.WantCRL(context.WithoutCancel(ctx), id); err != nil {
				log.ErrorContext(ctx, "asking for a CRL", "error", err)
			}
		case errors.Is(err, errNotACRL):
			log.WarnContext(ctx, "the object in the CA's CRL's place is not a CRL the CA signed: written over by someone else", "error", err)
		case errors.Is(err, errTooLarge):
			log.WarnContext(ctx, "the object in the CA's CRL's place is too large to read back: it is not checked", "error", err)
		case errors.Is(err, openpca.ErrBucketAccess):
			log.WarnContext(ctx, "reading back a CRL written: the server's credentials cannot read the bucket (s3:GetObject), and a CRL put back by a late write would go unnoticed", "error", err)
		case err != nil:
			log.WarnContext(ctx, "reading back a CRL written", "error", err)
		}
	}
}

// errNotACRL is an object in a CRL's place that is not one of its CA's.
var errNotACRL = errors.New("not a CRL of the CA")

// errTooLarge is an object in a CRL's place larger than is read back.
var errTooLarge = errors.New("too large to read back")

// readNumber returns the CRL number of the CRL in w's place, having
// checked that the CA signed it.
func (p *Publisher) readNumber(ctx context.Context, w *written) (*big.Int, error) {
	limit := int64(max(4*w.size, readMax))
	ctx, cancel := context.WithTimeout(ctx, p.readTimeout+time.Duration(limit)*time.Second/writeRate)
	defer cancel()
	idle := time.AfterFunc(p.readTimeout, cancel)
	defer idle.Stop()
	r, err := p.cfg.Objects.Get(ctx, w.object.Bucket, w.object.Key)
	if errors.Is(err, openpca.ErrNotFound) {
		return nil, errors.Join(errNotACRL, err) // removed by the bucket's owner
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	der, err := io.ReadAll(io.LimitReader(&idleread.Reader{R: r, Idle: idle, D: p.readTimeout}, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(der)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", errTooLarge, limit)
	}
	number, err := pki.CRLNumber(der, w.issuer, w.sigAlg)
	if err != nil {
		return nil, errors.Join(errNotACRL, err)
	}
	return number, nil
}
