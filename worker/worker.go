// Package worker runs the background work that servers sharing a store
// take turns at, such as audit reports and CRLs: a worker claims a job
// under a lease, renews the lease while it works, and looks for the next
// job when it is woken or at each tick. A server that dies leaves its
// leases to run out, and another server (or the same one, restarted: each
// start has an owner name of its own) takes its jobs over.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/openpca/openpca"
)

// Queue is where workers find jobs of one kind, and what they do with them.
type Queue[J any] interface {
	// Claim returns a waiting job for owner, leased until now+lease, or an
	// error wrapping openpca.ErrNotFound if none waits.
	Claim(ctx context.Context, owner string, now time.Time, lease time.Duration) (J, error)
	// Renew extends owner's lease on job until until, or returns an error
	// wrapping openpca.ErrConflict if another owner took the job over.
	Renew(ctx context.Context, job J, owner string, until time.Time) error
	// Do does the job. Its context ends when the pool closes or the lease is
	// lost (context.Cause then wraps ErrLeaseLost); a job so interrupted is
	// taken over later, by this server or another.
	Do(ctx context.Context, job J, owner string)
}

// ErrLeaseLost is the cause of a job's context ending when another owner
// took the job over.
var ErrLeaseLost = errors.New("worker: another server took the job over")

// Config is what a Pool works with.
type Config struct {
	// Name says what the jobs are, in logs: "audit report", "CRL".
	Name string
	// Owner names this server among those sharing the store; worker i
	// claims as Owner/i.
	Owner   string
	Workers int
	// Lease is how long a worker holds a job without renewing; it renews
	// every third of it.
	Lease time.Duration
	// Poll is how often idle workers look for jobs without being woken:
	// jobs other servers asked for, and jobs whose worker died.
	Poll   time.Duration
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Pool is a set of workers doing the jobs of one queue until it is closed.
type Pool[J any] struct {
	cfg   Config
	queue Queue[J]
	wake  chan struct{}
	stop  context.CancelFunc
	done  sync.WaitGroup
}

// Start starts cfg.Workers workers on queue.
func Start[J any](cfg Config, queue Queue[J]) *Pool[J] {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, stop := context.WithCancel(context.Background())
	p := &Pool[J]{cfg: cfg, queue: queue, wake: make(chan struct{}, 1), stop: stop}
	for i := range cfg.Workers {
		p.done.Go(func() { p.work(ctx, fmt.Sprintf("%s/%d", cfg.Owner, i)) })
	}
	return p
}

// Wake tells the workers that a job waits. It never blocks: a wake that
// no worker has taken yet stands for any number.
func (p *Pool[J]) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Close stops the workers and waits for them. A job in progress is
// interrupted, to be taken over.
func (p *Pool[J]) Close() {
	p.stop()
	p.done.Wait()
}

func (p *Pool[J]) work(ctx context.Context, owner string) {
	t := time.NewTicker(p.cfg.Poll)
	defer t.Stop()
	for ctx.Err() == nil {
		// A claim that hangs (a store that stopped answering without
		// closing its connection) fails, as a renewal does, and is tried
		// again at the next poll, on another connection.
		cctx, cancel := context.WithTimeout(ctx, p.cfg.Lease/3)
		claimed := p.cfg.Now()
		job, err := p.queue.Claim(cctx, owner, claimed, p.cfg.Lease)
		cancel()
		if err == nil {
			p.do(ctx, job, owner, claimed.Add(p.cfg.Lease))
			continue
		}
		if !errors.Is(err, openpca.ErrNotFound) && ctx.Err() == nil {
			p.cfg.Logger.Error("claiming a job", "job", p.cfg.Name, "error", err)
		}
		select {
		case <-ctx.Done():
		case <-p.wake:
		case <-t.C:
		}
	}
}

// do does one job, whose lease the store holds until held, while
// renewing the lease.
func (p *Pool[J]) do(ctx context.Context, job J, owner string, held time.Time) {
	jctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		p.renew(jctx, cancel, job, owner, held)
	}()
	p.queue.Do(jctx, job, owner)
	cancel(nil)
	<-renewed
}

// renew extends the lease on job, which the store holds until held,
// until ctx ends; if the lease is lost, or about to run out unrenewed
// (the store cannot be reached), it ends the job's context: another
// server may take the job once the lease ends. The job ends a third of a
// lease before then, whatever its renewals do meanwhile: one that hangs
// is given up at that time too, not a third of a lease later.
func (p *Pool[J]) renew(ctx context.Context, cancel context.CancelCauseFunc, job J, owner string, held time.Time) {
	t := time.NewTicker(p.cfg.Lease / 3)
	defer t.Stop()
	var failed error // the last renewal's, if it failed
	for {
		giveUp := held.Add(-p.cfg.Lease / 3)
		timer := time.NewTimer(giveUp.Sub(p.cfg.Now()))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
			p.cfg.Logger.Warn("giving up a job whose lease could not be renewed", "job", p.cfg.Name, "error", failed)
			cancel(ErrLeaseLost)
			return
		case <-t.C:
			timer.Stop()
			now := p.cfg.Now()
			until := now.Add(p.cfg.Lease)
			// A renewal that hangs counts as one that failed.
			rctx, stop := context.WithTimeout(ctx, min(p.cfg.Lease/3, giveUp.Sub(now)))
			err := p.queue.Renew(rctx, job, owner, until)
			stop()
			switch failed = err; {
			case err == nil:
				held = until
			case errors.Is(err, openpca.ErrConflict):
				cancel(ErrLeaseLost)
				return
			case ctx.Err() != nil:
			default:
				p.cfg.Logger.Warn("renewing a job's lease", "job", p.cfg.Name, "error", err)
			}
		}
	}
}
