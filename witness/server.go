package witness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/openpca/openpca/internal/sqliteuri"
)

// Log is a log a witness trusts: the origin of its checkpoints, or with a
// final "*" a prefix of the origins of many logs (OpenPCA's CAs each have a
// log of their own, under one key), and the keys that sign them.
type Log struct {
	Origin string
	Keys   []note.Verifier
}

// matches reports whether the log has origin.
func (l Log) matches(origin string) bool {
	if prefix, ok := strings.CutSuffix(l.Origin, "*"); ok {
		return strings.HasPrefix(origin, prefix)
	}
	return origin == l.Origin
}

// Config is what a Server works with.
type Config struct {
	// Key is the witness's private key, as NewKey makes it.
	Key string
	// Logs are the logs the witness cosigns.
	Logs []Log
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
	mu     sync.Mutex // orders the check and the update of a log's state
}

// maxRequest bounds an add-checkpoint request: an old size, at most 63
// proof hashes and a checkpoint with a few signatures fit many times over.
const maxRequest = 64 << 10

// NewServer opens (or makes) the witness's database.
func NewServer(ctx context.Context, cfg Config) (*Server, error) {
	s, err := signer(cfg.Key)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", sqliteuri.File(cfg.Database)+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	// A log's state is its origin's under the key that signs it: two --log
	// entries whose patterns both match an origin (two operators' servers,
	// both of the default account) do not share it, and one cannot push
	// the other's forward. State kept by origin alone, before, is the
	// state of the key "" (legacy), which any key's first checkpoint
	// continues.
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
	return &Server{signer: s, logs: cfg.Logs, db: db, logger: cfg.Logger}, nil
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
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequest))
	if err != nil {
		http.Error(w, "the request is too large", http.StatusRequestEntityTooLarge)
		return
	}
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
		s.logger.ErrorContext(r.Context(), "witness: adding a checkpoint", "error", err)
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
	lines := strings.Split(string(head), "\n")
	size, ok := strings.CutPrefix(lines[0], "old ")
	oldSize, err := strconv.ParseInt(size, 10, 64)
	if !ok || err != nil || oldSize < 0 || size != strconv.FormatInt(oldSize, 10) {
		return nil, refuse(http.StatusBadRequest, "the request does not start with its old size")
	}
	if len(lines)-1 > 63 {
		return nil, refuse(http.StatusBadRequest, "the consistency proof has more than 63 hashes")
	}
	proof := make(tlog.TreeProof, len(lines)-1)
	for i, line := range lines[1:] {
		if proof[i], err = tlog.ParseHash(line); err != nil {
			return nil, refuse(http.StatusBadRequest, "line %d of the consistency proof is not a hash", i+1)
		}
	}
	origin, _, _ := strings.Cut(string(signed), "\n")
	var keys []note.Verifier
	for _, l := range s.logs {
		if l.matches(origin) {
			keys = append(keys, l.Keys...)
		}
	}
	if len(keys) == 0 {
		return nil, refuse(http.StatusNotFound, "this witness does not know the log %q", origin)
	}
	n, err := note.Open(signed, note.VerifierList(keys...))
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
	signer := fmt.Sprintf("%s+%08x", n.Sigs[0].Name, n.Sigs[0].Hash)
	if oldSize > c.N {
		return nil, refuse(http.StatusBadRequest, "the old size %d is larger than the checkpoint's %d", oldSize, c.N)
	}
	if c.N == 0 && c.Hash != emptyTree {
		return nil, refuse(http.StatusUnprocessableEntity, "a checkpoint of no entries has the root of the empty tree")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var known int64
	var knownHash []byte
	err = tx.QueryRowContext(ctx, `SELECT size, hash FROM log_states WHERE origin = ? AND key IN (?, '') ORDER BY key DESC LIMIT 1`,
		c.Origin, signer).Scan(&known, &knownHash)
	if errors.Is(err, sql.ErrNoRows) {
		err = nil
	}
	if err != nil {
		return nil, err
	}
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
			s.fork(ctx, c, known, "another root for the same size")
			return nil, refuse(http.StatusUnprocessableEntity, "the checkpoint has another root than the one of %d entries this witness cosigned", known)
		}
	default:
		if err := tlog.CheckTree(proof, c.N, c.Hash, oldSize, tlog.Hash(knownHash)); err != nil {
			s.fork(ctx, c, known, "the consistency proof does not hold")
			return nil, refuse(http.StatusUnprocessableEntity, "the checkpoint does not extend the one of %d entries this witness cosigned", known)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO log_states (origin, key, size, hash) VALUES (?, ?, ?, ?)
		ON CONFLICT (origin, key) DO UPDATE SET size = excluded.size, hash = excluded.hash`, c.Origin, signer, c.N, c.Hash[:]); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	cosigned, err := note.Sign(&note.Note{Text: n.Text}, s.signer)
	if err != nil {
		return nil, err
	}
	// The signed note is the text, an empty line and the signature lines.
	return cosigned[len(n.Text)+1:], nil
}

// fork logs a checkpoint signed by a log's key that does not extend what
// the witness cosigned: evidence that the log showed two histories.
func (s *Server) fork(ctx context.Context, c torchwood.Checkpoint, known int64, why string) {
	s.logger.ErrorContext(ctx, "witness: a log signed a checkpoint inconsistent with the one this witness cosigned", "origin", c.Origin,
		"size", c.N, "cosigned_size", known, "why", why)
}
