package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
)

// Generator writes requested reports in the background. Each worker claims
// a CREATING report from the store with a lease, which it renews while it
// streams the rows into the object store, and then records the outcome.
// A worker that dies leaves the lease to run out, and another (or the same
// server, restarted with the same owner name) takes the report over.
type Generator struct {
	GeneratorConfig
	wake chan struct{}
}

// GeneratorConfig is what a Generator works with.
type GeneratorConfig struct {
	Store   openpca.Store
	Objects openpca.ObjectStore
	// Log signs the checkpoint each report's proof file holds.
	Log    *auditlog.Log
	Logger *slog.Logger
	// Owner names this server among those sharing the store, and must stay
	// the same across its restarts.
	Owner string
	// Workers is how many reports the server generates at once.
	Workers int
	// Lease is how long a worker holds a report without renewing; 0 is
	// DefaultLease.
	Lease time.Duration
}

// DefaultLease is how long a worker holds a report without renewing; it
// renews every third of its lease.
const DefaultLease = 15 * time.Second

// pollInterval is how often idle workers look for reports whose worker
// died, without being woken.
const pollInterval = 5 * time.Second

// NewGenerator returns a Generator.
func NewGenerator(cfg GeneratorConfig) *Generator {
	if cfg.Lease == 0 {
		cfg.Lease = DefaultLease
	}
	return &Generator{GeneratorConfig: cfg, wake: make(chan struct{}, 1)}
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
	for i := range g.Workers {
		wg.Go(func() { g.work(ctx, fmt.Sprintf("%s/%d", g.Owner, i)) })
	}
	wg.Wait()
}

func (g *Generator) work(ctx context.Context, owner string) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for ctx.Err() == nil {
		r, err := g.Store.ClaimAuditReport(ctx, owner, time.Now(), g.Lease)
		if err == nil {
			g.run(ctx, owner, r)
			continue
		}
		if !errors.Is(err, openpca.ErrNotFound) && ctx.Err() == nil {
			g.Logger.Error("claiming an audit report", "error", err)
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
	log := g.Logger.With("report", r.ID, "ca", r.CAID, "bucket", r.Bucket, "key", r.Key)
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
	if err := g.Store.FinishAuditReport(context.WithoutCancel(ctx), r.ID, owner, status, failure); err != nil {
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
	t := time.NewTicker(g.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := g.Store.RenewAuditReport(ctx, id, owner, time.Now().Add(g.Lease))
			if errors.Is(err, openpca.ErrConflict) {
				cancel(errors.New("another server took the report over"))
				return
			}
			if err != nil && ctx.Err() == nil {
				g.Logger.Warn("renewing an audit report lease", "report", id, "error", err)
			}
		}
	}
}

// Generate streams the rows of report r into its object and, side by side,
// its proof file into another, and returns how many rows it wrote. Each
// object appears whole or not at all; the report is not done until both
// are. The two are written at once because each is a pass over the CA's
// log that keeps about one core busy.
func (g *Generator) Generate(ctx context.Context, r *openpca.AuditReport) (int, error) {
	grp, ctx := errgroup.WithContext(ctx)
	rows := 0
	grp.Go(func() error {
		return g.put(ctx, r.Bucket, r.Key, ContentType(r.Format), func(w io.Writer) error {
			out, err := NewWriter(r.Format, w)
			if err != nil {
				return err
			}
			err = g.Store.AuditRows(ctx, r.CAID, r.LogSize, func(c *openpca.Certificate) error {
				rows++
				return out.Write(c)
			})
			if err != nil {
				return err
			}
			return out.Close()
		})
	})
	grp.Go(func() error { return g.writeProof(ctx, r) })
	err := grp.Wait()
	return rows, err
}

// writeProof writes the proof file of report r: a checkpoint of the log
// entries the report covers, signed now, and their records.
func (g *Generator) writeProof(ctx context.Context, r *openpca.AuditReport) error {
	ca, err := g.Store.FindCA(ctx, r.AccountID, r.CAID)
	if err != nil {
		return fmt.Errorf("audit: reading the report's CA: %w", err)
	}
	checkpoint, _, err := g.Log.Checkpoint(ctx, ca.ARN, ca.ID, r.LogSize)
	if err != nil {
		return fmt.Errorf("audit: signing the checkpoint: %w", err)
	}
	h := &auditlog.ProofHeader{
		Format: auditlog.ProofFormat, CertificateAuthorityArn: ca.ARN, AuditReportID: r.ID,
		S3Key: r.Key, ReportFormat: string(r.Format), Checkpoint: string(checkpoint),
	}
	return g.put(ctx, r.Bucket, r.Key+auditlog.ProofSuffix, auditlog.ProofContentType, func(w io.Writer) error {
		return auditlog.WriteProof(w, h, func(yield func([]byte) error) error {
			return g.Store.LogRecords(ctx, r.CAID, r.LogSize, yield)
		})
	})
}

// put stores what write writes as an object, streaming it: write runs
// beside the upload.
func (g *Generator) put(ctx context.Context, bucket, key, contentType string, write func(io.Writer) error) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := write(pw)
		pw.CloseWithError(err)
		done <- err
	}()
	err := g.Objects.Put(ctx, openpca.Object{Bucket: bucket, Key: key, ContentType: contentType}, pr)
	pr.CloseWithError(errors.New("audit: the object store stopped reading")) // unblocks write
	if writeErr := <-done; err == nil {
		err = writeErr
	}
	return err
}
