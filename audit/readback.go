package audit

import (
	"context"
	"errors"
	"hash/maphash"
	"io"
	"sync"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/internal/idleread"
	"github.com/openpca/openpca/internal/readback"
)

// readBacks are when, after it finished a report, the generator reads its
// objects back (readback.After). A server that held the report before, and stalled (its
// lease taken over) as its writes were on the way, may land them after
// this server's: its report, or its proof file, or both, in place of this
// one's. The pair then no longer verifies, or is not the report recorded.
// Read back otherwise than written, both objects are written again (at
// most maxRewrites times: a server that keeps writing its own, a copy of
// the database beside this one sharing the bucket, would have them
// written for good), and read back once more. A write held longer than
// the last read-back is left. The read-backs are in this server's memory:
// one that restarts meanwhile makes none of those of the reports it wrote
// before.
var readBacks = readback.After

const (
	// readIdle bounds how long a read-back's read may go without a byte:
	// read-backs are read one after the other, and a bucket that does
	// not answer holds back the others'.
	readIdle = 30 * time.Second
	// maxRewrites bounds how often a report is written again.
	maxRewrites = 2
	// rewriteTimeout bounds a report's writing again: it holds back the
	// other read-backs.
	rewriteTimeout = 15 * time.Minute
	// rewriteRetry is how long after a writing again that failed, as a
	// retry may not, it is tried again.
	rewriteRetry = time.Minute
)

// objectSums are hashes of a report's two objects as this server wrote
// them. They tell this server's writes from another's, not from an
// attacker's (who could write to the bucket would not need to forge
// them): a seeded hash of the process (maphash), four times as fast as
// SHA-256 here, so that the report, which hashes as it writes, is not
// slowed by half a second at a million certificates.
type objectSums struct{ report, proof objectSum }

// objectSum is an object's hash, and its size, past which a read back
// stops: the object may be anyone's who can write to the bucket.
type objectSum struct {
	sum  uint64
	size int64
}

// generation is what a generation of a report wrote: its objects'
// hashes, and the witnesses' checkpoint it took, or why it went without.
type generation struct {
	sums         objectSums
	witnessed    *openpca.WitnessedCheckpoint
	notWitnessed string
}

// written is a report this server finished, to read back.
type written struct {
	report   *openpca.AuditReport
	gen      *generation
	rewrites int
	*readback.Schedule
}

// readBackState is the reports to read back, by id.
type readBackState struct {
	mu      sync.Mutex
	written map[string]*written
	loop    *readback.Loop
}

// startReadBacks reads back reports as they are due, looking every poll,
// until stopReadBacks.
func (g *Generator) startReadBacks(poll time.Duration) {
	g.readBack.written = map[string]*written{}
	g.readBack.loop = readback.Start(poll, g.readBackDue)
}

func (g *Generator) stopReadBacks() { g.readBack.loop.Stop() }

// wrote has report r, as gen wrote it, read back later, timed from at.
func (g *Generator) wrote(r *openpca.AuditReport, gen *generation, at time.Time) {
	w := &written{report: r, gen: gen, Schedule: readback.NewSchedule(at, readBacks)}
	g.readBack.mu.Lock()
	defer g.readBack.mu.Unlock()
	if g.readBack.written != nil { // nil: a generator without workers
		g.readBack.written[r.ID] = w
	}
}

// readBackDue reads back the reports due, and writes again those whose
// objects are not what this server wrote. The read-backs and retries it
// sets are timed from its start, not from whenever a writing again ends.
func (g *Generator) readBackDue(ctx context.Context) {
	now := g.cfg.Now()
	var due []*written
	g.readBack.mu.Lock()
	for _, w := range g.readBack.written {
		if w.DueAt(now) {
			due = append(due, w)
		}
	}
	g.readBack.mu.Unlock()
	for _, w := range due {
		same, err := g.readSame(ctx, w)
		if ctx.Err() != nil {
			return
		}
		// An object gone is written again as one changed is: a server
		// that held the report before, and failed it, may land its
		// removal after this one finished it, and the report would show
		// SUCCESS with nothing in the bucket.
		gone := errors.Is(err, openpca.ErrNotFound)
		if gone {
			err = nil
		}
		log := g.cfg.Logger.With("report", w.report.ID, "ca", w.report.CAID, "bucket", w.report.Bucket, "key", w.report.Key)
		var rewritten *generation
		var rewriteErr error
		switch {
		case err != nil || same:
		case w.rewrites == maxRewrites:
			log.ErrorContext(ctx, "an audit report's objects in its bucket are again not those this server wrote, after it wrote them again: another server keeps writing them (a copy of the database beside this one, sharing the bucket?); they are left", "rewrites", w.rewrites, "gone", gone)
		default:
			msg := "an audit report's objects in its bucket are not those this server wrote: a late write of a server that held the report before; both are written again"
			if gone {
				msg = "an audit report's object is gone from its bucket: a late removal of a server that held the report before, or the bucket's owner's; both are written again"
			}
			log.WarnContext(ctx, msg)
			if rewritten, rewriteErr = g.rewrite(ctx, w); ctx.Err() != nil {
				return // the server is stopping
			}
		}
		// A fault of the object store or the database that a retry may
		// not meet, as a report's first generation is tried again for:
		// again a minute on, a read-back's tries in all.
		retried := openpca.ErrorCode(rewriteErr) == openpca.CodeServiceUnavailable
		if rewriteErr != nil && !retried {
			g.cfg.Alarm.Check(ctx, rewriteErr)
			log.ErrorContext(ctx, "writing an audit report again failed: the objects in its bucket may not prove it", "error", rewriteErr)
		}
		g.readBack.mu.Lock()
		over := false
		switch {
		case errors.Is(err, openpca.ErrBucketAccess), err == nil && !same && rewritten == nil && !retried:
			delete(g.readBack.written, w.report.ID) // no other read would tell more
		case rewritten != nil:
			// Read back once more, at the next read-back or after the
			// first's wait.
			w.gen, w.rewrites = rewritten, w.rewrites+1
			if w.Read(false) {
				w.Times = append(w.Times, now.Add(readBacks[0]))
			}
		case retried:
			left := len(w.Times)
			if over = w.Read(true); over {
				delete(g.readBack.written, w.report.ID)
			} else if len(w.Times) == left {
				w.Times[0] = now.Add(rewriteRetry)
			}
		case w.Read(err != nil):
			delete(g.readBack.written, w.report.ID)
		}
		g.readBack.mu.Unlock()
		switch {
		case retried && over:
			log.ErrorContext(ctx, "writing an audit report again failed, and is given up: the objects in its bucket may not prove it", "error", rewriteErr)
		case retried:
			log.WarnContext(ctx, "writing an audit report again failed; it is tried again", "error", rewriteErr, "in", rewriteRetry)
		}
		switch {
		case errors.Is(err, openpca.ErrBucketAccess):
			log.WarnContext(ctx, "reading back an audit report: the server's credentials cannot read the bucket (s3:GetObject), and a report put back by a late write would go unnoticed", "error", err)
		case err != nil:
			log.WarnContext(ctx, "reading back an audit report", "error", err)
		}
	}
}

// rewrite writes w's report again, as it was written (its witnesses'
// checkpoint), and returns the new generation.
func (g *Generator) rewrite(ctx context.Context, w *written) (*generation, error) {
	ctx, cancel := context.WithTimeout(ctx, rewriteTimeout)
	defer cancel()
	_, gen, err := g.generate(ctx, w.report, w.gen)
	return gen, err
}

// readSame reports whether w's objects in its bucket are those this
// server wrote.
func (g *Generator) readSame(ctx context.Context, w *written) (bool, error) {
	for _, o := range []struct {
		key string
		objectSum
	}{{w.report.Key, w.gen.sums.report}, {w.report.Key + auditlog.ProofSuffix, w.gen.sums.proof}} {
		sum, err := g.readSum(ctx, w.report.Bucket, o.key, o.size)
		if err != nil || sum != o.sum {
			return false, err
		}
	}
	return true, nil
}

// readSum returns the hash (objectSums) of an object, of its first size
// bytes and one more (which tells a longer object), read with no more than
// readIdle between two bytes.
func (g *Generator) readSum(ctx context.Context, bucket, key string, size int64) (uint64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := time.AfterFunc(readIdle, cancel)
	defer idle.Stop()
	r, err := g.cfg.Objects.Get(ctx, bucket, key)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	h := g.newHash()
	if _, err := io.Copy(h, io.LimitReader(&idleread.Reader{R: r, Idle: idle, D: readIdle}, size+1)); err != nil {
		return 0, err
	}
	return h.Sum64(), nil
}

// newHash returns a hash of objectSums, of the generator's seed.
func (g *Generator) newHash() *maphash.Hash {
	h := &maphash.Hash{}
	h.SetSeed(g.seed)
	return h
}
