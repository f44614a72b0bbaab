package witness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/time/rate"
	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/clientaddr"
	"github.com/openpca/openpca/internal/smallbody"
	"github.com/openpca/openpca/internal/sqliteuri"
)

// Log is a log a witness trusts: the origin of its checkpoints, or with a
// final "*" a prefix of the origins of many logs (OpenPCA's CAs each have a
// log of their own, under one key), and the keys that sign them.
type Log struct {
	Origin string
	Keys   []note.Verifier
}

// matches reports whether the log has origin. What a final "*" stands for
// is plain ASCII (letters, digits, "-._:/"): an origin with a letter of
// another alphabet that looks like one of these would be another log,
// named to pass for a known one on screen. It is maxWildcard bytes at
// most: each origin is a row the witness keeps for good.
func (l Log) matches(origin string) bool {
	if prefix, ok := strings.CutSuffix(l.Origin, "*"); ok {
		rest, ok := strings.CutPrefix(origin, prefix)
		return ok && rest != "" && len(rest) <= maxWildcard && strings.Trim(rest, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._:/") == ""
	}
	return origin == l.Origin
}

// maxWildcard bounds what a final "*" of a log's origin stands for: an
// OpenPCA CA's is 58 bytes ("certificate-authority/" and its id), and a
// key's holder would otherwise have the witness keep origins of 60 KB,
// 20 MB a second.
const maxWildcard = 128

// Config is what a Server works with.
type Config struct {
	// Key is the witness's private key, as NewKey makes it.
	Key string
	// Logs are the logs the witness cosigns.
	Logs []Log
	// MaxConnections is how many connections the witness takes at once
	// (0: smallbody.DefaultConnections), for the budget of small bodies.
	MaxConnections int
	// Database is the path of the SQLite database where the witness keeps
	// the latest checkpoint it cosigned of each log.
	Database string
	Logger   *slog.Logger
}

// Server is a witness: it cosigns a checkpoint of a log it trusts only if
// the checkpoint extends the last it cosigned of that log, as a
// consistency proof shows, so that a log cannot show it two histories.
type Server struct {
	signer *torchwood.CosignatureSigner
	logs   []Log
	db     *sql.DB
	logger *slog.Logger
	// turn orders the check and the update of a log's state: a channel
	// of one, so that a request whose client went away stops waiting.
	turn chan struct{}
	// refusals bounds the log lines of refused proofs, which anyone
	// holding a checkpoint of the log can send.
	refusals *rate.Limiter
	// forks bounds, by origin, the log lines of forks (and of states
	// under two keys), under turn: each is the log's own evidence, but
	// anyone who saw one can send it again, and the other logs' must not
	// be drowned by it. It holds when each origin's last line was;
	// moreForks is the line of the origins past maxForkOrigins within a
	// minute.
	forks     map[string]time.Time
	moreForks rate.Sometimes
	// maxLogs is maxLogsPerEntry, but in tests; full bounds the log lines
	// of --log entries that stand for as many, and are refused more.
	maxLogs int
	full    rate.Sometimes
	// bodies bounds the requests' bodies held at once.
	bodies *smallbody.Budgets
}

// maxForkOrigins bounds how many origins' fork lines Server.forks tells
// apart within a minute; past it, the others share one line a minute.
const maxForkOrigins = 1024

// maxLogsPerEntry bounds the logs a --log entry whose origin ends in "*"
// stands for: each is a row the witness keeps for good, and the holder of
// its key could otherwise sign checkpoints of new origins at a thousand a
// second, 37 GB a day. AWS lets an account 200 CAs in a region unless it
// asks for more.
const maxLogsPerEntry = 10_000

// maxRequest bounds an add-checkpoint request: an old size, at most 63
// proof hashes and a checkpoint with a few signatures fit many times over.
const maxRequest = 64 << 10

// maxProofHashes is the most hashes a consistency proof has (c2sp.org/tlog-witness).
const maxProofHashes = 63

// The bodies a witness holds at once, past those of a few KiB (a round's
// request: smallbody.Budgets), are at most bodyBudget bytes, and one waits
// bodyWait for room.
const (
	bodyBudget = 4 << 20
	bodyWait   = time.Second
)

// NewServer opens (or makes) the witness's database.
func NewServer(ctx context.Context, cfg Config) (*Server, error) {
	s, err := signer(cfg.Key)
	if err != nil {
		return nil, err
	}
	// A rollback journal, not a write-ahead log: each cosigned state is in
	// the database's file once its transaction commits, so a copy of the
	// file alone (a backup that knows nothing of -wal files) holds all the
	// witness cosigned before it was taken. In WAL mode the file lagged
	// the log until a checkpoint, and a restored copy forgot, silently,
	// what the witness had cosigned since. A witness writes a few times a
	// second at most: the journal's extra fsyncs cost nothing that shows.
	// A rollback journal is SQLite's default, which a database of an
	// earlier version, in WAL mode, is switched to here.
	db, err := sql.Open("sqlite", sqliteuri.File(cfg.Database)+"?_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if err := leaveWAL(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("witness: %s: %w", cfg.Database, err)
	}
	// A log's state is its origin's, bound to a key (see state). State
	// kept by origin alone, by the first version, is the state of the key
	// "", which the first key to sign a checkpoint continues.
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS log_states (
			origin TEXT NOT NULL,
			key    TEXT NOT NULL,
			size   INTEGER NOT NULL,
			hash   BLOB NOT NULL,
			PRIMARY KEY (origin, key)
		);
		CREATE TABLE IF NOT EXISTS checkpoints (origin TEXT PRIMARY KEY, size INTEGER NOT NULL, hash BLOB NOT NULL);
		INSERT OR IGNORE INTO log_states (origin, key, size, hash) SELECT origin, '', size, hash FROM checkpoints;
		DELETE FROM checkpoints`); err != nil {
		db.Close()
		return nil, fmt.Errorf("witness: %s: %w", cfg.Database, err)
	}
	return &Server{signer: s, logs: cfg.Logs, db: db, logger: cfg.Logger, refusals: rate.NewLimiter(1, 10), forks: map[string]time.Time{},
		moreForks: rate.Sometimes{Interval: time.Minute}, maxLogs: maxLogsPerEntry, full: rate.Sometimes{Interval: time.Minute},
		turn: make(chan struct{}, 1), bodies: smallbody.NewBudgets(bodyBudget, cfg.MaxConnections, bodyWait)}, nil
}

// leaveWAL puts db in rollback-journal mode. Leaving WAL mode needs the
// database alone, and SQLite does not wait for it (busy_timeout does not
// apply): another process that has it open (a backup, a monitoring
// query) is waited for, up to walWait.
func leaveWAL(ctx context.Context, db *sql.DB) error {
	ctx, cancel := context.WithTimeout(ctx, walWait)
	defer cancel()
	for {
		var mode string
		err := db.QueryRowContext(ctx, "PRAGMA journal_mode=DELETE").Scan(&mode)
		switch {
		case err == nil && mode == "delete":
			return nil
		case err == nil:
			return fmt.Errorf("the database stays in journal mode %q", mode)
		case !busy(err):
			return err // not a database, a folder it cannot write to: no wait helps
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the database is in WAL mode, which an earlier version used, and another process has it open: leaving WAL mode needs it alone (%w)", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// busy reports whether err is SQLite's: another connection holds the
// database.
func busy(err error) bool {
	e, ok := errors.AsType[*sqlite.Error](err)
	return ok && (e.Code()&0xff == sqlite3.SQLITE_BUSY || e.Code()&0xff == sqlite3.SQLITE_LOCKED)
}

// walWait is how long leaveWAL waits for the database to be its own.
const walWait = 10 * time.Second

// HasState reports whether the database at path holds a witness's tables,
// of this version or the first. It opens the database for queries only,
// without the pragmas NewServer sets: a file that is none of the
// witness's (empty, or another program's SQLite database) gets no tables,
// where NewServer would make the witness's in it. Not read-only: a
// witness that died in a write left its journal, hot, which only a
// connection that may write rolls back (read-only, SQLite refused to read
// the database, and the witness to start). So what any opener of the
// database does, this does too: it rolls back a hot journal, and
// checkpoints a WAL database's log into it. SQLite makes a database's
// -wal and -shm files to read it in WAL mode: those it made are removed.
func HasState(ctx context.Context, path string) (bool, error) {
	var made []string
	for _, f := range []string{path + "-wal", path + "-shm"} {
		if _, err := os.Lstat(f); errors.Is(err, os.ErrNotExist) {
			made = append(made, f)
		}
	}
	defer func() {
		for _, f := range made {
			os.Remove(f)
		}
	}()
	db, err := sql.Open("sqlite", sqliteuri.File(path)+"?mode=rw&_pragma=query_only(1)")
	if err != nil {
		return false, err
	}
	defer db.Close()
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('log_states', 'checkpoints')`).Scan(&tables); err != nil {
		return false, fmt.Errorf("witness: %s: %w", path, err)
	}
	return tables > 0, nil
}

// VerifierKey is the witness's public key, which checks its cosignatures.
func (s *Server) VerifierKey() string { return s.signer.Verifier().String() }

// Close closes the database.
func (s *Server) Close() error { return s.db.Close() }

// ServeHTTP serves POST /add-checkpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/add-checkpoint" {
		http.NotFound(w, r)
		return
	}
	body, done, err := smallbody.Read(w, r, maxRequest, s.bodies, clientaddr.Network(clientaddr.Proxies{}.Nearest(r), 24, 48))
	switch {
	case errors.Is(err, smallbody.ErrTooLarge):
		http.Error(w, "the request is too large", http.StatusRequestEntityTooLarge)
		return
	case errors.Is(err, smallbody.ErrBusy):
		http.Error(w, "the witness is busy: retry", http.StatusServiceUnavailable)
		return
	case err != nil:
		http.Error(w, "the request did not arrive whole in time", http.StatusBadRequest)
		return
	}
	defer done()
	cosig, err := s.addCheckpoint(r.Context(), body)
	var refused *RefusedError
	var conflict *ConflictError
	switch {
	case errors.As(err, &conflict):
		w.Header().Set("Content-Type", "text/x.tlog.size")
		w.WriteHeader(http.StatusConflict)
		fmt.Fprintf(w, "%d\n", conflict.Size)
	case errors.As(err, &refused):
		http.Error(w, refused.Message, refused.Status)
	case err != nil:
		// Unless its client hung up: anyone who saw a cosigned
		// checkpoint can send it again and hang up, as fast as they like.
		if !errors.Is(err, context.Canceled) || r.Context().Err() == nil {
			s.logger.ErrorContext(r.Context(), "witness: adding a checkpoint", "error", err)
		}
		http.Error(w, "internal error", http.StatusInternalServerError)
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(cosig)
	}
}

func refuse(status int, format string, args ...any) error {
	return &RefusedError{Status: status, Message: fmt.Sprintf(format, args...)}
}

// emptyTree is the root hash of the empty tree (RFC 6962, 2.1).
var emptyTree = tlog.Hash(sha256.Sum256(nil))

// addCheckpoint checks a request and cosigns its checkpoint, returning
// the cosignature's line.
func (s *Server) addCheckpoint(ctx context.Context, body []byte) ([]byte, error) {
	head, signed, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok {
		return nil, refuse(http.StatusBadRequest, "the request has no empty line before its checkpoint")
	}
	// Split no further than the first line past the most a proof has:
	// a 64 KiB head of one-byte lines, split whole, was 32K strings in
	// 512 KiB.
	lines := strings.SplitN(string(head), "\n", 1+maxProofHashes+1)
	size, ok := strings.CutPrefix(lines[0], "old ")
	oldSize, err := strconv.ParseInt(size, 10, 64)
	if !ok || err != nil || oldSize < 0 || size != strconv.FormatInt(oldSize, 10) {
		return nil, refuse(http.StatusBadRequest, "the request does not start with its old size")
	}
	if len(lines)-1 > maxProofHashes {
		return nil, refuse(http.StatusBadRequest, "the consistency proof has more than %d hashes", maxProofHashes)
	}
	proof := make(tlog.TreeProof, len(lines)-1)
	for i, line := range lines[1:] {
		if proof[i], err = tlog.ParseHash(line); err != nil {
			return nil, refuse(http.StatusBadRequest, "line %d of the consistency proof is not a hash", i+1)
		}
	}
	origin, _, _ := strings.Cut(string(signed), "\n")
	var logs []Log
	var keys []note.Verifier
	for _, l := range s.logs {
		if l.matches(origin) {
			logs = append(logs, l)
			for _, k := range l.Keys {
				// A key given in two entries is one key: note.Open refuses
				// a list that has it twice.
				if !slices.ContainsFunc(keys, func(have note.Verifier) bool { return have.Name() == k.Name() && have.KeyHash() == k.KeyHash() }) {
					keys = append(keys, k)
				}
			}
		}
	}
	if len(keys) == 0 {
		return nil, refuse(http.StatusNotFound, "this witness does not know the log %q", origin)
	}
	n, err := auditlog.OpenNote(signed, keys...)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return nil, refuse(http.StatusForbidden, "the checkpoint is not signed by a key of the log %q", origin)
		}
		return nil, refuse(http.StatusBadRequest, "the checkpoint is not a signed note: %v", err)
	}
	c, err := torchwood.ParseCheckpoint(n.Text)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "not a checkpoint: %v", err)
	}
	// A text of the checkpoint other than its own (a root hash's base64
	// with other trailing bits) verifies, but cosigning it would fail,
	// once the state has moved on.
	if c.String() != n.Text {
		return nil, refuse(http.StatusBadRequest, "the checkpoint is not in its canonical form")
	}
	if c.N > auditlog.MaxTreeSize {
		return nil, refuse(http.StatusBadRequest, "the checkpoint's size %d is past the largest this witness checks, %d", c.N, int64(auditlog.MaxTreeSize))
	}
	if oldSize > c.N {
		return nil, refuse(http.StatusBadRequest, "the old size %d is larger than the checkpoint's %d", oldSize, c.N)
	}
	if c.N == 0 && c.Hash != emptyTree {
		return nil, refuse(http.StatusUnprocessableEntity, "a checkpoint of no entries has the root of the empty tree")
	}

	select {
	case s.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.turn }()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	// database/sql rolls back a transaction whose context ended, and what
	// uses it next says only that it is done: the request's end is the
	// cause, which is no failure of the witness's.
	txErr := func(err error) error {
		if errors.Is(err, sql.ErrTxDone) && ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	st, err := s.state(ctx, tx, c.Origin, logs, n.Sigs)
	if err != nil {
		return nil, txErr(err)
	}
	if st.new {
		if err := s.roomFor(ctx, tx, c.Origin, logs); err != nil {
			return nil, txErr(err)
		}
	}
	known, knownHash := st.size, st.hash
	if oldSize != known {
		return nil, &ConflictError{Size: known}
	}
	switch {
	case oldSize == 0:
		if len(proof) != 0 {
			return nil, refuse(http.StatusUnprocessableEntity, "a checkpoint after none needs no consistency proof")
		}
	case oldSize == c.N:
		if !bytes.Equal(knownHash, c.Hash[:]) {
			// Two checkpoints of one size signed by the log's key, with
			// two roots: the proof of a fork, which the log shows, with
			// the signatures that verified (not the others a request may
			// carry, 64 KiB of them), at most once a minute by origin.
			s.forkSeen(c.Origin, func() {
				evidence := n.Text + "\n"
				for _, sig := range n.Sigs {
					evidence += "— " + sig.Name + " " + sig.Base64 + "\n"
				}
				s.logger.ErrorContext(ctx, "witness: a log signed two checkpoints of the same size with different roots: it shows two histories (logged at most once a minute for the log)",
					"origin", c.Origin, "size", c.N, "cosigned_root", tlog.Hash(knownHash).String(), "checkpoint", evidence)
			})
			return nil, refuse(http.StatusUnprocessableEntity, "the checkpoint has another root than the one of %d entries this witness cosigned", known)
		}
		if len(proof) != 0 {
			// RFC 6962's proof between equal sizes is empty: any other
			// does not verify.
			return nil, refuse(http.StatusUnprocessableEntity, "a checkpoint of the size this witness cosigned needs no consistency proof")
		}
	default:
		if err := tlog.CheckTree(proof, c.N, c.Hash, oldSize, tlog.Hash(knownHash)); err != nil {
			// Anyone can send a checkpoint the log signed with a proof
			// that does not hold: a refusal, not yet evidence of a fork.
			if s.refusals.Allow() {
				s.logger.WarnContext(ctx, "witness: a checkpoint came with a consistency proof that does not hold (a fork of the log, or a bad request)",
					"origin", c.Origin, "size", c.N, "cosigned_size", known)
			}
			return nil, refuse(http.StatusUnprocessableEntity, "the checkpoint does not extend the one of %d entries this witness cosigned", known)
		}
	}
	// A checkpoint signed by a key listed after the one the state is bound
	// to in their --log entry (old, then new) moves the state to that key;
	// by one listed before, it does not move it back, whether it grows the
	// log or not: or anyone with an old checkpoint, or a server not yet
	// given the new key, could undo the change, and once the operator
	// drops the old key the log would be refused. The same checkpoint
	// again (as the protocol allows) changes nothing else.
	key := st.stored
	if st.stored == "" || listedAfter(logs, st.signer, st.stored) {
		key = st.signer
	}
	if oldSize != c.N || key != st.stored {
		if _, err := tx.ExecContext(ctx, `DELETE FROM log_states WHERE origin = ?`, c.Origin); err != nil {
			return nil, txErr(err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO log_states (origin, key, size, hash) VALUES (?, ?, ?, ?)`, c.Origin, key, c.N, c.Hash[:]); err != nil {
			return nil, txErr(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, txErr(err)
	}
	cosigned, err := note.Sign(&note.Note{Text: n.Text}, s.signer)
	if err != nil {
		return nil, err
	}
	// The signed note is the text, an empty line and the signature lines.
	return cosigned[len(n.Text)+1:], nil
}

// forkSeen runs log if the fork lines of origin (of a fork, or of states
// under two keys) allow one now. Call it in turn.
func (s *Server) forkSeen(origin string, log func()) {
	now := time.Now()
	at, ok := s.forks[origin]
	switch {
	case ok && now.Sub(at) < time.Minute:
		return
	case !ok && len(s.forks) >= maxForkOrigins:
		maps.DeleteFunc(s.forks, func(_ string, at time.Time) bool { return now.Sub(at) >= time.Minute })
		if len(s.forks) >= maxForkOrigins {
			// Forks of more logs than it tells apart, within a minute:
			// starting again from none had each logged again at once.
			s.moreForks.Do(log)
			return
		}
	}
	s.forks[origin] = now
	log()
}

// roomFor refuses a log of origin new to the witness where each of logs,
// the --log entries that cover it, ends in "*" and one of them stands for
// maxLogsPerEntry logs already.
func (s *Server) roomFor(ctx context.Context, tx *sql.Tx, origin string, logs []Log) error {
	if slices.ContainsFunc(logs, func(l Log) bool { return !strings.HasSuffix(l.Origin, "*") }) {
		return nil
	}
	for _, l := range logs {
		prefix := strings.TrimSuffix(l.Origin, "*")
		var n int
		// What "*" stands for is ASCII below DEL (Log.matches).
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(DISTINCT origin) FROM log_states WHERE origin >= ? AND origin < ?`, prefix, prefix+"\x7f").Scan(&n); err != nil {
			return err
		}
		if n >= s.maxLogs {
			s.full.Do(func() {
				s.logger.WarnContext(ctx, "witness: a --log entry stands for as many logs as a witness keeps of one, and new ones are refused (logged at most once a minute)",
					"log", l.Origin, "logs", n, "refused", origin)
			})
			return refuse(http.StatusForbidden, "this witness keeps %d logs at most of the --log entry %q, and has them", s.maxLogs, l.Origin)
		}
	}
	return nil
}

// logState is what a witness knows of a log: the size and root it last
// cosigned, and the key its checkpoints are to be signed with.
type logState struct {
	size   int64
	hash   []byte
	signer string // the key, as "name+hash", that signed the checkpoint being added
	stored string // the key the state is kept under ("" for none, and for an earlier version's)
	new    bool   // the witness has no state of the log
}

// keyID names a key as its signatures do.
func keyID(name string, hash uint32) string { return fmt.Sprintf("%s+%08x", name, hash) }

// listedAfter reports whether a --log entry lists the key named later
// after the one named earlier: positions in two entries (a key of the
// old and the new, and another entry of the new alone whose pattern
// covers the same origin) say nothing of which came first.
func listedAfter(logs []Log, later, earlier string) bool {
	return slices.ContainsFunc(logs, func(l Log) bool {
		i, j := l.keyAt(later), l.keyAt(earlier)
		return i >= 0 && j >= 0 && i > j
	})
}

// keyAt is where l lists the key named id, or -1.
func (l Log) keyAt(id string) int {
	return slices.IndexFunc(l.Keys, func(k note.Verifier) bool { return keyID(k.Name(), k.KeyHash()) == id })
}

// state returns the state of the log of origin, for a checkpoint with
// the verified signatures sigs.
//
// A witness keeps one state per origin, bound to the key of the first
// checkpoint of it cosigned (or a key of the same --log entry, which a key
// change lists beside the old): a cosignature covers the checkpoint's
// text, not who signed it, so a second state of the same origin under
// another key would let whoever holds both keys have two histories
// cosigned, and strip the other key's signature after. A checkpoint of
// the origin signed by no key of the bound log is refused, so that
// another --log entry whose pattern covers the origin (another server of
// the same default account) can neither fork the log nor move it on. The
// state of an earlier version kept under no key ("") goes to the first
// key that continues it.
func (s *Server) state(ctx context.Context, tx *sql.Tx, origin string, logs []Log, sigs []note.Signature) (*logState, error) {
	sameLog := func(a, b string) bool {
		return a == b || slices.ContainsFunc(logs, func(l Log) bool { return l.keyAt(a) >= 0 && l.keyAt(b) >= 0 })
	}
	rows, err := tx.QueryContext(ctx, `SELECT key, size, hash FROM log_states WHERE origin = ? ORDER BY key DESC`, origin)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	st := &logState{signer: keyID(sigs[0].Name, sigs[0].Hash), new: true}
	bound, others := "", 0
	for rows.Next() {
		st.new = false
		var key string
		var size int64
		var hash []byte
		if err := rows.Scan(&key, &size, &hash); err != nil {
			return nil, err
		}
		// Rows come in descending order of key: the state of no key, last,
		// counts only where no key has a state.
		i := slices.IndexFunc(sigs, func(sig note.Signature) bool { return key == "" || sameLog(key, keyID(sig.Name, sig.Hash)) })
		switch {
		case key == "" && (bound != "" || others > 0):
			continue
		case i < 0:
			others++
			continue
		case bound != "" && size <= st.size:
			// Another key of the same --log entry, as a witness of an
			// earlier version kept it: the longer state stands, so that
			// no checkpoint goes back past what either key had cosigned.
			continue
		}
		st.size, st.hash, st.signer, st.stored, bound = size, hash, keyID(sigs[i].Name, sigs[i].Hash), key, key
		if key == "" {
			bound = "(earlier version)"
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	switch {
	case others > 0 && bound == "":
		return nil, refuse(http.StatusForbidden, "the log %q is signed by another key than this checkpoint's: this witness cosigned it under that key first", origin)
	case others > 0:
		// Only a witness of an earlier version, which kept a state per
		// key, can hold two: which is the log's, it cannot tell. Anyone
		// who saw a checkpoint of the log can send it again: the line is
		// the fork lines' (at most once a minute for the log).
		s.forkSeen(origin, func() {
			s.logger.ErrorContext(ctx, "witness: a log has states under two keys, which an earlier version of the witness kept apart: it is cosigned no more until the operator keeps one (logged at most once a minute for the log)", "origin", origin)
		})
		return nil, refuse(http.StatusUnprocessableEntity, "this witness has cosigned the log %q under two keys", origin)
	}
	return st, nil
}
