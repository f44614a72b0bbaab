package witnessing

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/internal/auditlogtest"
	"github.com/openpca/openpca/witness"
)

// treeStore is an auditlog.Store of one CA's log, in memory.
type treeStore struct{ tree *auditlogtest.Tree }

func (s treeStore) LogSize(context.Context, string) (int64, error) { return s.tree.Size(), nil }

func (s treeStore) LogHashes(_ context.Context, _ string, indexes []int64) ([][32]byte, error) {
	hs, err := s.tree.ReadHashes(indexes)
	out := make([][32]byte, len(hs))
	for i, h := range hs {
		out[i] = h
	}
	return out, err
}

// witnessed returns the key of a log, and a witness server that trusts
// the log of caARN under it, reached through wrap (nil: as it is).
func witnessed(t *testing.T, caARN string, wrap func(http.Handler) http.Handler) (note.Signer, string, Witness) {
	t.Helper()
	skey, vkey, _ := note.GenerateKey(rand.Reader, auditlog.KeyName)
	signer, _ := note.NewSigner(skey)
	return witnessedBy(t, caARN, signer, vkey, wrap)
}

// witnessedBy is witnessed, of the log key signer (whose verifier key is
// vkey).
func witnessedBy(t *testing.T, caARN string, signer note.Signer, vkey string, wrap func(http.Handler) http.Handler) (note.Signer, string, Witness) {
	t.Helper()
	logKey, _ := note.NewVerifier(vkey)
	wkey, wvkey, _ := witness.NewKey("witness.example/w1")
	ws, err := witness.NewServer(t.Context(), witness.Config{Key: wkey,
		Logs:     []witness.Log{{Origin: auditlog.Origin(caARN), Keys: []note.Verifier{logKey}}},
		Database: filepath.Join(t.TempDir(), "witness.db"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	var h http.Handler = ws
	if wrap != nil {
		h = wrap(ws)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	wv, _ := auditlog.NewWitnessVerifier(wvkey)
	return signer, vkey, Witness{Key: wvkey, Client: &witness.Client{URL: srv.URL, Verifier: wv}}
}

// newWitnessing witnesses tree, signed by signer, with wit alone.
func newWitnessing(tree *auditlogtest.Tree, signer note.Signer, vkey string, wit Witness) *Witnessing {
	return &Witnessing{
		cfg: Config{Log: auditlog.NewLog(treeStore{tree}, signer, vkey, nil), Witnesses: []Witness{wit}, Quorum: 1,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		submissions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"witness", "outcome"}),
		life:        context.Background(), known: map[[2]string]int64{}, lateNow: map[[2]string]bool{},
	}
}

const submitCA = "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/a"

// TestSubmitBogusConflictIsNotForever: one 409 naming a size past the log
// (a witness's bug, or anyone on the way over plain HTTP, who can refuse
// a round) costs one round, not every round after: the size a 409 gave
// is stored as what the witness cosigned, and a witness whose stored size
// is past the log must still be asked.
func TestSubmitBogusConflictIsNotForever(t *testing.T) {
	tree := &auditlogtest.Tree{}
	for i := range 10 {
		tree.Add(fmt.Appendf(nil, "entry %d", i))
	}
	// The first answer is a bogus 409; the witness answers every other.
	var asked atomic.Int32
	signer, vkey, wit := witnessed(t, submitCA, func(ws http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if asked.Add(1) == 1 {
				w.Header().Set("Content-Type", "text/x.tlog.size")
				w.WriteHeader(http.StatusConflict)
				fmt.Fprintln(w, int64(1)<<62)
				return
			}
			ws.ServeHTTP(w, r)
		})
	})
	w := newWitnessing(tree, signer, vkey, wit)
	ca := &openpca.CA{ID: "a", ARN: submitCA}
	signed, c, err := w.cfg.Log.Checkpoint(t.Context(), submitCA, ca.ID, -1)
	if err != nil {
		t.Fatal(err)
	}
	// Round 1 meets the bogus 409; what it returns is what
	// FinishWitnessing stores as the witness's size, which the next
	// rounds start from.
	old, cosig := w.submit(t.Context(), ca, wit, 0, c, signed)
	if cosig != nil {
		t.Fatal("cosigned through a 409")
	}
	for round := 2; round <= 5 && cosig == nil; round++ {
		old, cosig = w.submit(t.Context(), ca, wit, old, c, signed)
	}
	if cosig == nil {
		t.Errorf("after one bogus 409, four more rounds got no cosignature from a witness that answers: the size kept is %d, past the log's %d, and the witness was asked %d times in all", old, c.Size, asked.Load())
	}
}

// TestSubmitRolledBack: a witness that did cosign more of the log than the
// server has (a database restored from a backup) is found so at each
// round, whatever size was stored for it, and cosigns nothing.
func TestSubmitRolledBack(t *testing.T) {
	long, short := &auditlogtest.Tree{}, &auditlogtest.Tree{}
	for i := range 20 {
		long.Add(fmt.Appendf(nil, "entry %d", i))
		if i < 10 {
			short.Add(fmt.Appendf(nil, "entry %d", i))
		}
	}
	signer, vkey, wit := witnessed(t, submitCA, nil)
	ca := &openpca.CA{ID: "a", ARN: submitCA}
	before := newWitnessing(long, signer, vkey, wit)
	signed, c, _ := before.cfg.Log.Checkpoint(t.Context(), submitCA, ca.ID, -1)
	if size, cosig := before.submit(t.Context(), ca, wit, 0, c, signed); cosig == nil || size != 20 {
		t.Fatalf("the log of 20 entries: %d, %v", size, cosig != nil)
	}
	after := newWitnessing(short, signer, vkey, wit)
	signed, c, _ = after.cfg.Log.Checkpoint(t.Context(), submitCA, ca.ID, -1)
	for _, old := range []int64{20, 0, 5} {
		if size, cosig := after.submit(t.Context(), ca, wit, old, c, signed); cosig != nil || size != 20 {
			t.Errorf("the restored log of 10 entries, from %d: %d, cosigned %v; want 20, none", old, size, cosig != nil)
		}
	}
}

// TestRoundLeavesLateWitness: once a quorum cosigned, a round waits
// quorumGrace for the other witnesses, not for one that hangs until its
// client's timeout (10 s): four such rounds at once held every CA's.
func TestRoundLeavesLateWitness(t *testing.T) {
	tree := &auditlogtest.Tree{}
	for i := range 10 {
		tree.Add(fmt.Appendf(nil, "entry %d", i))
	}
	signer, vkey, honest := witnessed(t, submitCA, nil)
	// It reads the request, and answers only once its client went away.
	var open, most atomic.Int32
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := open.Add(1)
		defer open.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	t.Cleanup(hung.Close)
	_, hungKey, err := witness.NewKey("witness.example/hung")
	if err != nil {
		t.Fatal(err)
	}
	hv, _ := auditlog.NewWitnessVerifier(hungKey)
	w := newWitnessing(tree, signer, vkey, honest)
	w.cfg.Witnesses = append(w.cfg.Witnesses, Witness{Key: hungKey, Client: &witness.Client{URL: hung.URL, Verifier: hv}})
	life, stop := context.WithCancel(t.Context())
	w.life = life
	t.Cleanup(func() { stop(); w.late.Wait() }) // before the hung server closes
	ca := &openpca.CA{ID: "a", ARN: submitCA}
	signed, c, err := w.cfg.Log.Checkpoint(t.Context(), submitCA, ca.ID, -1)
	if err != nil {
		t.Fatal(err)
	}
	// Three rounds in a row: the first's request to the hung witness goes
	// on, the others' end at the grace.
	for range 3 {
		start := time.Now()
		sizes, witnessed := w.cosign(t.Context(), ca, nil, c, signed)
		if took := time.Since(start); witnessed == nil || witnessed.Cosigners != 1 || took > quorumGrace+3*time.Second {
			t.Errorf("a round with a quorum of 1 and a witness that hangs: cosigned %+v, in %v", witnessed, took)
		}
		if _, ok := sizes[hungKey]; ok || sizes[honest.Key] != c.Size {
			t.Errorf("what the witnesses know: %v; want the honest one's alone", sizes)
		}
	}
	if n := most.Load(); n != 1 {
		t.Errorf("%d requests at once to the witness that hangs, after three rounds; want 1", n)
	}
}

// TestLateWitnessCaughtUp: a witness that answered a round late, having
// cosigned, is asked in the next from what it answered, not from what the
// store said before: from there it answered 409 and was asked again, two
// round trips, past the grace for a witness that takes over a second, in
// every round after.
func TestLateWitnessCaughtUp(t *testing.T) {
	tree := &auditlogtest.Tree{}
	for i := range 10 {
		tree.Add(fmt.Appendf(nil, "entry %d", i))
	}
	signer, vkey, fast := witnessed(t, submitCA, nil)
	// The slow witness trusts the same log key: it cosigns at once, and
	// answers 3 s later the first time, 1.2 s later after.
	var asked atomic.Int32
	_, _, slow := witnessedBy(t, submitCA, signer, vkey, func(ws http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			ws.ServeHTTP(rec, r)
			delay := 1200 * time.Millisecond
			if asked.Add(1) == 1 {
				delay = 3 * time.Second
			}
			time.Sleep(delay)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
		})
	})
	w := newWitnessing(tree, signer, vkey, fast)
	w.cfg.Witnesses = append(w.cfg.Witnesses, slow)
	life, stop := context.WithCancel(t.Context())
	w.life = life
	t.Cleanup(func() { stop(); w.late.Wait() })
	ca := &openpca.CA{ID: "a", ARN: submitCA}
	round := func() (map[string]int64, *openpca.WitnessedCheckpoint) {
		signed, c, err := w.cfg.Log.Checkpoint(t.Context(), submitCA, ca.ID, -1)
		if err != nil {
			t.Fatal(err)
		}
		return w.cosign(t.Context(), ca, nil, c, signed)
	}
	if _, witnessed := round(); witnessed == nil || witnessed.Cosigners != 1 {
		t.Fatalf("the first round, the slow witness late: %+v", witnessed)
	}
	time.Sleep(2 * time.Second) // its answer comes
	tree.Add([]byte("entry 10"))
	if _, witnessed := round(); witnessed == nil || witnessed.Cosigners != 2 {
		t.Errorf("the next round, the slow witness answering in 1.2 s: %+v, want both cosigning; it was asked %d times", witnessed, asked.Load())
	}
}
