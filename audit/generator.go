package audit

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"runtime"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/errgroup"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/worker"
)

// Generator writes requested reports in the background. A worker claims
// a CREATING report from the store with a lease, which it renews while it
// streams the rows into the object store, and then records the outcome.
// A worker that dies leaves the lease to run out, and another (or the same
// server, restarted) takes the report over.
type Generator struct {
	cfg      GeneratorConfig
	pool     *worker.Pool[*openpca.AuditReport]
	readBack readBackState
	seed     maphash.Seed // of objectSums
}

// Store is what the generator reads and keeps.
type Store interface {
	ClaimAuditReport(ctx context.Context, owner string, now time.Time, lease time.Duration) (*openpca.AuditReport, error)
	RenewAuditReport(ctx context.Context, id, owner string, until time.Time) error
	FinishAuditReport(ctx context.Context, id, owner string, status openpca.AuditReportStatus, failure string) error
	AuditEntries(ctx context.Context, caID string, logSize, from, to int64, fn func(*openpca.AuditEntry) error) error
	// LastImport reads a CA with what CheckImported checks it against.
	LastImport(ctx context.Context, accountID, caID string) (*openpca.LastImport, error)
	FindBucket(ctx context.Context, name string) (*openpca.Bucket, error)
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
	// DefaultAccount owns the buckets no account was given.
	DefaultAccount string
	// Workers is how many reports the server generates at once.
	Workers int
	// Lease is how long a worker holds a report without renewing; 0 is
	// DefaultLease.
	Lease time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Witnessed, if the server has witnesses, returns a checkpoint of the
	// CA's log of at least size entries, cosigned in a round begun once
	// it is called, waiting a while for one.
	Witnessed func(ctx context.Context, caID string, size int64) (*openpca.WitnessedCheckpoint, error)
	// Witnesses are the witnesses of Witnessed, at least Quorum of which
	// must have cosigned the checkpoint it returns, as verify --witness
	// requires.
	Witnesses []note.Verifier
	Quorum    int
	// Alarm, if set, is told of every CA's key-use log found not to
	// match its hashes: its report fails, saying which entry.
	Alarm openpca.IntegrityAlarm
}

// DefaultLease is how long a worker holds a report without renewing; it
// renews every third of its lease. Idle workers look as often, unwoken,
// for reports other servers asked for and reports whose worker died: a
// lease taken over is then at most a third of it late.
const DefaultLease = 15 * time.Second

// StartGenerator starts a Generator's workers.
func StartGenerator(cfg GeneratorConfig) *Generator {
	if cfg.Lease == 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Generator{cfg: cfg, seed: maphash.MakeSeed()}
	g.startReadBacks(cfg.Lease / 3)
	g.pool = worker.Start(worker.Config{Name: "audit report", Owner: cfg.Owner, Workers: cfg.Workers, Lease: cfg.Lease, Poll: cfg.Lease / 3,
		Logger: cfg.Logger, Now: cfg.Now}, queue{g})
	return g
}

// Wake tells the workers that a report is waiting.
func (g *Generator) Wake() { g.pool.Wake() }

// Close stops the workers, and the read-backs. A report in progress stays
// CREATING, to be taken over.
func (g *Generator) Close() {
	g.pool.Close()
	g.stopReadBacks()
}

// queue is the generator's side of the workers.
type queue struct{ g *Generator }

// Claim fails the reports whose rows cannot be read as it meets them, and
// gives the first that can.
func (q queue) Claim(ctx context.Context, owner string, now time.Time, lease time.Duration) (*openpca.AuditReport, error) {
	for {
		r, err := q.g.cfg.Store.ClaimAuditReport(ctx, owner, now, lease)
		bad, ok := errors.AsType[*openpca.UnreadableReportError](err)
		if !ok {
			return r, err
		}
		q.g.cfg.Logger.Error("audit report failed: its row cannot be read", "report", bad.ID, "error", bad.Err)
		failure := reportFailure(fmt.Errorf("audit: the report's row %w", errNotServers))
		if err := q.g.cfg.Store.FinishAuditReport(ctx, bad.ID, owner, openpca.AuditReportStatusFailed, failure); err != nil {
			return nil, err
		}
	}
}

func (q queue) Renew(ctx context.Context, r *openpca.AuditReport, owner string, until time.Time) error {
	return q.g.cfg.Store.RenewAuditReport(ctx, r.ID, owner, until)
}

// Do generates one report and records how it ended.
func (q queue) Do(ctx context.Context, r *openpca.AuditReport, owner string) {
	g := q.g
	log := g.cfg.Logger.With("report", r.ID, "ca", r.CAID, "bucket", r.Bucket, "key", r.Key)
	start := g.cfg.Now()
	rows, gen, err := g.generate(ctx, r, nil)
	// A fault of the object store or the database that a retry may not
	// meet (a connection cut, answers of 5xx past the S3 client's own
	// retries) fails a report only once its retries met it too, rather
	// than leaving the client to ask again.
	for attempt, wait := 1, retryWait; attempt < reportAttempts && openpca.ErrorCode(err) == openpca.CodeServiceUnavailable && ctx.Err() == nil; attempt, wait = attempt+1, 4*wait {
		log.Warn("audit report attempt failed; it is tried again", "attempt", attempt, "error", err, "wait", wait)
		select {
		case <-time.After(wait):
			rows, gen, err = g.generate(ctx, r, nil)
		case <-ctx.Done():
		}
	}
	if ctx.Err() == nil {
		g.cleanUp(ctx, r, err != nil, log)
	}
	if ctx.Err() != nil {
		msg := "audit report interrupted; it will be resumed"
		if errors.Is(context.Cause(ctx), worker.ErrLeaseLost) {
			msg = "audit report interrupted: another server took it over, or will" // and may have finished it
		}
		log.Info(msg, "cause", context.Cause(ctx))
		return
	}
	status, failure := openpca.AuditReportStatusSuccess, ""
	if err != nil {
		status, failure = openpca.AuditReportStatusFailed, reportFailure(err)
	}
	g.cfg.Alarm.Check(ctx, err)
	// Recorded even if the lease is lost meanwhile (the store checks the
	// owner), within a bound: a store that stopped answering would hold
	// the worker for good.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	// Its read-backs are timed from before the report shows SUCCESS, not
	// from whenever this worker runs again after.
	finished := g.cfg.Now()
	if err := g.cfg.Store.FinishAuditReport(fctx, r.ID, owner, status, failure); err != nil {
		log.Error("recording the end of an audit report", "error", err)
		return
	}
	if status == openpca.AuditReportStatusFailed {
		log.Error("audit report failed", "error", err, "rows", rows)
		return
	}
	log.Info("audit report written", "rows", rows, "seconds", g.cfg.Now().Sub(start).Seconds())
	g.wrote(r, gen, finished)
}

// cleanUp removes from report r's bucket what its generation left
// unfinished (an upload whose start the object store's client sent
// again, its answer lost: nothing knew of the first), and, if the report
// failed, its objects, either of which may have been written whole before
// the other failed: a tool that watches the bucket would take it for a
// report. It runs before the report's end is recorded, while the server
// holds the report: a stop, or the report's lease lost (another server
// may be writing the same objects), ends it, and the report is taken up
// again, and cleaned up then. A report's objects are named by its CA's id
// and its own: in a bucket given to another account since, they are
// still the report's account's, and are removed. A server that held the
// report before and stalled may still land a write, which stays. A
// bucket that does not answer must not hold the worker, or a stop, for
// long.
func (g *Generator) cleanUp(ctx context.Context, r *openpca.AuditReport, failed bool, log *slog.Logger) {
	// Each within deleteTimeout of its own, the objects first: a bucket
	// that does not answer one must not leave the others.
	keys := []string{r.Key, r.Key + auditlog.ProofSuffix}
	for _, key := range keys {
		if !failed {
			break
		}
		if err := within(ctx, func(ctx context.Context) error { return g.cfg.Objects.Delete(ctx, r.Bucket, key) }); err != nil {
			log.Warn("a failed audit report's object stays in its bucket", "object", key, "error", err)
		}
	}
	g.discardPartials(ctx, r, keys, log)
}

// discardPartials aborts the unfinished uploads of r's objects of keys,
// each within deleteTimeout. Failing to costs storage, not the report: a
// bucket that lets the server write may not let it list uploads.
func (g *Generator) discardPartials(ctx context.Context, r *openpca.AuditReport, keys []string, log *slog.Logger) {
	for _, key := range keys {
		if err := within(ctx, func(ctx context.Context) error { return g.cfg.Objects.DiscardPartial(ctx, r.Bucket, key) }); err != nil {
			log.Warn("what an audit report's generation left unfinished stays in its bucket", "object", key, "error", err)
		}
	}
}

// within calls f with ctx bounded to deleteTimeout: a removal from a
// bucket that does not answer, which the S3 client would try for 15
// minutes, must not hold a report's worker for long.
func within(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, deleteTimeout)
	defer cancel()
	return f(ctx)
}

// reportAttempts is how often a report is generated before a fault of its
// object store or database fails it, with retryWait before the second
// attempt and four times as long before each after.
const (
	reportAttempts = 3
	retryWait      = 2 * time.Second
)

// deleteTimeout bounds each removal of a report's objects, or of its
// unfinished uploads, and finishTimeout the record of a report's end.
const (
	deleteTimeout = 30 * time.Second
	finishTimeout = 30 * time.Second
)

// errBucketGiven fails a report whose bucket the operator gave to another
// account after it was asked for.
var errBucketGiven = errors.New("was given to another account after the report was asked for")

// errNotServers fails a report whose row (its id or S3 key), or its CA's
// ARN, in the database is not one the server makes: the report would
// sign it, and then fail to verify.
var errNotServers = errors.New("in the database is not one the server makes: it was changed under the server")

// reportFailure is what a report's account is told of its failure (the
// console and openpca audit reports show it): what is wrong with its CA's
// log, its bucket or its row, as it is; of anything else, what a client is
// told of an error (openpca.ClientMessage), for the rest is the operator's
// (an object store's address, a SQL error), which the log has. What either
// quotes of the tables (a bucket's name, an entry) may be of any length
// there: it says at most maxFailure bytes.
func reportFailure(err error) string {
	msg := openpca.ClientMessage(err)
	switch {
	case errors.Is(err, openpca.ErrLogIntegrity) || errors.Is(err, errBucketGiven) || errors.Is(err, errNotServers):
		msg = err.Error()
	case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
		// The operator's to fix, and the account's to tell them of.
		msg = "The object store is out of space: the report's objects could not be written."
	}
	if s, cut := openpca.CutText(msg, maxFailure); cut {
		return s + "…"
	}
	return msg
}

// clockOffset is how far apart the clocks of servers sharing a database
// may be (their offset from the database's alerts at 1 s): a witnessed
// checkpoint signed by one before the time another dated a report's
// request by so much is still of a later round.
const clockOffset = 5 * time.Second

// maxFailure bounds, in bytes, what a report's failure says.
const maxFailure = 2 << 10

// chunkEntries is how many log entries one worker reads and formats at
// a time.
const chunkEntries = 500

// generate writes report r and, side by side, its proof file, in one pass
// over the entries of the CA's log the report covers, and returns how many
// rows it wrote, and what it wrote. Written again (again, what an earlier
// generation wrote), the report takes the witnesses' checkpoint that one
// took, or goes without as it did: a round now would wait, and its
// witnesses may not answer. Workers each read and format a chunk of entries at once;
// a writer puts the chunks out in order, into both objects. Each object
// appears whole or not at all; the report is not done until both are.
func (g *Generator) generate(ctx context.Context, r *openpca.AuditReport, again *generation) (int, *generation, error) {
	// The bucket was the account's when the report was asked for; the
	// operator may have given it to another account since.
	owner, err := openpca.BucketOwner(ctx, g.cfg.Store, r.Bucket, g.cfg.DefaultAccount)
	if err != nil {
		return 0, nil, err
	}
	if owner != r.AccountID {
		return 0, nil, fmt.Errorf("audit: the S3 bucket %s %w", r.Bucket, errBucketGiven)
	}
	// A report taken over may have left unfinished writes of its objects.
	g.discardPartials(ctx, r, []string{r.Key, r.Key + auditlog.ProofSuffix, r.Key + auditlog.LegacyProofSuffix}, g.cfg.Logger.With("report", r.ID))
	last, err := g.cfg.Store.LastImport(ctx, r.AccountID, r.CAID)
	if err != nil {
		return 0, nil, fmt.Errorf("audit: reading the report's CA: %w", err)
	}
	ca := last.CA
	// The CA's certificate and chain, which its certificates name as
	// their issuer, are the ones its log last imported: changed under the
	// server, they would pass for the CA's in no entry of the report.
	if err := checkLastImport(last); err != nil {
		return 0, nil, err
	}
	// What the tables say of the report and its CA, which the report
	// signs, and verify reads against the report's file name: changed
	// under the server, the report would fail to verify.
	arn, err := openpca.ParseCAARN(ca.ARN)
	if id, idErr := uuid.Parse(r.ID); err != nil || arn.CAID != r.CAID || arn.AccountID != r.AccountID || idErr != nil || id.String() != r.ID ||
		r.Key != openpca.AuditReportKey(r.CAID, r.ID, r.Format) || r.LogSize < 0 {
		return 0, nil, fmt.Errorf("audit: the report's row or its CA's ARN %w", errNotServers)
	}
	// With witnesses, the report covers the log as far as a round begun
	// now, after the report was requested, had them cosign it: the
	// witnessed checkpoint is the report's own, so that an auditor who
	// asks for cosignatures made after the request knows the report
	// leaves out nothing logged before it. A report whose log no such
	// round covers in time goes without, saying why; openpca audit verify
	// --witness then refuses it. One that cannot read what witnesses
	// cosigned fails, as for its other reads: what the proof file says is
	// the witnesses' part alone, and a database that did not answer once
	// must not leave a report without them for good.
	var witnessed *openpca.WitnessedCheckpoint
	notWitnessed := ""
	switch {
	case again != nil:
		witnessed, notWitnessed = again.witnessed, again.notWitnessed
	case g.cfg.Witnessed != nil:
		witnessed, err = g.cfg.Witnessed(ctx, r.CAID, r.LogSize)
		switch {
		case errors.Is(err, openpca.ErrNotWitnessed):
			g.cfg.Logger.Warn("the audit report goes without witnesses' cosignatures", "report", r.ID, "ca", r.CAID, "error", err)
			witnessed, notWitnessed = nil, err.Error()
		case err != nil:
			return 0, nil, fmt.Errorf("audit: reading what witnesses cosigned: %w", err)
		}
	}
	if witnessed != nil {
		covered := *r
		covered.LogSize = witnessed.Size
		r = &covered
	}
	checkpoint, signed, err := g.cfg.Log.Checkpoint(ctx, ca.ARN, ca.ID, r.LogSize)
	if err != nil {
		return 0, nil, fmt.Errorf("audit: signing the checkpoint: %w", err)
	}
	// The witnessed checkpoint, and the size the report covers, come from
	// the database; verify --witness refuses a report whose witnessed
	// checkpoint is not its own, or lacks the cosignatures. Of another
	// root, the witnesses saw another log than the stored hashes give (a
	// fork; the writer checks the records against those hashes).
	if witnessed != nil {
		c, err := openWitnessed(ca, witnessed.Note, g.cfg.Log.VerifierKey(), max(r.LogSize-1, 0))
		if err == nil {
			if _, _, cosigned := OpenWitnessed(witnessed.Note, g.cfg.Log.VerifierKey(), g.cfg.Witnesses, g.cfg.Quorum, time.Time{}); cosigned != nil {
				err = &openpca.LogIntegrityError{CAID: r.CAID, Entry: max(r.LogSize-1, 0), Problem: fmt.Sprintf(
					"is in a log whose witnessed checkpoint, as the server keeps it, is not cosigned as the server's witnesses cosign: %v", cosigned)}
			}
		}
		switch {
		case err != nil:
			return 0, nil, err
		case c.Time.Before(r.CreatedAt.Add(-clockOffset)):
			// A round begun after the report was asked for signed it:
			// its cosignatures are then as late, which verify
			// --witnessed-after requires.
			return 0, nil, &openpca.LogIntegrityError{CAID: r.CAID, Entry: max(r.LogSize-1, 0), Problem: fmt.Sprintf(
				"is in a log whose witnessed checkpoint, as the server keeps it, was signed at %s, before the report was asked for at %s: what the server keeps of its witnessing was changed",
				c.Time.Format(time.RFC3339), r.CreatedAt.Format(time.RFC3339))}
		case c.Size != r.LogSize:
			return 0, nil, &openpca.LogIntegrityError{CAID: r.CAID, Entry: max(r.LogSize-1, 0), Problem: fmt.Sprintf(
				"is the last the server says witnesses cosigned, and their checkpoint has %d entries: what it keeps of their cosignatures was changed", c.Size)}
		case c.Root != signed.Root:
			return 0, nil, witnessedRewritten(r.CAID, c.Size)
		}
	}
	header := &auditlog.ProofHeader{
		Format: auditlog.ProofFormat, CertificateAuthorityArn: ca.ARN, AuditReportID: r.ID,
		S3Key: r.Key, ReportFormat: string(r.Format), Checkpoint: string(checkpoint),
	}
	statement, err := g.cfg.Log.SignReport(auditlog.NewReportStatement(r.ID, r.Key, string(r.Format), checkpoint))
	if err != nil {
		return 0, nil, fmt.Errorf("audit: signing the report's statement: %w", err)
	}
	header.Report = string(statement)
	header.NotWitnessed = notWitnessed
	if witnessed != nil {
		header.WitnessedCheckpoint = string(witnessed.Note)
	}
	proofHead, err := header.Line()
	if err == nil {
		proofHead, err = auditlog.NewProofCompressor().Compress(proofHead)
	}
	if err != nil {
		return 0, nil, err
	}
	reportHead, reportTail, err := reportFrame(r.Format)
	if err != nil {
		return 0, nil, err
	}

	grp, ctx := errgroup.WithContext(ctx)
	// A row is about 500 bytes, a proof's record less once compressed:
	// twice that leaves room for long subjects.
	hint := r.LogSize << 10
	report := g.pipe(ctx, grp, openpca.Object{Bucket: r.Bucket, Key: r.Key, ContentType: ContentType(r.Format), SizeHint: hint})
	proof := g.pipe(ctx, grp, openpca.Object{Bucket: r.Bucket, Key: r.Key + auditlog.ProofSuffix, ContentType: auditlog.ProofContentType, SizeHint: hint})
	// The chunks go to the workers in order, and their results, each on a
	// channel of its own, to the writer in the same order: at most
	// inFlight chunks are held at once.
	// Ps beyond the CPUs (the server adds two on SQLite) run nothing at
	// once: workers for them would only hold more chunks and read
	// connections.
	workers := min(runtime.GOMAXPROCS(0), runtime.NumCPU(), 4)
	inFlight := workers + 1
	jobs := make(chan *chunk, inFlight)
	results := make(chan *chunk, inFlight)
	free := make(chan *chunk, inFlight) // chunks written, whose buffers serve again
	for range inFlight {
		free <- &chunk{rows: newChunkWriter(r.Format), compressor: auditlog.NewProofCompressor()}
	}
	grp.Go(func() error {
		defer close(jobs)
		defer close(results)
		for from := int64(0); from < r.LogSize; from += chunkEntries {
			var c *chunk
			select {
			case c = <-free:
			case <-ctx.Done():
				return ctx.Err()
			}
			c.from, c.to, c.done, c.err = from, min(from+chunkEntries, r.LogSize), make(chan struct{}), nil
			for _, send := range []chan *chunk{results, jobs} {
				select {
				case send <- c:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		return nil
	})
	for range workers {
		grp.Go(func() error {
			for c := range jobs {
				err := g.format(ctx, r, ca.ARN, c)
				close(c.done)
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	rows := 0
	// The report checks, as an auditor's verify would, that its rows are
	// what the log says: the workers that each row is its issuance's and
	// its revocation the log's (checkRows), the writer that the records
	// hash to the root it signs, and that no upgrade's import follows
	// another import. The store checks each record against its
	// hash, but the checkpoint's root comes from the other hashes it
	// keeps, and a row's revocation from the certificate's row: changed
	// under the server, they would make a report that fails to verify,
	// without an alarm.
	var (
		tree    auditlog.Hasher
		imports importOrder
	)
	grp.Go(func() (err error) {
		defer func() {
			if err != nil { // the objects' readers must not wait for more
				report.w.CloseWithError(err)
				proof.w.CloseWithError(err)
			}
		}()
		if err := errors.Join(report.write(reportHead), proof.write(proofHead)); err != nil {
			return err
		}
		for c := range results {
			select {
			case <-c.done:
			case <-ctx.Done():
				return ctx.Err()
			}
			if c.err != nil {
				return c.err
			}
			for _, leaf := range c.leaves {
				tree.AddHash(leaf)
			}
			for _, i := range c.imports {
				if problem := imports.add(i.seq, i.requestedBy); problem != "" {
					return &openpca.LogIntegrityError{CAID: r.CAID, Entry: i.seq, Problem: problem}
				}
			}
			b, err := c.rows.bytes()
			if err != nil {
				return err
			}
			if rows == 0 && r.Format == openpca.AuditReportResponseFormatJson && len(b) > 0 {
				b = b[1:] // the first row goes without a comma
			}
			rows += c.rows.rows
			if err := errors.Join(report.write(b), proof.write(c.proof)); err != nil {
				return err
			}
			free <- c
		}
		if tree.Root() != signed.Root {
			return storedHashesChanged(r.CAID, r.LogSize)
		}
		if err := report.write(reportTail); err != nil {
			return err
		}
		return errors.Join(report.close(), proof.close())
	})
	if err = grp.Wait(); err != nil {
		return rows, nil, err
	}
	return rows, &generation{objectSums{report.objectSum(), proof.objectSum()}, witnessed, notWitnessed}, nil
}

// chunk is a run of a report's log entries, from to to-1, and once a
// worker has formatted it (done is closed), its rows and its lines of the
// proof file, compressed. Its buffers serve chunk after chunk.
type chunk struct {
	from, to   int64
	done       chan struct{}
	rows       *chunkWriter
	lines      []byte // of the proof file
	compressor *auditlog.ProofCompressor
	proof      []byte // lines, compressed
	leaves     []tlog.Hash
	imports    []chunkImport
	err        error
}

// chunkImport is an import of a chunk's entries, seen by its entry and by
// whom.
type chunkImport struct {
	seq         int64
	requestedBy string
}

// format reads the entries of c, of the log of the CA of caARN, and
// formats them.
func (g *Generator) format(ctx context.Context, r *openpca.AuditReport, caARN string, c *chunk) error {
	c.rows.reset()
	c.lines, c.leaves, c.imports = c.lines[:0], c.leaves[:0], c.imports[:0]
	var records recordParser
	c.err = g.cfg.Store.AuditEntries(ctx, r.CAID, r.LogSize, c.from, c.to, func(e *openpca.AuditEntry) error {
		var err error
		if c.lines, err = auditlog.AppendRecordLine(c.lines, e.Record); err != nil {
			return err
		}
		c.leaves = append(c.leaves, e.Hash)
		if err := checkRows(r.CAID, caARN, e, &records); err != nil {
			return err
		}
		if e.Certificate != nil {
			return c.rows.write(e.Certificate)
		}
		if e.Kind == openpca.KeyUseImport { // as its record is (checkRows): a few in a log
			var rec openpca.KeyUseRecord
			if err := decodeRecord(e.Record, &rec); err != nil {
				return err
			}
			c.imports = append(c.imports, chunkImport{e.Seq, rec.RequestedBy})
		}
		return nil
	})
	if c.err == nil {
		c.proof, c.err = c.compressor.Compress(c.lines)
	}
	return c.err
}

// checkRows checks entry e of the log of CA caID, whose ARN is caARN, on
// its own as verify does (checkRecord), and against the rows of the
// certificates' table that name it, as its issuance or its revocation: a
// report of entries that pass shows what an auditor's verify makes of the
// log. A record the store made again from its row (RecordFromRow) is an
// issuance of the CA, written as a server writes it, and shows what the
// row does.
func checkRows(caID, caARN string, e *openpca.AuditEntry, records *recordParser) error {
	problem := func(format string, args ...any) error {
		return &openpca.LogIntegrityError{CAID: caID, Entry: e.Seq, Problem: fmt.Sprintf(format, args...)}
	}
	notRevoking := func() error {
		return problem("does not revoke certificate %s, which the certificates' table shows as revoked by it", e.Revoked.Serial)
	}
	if e.RecordFromRow { // every issuance logged since the narrow_certificates migration
		c := e.Certificate
		switch {
		case e.Kind != openpca.KeyUseIssue:
			return storedAs(problem, e.Kind)
		case e.Revoked != nil:
			return notRevoking()
		case !openpca.IsCertificateARN(c.ARN, caARN, c.Serial):
			return problem("issued certificate %s as %s, not as a certificate of the report's CA %s", c.Serial, c.ARN, caARN)
		case !serverWrites(c):
			return problem("issued certificate %s, whose row in the certificates' table holds what no server writes: text that is not UTF-8, or a time outside the years 0000 to 9999", c.Serial)
		}
		return nil
	}
	var rec openpca.KeyUseRecord
	at, err := checkRecord(records, e.Record, &rec, caARN)
	if err != nil {
		return problem("%v", err)
	}
	if rec.Kind != e.Kind {
		return storedAs(problem, e.Kind)
	}
	if e.Revoked != nil && rec.Kind != openpca.KeyUseRevoke {
		return notRevoking()
	}
	switch {
	case rec.Kind == openpca.KeyUseIssue:
		return checkIssuance(problem, e.Certificate, &rec, at)
	case e.Certificate != nil:
		return problem("is not the issuance of certificate %s, whose row in the certificates' table names it", e.Certificate.Serial)
	case rec.Kind == openpca.KeyUseRevoke:
		return checkRevocation(problem, e.Revoked, &rec, at)
	}
	return nil
}

// storedAs is the problem of an entry stored as of kind, which its record
// is not.
func storedAs(problem func(format string, args ...any) error, kind string) error {
	return problem("is stored as an entry of kind %q, which its record is not", kind)
}

// serverWrites reports whether the record of the issuance of c, made
// again from its row, is in the form a server writes
// (openpca.RecordChecker): it is unless the row holds text that is not
// UTF-8, which encoding/json writes as an escaped U+FFFD that a server
// writes unescaped, or a time RFC 3339 cannot write.
func serverWrites(c *openpca.Certificate) bool {
	for _, s := range [...]string{c.AccountID, c.Serial, c.Subject, c.TemplateARN, c.RequestedBy, c.RequestID} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	for _, t := range [...]time.Time{c.NotBefore, c.NotAfter, c.IssuedAt} {
		if s := t.Unix(); s < firstWritable || s >= pastWritable {
			return false
		}
	}
	return true
}

// The times RFC 3339 writes, in seconds of Unix time: from the year 0000
// to the end of 9999.
const (
	firstWritable = -62167219200 // 0000-01-01T00:00:00Z
	pastWritable  = 253402300800 // 10000-01-01T00:00:00Z
)

// checkIssuance checks issuance record rec, logged at at, which the
// store keeps, against the row of the certificates' table that names its
// entry, if any: there must be one, which shows what the record does.
func checkIssuance(problem func(string, ...any) error, row *openpca.Certificate, rec *openpca.KeyUseRecord, at time.Time) error {
	if row == nil {
		return problem("issued certificate %s, and no row of the certificates' table names it", rec.Serial)
	}
	// The report's row is the one verify makes of the record if the row
	// has the record's fields, its times to the second (TimeLayout). The
	// row's revocation is checkRevocation's, at its entry.
	for _, f := range [...]struct {
		name string
		same bool
	}{
		{"serial", rec.Serial == row.Serial},
		{"certificateArn", rec.CertificateArn == row.ARN},
		{"awsAccountId", rec.Account == row.AccountID},
		{"subject", rec.Subject == row.Subject},
		{"notBefore", sameSecond(rec.NotBefore, time.RFC3339, row.NotBefore)},
		{"notAfter", sameSecond(rec.NotAfter, time.RFC3339, row.NotAfter)},
		{"issuedAt", at.Unix() == row.IssuedAt.Unix()},
		{"templateArn", rec.TemplateArn == row.TemplateARN},
	} {
		if !f.same {
			return problem("issued certificate %s, whose row in the certificates' table shows another %s", rec.Serial, f.name)
		}
	}
	return nil
}

// sameSecond reports whether s, a time in layout, is in the second of t.
func sameSecond(s, layout string, t time.Time) bool {
	logged, err := time.Parse(layout, s)
	return err == nil && logged.Unix() == t.Unix()
}

// checkRevocation checks revocation record rec, logged at at, against
// the row of the certificates' table that names its entry as its
// revocation, if any: there must be one, of the certificate the record
// revokes, at the time and for the reason the record says. With the
// store's checks of each row (see openpca.AuditStore.AuditEntries), a row
// shows a revocation if and only if one entry of the log revokes it, as
// it says.
func checkRevocation(problem func(string, ...any) error, row *openpca.RevokedCertificate, rec *openpca.KeyUseRecord, at time.Time) error {
	switch {
	case row == nil:
		return problem("revokes certificate %s, which the certificates' table shows as not revoked by it", rec.Serial)
	case row.Serial != rec.Serial:
		return problem("revokes certificate %s, and the certificates' table says it revoked certificate %s", rec.Serial, row.Serial)
	}
	logged, shown := at.UTC().Format(TimeLayout), row.RevokedAt.UTC().Format(TimeLayout)
	if logged != shown || rec.RevocationReason != string(row.Reason) {
		return problem("revokes certificate %s at %s (%s), and the certificates' table says at %s (%s)", rec.Serial, logged, rec.RevocationReason, shown, row.Reason)
	}
	return nil
}

// object is an object being put, whose bytes are written through a pipe,
// and hashed.
type object struct {
	w      *io.PipeWriter
	sum    *maphash.Hash
	size   int64
	closed chan struct{} // once its bytes are all written
}

// pipe starts putting an object.
func (g *Generator) pipe(ctx context.Context, grp *errgroup.Group, obj openpca.Object) *object {
	pr, pw := io.Pipe()
	o := &object{w: pw, sum: g.newHash(), closed: make(chan struct{})}
	grp.Go(func() error {
		err := g.cfg.Objects.Put(ctx, obj, pr)
		if err != nil {
			// The writer, unblocked, returns the Put's own error: the
			// group keeps whichever comes first, and a fault the report
			// is generated again for (ServiceUnavailable) must not lose
			// to the writer's news that nothing reads.
			pr.CloseWithError(err)
			return err
		}
		// That unblocks a writer still writing: a Put that ends before
		// all was written has not stored it all.
		pr.CloseWithError(errors.New("audit: the object store stopped reading"))
		select {
		case <-o.closed:
			return nil
		default:
			return errors.New("audit: the object store stopped reading")
		}
	})
	return o
}

func (o *object) write(b []byte) error {
	o.sum.Write(b)
	o.size += int64(len(b))
	_, err := o.w.Write(b)
	return err
}

// objectSum is the object's hash and size, once it is written.
func (o *object) objectSum() objectSum { return objectSum{o.sum.Sum64(), o.size} }

// close ends the object's bytes.
func (o *object) close() error {
	close(o.closed)
	return o.w.Close()
}
