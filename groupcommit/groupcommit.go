// Package groupcommit batches concurrent writes into shared transactions,
// so that many requests pay for one durable commit (one fsync) instead of
// one each, while every caller still returns only once its own write is
// committed.
//
// Each write runs inside a savepoint of the shared transaction: a write
// that fails is rolled back alone and the others still commit.
package groupcommit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Write is one caller's work inside a shared transaction. It must use ctx
// for its queries, not a context of its own: the batch's context outlives
// any one caller.
type Write func(ctx context.Context, tx *sql.Tx) error

// Committer runs Writes in batches. While one batch commits, new writes
// queue up and form the next batch, so batches grow with the load without
// any timer adding latency when the load is light.
type Committer struct {
	db       *sql.DB
	maxBatch int
	// Savepoint statements, prepared once.
	savepoint, rollbackTo, release *sql.Stmt
	queue                          chan *request
	done                           chan struct{}

	mu     sync.RWMutex // held for reading while sending on queue
	closed bool

	writes, batches atomic.Uint64
	commitNanos     atomic.Int64
}

// Stats counts a Committer's work since it started.
type Stats struct {
	Writes  uint64        // writes committed or refused
	Batches uint64        // transactions
	Commit  time.Duration // time spent in transactions
}

// Stats returns the Committer's counters.
func (c *Committer) Stats() Stats {
	return Stats{Writes: c.writes.Load(), Batches: c.batches.Load(), Commit: time.Duration(c.commitNanos.Load())}
}

type request struct {
	ctx    context.Context
	write  Write
	result chan error
}

// New starts a Committer writing to db with at most maxBatch writes per
// transaction. Close stops it.
func New(ctx context.Context, db *sql.DB, maxBatch int) (*Committer, error) {
	c := &Committer{db: db, maxBatch: maxBatch, queue: make(chan *request, maxBatch), done: make(chan struct{})}
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{{&c.savepoint, "SAVEPOINT write"}, {&c.rollbackTo, "ROLLBACK TO SAVEPOINT write"}, {&c.release, "RELEASE SAVEPOINT write"}} {
		st, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			return nil, fmt.Errorf("groupcommit: %w", err)
		}
		*p.st = st
	}
	go c.run()
	return c, nil
}

// ErrClosed is returned for writes submitted after Close.
var ErrClosed = errors.New("groupcommit: closed")

// Do runs w in the next batch and returns once the batch has committed:
// nil means w's effects are durable. An error from w is returned as is,
// with w's effects rolled back.
func (c *Committer) Do(ctx context.Context, w Write) error {
	r := &request{ctx: ctx, write: w, result: make(chan error, 1)}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return ErrClosed
	}
	select {
	case c.queue <- r:
		c.mu.RUnlock()
	case <-ctx.Done():
		c.mu.RUnlock()
		return ctx.Err()
	}
	// Once queued, wait for the outcome even if ctx ends: the write may
	// already be committed, and the caller must not be told otherwise.
	return <-r.result
}

// Close stops accepting writes, finishes the queued ones and returns.
func (c *Committer) Close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.queue)
	}
	c.mu.Unlock()
	<-c.done
	c.savepoint.Close()
	c.rollbackTo.Close()
	c.release.Close()
}

func (c *Committer) run() {
	defer close(c.done)
	for first := range c.queue {
		batch := []*request{first}
	fill:
		for len(batch) < c.maxBatch {
			select {
			case r, ok := <-c.queue:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		c.commit(batch)
	}
}

// commit runs a batch in one transaction. Writes rarely fail, so the batch
// first runs without savepoints; if a write fails, the transaction is
// rolled back and the batch runs again with a savepoint around each write,
// so that the failed one is undone alone. If the transaction itself fails,
// each write is retried in a transaction of its own, so that one bad write
// cannot fail the others.
func (c *Committer) commit(batch []*request) {
	var live []*request
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
	start := time.Now()
	defer func() {
		c.batches.Add(1)
		c.writes.Add(uint64(len(live)))
		c.commitNanos.Add(int64(time.Since(start)))
	}()
	errs, err := c.tx(live, false)
	if errors.Is(err, errWriteFailed) {
		errs, err = c.tx(live, true)
	}
	if err != nil && len(live) > 1 {
		for _, r := range live {
			errs, err := c.tx([]*request{r}, false)
			if err != nil && !errors.Is(err, errWriteFailed) {
				errs[0] = err
			}
			r.result <- errs[0]
		}
		return
	}
	for i, r := range live {
		if err != nil && !errors.Is(err, errWriteFailed) {
			errs[i] = err
		}
		r.result <- errs[i]
	}
}

// errWriteFailed reports that tx, without savepoints, rolled back because
// a write failed.
var errWriteFailed = errors.New("groupcommit: a write failed")

// tx runs writes in one transaction and returns each write's own error,
// and the error of the transaction as a whole. With savepoints, a failed
// write is undone alone; without, it rolls the transaction back and tx
// returns errWriteFailed.
func (c *Committer) tx(writes []*request, savepoints bool) ([]error, error) {
	errs := make([]error, len(writes))
	ctx := context.Background()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return errs, fmt.Errorf("groupcommit: begin: %w", err)
	}
	savepoint, rollbackTo, release := tx.StmtContext(ctx, c.savepoint), tx.StmtContext(ctx, c.rollbackTo), tx.StmtContext(ctx, c.release)
	exec := func(st *sql.Stmt, what string) error {
		if _, err := st.ExecContext(ctx); err != nil {
			tx.Rollback()
			return fmt.Errorf("groupcommit: %s: %w", what, err)
		}
		return nil
	}
	for i, r := range writes {
		if savepoints {
			if err := exec(savepoint, "savepoint"); err != nil {
				return errs, err
			}
		}
		errs[i] = r.write(ctx, tx)
		switch {
		case errs[i] != nil && !savepoints:
			tx.Rollback()
			return errs, errWriteFailed
		case errs[i] != nil:
			if err := exec(rollbackTo, "rollback to savepoint"); err != nil {
				return errs, err
			}
		}
		if savepoints {
			if err := exec(release, "release savepoint"); err != nil {
				return errs, err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return errs, fmt.Errorf("groupcommit: commit: %w", err)
	}
	return errs, nil
}
