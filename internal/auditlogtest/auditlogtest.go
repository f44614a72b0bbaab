// Package auditlogtest builds what tests of audit logs need and the
// server does not: whole trees in memory, and proof files written from
// records alone.
package auditlogtest

import (
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
