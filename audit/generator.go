package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/worker"
)

// Generator writes requested reports in the background. A worker claims
// a CREATING report from the store with a lease, which it renews while it
// streams the rows into the object store, and then records the outcome.
// A worker that dies leaves the lease to run out, and another (or the same
// server, restarted with the same owner name) takes the report over.
type Generator struct {
	cfg  GeneratorConfig
	pool *worker.Pool[*openpca.AuditReport]
}

// Store is what the generator reads and keeps.
type Store interface {
	ClaimAuditReport(ctx context.Context, owner string, now time.Time, lease time.Duration) (*openpca.AuditReport, error)
	RenewAuditReport(ctx context.Context, id, owner string, until time.Time) error
	FinishAuditReport(ctx context.Context, id, owner string, status openpca.AuditReportStatus, failure string) error
	AuditRows(ctx context.Context, caID string, logSize int64, fn func(*openpca.Certificate) error) error
	LogRecords(ctx context.Context, caID string, logSize int64, fn func(record []byte) error) error
	FindCA(ctx context.Context, accountID, id string) (*openpca.CA, error)
}

// GeneratorConfig is what a Generator works with.
type GeneratorConfig struct {
	Store   Store
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
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// DefaultLease is how long a worker holds a report without renewing; it
// renews every third of its lease.
const DefaultLease = 15 * time.Second

// pollInterval is how often idle workers look for reports whose worker
// died, without being woken.
const pollInterval = 5 * time.Second

// StartGenerator starts a Generator's workers.
func StartGenerator(cfg GeneratorConfig) *Generator {
	if cfg.Lease == 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Generator{cfg: cfg}
	g.pool = worker.Start(worker.Config{Name: "audit report", Owner: cfg.Owner, Workers: cfg.Workers, Lease: cfg.Lease, Poll: pollInterval,
		Logger: cfg.Logger, Now: cfg.Now}, queue{g})
	return g
}

// Wake tells the workers that a report is waiting.
func (g *Generator) Wake() { g.pool.Wake() }

// Close stops the workers. A report in progress stays CREATING, to be
// taken over.
func (g *Generator) Close() { g.pool.Close() }

// queue is the generator's side of the workers.
type queue struct{ g *Generator }

func (q queue) Claim(ctx context.Context, owner string, now time.Time, lease time.Duration) (*openpca.AuditReport, error) {
	return q.g.cfg.Store.ClaimAuditReport(ctx, owner, now, lease)
}

func (q queue) Renew(ctx context.Context, r *openpca.AuditReport, owner string, until time.Time) error {
	return q.g.cfg.Store.RenewAuditReport(ctx, r.ID, owner, until)
}

// Do generates one report and records how it ended.
func (q queue) Do(ctx context.Context, r *openpca.AuditReport, owner string) {
	g := q.g
	log := g.cfg.Logger.With("report", r.ID, "ca", r.CAID, "bucket", r.Bucket, "key", r.Key)
	start := g.cfg.Now()
	rows, err := g.generate(ctx, r)
	if ctx.Err() != nil {
		log.Info("audit report interrupted; it will be resumed", "cause", context.Cause(ctx))
		return
	}
	status, failure := openpca.AuditReportStatusSuccess, ""
	if err != nil {
		status, failure = openpca.AuditReportStatusFailed, err.Error()
	}
	if err := g.cfg.Store.FinishAuditReport(context.WithoutCancel(ctx), r.ID, owner, status, failure); err != nil {
		log.Error("recording the end of an audit report", "error", err)
		return
	}
	if status == openpca.AuditReportStatusFailed {
		log.Error("audit report failed", "error", failure, "rows", rows)
		return
	}
	log.Info("audit report written", "rows", rows, "seconds", g.cfg.Now().Sub(start).Seconds())
}

// generate streams the rows of report r into its object and, side by side,
// its proof file into another, and returns how many rows it wrote. Each
// object appears whole or not at all; the report is not done until both
// are. The two are written at once because each is a pass over the CA's
// log that keeps about one core busy.
func (g *Generator) generate(ctx context.Context, r *openpca.AuditReport) (int, error) {
	// A report taken over may have left unfinished writes of its objects.
	for _, key := range []string{r.Key, r.Key + auditlog.ProofSuffix} {
		if err := g.cfg.Objects.DiscardPartial(ctx, r.Bucket, key); err != nil {
			return 0, fmt.Errorf("audit: discarding what an interrupted generation left: %w", err)
		}
	}
	grp, ctx := errgroup.WithContext(ctx)
	rows := 0
	grp.Go(func() error {
		return g.put(ctx, r.Bucket, r.Key, ContentType(r.Format), func(w io.Writer) error {
			out, err := NewWriter(r.Format, w)
			if err != nil {
				return err
			}
			err = g.cfg.Store.AuditRows(ctx, r.CAID, r.LogSize, func(c *openpca.Certificate) error {
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
	ca, err := g.cfg.Store.FindCA(ctx, r.AccountID, r.CAID)
	if err != nil {
		return fmt.Errorf("audit: reading the report's CA: %w", err)
	}
	checkpoint, _, err := g.cfg.Log.Checkpoint(ctx, ca.ARN, ca.ID, r.LogSize)
	if err != nil {
		return fmt.Errorf("audit: signing the checkpoint: %w", err)
	}
	h := &auditlog.ProofHeader{
		Format: auditlog.ProofFormat, CertificateAuthorityArn: ca.ARN, AuditReportID: r.ID,
		S3Key: r.Key, ReportFormat: string(r.Format), Checkpoint: string(checkpoint),
	}
	return g.put(ctx, r.Bucket, r.Key+auditlog.ProofSuffix, auditlog.ProofContentType, func(w io.Writer) error {
		return auditlog.WriteProof(w, h, func(yield func([]byte) error) error {
			return g.cfg.Store.LogRecords(ctx, r.CAID, r.LogSize, yield)
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
	err := g.cfg.Objects.Put(ctx, openpca.Object{Bucket: bucket, Key: key, ContentType: contentType}, pr)
	pr.CloseWithError(errors.New("audit: the object store stopped reading")) // unblocks write
	if writeErr := <-done; err == nil {
		err = writeErr
	}
	return err
}
