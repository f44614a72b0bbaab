// Package witnessing has the server's checkpoints cosigned by witnesses
// (c2sp.org/tlog-witness): as each CA's key-use log grows, a worker signs
// a checkpoint of it, sends it to every witness with a proof that it
// extends the one the witness cosigned last, and keeps the checkpoint that
// enough of them cosigned. A witness that is down or refuses delays
// nothing but its cosignature: it shows in the logs and the metrics.
package witnessing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/witness"
	"github.com/openpca/openpca/worker"
)

// Timing. A CA's log goes to the witnesses at most once per Interval, so
// that a burst of issuances costs one round trip per witness, not one per
// certificate: a checkpoint is cosigned about a second after the entries it
// ends with. A round that got too few cosignatures is tried again after
// Retry.
const (
	Interval = time.Second
	Retry    = 10 * time.Second
	poll     = 500 * time.Millisecond
	lease    = 30 * time.Second
	workers  = 4
)

// Store is what witnessing reads and keeps.
type Store interface {
	openpca.WitnessStore
	FindCA(ctx context.Context, accountID, id string) (*openpca.CA, error)
}

// Witness is a witness the server asks for cosignatures.
type Witness struct {
	// Key is the witness's public key, which names it in the store.
	Key    string
	Client *witness.Client
}

// Config is what witnessing works with.
type Config struct {
	Store Store
	// Log signs the checkpoints and proves their consistency.
	Log       *auditlog.Log
	Witnesses []Witness
	// Quorum is how many witnesses must cosign a checkpoint for it to be
	// the witnessed one.
	Quorum int
	// Owner names this server among those sharing the store.
	Owner  string
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Alarm, if set, is told of every CA's key-use log found not to
	// match its hashes.
	Alarm openpca.IntegrityAlarm
}

// Witnessing has checkpoints cosigned in the background, until closed.
type Witnessing struct {
	cfg         Config
	pool        *worker.Pool[*openpca.WitnessJob]
	submissions *prometheus.CounterVec
	// life ends at Close: the submissions to witnesses run within it, a
	// round's late ones past the round, and late waits for them.
	life context.Context
	stop context.CancelFunc
	late sync.WaitGroup
	// known is what late submissions found a witness knows of a CA's log,
	// by CA and witness, for the CA's next round to start from; lateNow,
	// the late submissions under way.
	knownMu sync.Mutex
	known   map[[2]string]int64
	lateNow map[[2]string]bool
}

// Start starts witnessing.
func Start(cfg Config) *Witnessing {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	w := &Witnessing{cfg: cfg, known: map[[2]string]int64{}, lateNow: map[[2]string]bool{}, submissions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "openpca_witness_submissions_total",
		Help: "Checkpoints sent to witnesses, by witness and outcome: cosigned, unreachable (or answering wrong), refused (a 403 or 404: the witness does not trust this server's key for the log), inconsistent (a 422: the checkpoint does not extend what the witness cosigned, as a forked log's would not), rolled-back (the witness cosigned more of the log than the server has), late (still to answer 2 s after a quorum cosigned).",
	}, []string{"witness", "outcome"})}
	// Several logs go to the witnesses at once: a round waits for a
	// quorum, and quorumGrace for the rest (a hanging one would hold it
	// for its client's timeout), and each report asks for a round of its
	// own.
	w.life, w.stop = context.WithCancel(context.Background())
	w.pool = worker.Start(worker.Config{Name: "witnessing", Owner: cfg.Owner, Workers: workers, Lease: lease, Poll: poll, Logger: cfg.Logger, Now: cfg.Now},
		queue{w})
	return w
}

// Wake tells witnessing that a log has grown.
func (w *Witnessing) Wake() { w.pool.Wake() }

// Close stops witnessing.
func (w *Witnessing) Close() {
	w.pool.Close()
	w.stop()
	w.late.Wait()
}

// Collector reports the submissions to witnesses.
func (w *Witnessing) Collector() prometheus.Collector { return w.submissions }

// AtLeast returns the CA's witnessed checkpoint once it has at least size
// entries and was cosigned in a round begun after it asked, waiting for
// witnesses to cosign one for at most wait. A report asks for its own
// round, after it was requested, even of a log that has not grown: its
// witnesses' cosignatures then show an auditor that the log was no longer
// than the report's (and the entries the proof file adds) when they made
// them, which an older report made to look new would not.
func (w *Witnessing) AtLeast(ctx context.Context, caID string, size int64, wait time.Duration) (*openpca.WitnessedCheckpoint, error) {
	// A round that got too few cosignatures waits Retry before the next;
	// a report waiting is worth one sooner.
	ask, err := w.cfg.Store.WitnessAgain(ctx, caID)
	if err != nil {
		return nil, err
	}
	// The wait bounds how long the report waits for the witnesses, from
	// its ask, not its reads of the database: a read cut short by it would
	// make a database that did not answer in time look like witnesses
	// that did not cosign, and the report would go without them for good;
	// and with a wait of 0 no read would be made at all. What the
	// witnesses cosigned is read once more when it ends.
	waited := time.NewTimer(wait)
	defer waited.Stop()
	t := time.NewTicker(poll / 5)
	defer t.Stop()
	for last := false; ; {
		c, err := w.cfg.Store.WitnessedCheckpoint(ctx, caID)
		switch {
		case err == nil && c.Size >= size && c.Cosigners >= w.cfg.Quorum && c.Answers >= ask:
			return c, nil
		case err != nil && !errors.Is(err, openpca.ErrNotFound):
			return nil, err
		case last:
			return nil, fmt.Errorf("%w, in the %s a report waits", openpca.ErrNotWitnessed, wait)
		}
		w.Wake()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-waited.C:
			last = true
		case <-t.C:
		}
	}
}

// queue is witnessing's side of the workers.
type queue struct{ w *Witnessing }

func (q queue) Claim(ctx context.Context, owner string, now time.Time, lease time.Duration) (*openpca.WitnessJob, error) {
	return q.w.cfg.Store.ClaimWitnessing(ctx, owner, now, lease)
}

func (q queue) Renew(ctx context.Context, job *openpca.WitnessJob, owner string, until time.Time) error {
	return q.w.cfg.Store.RenewWitnessing(ctx, job.CAID, owner, until)
}

func (q queue) Do(ctx context.Context, job *openpca.WitnessJob, owner string) {
	w := q.w
	sizes, witnessed, err := w.round(ctx, job)
	if ctx.Err() != nil {
		return
	}
	next := w.cfg.Now().Add(Interval)
	if err != nil {
		w.cfg.Logger.Error("witnessing a CA's log", "ca", job.CAID, "error", err)
		w.cfg.Alarm.Check(ctx, err)
	}
	if witnessed == nil {
		next = w.cfg.Now().Add(Retry)
	}
	if err := w.cfg.Store.FinishWitnessing(context.WithoutCancel(ctx), job.CAID, owner, sizes, witnessed, next); err != nil {
		w.cfg.Logger.Error("recording what witnesses cosigned", "ca", job.CAID, "error", err)
	}
}

// quorumGrace is how long a round waits for the witnesses still to answer
// once a quorum cosigned: a witness that hangs, until its client's timeout
// (10 s), would hold every round, and the rounds of other CAs behind it.
// Those still to answer go on past the round, and what they find the
// witness knows is where the CA's next round starts from with it: a
// witness that answered late once, and cosigned, would be asked from what
// the store says it cosigned before, answer 409, and be asked again, two
// round trips, past the grace for a slow one, every round after.
const quorumGrace = 2 * time.Second

// round sends a checkpoint of the CA's whole log to every witness at once,
// and returns what each now knows of the log and, if enough cosigned, the
// checkpoint with their cosignatures.
func (w *Witnessing) round(ctx context.Context, job *openpca.WitnessJob) (map[string]int64, *openpca.WitnessedCheckpoint, error) {
	ca, err := w.cfg.Store.FindCA(ctx, job.AccountID, job.CAID)
	if err != nil {
		return nil, nil, err
	}
	signed, c, err := w.cfg.Log.Checkpoint(ctx, ca.ARN, ca.ID, -1)
	if err != nil {
		return nil, nil, err
	}
	sizes, witnessed := w.cosign(ctx, ca, job.Sizes, c, signed)
	return sizes, witnessed, nil
}

// cosign asks every witness at once to cosign checkpoint c (signed), from
// what each cosigned last (cosigned, by witness key), and returns what
// each now knows of the log and, if enough cosigned, the checkpoint with
// their cosignatures. Once a quorum cosigned, it waits quorumGrace for the
// others (see there); it waits for none past ctx.
func (w *Witnessing) cosign(ctx context.Context, ca *openpca.CA, cosigned map[string]int64, c auditlog.Checkpoint, signed []byte) (map[string]int64, *openpca.WitnessedCheckpoint) {
	type result struct {
		i     int
		size  int64  // what the witness now knows of the log; -1 if unknown
		cosig []byte // its cosignature's line, if it cosigned
	}
	answers := make(chan result, len(w.cfg.Witnesses))
	cancels := make([]context.CancelFunc, len(w.cfg.Witnesses))
	for i, wit := range w.cfg.Witnesses {
		cancels[i] = func() {}
		if w.lateUnderWay(ca.ID, wit.Key) {
			// Still answering a round before: not asked again meanwhile.
			w.submissions.WithLabelValues(wit.Client.Verifier.Name(), "late").Inc()
			answers <- result{i, -1, nil}
			continue
		}
		old := max(cosigned[wit.Key], w.takeKnown(ca.ID, wit.Key))
		sctx, cancel := context.WithCancel(w.life)
		cancels[i] = cancel
		w.late.Go(func() {
			size, cosig := w.submit(sctx, ca, wit, old, c, signed)
			answers <- result{i, size, cosig}
		})
	}
	results := make([]result, len(w.cfg.Witnesses))
	answered := make([]bool, len(results))
	var late <-chan time.Time
	n, count, graced := 0, 0, false
collect:
	for n < len(results) {
		select {
		case r := <-answers:
			results[r.i], answered[r.i] = r, true
			n++
			if r.cosig != nil {
				if count++; count == w.cfg.Quorum {
					late = time.After(quorumGrace)
				}
			}
		case <-late:
			graced = true
			break collect
		case <-ctx.Done():
			break collect
		}
	}
	// Those still to answer: past the grace, one request a witness and CA
	// goes on (more, a witness that hangs at every round would be sent as
	// many at once), the others end; the round's end (a lease lost, a
	// stop) ends them all.
	goOn := map[int]bool{}
	for i, ok := range answered {
		if ok {
			continue
		}
		wit := w.cfg.Witnesses[i]
		if graced && w.markLate(ca.ID, wit.Key) {
			goOn[i] = true
			name := wit.Client.Verifier.Name()
			w.cfg.Logger.Warn("a witness had not answered a while after the others' quorum cosigned: its cosignature is left out of this round, and what it answers is where the next starts from",
				"ca", ca.ARN, "witness", name, "size", c.Size, "wait", quorumGrace)
			w.submissions.WithLabelValues(name, "late").Inc()
		} else {
			cancels[i]()
		}
	}
	rest := len(results) - n
	w.late.Go(func() {
		for range rest {
			r := <-answers
			key := w.cfg.Witnesses[r.i].Key
			if goOn[r.i] {
				if r.size >= 0 {
					w.setKnown(ca.ID, key, r.size)
				}
				w.unmarkLate(ca.ID, key)
			}
		}
		for _, cancel := range cancels {
			cancel()
		}
	})
	sizes := map[string]int64{}
	note := bytes.Clone(signed)
	for i, r := range results {
		if answered[i] && r.size >= 0 {
			sizes[w.cfg.Witnesses[i].Key] = r.size
		}
		if r.cosig != nil {
			note = append(note, r.cosig...)
		}
	}
	if count < w.cfg.Quorum {
		return sizes, nil
	}
	return sizes, &openpca.WitnessedCheckpoint{Size: c.Size, Note: note, Cosigners: count}
}

// takeKnown returns, and forgets, what a late submission found witness
// knows of the log of CA caID, or 0. A witness's size only grows: the
// larger of it and the stored size is where a round starts (another
// server's rounds, or this one's since, may have taken it further).
func (w *Witnessing) takeKnown(caID, witness string) int64 {
	w.knownMu.Lock()
	defer w.knownMu.Unlock()
	size := w.known[[2]string{caID, witness}]
	delete(w.known, [2]string{caID, witness})
	return size
}

func (w *Witnessing) setKnown(caID, witness string, size int64) {
	w.knownMu.Lock()
	defer w.knownMu.Unlock()
	w.known[[2]string{caID, witness}] = max(w.known[[2]string{caID, witness}], size)
}

// markLate records a late submission to witness for CA caID under way,
// unless one is: then it reports false.
func (w *Witnessing) markLate(caID, witness string) bool {
	w.knownMu.Lock()
	defer w.knownMu.Unlock()
	if w.lateNow[[2]string{caID, witness}] {
		return false
	}
	w.lateNow[[2]string{caID, witness}] = true
	return true
}

func (w *Witnessing) lateUnderWay(caID, witness string) bool {
	w.knownMu.Lock()
	defer w.knownMu.Unlock()
	return w.lateNow[[2]string{caID, witness}]
}

func (w *Witnessing) unmarkLate(caID, witness string) {
	w.knownMu.Lock()
	defer w.knownMu.Unlock()
	delete(w.lateNow, [2]string{caID, witness})
}

// submit asks one witness to cosign the checkpoint c (signed), starting
// from old, what the store says it cosigned last. It returns what the
// witness knows of the log afterwards (-1 if that is unknown) and its
// cosignature's line, if it cosigned.
func (w *Witnessing) submit(ctx context.Context, ca *openpca.CA, wit Witness, old int64, c auditlog.Checkpoint, signed []byte) (int64, []byte) {
	name := wit.Client.Verifier.Name()
	log := w.cfg.Logger.With("ca", ca.ARN, "witness", name, "size", c.Size)
	for attempt := 1; ; attempt++ {
		if old > c.Size && attempt == 1 {
			// What the store says the witness cosigned is what it last
			// answered, a 409 included, which is not signed: a bogus one
			// kept there would have the witness never asked again. It is
			// asked from the log's size: a witness that did cosign more
			// answers so (409), and is found rolled back below.
			old = c.Size
		}
		if old > c.Size {
			log.Error("a witness cosigned more of this CA's log than the server has: the log lost entries (a database restored from a backup?) or was rewritten",
				"witness_size", old)
			w.submissions.WithLabelValues(name, "rolled-back").Inc()
			return old, nil
		}
		var proof tlog.TreeProof
		if old > 0 && old < c.Size {
			var err error
			if proof, err = w.cfg.Log.ConsistencyProof(ctx, ca.ID, old, c.Size); err != nil {
				log.Error("proving a checkpoint's consistency for a witness", "from", old, "error", err)
				w.cfg.Alarm.Check(ctx, err)
				return -1, nil
			}
		}
		cosigned, err := wit.Client.AddCheckpoint(ctx, old, proof, signed)
		var conflict *witness.ConflictError
		var refused *witness.RefusedError
		switch {
		case err == nil:
			w.submissions.WithLabelValues(name, "cosigned").Inc()
			return c.Size, cosigned[len(signed):]
		case errors.As(err, &conflict) && attempt == 1 && conflict.Size != old:
			if conflict.Size < old {
				// It goes on from what it knows: this server's log is
				// consistent. But the witness no longer guards what it
				// forgot: under the same key, it would cosign a fork of it.
				log.Error("a witness answers that it knows less of this CA's log than it cosigned: it lost its state, or was restored from an older copy, and would cosign a fork of what it forgot, and its operator should give it a new key; or, reached without TLS, the answer (unsigned) was not the witness's",
					"witness_size", conflict.Size, "cosigned", old)
			}
			old = conflict.Size // the witness knows more, or less, than the store said
			continue
		case errors.As(err, &conflict):
			log.Warn("a witness's record of this CA's log keeps changing: another server may be sending it checkpoints", "witness_size", conflict.Size)
			w.submissions.WithLabelValues(name, "unreachable").Inc()
			return conflict.Size, nil
		case errors.As(err, &refused) && refused.Status == http.StatusUnprocessableEntity:
			log.Error("a witness refuses the checkpoint: it does not extend what the witness cosigned of this CA's log, which a forked log would not either",
				"witness_size", old, "error", err)
			w.submissions.WithLabelValues(name, "inconsistent").Inc()
		case errors.As(err, &refused):
			why := "it does not trust this server's audit key for this CA's log"
			switch {
			case refused.Status == http.StatusBadRequest:
				why = "it finds the request malformed, and may speak another version of the protocol"
			case refused.Status >= 300 && refused.Status < 400:
				why = "it redirects, which is not followed: its address may have changed"
			}
			log.Error("a witness refuses the checkpoint: "+why, "error", err)
			w.submissions.WithLabelValues(name, "refused").Inc()
		default:
			log.Warn("a witness did not cosign the checkpoint", "error", err)
			w.submissions.WithLabelValues(name, "unreachable").Inc()
		}
		return old, nil
	}
}
