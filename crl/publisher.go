package crl

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/worker"
)

// Publication timing. A new CRL is wanted at once after a revocation: the
// server that revokes wakes its publisher, and the others look every Poll.
// A failed publication is retried after Retry, and after twice as long
// each time it fails again, up to MaxRetry (AWS retries every 15
// minutes): each attempt signs a CRL, a use of the CA's key that its log
// records, and a bucket that refuses them would otherwise take one every
// 30 seconds, all day.
const (
	Poll     = 2 * time.Second
	Lease    = time.Minute
	Retry    = 30 * time.Second
	MaxRetry = 15 * time.Minute
)

// pause is how long a CA's next CRL waits after one of revoked entries,
// and, on each server, how much longer its account's next CRL waits:
// 50 µs an entry, past two hundred, about nine times what the CRL cost
// the server (a CRL of 97,000 entries, 4.8 MB, took 0.57 s of CPU to read,
// sign, record and write), so that one CA's CRLs take a tenth of a worker
// at most; revocations meanwhile wait for the next together, seconds for
// a large CA (AWS updates CRLs about 30 minutes after a revocation), and
// OCSP shows them at once. A trickle of revocations, one a second to each
// of four CAs of 97,000 revoked certificates, had them sign 3 CRLs a
// second, and took the CPU from every other account; forty such CAs of
// one account would, by the CA's pause alone. By entries, not by the time
// a CRL took, so that a CRL of a few revocations, however slow its
// bucket, is never held back. Past two hundred, not a few thousand: CRLs
// of 1,999 entries, 18 ms of CPU each, that an account had its fifty CAs
// sign at its request rate (a CRL configuration changed back and forth)
// took a third of the CPU from every other account.
func pause(revoked int) time.Duration {
	if revoked < 200 {
		return 0
	}
	// At most MaxRetry: a wait longer than openpca.ClockStep would be
	// taken for one a clock set before it stepped back.
	return min(time.Duration(revoked)*50*time.Microsecond, MaxRetry)
}

// workers is how many CRLs a server publishes at once: a bucket that
// answers slowly (a write may take minutes before it fails) holds up one
// of them, not every CA's CRLs.
const workers = 4

// retryAfter is how long to wait before the next attempt after failures
// in a row.
func retryAfter(failures int) time.Duration {
	d := Retry
	for i := 1; i < failures && d < MaxRetry; i++ {
		d *= 2
	}
	return min(d, MaxRetry)
}

// Store is what the publisher keeps and reads.
type Store interface {
	openpca.CRLStore
	FindCA(ctx context.Context, accountID, id string) (*openpca.CA, error)
	FindBucket(ctx context.Context, name string) (*openpca.Bucket, error)
}

// Keys gives the publisher CA keys and certificates.
type Keys interface {
	Signer(ctx context.Context, ca *openpca.CA) (crypto.Signer, error)
	Certificate(ca *openpca.CA) (*x509.Certificate, error)
	// SigningError returns err, of signing with signer, or the key
	// store's error if what signer last signed was wrong: the store's
	// fault, not the CRL's.
	SigningError(signer crypto.Signer, err error) error
}

// Config is what a Publisher works with.
type Config struct {
	Store   Store
	Objects openpca.ObjectStore
	Keys    Keys
	Logger  *slog.Logger
	// Owner names this server among those sharing the store.
	Owner string
	// DefaultAccount owns the buckets no account was given.
	DefaultAccount string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Publisher publishes the CRLs the store says are wanted or due, in the
// background, until it is closed.
type Publisher struct {
	cfg  Config
	pool *worker.Pool[*openpca.CRLJob]
	// started is closed once pool is set, which workers' timers wait for
	// (nil when the workers are not started, in tests).
	started chan struct{}

	// pause is how long after a CRL of so many entries the CA's next
	// waits, and its account's: the function pause, but in tests.
	pause func(revoked int) time.Duration

	mu sync.Mutex
	// accounts are when accounts' next CRLs may be published here, for
	// those that must wait: their CRLs' pauses, added up.
	accounts map[string]time.Time

	// writeTimeout, readTimeout and signTimeout bound a CRL's write, a
	// read-back's read, and the opening of the CA's key and its
	// signature: the constants, but in tests.
	writeTimeout, readTimeout, signTimeout time.Duration
	readBack                               readBackState

	metrics *metrics
}

// Start starts a Publisher.
func Start(cfg Config) *Publisher {
	p := newPublisher(cfg)
	p.startReadBacks()
	p.started = make(chan struct{})
	p.pool = worker.Start(worker.Config{Name: "CRL", Owner: cfg.Owner, Workers: workers, Lease: Lease, Poll: Poll, Logger: cfg.Logger, Now: p.cfg.Now},
		queue{p})
	close(p.started)
	return p
}

// newPublisher makes a Publisher, its workers not started.
func newPublisher(cfg Config) *Publisher {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Publisher{cfg: cfg, pause: pause, accounts: map[string]time.Time{}, writeTimeout: writeTimeout, readTimeout: readTimeout, signTimeout: signTimeout,
		readBack: readBackState{written: map[string]*written{}, published: map[string]published{}}, metrics: newMetrics(cfg.Store, cfg.Now, cfg.Logger)}
}

// Collector reports the CRLs this server wrote and failed to, and the CAs
// whose CRLs fail on any server.
func (p *Publisher) Collector() prometheus.Collector { return p.metrics }

// Wake tells the publisher that a CRL is wanted.
func (p *Publisher) Wake() { p.pool.Wake() }

// Close stops the publisher; a CRL being published is taken over later,
// and the CRLs it wrote are not read back.
func (p *Publisher) Close() {
	p.pool.Close()
	p.stopReadBacks()
}

// queue is the publisher's side of the workers.
type queue struct{ p *Publisher }

func (q queue) Claim(ctx context.Context, owner string, now time.Time, lease time.Duration) (*openpca.CRLJob, error) {
	return q.p.cfg.Store.ClaimCRL(ctx, owner, now, lease)
}

func (q queue) Renew(ctx context.Context, job *openpca.CRLJob, owner string, until time.Time) error {
	return q.p.cfg.Store.RenewCRL(ctx, job.CAID, owner, until)
}

func (q queue) Do(ctx context.Context, job *openpca.CRLJob, owner string) {
	p := q.p
	if until := p.accountWaits(job.AccountID); !until.IsZero() {
		// Not a failure: the CA's CRL is still wanted, at its account's turn.
		if err := p.cfg.Store.ReleaseCRL(context.WithoutCancel(ctx), job.CAID, owner, until, false); err != nil {
			p.cfg.Logger.Error("releasing a CRL", "ca", job.CAID, "error", err)
		}
		p.wakeAt(until)
		return
	}
	err := p.publish(ctx, job, owner)
	if errors.Is(err, openpca.ErrCAState) {
		// The CA's status changed between the signing and the record
		// (deleted, say): the CRL signed goes nowhere, unlogged, as a
		// certificate so signed does. Not a failure, which would have a
		// CA restored at once wait 30 s and more for its CRL: the CA is
		// looked at again, as it is then, a Poll later. Not at once: in
		// the second its certificate ends, the store refuses what the CA
		// still allows, and each look would sign another CRL.
		p.cfg.Logger.InfoContext(ctx, "a CRL was signed as its CA's status changed, and dropped; the CA is looked at again", "ca", job.CAID)
		if err := p.cfg.Store.ReleaseCRL(context.WithoutCancel(ctx), job.CAID, owner, p.cfg.Now().Add(Poll), false); err != nil {
			p.cfg.Logger.Error("releasing a CRL", "ca", job.CAID, "error", err)
		}
		return
	}
	var wait waitUntil
	if errors.As(err, &wait) {
		if err := p.cfg.Store.ReleaseCRL(context.WithoutCancel(ctx), job.CAID, owner, time.Time(wait), false); err != nil {
			p.cfg.Logger.Error("releasing a CRL", "ca", job.CAID, "error", err)
		}
		p.wakeAt(time.Time(wait)) // a second at most
		return
	}
	if err != nil && ctx.Err() == nil {
		// The row of failures is the database's, so that servers taking
		// turns at a CA's failing CRL wait as one would.
		n := job.Failures + 1
		retry := retryAfter(n)
		p.metrics.attempts.WithLabelValues(outcomeFailed).Inc()
		p.cfg.Logger.Error("publishing a CRL", "ca", job.CAID, "error", err, "failures_in_a_row", n, "retry_in", retry)
		if err := p.cfg.Store.ReleaseCRL(context.WithoutCancel(ctx), job.CAID, owner, p.cfg.Now().Add(retry), true); err != nil {
			p.cfg.Logger.Error("releasing a CRL", "ca", job.CAID, "error", err)
		}
	}
}

// wakeAt has the workers look for CRLs again at t, rather than at the
// next Poll: a wait of milliseconds (a pause after a CRL of some hundred
// entries) must not become one of seconds.
func (p *Publisher) wakeAt(t time.Time) {
	if p.started == nil { // the workers are not started, in tests
		return
	}
	time.AfterFunc(t.Sub(p.cfg.Now()), func() {
		<-p.started
		p.pool.Wake()
	})
}

// accountWaits returns when account's next CRL may be published here, if
// that is later than now.
func (p *Publisher) accountWaits(account string) time.Time {
	now := p.cfg.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	until, ok := p.accounts[account]
	if !ok || !until.After(now) {
		delete(p.accounts, account)
		return time.Time{}
	}
	return until
}

// accountPaused has account's next CRL here wait d more, after those it
// waits for already: CRLs of its CAs published at once, each let through,
// add up their pauses.
func (p *Publisher) accountPaused(account string, d time.Duration) {
	now := p.cfg.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	from := p.accounts[account]
	if from.Before(now) {
		from = now
	}
	until := from.Add(d)
	if most := now.Add(MaxRetry); until.After(most) {
		until = most // as pause says
	}
	p.accounts[account] = until
}

// behindWait is how far this server's clock may be behind the last CRL's
// thisUpdate (a second of its own, or another server's a little ahead)
// for the next CRL to wait until it is past it, rather than be dated the
// same or earlier. Relying parties tell CRLs apart by thisUpdate alone:
// given two of one second, OpenSSL takes the first it finds, HTTP caches
// (Last-Modified) the one they hold, and a CRL listing a revocation made
// since was passed over for days; bulk revocations made that every time.
// A clock further behind (stepped back) has the CRL signed all the same.
const behindWait = time.Minute

// waitUntil is publish's answer when the CRL must wait, not a failure.
type waitUntil time.Time

func (w waitUntil) Error() string {
	return "the CRL waits until " + time.Time(w).Format(time.RFC3339)
}

// publish signs the CRL a job asks for, records the key use, and writes
// the CRL to the CA's bucket. A CA that no longer publishes CRLs (disabled
// configuration, no certificate yet, deleted or expired) gets none, and
// the job is done.
func (p *Publisher) publish(ctx context.Context, job *openpca.CRLJob, owner string) error {
	store := p.cfg.Store
	ca, err := store.FindCA(ctx, job.AccountID, job.CAID)
	if err != nil {
		return err
	}
	now := p.cfg.Now().UTC().Truncate(time.Second)
	cfg := ca.CRL()
	if cfg == nil || len(ca.Certificate) == 0 || !slices.Contains(openpca.RevocationStatuses, ca.StatusAt(now)) {
		// A last CRL dated ahead is dated now, else the store would ask
		// for another at once, again and again.
		var last time.Time
		if job.LastThisUpdate.After(now) {
			last = now
		}
		return store.FinishCRL(ctx, ca.ID, owner, job.Wanted, last, -1, time.Time{}, time.Time{})
	}
	if !now.After(job.LastThisUpdate) {
		if job.LastThisUpdate.Sub(now) < behindWait {
			return waitUntil(job.LastThisUpdate.Add(time.Second))
		}
		// Signed all the same: a CRL dated ahead would be refused as not yet
		// valid by relying parties on time. Its number still grows.
		p.cfg.Logger.WarnContext(ctx, "this server's clock is behind the last CRL's thisUpdate: the new CRL is dated earlier than the last",
			"ca", ca.ARN, "this_update", now, "last_this_update", job.LastThisUpdate)
	}
	// The bucket was the CA's account's when its configuration named it;
	// the operator may have given it to another account since.
	bucketOwner, err := openpca.BucketOwner(ctx, store, cfg.S3BucketName, p.cfg.DefaultAccount)
	if err != nil {
		return err
	}
	if bucketOwner != ca.AccountID {
		return fmt.Errorf("the S3 bucket %s belongs to account %s, not the CA's: its CRLs are neither signed nor written until its CrlConfiguration names one of its account's, or the bucket is given to it (openpca buckets create %s --account %s)",
			cfg.S3BucketName, bucketOwner, cfg.S3BucketName, ca.AccountID)
	}
	der, next, entries, err := p.sign(ctx, ca, cfg, job, now)
	if err != nil {
		return err
	}
	revoked := entries.Count
	use := openpca.CRLUse(ca, job.Number+1, now, next, entries, der)
	if err := store.RecordCRL(ctx, job, owner, use, entries.RevocationsBefore, openpca.RevocationStatuses); err != nil {
		return fmt.Errorf("recording the CRL's key use: %w", err)
	}
	// A server that lost its hold (stalled past its lease) must not write
	// its CRL over a newer one another server wrote since.
	if err := store.RenewCRL(ctx, ca.ID, owner, p.cfg.Now().Add(Lease)); err != nil {
		return fmt.Errorf("before writing the CRL: %w", err)
	}
	object := openpca.Object{Bucket: cfg.S3BucketName, Key: Key(ca, cfg), ContentType: "application/pkix-crl", ACL: cfg.S3ObjectAcl}
	wctx, cancel := context.WithTimeout(ctx, p.writeTime(len(der)))
	err = p.cfg.Objects.Put(wctx, object, bytes.NewReader(der))
	cancel()
	// Once the CRL may be written, what follows is done whatever the job's
	// context: a hold lost while it was written (the server stalled, and
	// the job was given up) may have let another server write a newer CRL,
	// which this one replaced. A new CRL, written last, puts that right.
	done := context.WithoutCancel(ctx)
	if err != nil {
		// It may have been written all the same (an answer lost), over a
		// newer one: asking for another costs a CRL.
		return errors.Join(fmt.Errorf("writing the CRL to bucket %s: %w", cfg.S3BucketName, err), store.WantCRL(done, ca.ID))
	}
	p.metrics.attempts.WithLabelValues(outcomeWritten).Inc()
	// Refresh at half the CRL's life, as AWS does.
	var notBefore time.Time
	if d := p.pause(revoked); d > 0 {
		notBefore = p.cfg.Now().Add(d)
		p.accountPaused(job.AccountID, d)
	}
	if err := store.FinishCRL(done, ca.ID, owner, job.Wanted, now, entries.RevocationsBefore, now.Add(next.Sub(now)/2), notBefore); err != nil {
		p.cfg.Logger.WarnContext(ctx, "a CRL was written after this server lost its hold on it, or could not record it; another is asked for, to be written over it",
			"ca", ca.ARN, "number", job.Number+1, "error", err)
		return errors.Join(err, store.WantCRL(done, ca.ID))
	}
	if !notBefore.IsZero() {
		p.wakeAt(notBefore) // for a CRL wanted meanwhile
	}
	p.wrote(ca, object, job.Number+1, len(der))
	p.cfg.Logger.InfoContext(ctx, "CRL published", "ca", ca.ARN, "number", job.Number+1, "revoked", revoked, "bucket", cfg.S3BucketName, "key", Key(ca, cfg))
	return nil
}
