// Package groupcommit batches concurrent writes into shared transactions,
// so that many requests pay for one durable commit (one fsync) instead of
// one each, while every caller still returns only once its own write is
// committed.
//
// A Batcher hands the items of a batch to one function, which may write
// them together (one multi-row INSERT for all, say). A Committer runs
// arbitrary writes one after the other in the shared transaction, each in
// a savepoint, so that a failed write is undone alone.
package groupcommit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// BatchFunc writes a batch of items in tx and returns each item's own
// error (an item that failed must have left nothing in tx), or an error of
// the batch as a whole, which rolls the transaction back: then each item of
// a batch of several runs again in a transaction of its own, and the error
// of a batch of one is its item's. It must use ctx for its queries: the
// batch's context outlives any one caller.
type BatchFunc[T any] func(ctx context.Context, tx *sql.Tx, items []T) ([]error, error)

// Batcher writes items in batches. While one batch commits, new items
// queue up and form the next batch, so batches grow with the load without
// any timer adding latency when the load is light.
type Batcher[T any] struct {
	db       *sql.DB
	maxBatch int
	timeout  time.Duration
	write    BatchFunc[T]
	// order, if set, orders the items of a batch before they are written.
	order func(a, b T) int
	// check, if set, runs before each COMMIT: an error rolls the batch
	// back (SetCheck).
	check func() error
	// key and contended, if set, fail at once the writes of a key whose
	// write waited out a lock (SetContended).
	key       func(T) string
	contended func(error) bool
	outcome   Outcome
	queue     chan *request[T]
	done      chan struct{}

	mu     sync.RWMutex // held for reading while sending on queue
	closed bool

	items, batches atomic.Uint64
	commitNanos    atomic.Int64
}

// Stats counts a Batcher's work since it started.
type Stats struct {
	Writes  uint64        // items committed or refused
	Batches uint64        // transactions, a failed batch's reruns included
	Commit  time.Duration // time spent in transactions
}

// Add sums two Stats.
func (s Stats) Add(o Stats) Stats {
	return Stats{Writes: s.Writes + o.Writes, Batches: s.Batches + o.Batches, Commit: s.Commit + o.Commit}
}

// Stats returns the Batcher's counters.
func (b *Batcher[T]) Stats() Stats {
	return Stats{Writes: b.items.Load(), Batches: b.batches.Load(), Commit: time.Duration(b.commitNanos.Load())}
}

type request[T any] struct {
	ctx    context.Context
	item   T
	result chan error
}

// DefaultTimeout bounds a batch's transaction: a database that hangs fails
// the batch's writes rather than holding their callers, and the batches
// queued behind it, for good.
const DefaultTimeout = 30 * time.Second

// NewBatcher starts a Batcher writing to db with at most maxBatch items per
// transaction, each transaction given at most timeout (0 for
// DefaultTimeout). Close stops it.
func NewBatcher[T any](db *sql.DB, maxBatch int, timeout time.Duration, write BatchFunc[T]) *Batcher[T] {
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	b := &Batcher[T]{db: db, maxBatch: maxBatch, timeout: timeout, write: write, queue: make(chan *request[T], maxBatch), done: make(chan struct{})}
	go b.run()
	return b
}

// SetCheck has check run before each commit, once the batch is written:
// an error of it rolls the batch back, as a failed commit does. Call it
// before the first Do.
func (b *Batcher[T]) SetCheck(check func() error) { b.check = check }

// SetOutcome has the Batcher ask the database, as o says, how a batch
// whose COMMIT failed ended. Call it before the first Do.
func (b *Batcher[T]) SetOutcome(o Outcome) { b.outcome = o }

// SetContended has a write whose error contended reports (it waited out
// the database's lock_timeout for a lock that another transaction holds,
// a frozen server's, say) fail, with that error, the writes after it of
// the same key (key gives an item's, a CA's id) that run again alone once
// their batch failed, rather than each wait as long again: a batch's
// writes of other keys, and the batches behind it, then wait once for
// the lock, not once for each of its writes. Items of key "" are never
// failed so.
func (b *Batcher[T]) SetContended(key func(T) string, contended func(error) bool) {
	b.key, b.contended = key, contended
}

// KeyError is an error of a batch as a whole (BatchFunc's) that one
// key's items caused: if it says they waited out a lock (SetContended),
// they fail at once when the batch's items run again alone, rather than
// wait as long again before the others are answered.
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }

// locked are the keys whose writes waited out a lock in one batch, and
// the error each got.
type locked map[string]error

// note records key as locked if err says its write waited out a lock.
func (l locked) note(contended func(error) bool, key string, err error) {
	if err != nil && key != "" && contended != nil && contended(err) {
		l[key] = err
	}
}

// ErrClosed is returned for items submitted after Close.
var ErrClosed = errors.New("groupcommit: closed")

// ErrAbandoned wraps the error of a caller that stopped waiting for its
// write: the write may still commit.
var ErrAbandoned = errors.New("groupcommit: stopped waiting; the write may still commit")

// Do writes item in the next batch and returns once the batch has
// committed: nil means the item's write is durable. The item's own error
// is returned as is, with its write rolled back. If ctx ends first, Do
// returns at once: with ctx's error if the write had not started, and
// with ErrAbandoned once it may have, since it may still commit.
func (b *Batcher[T]) Do(ctx context.Context, item T) error {
	r := &request[T]{ctx: ctx, item: item, result: make(chan error, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
	select {
	case b.queue <- r:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-r.result:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrAbandoned, ctx.Err())
	}
}

// Close stops accepting items, finishes the queued ones and returns.
func (b *Batcher[T]) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	<-b.done
}

func (b *Batcher[T]) run() {
	defer close(b.done)
	for first := range b.queue {
		batch := []*request[T]{first}
	fill:
		for len(batch) < b.maxBatch {
			select {
			case r, ok := <-b.queue:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		b.commit(batch)
	}
}

// commit writes a batch in one transaction. If the transaction fails
// before its COMMIT, or its COMMIT fails and the database says it was
// aborted, each item is retried in a transaction of its own, so that one
// bad item cannot fail the others; one whose COMMIT's outcome the database
// cannot tell is not (ErrUncertain), and its items share its error.
func (b *Batcher[T]) commit(batch []*request[T]) {
	var live []*request[T]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.result <- err // the caller gave up before its write started
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	if b.order != nil {
		slices.SortStableFunc(live, func(x, y *request[T]) int { return b.order(x.item, y.item) })
	}
	start := time.Now()
	errs, err := b.tx(live)
	switch {
	// A batch that failed on its own may have failed for one item: each
	// runs again alone. One that ran out of time would only do so again,
	// and one whose COMMIT failed, unless the database said it aborted,
	// may have committed: written again, its writes would be made twice
	// (an issuance signed again under a new serial when it found its own
	// serial taken, a key use logged twice).
	case err != nil && len(live) > 1 && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrUncertain):
		held := locked{}
		if ke, ok := errors.AsType[*KeyError](err); ok {
			held.note(b.contended, ke.Key, ke.Err)
		}
		for i, r := range live {
			var key string
			if b.key != nil {
				key = b.key(r.item)
			}
			if err, ok := held[key]; ok {
				errs[i] = err
				continue
			}
			alone, err := b.tx([]*request[T]{r})
			if err != nil {
				alone[0] = err
			}
			errs[i] = alone[0]
			held.note(b.contended, key, errs[i])
		}
	case err != nil:
		for i := range errs {
			errs[i] = err
		}
	}
	// Counted before any caller hears: one that reads Stats once its
	// write returned finds it there (TestLargeBatch missed the last batch
	// once in CI).
	b.items.Add(uint64(len(live)))
	b.commitNanos.Add(int64(time.Since(start)))
	for i, r := range live {
		r.result <- errs[i]
	}
}

// tx writes items in one transaction, and returns each item's error and
// the transaction's.
func (b *Batcher[T]) tx(batch []*request[T]) ([]error, error) {
	b.batches.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	items := make([]T, len(batch))
	for i, r := range batch {
		items[i] = r.item
	}
	noErrs := make([]error, len(batch))
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return noErrs, b.timedOut(ctx, fmt.Errorf("groupcommit: begin: %w", err))
	}
	errs, err := b.write(ctx, tx, items)
	if err != nil {
		tx.Rollback()
		return noErrs, b.timedOut(ctx, err)
	}
	if b.check != nil {
		if err := b.check(); err != nil {
			tx.Rollback()
			return noErrs, fmt.Errorf("groupcommit: before commit: %w", err)
		}
	}
	if err := b.outcome.Commit(ctx, b.db, tx); err != nil {
		return noErrs, b.timedOut(ctx, err)
	}
	return errs, nil
}

// ErrUncertain wraps the error of a transaction whose COMMIT failed and
// whose outcome the database could not tell: it may have committed before
// its answer was lost (a connection cut, a crash, a failover between the
// two), so its writes are neither known to be durable nor known to be
// undone. A batch of them is not written again.
var ErrUncertain = errors.New("groupcommit: commit failed, and may have committed")

// Outcome says how to ask a database how a transaction ended whose COMMIT
// failed, on another connection: whether the writes of a COMMIT that got
// no answer are durable. The zero Outcome cannot ask.
type Outcome struct {
	// ID is a query of the transaction's id, as text, run in the
	// transaction just before its COMMIT: NULL if it has none, having
	// written nothing.
	ID string
	// Status is a query of how the transaction whose id is its one
	// argument ended: "committed", "aborted", or any other answer
	// ("in progress", NULL) while the database cannot tell.
	Status string
}

// outcomeWait bounds how long Commit asks how a failed COMMIT ended: a
// database restarting after a crash answers within it, and one that is
// away leaves the writes uncertain, their callers told so, rather than
// hold them, and the writes queued behind, for longer.
const outcomeWait = 5 * time.Second

// Commit commits tx, a transaction of db. If the COMMIT fails, it asks the
// database, on another connection of db, how the transaction ended: it
// returns nil if it committed, the COMMIT's error if it was aborted, and
// that error wrapped in ErrUncertain if the database could not tell
// within outcomeWait. The question costs one statement more per
// transaction, for its id.
func (o Outcome) Commit(ctx context.Context, db *sql.DB, tx *sql.Tx) error {
	var id sql.NullString
	if o.ID != "" {
		if err := tx.QueryRowContext(ctx, o.ID).Scan(&id); err != nil {
			tx.Rollback()
			return fmt.Errorf("groupcommit: transaction id: %w", err)
		}
	}
	err := tx.Commit()
	switch {
	case err == nil:
		return nil
	case o.ID != "" && !id.Valid:
		return err // it wrote nothing: nothing is in doubt
	case id.Valid:
		switch o.status(db, id.String) {
		case "committed":
			return nil
		case "aborted":
			return err
		}
	}
	return fmt.Errorf("%w: %w", ErrUncertain, err)
}

// status asks how the transaction id ended until the database says
// committed or aborted, or outcomeWait has passed: a COMMIT still under
// way (its session not yet ended) is in progress, and a database
// restarting is not reached at first.
func (o Outcome) status(db *sql.DB, id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), outcomeWait)
	defer cancel()
	for pause := 10 * time.Millisecond; ; pause = min(2*pause, 500*time.Millisecond) {
		var status sql.NullString
		if err := db.QueryRowContext(ctx, o.Status, id).Scan(&status); err == nil && (status.String == "committed" || status.String == "aborted") {
			return status.String
		}
		select {
		case <-ctx.Done():
			return ""
		case <-time.After(pause):
		}
	}
}

// ErrTimedOut is the error of the writes of a batch that ran out of its
// time: the database did not answer, not the writes failing. It is a
// context.DeadlineExceeded.
var ErrTimedOut = fmt.Errorf("groupcommit: the database did not finish a batch in time: %w", context.DeadlineExceeded)

// timedOut says that err came of the batch's deadline, if it did: a
// driver may report an interrupted query in words of its own.
func (b *Batcher[T]) timedOut(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v): %w", ErrTimedOut, b.timeout, err)
	}
	return err
}

// Write is one caller's work inside a shared transaction. It must use ctx
// for its queries, not a context of its own.
type Write func(ctx context.Context, tx *sql.Tx) error

// keyed is a Write and the key of the rows it locks first (DoFor).
type keyed struct {
	key string
	w   Write
}

// Committer runs Writes in batches, one after the other in the shared
// transaction, each inside a savepoint so that a write that fails is
// undone alone and the others still commit. A batch of one needs no
// savepoint: its transaction holds nothing else.
type Committer struct {
	*Batcher[keyed]
	savepoint, rollbackTo, release *sql.Stmt // prepared once
}

// New starts a Committer writing to db with at most maxBatch writes per
// transaction, each given at most timeout (0 for DefaultTimeout). Close
// stops it.
func New(ctx context.Context, db *sql.DB, maxBatch int, timeout time.Duration) (*Committer, error) {
	c := &Committer{}
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{{&c.savepoint, "SAVEPOINT write"}, {&c.rollbackTo, "ROLLBACK TO SAVEPOINT write"}, {&c.release, "RELEASE SAVEPOINT write"}} {
		st, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			c.closeStatements()
			return nil, fmt.Errorf("groupcommit: %w", err)
		}
		*p.st = st
	}
	c.Batcher = NewBatcher(db, maxBatch, timeout, c.writes)
	c.Batcher.order = func(a, b keyed) int { return strings.Compare(a.key, b.key) }
	return c, nil
}

// Do runs w in the next batch, as Batcher.Do does, after the writes of
// the batch that DoFor gave a key.
func (c *Committer) Do(ctx context.Context, w Write) error {
	return c.Batcher.Do(ctx, keyed{key: unkeyed, w: w})
}

// unkeyed is the key of writes given none, last in the order of keys.
const unkeyed = "\xff"

// SetContended has a write whose error contended reports (it waited out a
// lock) fail at once the writes after it in its batch of the same key
// that DoFor gave, as Batcher.SetContended says: they would wait for the
// same lock, each as long, and the batch's other writes with them.
func (c *Committer) SetContended(contended func(error) bool) {
	c.Batcher.SetContended(func(k keyed) string {
		if k.key == unkeyed {
			return ""
		}
		return k.key
	}, contended)
}

// DoFor is Do for a write whose locks are those of the rows of key (a
// CA's, say): the writes of a batch run in the order of their keys, so
// that two batches (of two servers on one database) that lock the rows of
// the same keys take them in the same order, rather than each wait for a
// row the other holds, until the database aborts one.
func (c *Committer) DoFor(ctx context.Context, key string, w Write) error {
	return c.Batcher.Do(ctx, keyed{key: key, w: w})
}

// Close stops accepting writes, finishes the queued ones and returns.
func (c *Committer) Close() {
	c.Batcher.Close()
	c.closeStatements()
}

func (c *Committer) closeStatements() {
	for _, st := range []*sql.Stmt{c.savepoint, c.rollbackTo, c.release} {
		if st != nil {
			st.Close()
		}
	}
}

// writes runs writes one after the other, each in a savepoint.
func (c *Committer) writes(ctx context.Context, tx *sql.Tx, writes []keyed) ([]error, error) {
	errs := make([]error, len(writes))
	if len(writes) == 1 {
		if errs[0] = writes[0].w(ctx, tx); errs[0] != nil {
			return nil, errs[0] // roll back what it did
		}
		return errs, nil
	}
	savepoint, rollbackTo, release := tx.StmtContext(ctx, c.savepoint), tx.StmtContext(ctx, c.rollbackTo), tx.StmtContext(ctx, c.release)
	held := locked{}
	for i, w := range writes {
		var key string
		if c.key != nil {
			key = c.key(w)
		}
		if err, ok := held[key]; ok {
			errs[i] = err
			continue
		}
		if _, err := savepoint.ExecContext(ctx); err != nil {
			return nil, fmt.Errorf("groupcommit: savepoint: %w", err)
		}
		if errs[i] = w.w(ctx, tx); errs[i] != nil {
			if _, err := rollbackTo.ExecContext(ctx); err != nil {
				return nil, fmt.Errorf("groupcommit: rollback to savepoint: %w", err)
			}
			held.note(c.contended, key, errs[i])
		}
		if _, err := release.ExecContext(ctx); err != nil {
			return nil, fmt.Errorf("groupcommit: release savepoint: %w", err)
		}
	}
	return errs, nil
}
