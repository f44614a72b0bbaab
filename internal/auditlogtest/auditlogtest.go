// Package auditlogtest builds what tests of audit logs need and the
// server does not: whole trees in memory, and proof files written from
// records alone.
package auditlogtest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca/auditlog"
)

// Tree is a whole tree in memory, built entry by entry, from which proofs
// can be made. The server and verifiers use an auditlog.Hasher, whose
// memory does not grow with the log.
type Tree struct {
	hashes []tlog.Hash // by stored-hash index
	n      int64
}

// Add appends an entry.
func (t *Tree) Add(record []byte) error {
	hashes, err := tlog.StoredHashes(t.n, record, t)
	if err != nil {
		return err
	}
	t.hashes = append(t.hashes, hashes...)
	t.n++
	return nil
}

// Size is the number of entries.
func (t *Tree) Size() int64 { return t.n }

// ReadHashes implements tlog.HashReader.
func (t *Tree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, index := range indexes {
		if index < 0 || index >= int64(len(t.hashes)) {
			return nil, errors.New("auditlog: hash beyond the tree")
		}
		out[i] = t.hashes[index]
	}
	return out, nil
}

// Root returns the hash of the tree of its first n entries.
func (t *Tree) Root(n int64) (tlog.Hash, error) { return tlog.TreeHash(n, t) }

// proofRun is how many records WriteProof compresses at a time.
const proofRun = 500

// WriteProof writes a proof file: h, then each record that records yields,
// compressed in runs of proofRun as the server writes them.
func WriteProof(w io.Writer, h *auditlog.ProofHeader, records func(yield func(record []byte) error) error) error {
	c := auditlog.NewProofCompressor()
	lines, err := h.Line()
	if err != nil {
		return err
	}
	n := 0
	flush := func() error {
		member, err := c.Compress(lines)
		if err == nil {
			_, err = w.Write(member)
		}
		lines, n = lines[:0], 0
		return err
	}
	err = records(func(record []byte) error {
		if lines, err = auditlog.AppendRecordLine(lines, record); err != nil {
			return err
		}
		if n++; n == proofRun {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// LogReader reads a CA's log as the server keeps it.
type LogReader interface {
	LogSize(ctx context.Context, caID string) (int64, error)
	LogRecords(ctx context.Context, caID string, logSize int64, fn func(record []byte) error) error
}

// RewriteLog replaces a CA's log in the server's SQLite database db with
// what change makes of its records (each one, issuances made again from
// their rows too), hashes and all, as an operator with the database could.
// Every record is then kept, as entries logged before the
// narrow_certificates migration keep theirs.
func RewriteLog(ctx context.Context, db *sql.DB, log LogReader, caID string, change func(records [][]byte) [][]byte) error {
	size, err := log.LogSize(ctx, caID)
	if err != nil {
		return err
	}
	var records [][]byte
	if err := log.LogRecords(ctx, caID, size, func(r []byte) error { records = append(records, bytes.Clone(r)); return nil }); err != nil {
		return err
	}
	records = change(records)
	hashes, _, err := auditlog.Append(auditlog.Edge{}, records)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM key_uses WHERE ca_id = ? AND seq >= ?`, caID, len(records)); err != nil {
		return err
	}
	for i := range records {
		if _, err := tx.ExecContext(ctx, `UPDATE key_uses SET record = ?, hashes = ? WHERE ca_id = ? AND seq = ?`, records[i], hashes[i], caID, i); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE key_use_logs SET size = ?, tree_edge = NULL WHERE ca_id = ?`, len(records), caID); err != nil {
		return err
	}
	return tx.Commit()
}
