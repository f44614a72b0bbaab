package witness_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/internal/auditlogtest"
	"github.com/openpca/openpca/internal/race"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/witness"
)

// logFixture is a log: its entries' tree, and the key that signs its
// checkpoints.
type logFixture struct {
	origin string
	label  string // in its entries
	tree   auditlogtest.Tree
	signer note.Signer
	vkey   string
}

func newLog(t testing.TB, origin string, entries int) *logFixture {
	skey, vkey, err := note.GenerateKey(rand.Reader, "log.example")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	l := &logFixture{origin: origin, signer: s, vkey: vkey}
	l.grow(t, entries)
	return l
}

func (l *logFixture) grow(t testing.TB, n int) {
	for range n {
		if err := l.tree.Add(fmt.Appendf(nil, "entry %d of %s%s", l.tree.Size(), l.origin, l.label)); err != nil {
			t.Fatal(err)
		}
	}
}

// checkpoint signs the checkpoint of the log's first size entries.
func (l *logFixture) checkpoint(t testing.TB, size int64) []byte {
	root, err := l.tree.Root(size)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := auditlog.Checkpoint{Origin: l.origin, Size: size, Root: root, Time: time.Now().UTC().Truncate(time.Second)}.Sign(l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func (l *logFixture) proof(t testing.TB, from, to int64) tlog.TreeProof {
	if from == 0 {
		return nil
	}
	p, err := tlog.ProveTree(to, from, &l.tree)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startWitness runs a witness on 127.0.0.1 that trusts logs.
func startWitness(t *testing.T, logs ...witness.Log) (*witness.Client, *witness.Server) {
	skey, vkey, err := witness.NewKey("witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	// A folder named with what a URI gives a meaning to: the database
	// must still be made in it.
	dir := filepath.Join(t.TempDir(), "w?1#%41")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "witness.db")
	c, s := serveWitness(t, skey, vkey, db, logs...)
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("the witness's database is not where it was told: %v", err)
	}
	if s.VerifierKey() != vkey {
		t.Fatalf("the witness's key %s is not the one made, %s", s.VerifierKey(), vkey)
	}
	return c, s
}

// serveWitness starts a witness of key skey (whose verifier key is vkey)
// on the database at path, until the test ends.
func serveWitness(t *testing.T, skey, vkey, path string, logs ...witness.Log) (*witness.Client, *witness.Server) {
	t.Helper()
	return serveWitnessLogged(t, skey, vkey, path, slog.New(slog.DiscardHandler), logs...)
}

// serveWitnessLogged is serveWitness, logging to logger.
func serveWitnessLogged(t *testing.T, skey, vkey, path string, logger *slog.Logger, logs ...witness.Log) (*witness.Client, *witness.Server) {
	t.Helper()
	s, err := witness.NewServer(t.Context(), witness.Config{Key: skey, Logs: logs, Database: path, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	v, err := auditlog.NewWitnessVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return &witness.Client{URL: srv.URL, Verifier: v}, s
}

// refusal is the status of the witness's refusal err; 0 if none.
func refusal(err error) int {
	var r *witness.RefusedError
	if errors.As(err, &r) {
		return r.Status
	}
	return 0
}

// keyName is the name and hash of l's key, as a witness's state names it.
func keyName(t testing.TB, l *logFixture) string {
	v, err := note.NewVerifier(l.vkey)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash())
}

func trust(t testing.TB, origin string, l *logFixture) witness.Log {
	v, err := note.NewVerifier(l.vkey)
	if err != nil {
		t.Fatal(err)
	}
	return witness.Log{Origin: origin, Keys: []note.Verifier{v}}
}

// TestWitness: a witness cosigns a log's first checkpoint and each that
// extends the last it cosigned; it answers a stale old size with the size
// it knows, and refuses a fork, an unknown log, a checkpoint signed by
// another key, and malformed requests, as c2sp.org/tlog-witness says.
func TestWitness(t *testing.T) {
	l := newLog(t, "openpca/arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/a", 10)
	c, _ := startWitness(t, trust(t, "openpca/arn:aws:acm-pca:us-east-1:111122223333:*", l))
	ctx := t.Context()

	cosigned, err := c.AddCheckpoint(ctx, 0, nil, l.checkpoint(t, 10))
	if err != nil {
		t.Fatal(err)
	}
	checkCosignature(t, cosigned, l, c)
	l.grow(t, 5)
	if _, err := c.AddCheckpoint(ctx, 10, l.proof(t, 10, 15), l.checkpoint(t, 15)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddCheckpoint(ctx, 15, nil, l.checkpoint(t, 15)); err != nil {
		t.Errorf("the same checkpoint again: %v", err)
	}
	var conflict *witness.ConflictError
	if _, err := c.AddCheckpoint(ctx, 10, l.proof(t, 10, 15), l.checkpoint(t, 15)); !errors.As(err, &conflict) || conflict.Size != 15 {
		t.Errorf("a stale old size: %v, want a conflict at 15", err)
	}

	// A fork: the log shows another history of 16 entries.
	fork := &logFixture{origin: l.origin, label: ", rewritten", signer: l.signer, vkey: l.vkey}
	fork.grow(t, 16)
	if _, err := c.AddCheckpoint(ctx, 15, fork.proof(t, 15, 16), fork.checkpoint(t, 16)); refusal(err) != http.StatusUnprocessableEntity {
		t.Errorf("a fork: %v, want 422", err)
	}
	if _, err := c.AddCheckpoint(ctx, 15, nil, fork.checkpoint(t, 15)); refusal(err) != http.StatusUnprocessableEntity {
		t.Errorf("another root at the cosigned size: %v, want 422", err)
	}
	other := newLog(t, "other.example/log", 3)
	if _, err := c.AddCheckpoint(ctx, 0, nil, other.checkpoint(t, 3)); refusal(err) != http.StatusNotFound {
		t.Errorf("an unknown log: %v, want 404", err)
	}
	lookalike := newLog(t, strings.Replace(l.origin, "certificate-authority", "certificate-auth\u043erity", 1), 3)
	lookalike.signer, lookalike.vkey = l.signer, l.vkey
	if _, err := c.AddCheckpoint(ctx, 0, nil, lookalike.checkpoint(t, 3)); refusal(err) != http.StatusNotFound {
		t.Errorf("an origin under the pattern, in another alphabet: %v, want 404", err)
	}
	long := newLog(t, "openpca/arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/"+strings.Repeat("a", 107), 3)
	long.signer, long.vkey = l.signer, l.vkey
	if _, err := c.AddCheckpoint(ctx, 0, nil, long.checkpoint(t, 3)); refusal(err) != http.StatusNotFound {
		t.Errorf("an origin under the pattern, of 129 bytes past it: %v, want 404", err)
	}
	impostor := newLog(t, l.origin+"x", 3) // an origin the prefix covers, another key
	if _, err := c.AddCheckpoint(ctx, 0, nil, impostor.checkpoint(t, 3)); refusal(err) != http.StatusForbidden {
		t.Errorf("a checkpoint signed by another key: %v, want 403", err)
	}
	if _, err := c.AddCheckpoint(ctx, 16, nil, l.checkpoint(t, 15)); refusal(err) != http.StatusBadRequest {
		t.Errorf("an old size past the checkpoint: %v, want 400", err)
	}
	for _, body := range []string{"", "old 1", "old -1\n\nx", "old 01\n\n" + string(l.checkpoint(t, 1)), "old 0\nnot a hash\n\n" + string(l.checkpoint(t, 1))} {
		res, err := http.Post(c.URL+"/add-checkpoint", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%q: %d, want 400", body, res.StatusCode)
		}
	}
	// The state survived all that: the log goes on.
	l.grow(t, 1)
	if _, err := c.AddCheckpoint(ctx, 15, l.proof(t, 15, 16), l.checkpoint(t, 16)); err != nil {
		t.Errorf("the log after the refusals: %v", err)
	}
}

// checkCosignature checks a cosigned checkpoint with the reference code of
// the formats: x/mod's note for the log's signature and torchwood for the
// witness's cosignature and its timestamp.
func checkCosignature(t *testing.T, cosigned []byte, l *logFixture, c *witness.Client) {
	t.Helper()
	logKey, _ := note.NewVerifier(l.vkey)
	n, err := note.Open(cosigned, note.VerifierList(logKey, c.Verifier))
	if err != nil || len(n.Sigs) != 2 {
		t.Fatalf("the cosigned checkpoint: %v, %d signatures", err, len(n.Sigs))
	}
	if _, ok := c.Verifier.(*torchwood.CosignatureVerifier); !ok {
		t.Errorf("the witness's key is not a torchwood cosignature verifier: %T", c.Verifier)
	}
	for _, sig := range n.Sigs {
		if sig.Name != c.Verifier.Name() {
			continue
		}
		ts, err := torchwood.CosignatureTimestamp(sig)
		if err != nil || time.Since(time.Unix(ts, 0)) > time.Minute {
			t.Errorf("the cosignature's time: %d, %v", ts, err)
		}
	}
	if _, err := torchwood.ParseCheckpoint(n.Text); err != nil {
		t.Errorf("torchwood does not parse the checkpoint: %v", err)
	}
	if !bytes.HasPrefix(cosigned, []byte(n.Text)) {
		t.Error("the cosigned checkpoint's text changed")
	}
}

// TestKeys: a witness's keys read back, whatever characters their base64
// holds, and a key of another kind is refused.
func TestKeys(t *testing.T) {
	for range 50 {
		skey, vkey, err := witness.NewKey("witness.example/k")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := witness.PublicKey(skey); err != nil || got != vkey {
			t.Fatalf("the public key of %s: %s, %v; made with it %s", skey, got, err, vkey)
		}
		if _, err := auditlog.NewWitnessVerifier(vkey); err != nil {
			t.Fatalf("%s: %v", vkey, err)
		}
	}
	_, logKey, _ := note.GenerateKey(rand.Reader, "log.example")
	if _, err := auditlog.NewWitnessVerifier(logKey); err == nil {
		t.Error("a log's Ed25519 note key was taken for a witness's cosignature key")
	}
	if _, err := witness.PublicKey("PRIVATE+KEY+x+00000000+AAAA"); err == nil {
		t.Error("a malformed private key was taken")
	}
}

// FuzzAddCheckpoint feeds a witness requests from anyone: it answers each
// with one of the protocol's statuses, never fails inside, and whatever it
// cosigns is a checkpoint the log's key signed, with a cosignature that
// verifies.
func FuzzAddCheckpoint(f *testing.F) {
	l := newLog(f, "openpca/arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/fuzz", 9)
	skey, vkey, err := witness.NewKey("witness.example/fuzz")
	if err != nil {
		f.Fatal(err)
	}
	s, err := witness.NewServer(f.Context(), witness.Config{Key: skey, Logs: []witness.Log{trust(f, "openpca/arn:aws:acm-pca:*", l)},
		Database: filepath.Join(f.TempDir(), "witness.db"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	cosigner, err := auditlog.NewWitnessVerifier(vkey)
	if err != nil {
		f.Fatal(err)
	}
	logKey, _ := note.NewVerifier(l.vkey)
	request := func(old, size int64) []byte {
		b := fmt.Appendf(nil, "old %d\n", old)
		for _, h := range l.proof(f, old, size) {
			b = fmt.Appendf(b, "%s\n", h)
		}
		return append(append(b, '\n'), l.checkpoint(f, size)...)
	}
	f.Add(request(0, 3))
	f.Add(request(3, 9))
	f.Add(request(3, 3))
	f.Add([]byte("old 0\n\nnot a note\n"))
	f.Add([]byte("old -1\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/add-checkpoint", bytes.NewReader(body)))
		switch w.Code {
		case http.StatusOK:
			_, signed, _ := bytes.Cut(body, []byte("\n\n"))
			if _, err := note.Open(append(bytes.Clone(signed), w.Body.Bytes()...), note.VerifierList(logKey, cosigner)); err != nil {
				t.Fatalf("the witness cosigned %q: %v", body, err)
			}
		case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
	})
}

// TestClientStatuses: a witness's 4xx is a refusal the caller can tell
// apart (a RefusedError with the status); a 5xx is a failure, not a
// refusal; a 409 says the size the witness knows. An error quotes a few
// hundred bytes of the answer at most, not the 64 KiB an answer may be:
// the server logs it at each round.
func TestClientStatuses(t *testing.T) {
	l := newLog(t, "openpca/test", 2)
	v, _ := note.NewVerifier(l.vkey)
	for _, tc := range []struct {
		status  int
		body    string
		refused bool
	}{
		{http.StatusUnprocessableEntity, "inconsistent", true},
		{http.StatusForbidden, "unknown key", true},
		{http.StatusInternalServerError, "disk full", false},
		{http.StatusServiceUnavailable, "", false},
		{http.StatusForbidden, strings.Repeat("x", 60<<10), true},
		{http.StatusInternalServerError, strings.Repeat("x", 60<<10), false},
		{http.StatusConflict, strings.Repeat("x", 60<<10), false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, tc.body, tc.status) }))
		c := &witness.Client{URL: srv.URL, Verifier: v}
		_, err := c.AddCheckpoint(t.Context(), 0, nil, l.checkpoint(t, 2))
		var refused *witness.RefusedError
		if err == nil || errors.As(err, &refused) != tc.refused || (tc.refused && refused.Status != tc.status) || len(err.Error()) > 512 {
			t.Errorf("status %d: %.600v", tc.status, err)
		}
		srv.Close()
	}
	// A redirect is a refusal, not followed: a witness must not have the
	// server post elsewhere.
	var posted atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { posted.Add(1) }))
	defer elsewhere.Close()
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
		srv := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/internal", status))
		_, err := (&witness.Client{URL: srv.URL, Verifier: v}).AddCheckpoint(t.Context(), 0, nil, l.checkpoint(t, 2))
		var refused *witness.RefusedError
		if !errors.As(err, &refused) || refused.Status != status {
			t.Errorf("a redirect %d: %v", status, err)
		}
		srv.Close()
	}
	if n := posted.Load(); n > 0 {
		t.Errorf("the client followed %d redirects", n)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusConflict)
		fmt.Fprintln(w, "7")
	}))
	defer srv.Close()
	var conflict *witness.ConflictError
	if _, err := (&witness.Client{URL: srv.URL, Verifier: v}).AddCheckpoint(t.Context(), 0, nil, l.checkpoint(t, 2)); !errors.As(err, &conflict) || conflict.Size != 7 {
		t.Errorf("a 409: %v", err)
	}
}

// TestWitnessOneStatePerOrigin: of two logs the witness trusts under one
// origin pattern (two servers of the same default account, each its own
// --log), the one whose checkpoint of an origin was cosigned first owns
// it. The other's key can neither move it on nor, held beside the first
// (one operator with both servers), have a second history of it cosigned:
// a cosignature covers the text, and the other key's signature could be
// stripped after. Keys of one --log entry (a key change) share the state.
func TestWitnessOneStatePerOrigin(t *testing.T) {
	pattern := "openpca/arn:aws:acm-pca:us-east-1:111122223333:*"
	origin := "openpca/arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/a"
	mine, theirs := newLog(t, origin, 10), newLog(t, origin, 1000)
	t.Run("two entries", func(t *testing.T) {
		c, _ := startWitness(t, trust(t, pattern, mine), trust(t, pattern, theirs))
		ctx := t.Context()
		if _, err := c.AddCheckpoint(ctx, 0, nil, mine.checkpoint(t, 10)); err != nil {
			t.Fatal(err)
		}
		// A fork of the log, signed by both keys, the other's first.
		fork := &logFixture{origin: origin, label: ", rewritten", signer: mine.signer, vkey: mine.vkey}
		fork.grow(t, 11)
		both, err := note.Sign(&note.Note{Text: string(fork.checkpoint(t, 11)[:bytes.Index(fork.checkpoint(t, 11), []byte("\n\n"))+1])}, theirs.signer, mine.signer)
		if err != nil {
			t.Fatal(err)
		}
		for _, old := range []int64{0, 10} {
			if _, err := c.AddCheckpoint(ctx, old, fork.proof(t, old, 11), both); err == nil {
				t.Errorf("a fork signed by both keys, from %d: cosigned", old)
			}
		}
		if _, err := c.AddCheckpoint(ctx, 0, nil, theirs.checkpoint(t, 1000)); refusal(err) != http.StatusForbidden {
			t.Errorf("another key's checkpoint of the origin: %v, want 403", err)
		}
		mine.grow(t, 5)
		if _, err := c.AddCheckpoint(ctx, 10, mine.proof(t, 10, 15), mine.checkpoint(t, 15)); err != nil {
			t.Errorf("the log goes on: %v", err)
		}
	})
	t.Run("one entry", func(t *testing.T) {
		l := trust(t, pattern, mine)
		l.Keys = append(l.Keys, trust(t, pattern, theirs).Keys...)
		c, _ := startWitness(t, l)
		ctx := t.Context()
		if _, err := c.AddCheckpoint(ctx, 0, nil, mine.checkpoint(t, 15)); err != nil {
			t.Fatal(err)
		}
		// The new key signs the same log: it goes on from the old key's state.
		next := &logFixture{origin: origin, signer: theirs.signer, vkey: theirs.vkey, tree: mine.tree}
		next.grow(t, 1)
		var conflict *witness.ConflictError
		if _, err := c.AddCheckpoint(ctx, 0, nil, next.checkpoint(t, 16)); !errors.As(err, &conflict) || conflict.Size != 15 {
			t.Errorf("the new key starting over: %v, want a conflict at 15", err)
		}
		if _, err := c.AddCheckpoint(ctx, 15, next.proof(t, 15, 16), next.checkpoint(t, 16)); err != nil {
			t.Errorf("the new key going on: %v", err)
		}
	})
}

// TestWitnessKeyChangeStays: a log's state, moved to the new key of its
// --log entry (old, then new) by a checkpoint of that key, whether of the
// size it had or grown, is not moved back by the old key's checkpoint:
// one of the size already cosigned, which anyone who saw it may send
// again, nor one that grows the log (a server not yet given the new key,
// or whoever holds the retired one). Once the operator drops the old
// key, the new one still signs the log, also where another entry, listed
// first, names the new key alone: a key's place in one entry says
// nothing of its place in another.
func TestWitnessKeyChangeStays(t *testing.T) {
	origin := "openpca/arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/a"
	type step struct {
		renewed bool // signed by the new key, else the old
		size    int64
	}
	for _, tc := range []struct {
		name  string
		alone bool // the new key also in an entry of its own, listed first
		steps []step
	}{
		{"the key changed at a size", false, []step{{false, 7}, {true, 7}, {false, 7}, {false, 8}}},
		{"the key changed as the log grew", false, []step{{false, 7}, {true, 8}, {false, 9}}},
		{"the new key also in an entry of its own", true, []step{{false, 7}, {true, 8}, {false, 9}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := newLog(t, origin, 0)
			renewed := newLog(t, origin, 0)
			both := trust(t, origin, old)
			both.Keys = append(both.Keys, trust(t, origin, renewed).Keys...)
			logs := []witness.Log{both}
			if tc.alone {
				logs = []witness.Log{trust(t, "openpca/arn:aws:acm-pca:us-east-1:111122223333:*", renewed), both}
			}
			skey, vkey, err := witness.NewKey("witness.example/w1")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "witness.db")
			c, s := serveWitness(t, skey, vkey, path, logs...)
			ctx := t.Context()
			var size int64
			add := func(signer *logFixture, to int64) error {
				old.grow(t, int(to-old.tree.Size()))
				signer.tree = old.tree
				var proof tlog.TreeProof
				if size > 0 {
					proof = signer.proof(t, size, to)
				}
				_, err := c.AddCheckpoint(ctx, size, proof, signer.checkpoint(t, to))
				size = to
				return err
			}
			for i, st := range tc.steps {
				signer := old
				if st.renewed {
					signer = renewed
				}
				if err := add(signer, st.size); err != nil {
					t.Fatalf("step %d, of %d entries: %v", i, st.size, err)
				}
			}
			s.Close()
			c, _ = serveWitness(t, skey, vkey, path, trust(t, origin, renewed))
			if err := add(renewed, size+1); err != nil {
				t.Errorf("the new key, the old one dropped: %v", err)
			}
		})
	}
}

// TestWitnessForkLogged: a fork of a log (a checkpoint of the size the
// witness cosigned, with another root, signed by the log's key) is logged
// with its text and the log's signature, not the other signature lines a
// request carries, and at most once a minute for the log: anyone who saw
// it can send it again, 64 KiB at a time, which filled the witness's disk.
func TestWitnessForkLogged(t *testing.T) {
	l := newLog(t, "openpca/arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/a", 5)
	skey, vkey, err := witness.NewKey("witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	var logs testenv.SyncBuffer
	c, _ := serveWitnessLogged(t, skey, vkey, filepath.Join(t.TempDir(), "witness.db"), slog.New(slog.NewTextHandler(&logs, nil)), trust(t, l.origin, l))
	ctx := t.Context()
	if _, err := c.AddCheckpoint(ctx, 0, nil, l.checkpoint(t, 5)); err != nil {
		t.Fatal(err)
	}
	fork := &logFixture{origin: l.origin, label: ", rewritten", signer: l.signer, vkey: l.vkey}
	fork.grow(t, 5)
	padded := fork.checkpoint(t, 5)
	for i := range 90 { // a note has 100 signatures at most
		padded = fmt.Appendf(padded, "— pad%d %s\n", i, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{byte(i)}, 300)))
	}
	for range 20 {
		if _, err := c.AddCheckpoint(ctx, 5, nil, padded); err == nil {
			t.Fatal("a fork was cosigned")
		}
	}
	lines := strings.Count(logs.String(), "two histories")
	if lines != 1 || strings.Contains(logs.String(), "pad0") || !strings.Contains(logs.String(), l.vkey[:strings.Index(l.vkey, "+")]) {
		t.Errorf("20 forks sent: %d lines, %d bytes of log; want one, without the unknown signatures:\n%.2000s", lines, len(logs.String()), logs.String())
	}
}

// TestWitnessLogsOfAnEntryBounded: a --log entry whose origin ends in "*"
// stands for a bounded number of logs: the key's holder signed
// checkpoints of new origins at 880 a second, each a row kept for good
// (a red-team's finding). Past the bound, a new log is refused (403, and
// a line for the witness's operator); the logs kept go on, and so do the
// logs of an entry that names its origin.
func TestWitnessLogsOfAnEntryBounded(t *testing.T) {
	prefix := "openpca/arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/"
	l := newLog(t, prefix+"0", 3)
	named := newLog(t, prefix+"named", 3)
	named.signer, named.vkey = l.signer, l.vkey
	skey, vkey, err := witness.NewKey("witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	var logs testenv.SyncBuffer
	c, s := serveWitnessLogged(t, skey, vkey, filepath.Join(t.TempDir(), "witness.db"), slog.New(slog.NewTextHandler(&logs, nil)),
		trust(t, prefix+"*", l), trust(t, named.origin, named))
	witness.SetMaxLogs(s, 3)
	ctx := t.Context()
	add := func(origin string, old, size int64) error {
		l.origin = origin
		_, err := c.AddCheckpoint(ctx, old, l.proof(t, old, size), l.checkpoint(t, size))
		return err
	}
	for i := range 3 {
		if err := add(prefix+strconv.Itoa(i), 0, 2); err != nil {
			t.Fatal(err)
		}
	}
	for i := 3; i < 6; i++ {
		var refused *witness.RefusedError
		if err := add(prefix+strconv.Itoa(i), 0, 2); !errors.As(err, &refused) || refused.Status != http.StatusForbidden || !strings.Contains(err.Error(), "keeps 3 logs at most") {
			t.Errorf("log %d of the entry: %v; want 403", i, err)
		}
	}
	if n := strings.Count(logs.String(), "new ones are refused"); n != 1 {
		t.Errorf("%d lines of the full entry; want one:\n%s", n, logs.String())
	}
	if err := add(prefix+"1", 2, 3); err != nil {
		t.Errorf("a log kept, grown: %v", err)
	}
	if _, err := c.AddCheckpoint(ctx, 0, nil, named.checkpoint(t, 3)); err != nil {
		t.Errorf("a log its entry names: %v", err)
	}
}

// TestWitnessForkLinesOfManyLogs: forks of more logs than the witness
// tells apart are logged once a minute in all, and each log's at most
// once a minute still: past 1,024 logs, starting again from none had
// each logged again at once, 3,300 lines in a second (a red-team's
// finding).
func TestWitnessForkLinesOfManyLogs(t *testing.T) {
	race.Skip(t)
	prefix := "openpca/arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/"
	l := newLog(t, prefix+"0", 1)
	fork := &logFixture{origin: l.origin, label: ", rewritten", signer: l.signer, vkey: l.vkey}
	fork.grow(t, 1)
	skey, vkey, err := witness.NewKey("witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	var logs testenv.SyncBuffer
	c, _ := serveWitnessLogged(t, skey, vkey, filepath.Join(t.TempDir(), "witness.db"), slog.New(slog.NewTextHandler(&logs, nil)), trust(t, prefix+"*", l))
	ctx := t.Context()
	const n = 1100 // past the 1,024 told apart
	for i := range n {
		l.origin = prefix + strconv.Itoa(i)
		if _, err := c.AddCheckpoint(ctx, 0, nil, l.checkpoint(t, 1)); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		for i := range n {
			fork.origin = prefix + strconv.Itoa(i)
			if _, err := c.AddCheckpoint(ctx, 1, nil, fork.checkpoint(t, 1)); err == nil {
				t.Fatal("a fork was cosigned")
			}
		}
	}
	if got := strings.Count(logs.String(), "two histories"); got != 1025 {
		t.Errorf("forks of %d logs sent twice: %d lines; want 1,025 (1,024 logs' and one for the rest)", n, got)
	}
}

// TestWitnessKeepsEarlierState: the state a witness of an earlier version
// kept by origin alone goes on, for the key that signs the log: the log
// cannot start over.
func TestWitnessKeepsEarlierState(t *testing.T) {
	l := newLog(t, "openpca/arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/a", 10)
	path := filepath.Join(t.TempDir(), "witness.db")
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := l.tree.Root(10)
	_, err = old.Exec(`CREATE TABLE checkpoints (origin TEXT PRIMARY KEY, size INTEGER NOT NULL, hash BLOB NOT NULL);
		INSERT INTO checkpoints VALUES (?, 10, ?)`, l.origin, root[:])
	old.Close()
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, _ := witness.NewKey("witness.example/w1")
	c, _ := serveWitness(t, skey, vkey, path, trust(t, l.origin, l))
	var conflict *witness.ConflictError
	if _, err := c.AddCheckpoint(t.Context(), 0, nil, l.checkpoint(t, 10)); !errors.As(err, &conflict) || conflict.Size != 10 {
		t.Errorf("the log starting over: %v, want a conflict at 10", err)
	}
	l.grow(t, 2)
	if _, err := c.AddCheckpoint(t.Context(), 10, l.proof(t, 10, 12), l.checkpoint(t, 12)); err != nil {
		t.Errorf("the log going on: %v", err)
	}
}

// TestWitnessKeepsTheLongerState: of the states a witness of the version
// before kept of one log under two keys of one --log entry, the longer
// stands, whichever key it is under.
func TestWitnessKeepsTheLongerState(t *testing.T) {
	origin := "openpca/arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/a"
	// One pair of keys for both orders of the states: which key's state
	// the witness reads first is the same each time.
	first, second := newLog(t, origin, 0), newLog(t, origin, 0)
	for _, sizes := range [][2]int64{{15, 10}, {10, 15}} {
		old := &logFixture{origin: origin, signer: first.signer, vkey: first.vkey}
		old.grow(t, 15)
		next := second
		path := filepath.Join(t.TempDir(), "witness.db")
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		rOld, _ := old.tree.Root(sizes[0])
		rNext, _ := old.tree.Root(sizes[1])
		_, err = db.Exec(`CREATE TABLE log_states (origin TEXT NOT NULL, key TEXT NOT NULL, size INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (origin, key));
			INSERT INTO log_states VALUES (?, ?, ?, ?), (?, ?, ?, ?)`, origin, keyName(t, old), sizes[0], rOld[:], origin, keyName(t, next), sizes[1], rNext[:])
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		entry := trust(t, origin, old)
		entry.Keys = append(entry.Keys, trust(t, origin, next).Keys...)
		skey, vkey, _ := witness.NewKey("witness.example/w1")
		c, _ := serveWitness(t, skey, vkey, path, entry)
		var conflict *witness.ConflictError
		if _, err := c.AddCheckpoint(t.Context(), 10, old.proof(t, 10, 12), old.checkpoint(t, 12)); !errors.As(err, &conflict) || conflict.Size != 15 {
			t.Errorf("states %v: a checkpoint from the shorter state: %v, want a conflict at 15", sizes, err)
		}
		old.grow(t, 1)
		if _, err := c.AddCheckpoint(t.Context(), 15, old.proof(t, 15, 16), old.checkpoint(t, 16)); err != nil {
			t.Errorf("states %v: the log going on from the longer state: %v", sizes, err)
		}
	}
}

// TestWitnessTwoKeysLoggedOnce: a log that a witness of an earlier
// version kept states of under two keys, of two --log entries, is refused
// each time it is sent, and logged at most once a minute: anyone who saw a
// checkpoint of it can send it again (a review's finding: each was an
// ERROR line, which could crowd the fork lines out of the log).
func TestWitnessTwoKeysLoggedOnce(t *testing.T) {
	origin := "openpca/arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/a"
	one, two := newLog(t, origin, 5), newLog(t, origin, 5)
	path := filepath.Join(t.TempDir(), "witness.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	rOne, _ := one.tree.Root(5)
	rTwo, _ := two.tree.Root(5)
	_, err = db.Exec(`CREATE TABLE log_states (origin TEXT NOT NULL, key TEXT NOT NULL, size INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (origin, key));
		INSERT INTO log_states VALUES (?, ?, 5, ?), (?, ?, 5, ?)`, origin, keyName(t, one), rOne[:], origin, keyName(t, two), rTwo[:])
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, _ := witness.NewKey("witness.example/w1")
	var logs testenv.SyncBuffer
	c, _ := serveWitnessLogged(t, skey, vkey, path, slog.New(slog.NewTextHandler(&logs, nil)), trust(t, origin, one), trust(t, origin, two))
	for range 20 {
		if _, err := c.AddCheckpoint(t.Context(), 5, nil, one.checkpoint(t, 5)); refusal(err) != http.StatusUnprocessableEntity {
			t.Fatalf("a log under two keys: %v, want 422", err)
		}
	}
	if lines := strings.Count(logs.String(), "states under two keys"); lines != 1 {
		t.Errorf("a log under two keys sent 20 times: %d lines, want one:\n%.2000s", lines, logs.String())
	}
}

// TestWitnessProofLinesBounded: a request's lines are split no further
// than past the most a proof has: a head of 32K one-byte lines, which
// anyone can send, was split whole into 512 KiB of strings before it was
// refused (a review's finding).
func TestWitnessProofLinesBounded(t *testing.T) {
	l := newLog(t, "example.com/log", 3)
	_, s := startWitness(t, trust(t, "example.com/log", l))
	body := []byte("old 0" + strings.Repeat("\na", 32_000) + "\n\n" + string(l.checkpoint(t, 3)))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 20
	for range n {
		if err := witness.AddCheckpoint(t.Context(), s, body); refusal(err) != http.StatusBadRequest {
			t.Fatalf("a proof of 32,000 lines: %v, want 400", err)
		}
	}
	runtime.ReadMemStats(&after)
	// The head's string (64 KiB) and 65 strings' room.
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 128<<10 {
		t.Errorf("a proof of 32,000 lines refused: %d KiB allocated, want at most 128", per>>10)
	}
}

// TestWitnessStateInItsFile: what a witness cosigned is in its database's
// file once cosigned, so that a backup of the file alone, taken while the
// witness runs, forgets nothing; a database of an earlier version, in WAL
// mode, is switched to a rollback journal.
func TestWitnessStateInItsFile(t *testing.T) {
	l := newLog(t, "openpca/arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/a", 10)
	path := filepath.Join(t.TempDir(), "witness.db")
	old, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	_, err = old.Exec(`CREATE TABLE log_states (origin TEXT NOT NULL, key TEXT NOT NULL, size INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (origin, key))`)
	old.Close()
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, _ := witness.NewKey("witness.example/w1")
	c, _ := serveWitness(t, skey, vkey, path, trust(t, l.origin, l))
	if _, err := c.AddCheckpoint(t.Context(), 0, nil, l.checkpoint(t, 10)); err != nil {
		t.Fatal(err)
	}
	l.grow(t, 2)
	if _, err := c.AddCheckpoint(t.Context(), 10, l.proof(t, 10, 12), l.checkpoint(t, 12)); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The header's file format versions (bytes 18 and 19): 1 for a
	// rollback journal, 2 for WAL.
	if file[18] != 1 || file[19] != 1 {
		t.Errorf("the database's file format versions are %d and %d, want 1 (a rollback journal)", file[18], file[19])
	}
	restored := filepath.Join(t.TempDir(), "witness.db")
	if err := os.WriteFile(restored, file, 0o600); err != nil {
		t.Fatal(err)
	}
	c2, _ := serveWitness(t, skey, vkey, restored, trust(t, l.origin, l))
	var conflict *witness.ConflictError
	if _, err := c2.AddCheckpoint(t.Context(), 10, l.proof(t, 10, 12), l.checkpoint(t, 12)); !errors.As(err, &conflict) || conflict.Size != 12 {
		t.Errorf("a copy of the database's file alone, cosigning from 10: %v, want a conflict at 12", err)
	}
}

// TestWitnessStartsAfterACrash: a witness that died in a write left its
// journal hot; HasState, which the witness command asks before it starts,
// reads the database all the same (rolling the write back), and so does
// the witness.
func TestWitnessStartsAfterACrash(t *testing.T) {
	l := newLog(t, "example.com/log", 10)
	path := filepath.Join(t.TempDir(), "witness.db")
	skey, vkey, _ := witness.NewKey("witness.example/w1")
	c, s := serveWitness(t, skey, vkey, path, trust(t, l.origin, l))
	if _, err := c.AddCheckpoint(t.Context(), 0, nil, l.checkpoint(t, 10)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// A write under way, whose pages a small cache spills to the file
	// before it commits: the files as they are then are a crash's.
	db, err := sql.Open("sqlite", path+"?_pragma=cache_size(2)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		if _, err := tx.Exec(`INSERT INTO log_states VALUES (?, 'k', 1, zeroblob(200))`, i); err != nil {
			t.Fatal(err)
		}
	}
	crashed := filepath.Join(t.TempDir(), "witness.db")
	for _, suffix := range []string{"", "-journal"} {
		b, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(crashed+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tx.Rollback()
	if kept, err := witness.HasState(t.Context(), crashed); err != nil || !kept {
		t.Fatalf("HasState after a crash in a write: %v, %v; want true", kept, err)
	}
	c2, _ := serveWitness(t, skey, vkey, crashed, trust(t, l.origin, l))
	var conflict *witness.ConflictError
	if _, err := c2.AddCheckpoint(t.Context(), 0, nil, l.checkpoint(t, 10)); !errors.As(err, &conflict) || conflict.Size != 10 {
		t.Errorf("the witness after a crash in a write, cosigning from 0: %v, want a conflict at 10", err)
	}
}

// TestWitnessLeavesWALWhenAlone: a database of an earlier version, in WAL
// mode, that another process has open (a backup, a query) is switched to
// a rollback journal once it is the witness's alone.
func TestWitnessLeavesWALWhenAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "witness.db")
	other, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Exec(`CREATE TABLE log_states (origin TEXT NOT NULL, key TEXT NOT NULL, size INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (origin, key))`); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(500*time.Millisecond, func() { other.Close() })
	skey, vkey, _ := witness.NewKey("witness.example/w1")
	serveWitness(t, skey, vkey, path)
	if file, err := os.ReadFile(path); err != nil || file[18] != 1 || file[19] != 1 {
		t.Errorf("the database's file format versions: %v, %v; want 1 and 1 (a rollback journal)", file[18:20], err)
	}
}

// TestWitnessNotADatabase: a file that is no database is refused at once,
// saying so, not waited on as a database another process holds.
func TestWitnessNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "witness.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	skey, _, _ := witness.NewKey("witness.example/w1")
	_, err := witness.NewServer(t.Context(), witness.Config{Key: skey, Database: path, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || strings.Contains(err.Error(), "another process") || !strings.Contains(err.Error(), "not a database") {
		t.Errorf("a witness on a file that is no database: %v", err)
	}
}

// loggedWitness starts a witness of l whose log lines the test reads.
func loggedWitness(t *testing.T, l *logFixture) (*witness.Server, *testenv.SyncBuffer) {
	t.Helper()
	skey, _, err := witness.NewKey("witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	logs := new(testenv.SyncBuffer)
	s, err := witness.NewServer(t.Context(), witness.Config{Key: skey, Logs: []witness.Log{trust(t, l.origin, l)},
		Database: filepath.Join(t.TempDir(), "witness.db"), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, logs
}

// TestWitnessHangUpsLogNoErrors: requests whose clients hang up at any
// point, a cosigned checkpoint sent again, write no error line (anyone who
// saw a cosigned checkpoint can send it).
func TestWitnessHangUpsLogNoErrors(t *testing.T) {
	l := newLog(t, "example.com/log", 3)
	s, logs := loggedWitness(t, l)
	send := func(ctx context.Context, body string) int {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/add-checkpoint", strings.NewReader(body)).WithContext(ctx))
		return w.Code
	}
	if code := send(t.Context(), "old 0\n\n"+string(l.checkpoint(t, 3))); code != http.StatusOK {
		t.Fatalf("the first cosigning: %d", code)
	}
	again := "old 3\n\n" + string(l.checkpoint(t, 3))
	for i := range 2000 {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Duration(i%400)*time.Microsecond, cancel)
		send(ctx, again)
		cancel()
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("requests whose clients hung up wrote errors:\n%.1000s", logs.String())
	}
}

// TestWitnessKeyInTwoEntries: a key given in two --log entries is one key.
func TestWitnessKeyInTwoEntries(t *testing.T) {
	l := newLog(t, "openpca/arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/a", 3)
	c, _ := startWitness(t, trust(t, "openpca/arn:aws:acm-pca:us-east-1:111122223333:*", l), trust(t, l.origin, l))
	if _, err := c.AddCheckpoint(t.Context(), 0, nil, l.checkpoint(t, 3)); err != nil {
		t.Errorf("a checkpoint of a log whose key two entries give: %v", err)
	}
}

// TestWitnessHostileCheckpoints sends what a log's key holder, or anyone
// replaying its checkpoints, could: each is refused at once, leaves the
// log's state as it was, and only a proven fork is logged as one.
func TestWitnessHostileCheckpoints(t *testing.T) {
	origin := "openpca/arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/h"
	l := newLog(t, origin, 12)
	skey, vkey, err := witness.NewKey("witness.example/h")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s, err := witness.NewServer(t.Context(), witness.Config{Key: skey, Logs: []witness.Log{trust(t, origin, l)},
		Database: filepath.Join(t.TempDir(), "witness.db"), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cosigner, _ := auditlog.NewWitnessVerifier(vkey)
	c := &witness.Client{URL: "http://witness.invalid", Verifier: cosigner, HTTP: &http.Client{Transport: handlerTransport{s}}}
	ctx := t.Context()
	if _, err := c.AddCheckpoint(ctx, 0, nil, l.checkpoint(t, 10)); err != nil {
		t.Fatal(err)
	}
	sign := func(text string) []byte {
		signed, err := note.Sign(&note.Note{Text: text}, l.signer)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	root, _ := l.tree.Root(12)
	canonical := auditlog.Checkpoint{Origin: origin, Size: 12, Root: root, Time: time.Now().UTC().Truncate(time.Second)}.Text()
	b64 := base64.StdEncoding.EncodeToString(root[:])
	// The last base64 digit before "=" carries two bits a decoder drops.
	lax := b64[:len(b64)-2] + string(b64[len(b64)-2]^1) + "="
	junk := tlog.TreeProof{root}
	for _, tc := range []struct {
		name   string
		old    int64
		proof  tlog.TreeProof
		signed []byte
		status int
	}{
		// x/mod's tlog loops for ever on trees past 2^62 entries.
		{"a size past 2^62", 10, junk, sign(fmt.Sprintf("%s\n%d\n%s\n", origin, int64(1)<<62+1, b64)), http.StatusBadRequest},
		{"the largest size", 10, junk, sign(fmt.Sprintf("%s\n%d\n%s\n", origin, int64(math.MaxInt64), b64)), http.StatusBadRequest},
		{"a root in lax base64", 10, l.proof(t, 10, 12), sign(strings.Replace(canonical, b64, lax, 1)), http.StatusBadRequest},
		{"a proof that does not hold", 10, junk, l.checkpoint(t, 12), http.StatusUnprocessableEntity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err := c.AddCheckpoint(ctx, tc.old, tc.proof, tc.signed)
			var refused *witness.RefusedError
			if !errors.As(err, &refused) || refused.Status != tc.status {
				t.Fatalf("%v; want a refusal with %d", err, tc.status)
			}
		})
	}
	// Anyone can replay the log's checkpoint with a bad proof, many times:
	// refusals, logged a few at a time, and not as forks.
	for range 200 {
		if _, err := c.AddCheckpoint(ctx, 10, junk, l.checkpoint(t, 12)); err == nil {
			t.Fatal("a bad proof was taken")
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n > 20 || strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("201 bad proofs logged %d warnings, and errors: %v:\n%.2000s", n, strings.Contains(logs.String(), "level=ERROR"), logs.String())
	}
	// The state is still 10: the log goes on from it.
	if _, err := c.AddCheckpoint(ctx, 10, l.proof(t, 10, 12), l.checkpoint(t, 12)); err != nil {
		t.Fatalf("the log after the refusals: %v", err)
	}
	// A second root at a cosigned size is a fork the log signed: logged as
	// one, with the checkpoint, for evidence.
	fork := &logFixture{origin: origin, label: ", rewritten", signer: l.signer, vkey: l.vkey}
	fork.grow(t, 12)
	forked := fork.checkpoint(t, 12)
	if _, err := c.AddCheckpoint(ctx, 12, nil, forked); err == nil {
		t.Fatal("a fork was cosigned")
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), strings.SplitN(string(forked), "\n", 4)[2]) {
		t.Errorf("the fork was not logged with its checkpoint:\n%.3000s", logs.String())
	}
}

// handlerTransport sends requests straight to a handler.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	return w.Result(), nil
}

// FuzzAddSignedCheckpoint is FuzzAddCheckpoint past the signature check,
// which fuzzed bytes never get through: each checkpoint is one the log's
// key signed, of any size, root line and extension lines, sent with any
// old size and proof, as a log's key holder could.
func FuzzAddSignedCheckpoint(f *testing.F) {
	origin := "openpca/arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/fuzz"
	l := newLog(f, origin, 9)
	skey, vkey, err := witness.NewKey("witness.example/fuzz")
	if err != nil {
		f.Fatal(err)
	}
	s, err := witness.NewServer(f.Context(), witness.Config{Key: skey, Logs: []witness.Log{trust(f, origin, l)},
		Database: filepath.Join(f.TempDir(), "witness.db"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	cosigner, _ := auditlog.NewWitnessVerifier(vkey)
	logKey, _ := note.NewVerifier(l.vkey)
	// The witness has cosigned 3 entries: requests from there get as far
	// as the consistency proof.
	c := &witness.Client{URL: "http://witness.invalid", Verifier: cosigner, HTTP: &http.Client{Transport: handlerTransport{s}}}
	if _, err := c.AddCheckpoint(f.Context(), 0, nil, l.checkpoint(f, 3)); err != nil {
		f.Fatal(err)
	}
	f.Add(int64(3), int64(1)<<62+1, base64.StdEncoding.EncodeToString(make([]byte, tlog.HashSize)), "", make([]byte, tlog.HashSize))
	for _, size := range []int64{0, 3, 9} {
		root, _ := l.tree.Root(size)
		var proof []byte
		for _, h := range l.proof(f, 3, max(size, 3)) {
			proof = append(proof, h[:]...)
		}
		f.Add(int64(3), size, base64.StdEncoding.EncodeToString(root[:]), "", proof)
	}
	f.Add(int64(0), int64(5), "AAAA", "time 2026-01-01T00:00:00Z\n", []byte{1})
	f.Fuzz(func(t *testing.T, old, size int64, root, extension string, proof []byte) {
		b := fmt.Appendf(nil, "old %d\n", old)
		for i := 0; i+tlog.HashSize <= len(proof) && i < 64*tlog.HashSize; i += tlog.HashSize {
			b = fmt.Appendf(b, "%s\n", tlog.Hash(proof[i:i+tlog.HashSize]))
		}
		signed, err := note.Sign(&note.Note{Text: fmt.Sprintf("%s\n%d\n%s\n%s", origin, size, root, extension)}, l.signer)
		if err != nil {
			return // not a note's text
		}
		body := append(append(b, '\n'), signed...)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/add-checkpoint", bytes.NewReader(body)))
		switch w.Code {
		case http.StatusOK:
			if _, err := note.Open(append(bytes.Clone(signed), w.Body.Bytes()...), note.VerifierList(logKey, cosigner)); err != nil {
				t.Fatalf("the witness cosigned %q: %v", body, err)
			}
		case http.StatusBadRequest, http.StatusConflict, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
	})
}

// TestWitnessWaitEndsWithItsClient: a request waiting for its turn, while
// another holds it, stops waiting when its client goes away, and writes
// no error to the log (anyone could, as fast as they hang up).
func TestWitnessWaitEndsWithItsClient(t *testing.T) {
	l := newLog(t, "example.com/log", 3)
	s, logs := loggedWitness(t, l)
	srv := httptest.NewServer(s)
	defer witness.HoldTurn(s)()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/add-checkpoint", strings.NewReader("old 0\n\n"+string(l.checkpoint(t, 3))))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("an answer while another request held the turn: %d", res.StatusCode)
	}
	closed := make(chan struct{})
	go func() {
		srv.Close() // waits for the server's requests to end
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the request still waits for its turn, its client gone")
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("a request whose client went away was logged as an error:\n%s", logs.String())
	}
}

// TestWitnessBodyBudget: the requests a witness holds at once are bounded
// by its budget, shared out among networks: one network's requests of 64
// KiB, held back a byte short, take its share, and its next large one is
// refused unread (503), while a round's request, of a few hundred bytes,
// is still cosigned. Before the budget, each body held was read whole
// into memory of its own: 1,024 connections took a witness to 204 MB.
func TestWitnessBodyBudget(t *testing.T) {
	l := newLog(t, "example.com/log", 3)
	c, _ := startWitness(t, trust(t, "example.com/log", l))
	host := strings.TrimPrefix(c.URL, "http://")
	const size = 64 << 10
	post := func(body []byte) int {
		res, err := http.Post(c.URL+"/add-checkpoint", "", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	// hold sends a request of size bytes but its last, which asks to be
	// told to send its body (Expect: 100-continue), and returns the first
	// line of its answer: 100 Continue once the witness took room for it
	// and began to read it, or, at once, the answer to a request refused
	// unread (net/http waits for no body it did not ask for).
	hold := func() string {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		fmt.Fprintf(conn, "POST /add-checkpoint HTTP/1.1\r\nHost: %s\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", host, size)
		conn.Write(make([]byte, size-1))
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			t.Fatalf("a held request's answer: %v", err)
		}
		return strings.TrimSpace(line)
	}
	// Eight, one after another, fill the network's share (an eighth of 4
	// MiB): no other request is read meanwhile.
	for i := range 8 {
		if line := hold(); line != "HTTP/1.1 100 Continue" {
			t.Fatalf("held request %d of 8, within its network's share: %q, want HTTP/1.1 100 Continue", i+1, line)
		}
	}
	if code := post(make([]byte, size)); code != http.StatusServiceUnavailable {
		t.Fatalf("a large request, while its network held its share of the budget: %d, want 503", code)
	}
	if code := post([]byte("old 0\n\n" + string(l.checkpoint(t, 3)))); code != http.StatusOK {
		t.Errorf("a round's request, while its network held its share of the large budget: %d, want 200", code)
	}
}
