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
	queue    chan *request
	done     chan struct{}

	mu     sync.RWMutex // held for reading while sending on queue
	closed bool
}

type request struct {
	ctx    context.Context
	write  Write
	result chan error
}

// New starts a Committer writing to db with at most maxBatch writes per
// transaction. Close stops it.
func New(db *sql.DB, maxBatch int) *Committer {
	c := &Committer{db: db, maxBatch: maxBatch, queue: make(chan *request, maxBatch), done: make(chan struct{})}
	go c.run()
	return c
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

// commit runs a batch in one transaction. If the transaction itself fails
// (not one write, which its savepoint contains), each write is retried in
// a transaction of its own, so that one bad write cannot fail the others.
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
	errs, err := c.tx(live)
	if err != nil && len(live) > 1 {
		for _, r := range live {
			errs, err := c.tx([]*request{r})
			if err != nil {
				errs[0] = err
			}
			r.result <- errs[0]
		}
		return
	}
	for i, r := range live {
		if err != nil {
			errs[i] = err
		}
		r.result <- errs[i]
	}
}

// tx runs writes in one transaction and returns each write's own error,
// and the error of the transaction as a whole.
func (c *Committer) tx(writes []*request) ([]error, error) {
	errs := make([]error, len(writes))
	ctx := context.Background()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return errs, fmt.Errorf("groupcommit: begin: %w", err)
	}
	for i, r := range writes {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT write"); err != nil {
			tx.Rollback()
			return errs, fmt.Errorf("groupcommit: savepoint: %w", err)
		}
		if errs[i] = r.write(ctx, tx); errs[i] != nil {
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT write"); err != nil {
				tx.Rollback()
				return errs, fmt.Errorf("groupcommit: rollback to savepoint: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT write"); err != nil {
			tx.Rollback()
			return errs, fmt.Errorf("groupcommit: release savepoint: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return errs, fmt.Errorf("groupcommit: commit: %w", err)
	}
	return errs, nil
}
