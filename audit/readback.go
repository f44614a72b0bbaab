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
// objects back. A server that held the report before, and stalled (its
// lease taken over) as its writes were on the way, may land them after
// this server's: its report, or its proof file, or both, in place of this
// one's. The pair then no longer verifies, or is not the report recorded.
// Read back otherwise than written, both objects are written again, and
// read back again. A write held longer than the last read-back is left.
var readBacks = []time.Duration{2 * time.Minute, 20 * time.Minute}

// readIdle bounds how long a read-back's read may go without a byte:
// read-backs are read one after the other, and a bucket that does not
// answer holds back the others'.
const readIdle = 30 * time.Second

// objectSums are hashes of a report's two objects as this server wrote
// them. They tell this server's writes from another's, not from an
// attacker's (who could write to the bucket would not need to forge
// them): a seeded hash of the process (maphash), four times as fast as
// SHA-256 here, so that the report, which hashes as it writes, is not
// slowed by half a second at a million certificates.
type objectSums struct{ report, proof uint64 }

// written is a report this server finished, to read back.
type written struct {
	report *openpca.AuditReport
	sums   objectSums
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

// wrote has report r, whose objects hash to sums, read back later.
func (g *Generator) wrote(r *openpca.AuditReport, sums objectSums) {
	w := &written{report: r, sums: sums, Schedule: readback.NewSchedule(g.cfg.Now(), readBacks)}
	g.readBack.mu.Lock()
	defer g.readBack.mu.Unlock()
	if g.readBack.written != nil { // nil: a generator without workers
		g.readBack.written[r.ID] = w
	}
}

// readBackDue reads back the reports due, and writes again those whose
// objects are not what this server wrote.
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
		log := g.cfg.Logger.With("report", w.report.ID, "ca", w.report.CAID, "bucket", w.report.Bucket, "key", w.report.Key)
		if err == nil && !same {
			log.ErrorContext(ctx, "an audit report's objects in its bucket are not those this server wrote: a late write of a server that held the report before; both are written again")
			_, sums, err := g.generate(ctx, w.report)
			if err != nil {
				log.ErrorContext(ctx, "writing an audit report again", "error", err)
			} else {
				g.wrote(w.report, sums) // and read back again
				continue
			}
		}
		g.readBack.mu.Lock()
		switch {
		case errors.Is(err, openpca.ErrNotFound), errors.Is(err, openpca.ErrBucketAccess):
			delete(g.readBack.written, w.report.ID) // no other read would tell more
		case w.Read(err != nil):
			delete(g.readBack.written, w.report.ID)
		}
		g.readBack.mu.Unlock()
		switch {
		case errors.Is(err, openpca.ErrNotFound):
			log.InfoContext(ctx, "an audit report's object was removed from its bucket before it was read back")
		case errors.Is(err, openpca.ErrBucketAccess):
			log.WarnContext(ctx, "reading back an audit report: the server's credentials cannot read the bucket (s3:GetObject), and a report put back by a late write would go unnoticed", "error", err)
		case err != nil:
			log.WarnContext(ctx, "reading back an audit report", "error", err)
		}
	}
}

// readSame reports whether w's objects in its bucket are those this
// server wrote.
func (g *Generator) readSame(ctx context.Context, w *written) (bool, error) {
	for _, o := range []struct {
		key string
		sum uint64
	}{{w.report.Key, w.sums.report}, {w.report.Key + auditlog.ProofSuffix, w.sums.proof}} {
		sum, err := g.readSum(ctx, w.report.Bucket, o.key)
		if err != nil || sum != o.sum {
			return false, err
		}
	}
	return true, nil
}

// readSum returns the hash (objectSums) of an object, read with no more
// than readIdle between two bytes.
func (g *Generator) readSum(ctx context.Context, bucket, key string) (uint64, error) {
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
	if _, err := io.Copy(h, &idleread.Reader{R: r, Idle: idle, D: readIdle}); err != nil {
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
