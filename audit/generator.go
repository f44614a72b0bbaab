package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/openpca/openpca"
)

// Generator writes requested reports in the background. Each worker claims
// a CREATING report from the store with a lease, which it renews while it
// streams the rows into the object store, and then records the outcome.
// A worker that dies leaves the lease to run out, and another (or the same
// server, restarted with the same owner name) takes the report over.
type Generator struct {
	store   openpca.AuditStore
	objects openpca.ObjectStore
	logger  *slog.Logger
	owner   string
	workers int
	lease   time.Duration
	wake    chan struct{}
}

// DefaultLease is how long a worker holds a report without renewing; it
// renews every third of its lease.
const DefaultLease = 15 * time.Second

// pollInterval is how often idle workers look for reports whose worker
// died, without being woken.
const pollInterval = 5 * time.Second

// NewGenerator returns a Generator; owner names this server among those
// sharing the store, and must stay the same across its restarts. A lease
// of 0 is DefaultLease.
func NewGenerator(store openpca.AuditStore, objects openpca.ObjectStore, logger *slog.Logger, owner string, workers int, lease time.Duration) *Generator {
	if lease == 0 {
		lease = DefaultLease
	}
	return &Generator{store: store, objects: objects, logger: logger, owner: owner, workers: workers, lease: lease, wake: make(chan struct{}, 1)}
}

// Wake tells the workers that a report is waiting.
func (g *Generator) Wake() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// Run runs the workers until ctx ends. A report in progress when ctx ends
// stays CREATING, to be taken over.
func (g *Generator) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range g.workers {
		wg.Go(func() { g.work(ctx, fmt.Sprintf("%s/%d", g.owner, i)) })
	}
	wg.Wait()
}

func (g *Generator) work(ctx context.Context, owner string) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for ctx.Err() == nil {
		r, err := g.store.ClaimAuditReport(ctx, owner, time.Now(), g.lease)
		if err == nil {
			g.run(ctx, owner, r)
			continue
		}
		if !errors.Is(err, openpca.ErrNotFound) && ctx.Err() == nil {
			g.logger.Error("claiming an audit report", "error", err)
		}
		select {
		case <-ctx.Done():
		case <-g.wake:
		case <-t.C:
		}
	}
}

// run generates one report and records how it ended.
func (g *Generator) run(ctx context.Context, owner string, r *openpca.AuditReport) {
	log := g.logger.With("report", r.ID, "ca", r.CAID, "bucket", r.Bucket, "key", r.Key)
	start := time.Now()
	gctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go g.renew(gctx, cancel, owner, r.ID)
	rows, err := g.Generate(gctx, r)
	if ctx.Err() != nil {
		log.Info("audit report interrupted by shutdown; it will be resumed")
		return
	}
	if cause := context.Cause(gctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	status, failure := openpca.AuditReportStatusSuccess, ""
	if err != nil {
		status, failure = openpca.AuditReportStatusFailed, err.Error()
	}
	if err := g.store.FinishAuditReport(context.WithoutCancel(ctx), r.ID, owner, status, failure); err != nil {
		log.Error("recording the end of an audit report", "error", err)
		return
	}
	if status == openpca.AuditReportStatusFailed {
		log.Error("audit report failed", "error", failure, "rows", rows)
		return
	}
	log.Info("audit report written", "rows", rows, "seconds", time.Since(start).Seconds())
}

// renew extends the lease on a report until ctx ends; if the lease is
// lost, it stops the generation.
func (g *Generator) renew(ctx context.Context, cancel context.CancelCauseFunc, owner, id string) {
	t := time.NewTicker(g.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := g.store.RenewAuditReport(ctx, id, owner, time.Now().Add(g.lease))
			if errors.Is(err, openpca.ErrConflict) {
				cancel(errors.New("another server took the report over"))
				return
			}
			if err != nil && ctx.Err() == nil {
				g.logger.Warn("renewing an audit report lease", "report", id, "error", err)
			}
		}
	}
}

// Generate streams the rows of report r into its object and returns how
// many rows it wrote. The object appears whole or not at all.
func (g *Generator) Generate(ctx context.Context, r *openpca.AuditReport) (int, error) {
	pr, pw := io.Pipe()
	rw, contentType, err := NewWriter(r.Format, pw)
	if err != nil {
		return 0, err
	}
	rows := 0
	done := make(chan error, 1)
	go func() {
		err := g.store.AuditRows(ctx, r.CAID, r.LogSize, func(c *openpca.Certificate) error {
			rows++
			return rw.Write(c)
		})
		if err == nil {
			err = rw.Close()
		}
		pw.CloseWithError(err)
		done <- err
	}()
	err = g.objects.Put(ctx, r.Bucket, r.Key, contentType, pr)
	pr.CloseWithError(errors.New("audit: the object store stopped reading")) // unblocks the rows
	if rowsErr := <-done; err == nil {
		err = rowsErr
	}
	return rows, err
}
