package worker_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/worker"
)

// queue is a queue of named jobs in memory. Do reports each job it starts
// on started and then waits for its context or for finish.
type queue struct {
	mu      sync.Mutex
	waiting []string
	renew   error // what Renew answers
	renews  int
	hangs   int // claims to come that wait for their context's end
	// slow claims take claimTime, and renewals past the first
	// renewals hang until their context ends, if set.
	slow      bool
	claimTime time.Duration
	claimed   time.Time // the time the last claim was given
	stopped   time.Time // when the last job's context ended

	started chan string
	finish  chan struct{}
	ended   chan error // the cause of each job's context when it returns
}

func newQueue() *queue {
	return &queue{started: make(chan string, 10), finish: make(chan struct{}), ended: make(chan error, 10)}
}

func (q *queue) add(job string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.waiting = append(q.waiting, job)
}

func (q *queue) Claim(ctx context.Context, _ string, now time.Time, _ time.Duration) (string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.hangs > 0 {
		q.hangs--
		q.mu.Unlock()
		<-ctx.Done()
		q.mu.Lock()
		return "", ctx.Err()
	}
	if len(q.waiting) == 0 {
		return "", openpca.ErrNotFound
	}
	job := q.waiting[0]
	q.waiting = q.waiting[1:]
	q.claimed = now
	if q.slow {
		time.Sleep(q.claimTime)
	}
	return job, nil
}

func (q *queue) Renew(ctx context.Context, _, _ string, _ time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.renews++
	if q.slow && q.renews > 1 {
		q.mu.Unlock()
		<-ctx.Done()
		q.mu.Lock()
		return ctx.Err()
	}
	return q.renew
}

func (q *queue) Do(ctx context.Context, job string, _ string) {
	q.started <- job
	select {
	case <-ctx.Done():
	case <-q.finish:
	}
	q.mu.Lock()
	q.stopped = time.Now()
	q.mu.Unlock()
	q.ended <- context.Cause(ctx)
}

func start(q *queue, lease time.Duration) *worker.Pool[string] {
	return worker.Start(worker.Config{Name: "test", Owner: "a", Workers: 1, Lease: lease, Poll: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, worker.Queue[string](q))
}

func wait[T any](t *testing.T, c chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s", what)
	}
	panic("unreachable")
}

// TestWorker: a woken worker takes the job at once, renews its lease while
// it works, and goes on to the next; a lost lease ends the job with
// ErrLeaseLost, as does a lease that runs out because it could not be
// renewed; Close ends the job in progress and waits for it.
func TestWorker(t *testing.T) {
	t.Run("wake, renew, next", func(t *testing.T) {
		q := newQueue()
		p := start(q, 30*time.Millisecond)
		defer p.Close()
		q.add("one")
		q.add("two")
		p.Wake() // the poll is an hour away: only the wake can start it
		if job := wait(t, q.started, "job started"); job != "one" {
			t.Fatalf("started %q", job)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			q.mu.Lock()
			n := q.renews
			q.mu.Unlock()
			if n >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the lease was renewed %d times while the job ran", n)
			}
		}
		q.finish <- struct{}{}
		if cause := wait(t, q.ended, "job ended"); !errors.Is(cause, context.Canceled) && cause != nil {
			t.Errorf("a finished job's context ended with %v", cause)
		}
		if job := wait(t, q.started, "next job started"); job != "two" {
			t.Fatalf("started %q next", job)
		}
		q.finish <- struct{}{}
		wait(t, q.ended, "job ended")
	})
	t.Run("a claim that hangs", func(t *testing.T) {
		q := newQueue()
		q.hangs = 1
		p := start(q, 30*time.Millisecond)
		defer p.Close()
		q.add("one")
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			p.Wake()
			select {
			case <-q.started:
				q.finish <- struct{}{}
				wait(t, q.ended, "job ended")
				return
			default:
			}
			if time.Now().After(deadline) {
				t.Fatal("a claim that hung held the worker")
			}
		}
	})
	// A slow job's claim takes a while, and a renewal that failed is
	// followed by one that hangs: it stops before the lease the claim
	// took runs out, a third of a lease before, so that a clock of the
	// machine's a little slow does not take that third.
	for _, tc := range []struct {
		name  string
		renew error
		slow  bool
		lease time.Duration
	}{
		{"lease lost", openpca.ErrConflict, false, 30 * time.Millisecond},
		{"lease runs out unrenewed", errors.New("the store cannot be reached"), false, 30 * time.Millisecond},
		{"a slow claim, a renewal failed, one that hangs", errors.New("the store cannot be reached"), true, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newQueue()
			q.renew, q.slow, q.claimTime = tc.renew, tc.slow, tc.lease/4
			p := start(q, tc.lease)
			defer p.Close()
			q.add("one")
			p.Wake()
			wait(t, q.started, "job started")
			if cause := wait(t, q.ended, "job ended"); !errors.Is(cause, worker.ErrLeaseLost) {
				t.Errorf("the job's context ended with %v, want ErrLeaseLost", cause)
			}
			q.mu.Lock()
			defer q.mu.Unlock()
			if end := q.claimed.Add(tc.lease); tc.slow && !q.stopped.Before(end) {
				t.Errorf("the job stopped %v after its lease ran out", q.stopped.Sub(end))
			}
		})
	}
	t.Run("close", func(t *testing.T) {
		q := newQueue()
		p := start(q, time.Hour)
		q.add("one")
		p.Wake()
		wait(t, q.started, "job started")
		p.Close()
		select {
		case cause := <-q.ended:
			if !errors.Is(cause, context.Canceled) {
				t.Errorf("the job's context ended with %v, want Canceled", cause)
			}
		default:
			t.Error("Close returned with the job still running")
		}
	})
}
