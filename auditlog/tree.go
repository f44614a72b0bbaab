// Package auditlog makes each CA's key-use log tamper-evident, the way
// Certificate Transparency makes its logs so. The entries of a CA's log are
// the leaves of an append-only Merkle tree (RFC 6962 hashing, through
// golang.org/x/mod/sumdb/tlog); the server signs checkpoints of the tree
// (C2SP tlog-checkpoint, as signed notes) with an audit key of its own; an
// audit report comes with a proof file that ties its rows to a checkpoint;
// and proofs show that one entry is in the tree, or that a later tree
// extends an earlier one.
package auditlog

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// The store keeps the tree's hashes with the entries that completed them:
// appending entry n stores tlog.StoredHashes(n), the leaf's hash and then
// the hash of each subtree the leaf completes, level by level. So the
// stored hash at index i is, for tlog.SplitStoredHashIndex(i) = (level, k),
// the level-th hash entry ((k+1) << level) - 1 stored.

// Producer returns the entry whose append stored the hash at index, and
// the hash's position among that entry's hashes.
func Producer(index int64) (seq int64, pos int) {
	level, k := tlog.SplitStoredHashIndex(index)
	return (k+1)<<level - 1, level
}

// Frontier returns the stored-hash indexes of the complete subtrees that
// make up a tree of n entries, largest first: all that appending to it, or
// hashing its root, needs of the entries before.
func Frontier(n int64) []int64 {
	var indexes []int64
	var start int64
	for level := 62; level >= 0; level-- {
		if n&(1<<level) != 0 {
			indexes = append(indexes, tlog.StoredHashIndex(level, start>>level))
			start += 1 << level
		}
	}
	return indexes
}

// An Edge is what appending to a tree of Size entries needs of the entries
// before: the hashes at its Frontier(Size), in that order. A store may keep
// the edge its last append left, and so append without reading any entry.
type Edge struct {
	Size   int64
	Hashes []tlog.Hash
}

// MarshalBinary encodes the edge: its size, 8 bytes big-endian, then its
// hashes.
func (e Edge) MarshalBinary() ([]byte, error) {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(e.Hashes)*tlog.HashSize), uint64(e.Size))
	for _, h := range e.Hashes {
		b = append(b, h[:]...)
	}
	return b, nil
}

// ParseEdge decodes an edge MarshalBinary encoded, checking that it holds
// as many hashes as its size's frontier.
func ParseEdge(b []byte) (Edge, error) {
	if len(b) < 8 || int64(binary.BigEndian.Uint64(b)) < 0 {
		return Edge{}, errors.New("auditlog: an edge does not start with a size")
	}
	e := Edge{Size: int64(binary.BigEndian.Uint64(b))}
	n := len(Frontier(e.Size))
	if len(b) != 8+n*tlog.HashSize {
		return Edge{}, fmt.Errorf("auditlog: the edge of %d entries has %d bytes of hashes, not %d", e.Size, len(b)-8, n*tlog.HashSize)
	}
	for i := range n {
		e.Hashes = append(e.Hashes, tlog.Hash(b[8+i*tlog.HashSize:]))
	}
	return e, nil
}

// Append returns the hashes to store with each of records, appended to the
// tree edge ends, as each entry's hashes concatenated, and the edge of the
// tree with them.
func Append(edge Edge, records [][]byte) ([][]byte, Edge, error) {
	first, indexes := edge.Size, Frontier(edge.Size)
	if len(edge.Hashes) != len(indexes) {
		return nil, Edge{}, fmt.Errorf("auditlog: appending at %d needs %d hashes, not %d", first, len(indexes), len(edge.Hashes))
	}
	known := make(map[int64]tlog.Hash, len(indexes)+2*len(records))
	for i, index := range indexes {
		known[index] = edge.Hashes[i]
	}
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		hashes := make([]tlog.Hash, len(indexes))
		for i, index := range indexes {
			h, ok := known[index]
			if !ok {
				return nil, fmt.Errorf("auditlog: appending at %d needs stored hash %d, which was not given", first, index)
			}
			hashes[i] = h
		}
		return hashes, nil
	})
	out := make([][]byte, len(records))
	for i, rec := range records {
		n := first + int64(i)
		hashes, err := tlog.StoredHashes(n, rec, reader)
		if err != nil {
			return nil, Edge{}, err
		}
		out[i] = make([]byte, 0, len(hashes)*tlog.HashSize)
		base := tlog.StoredHashIndex(0, n)
		for j, h := range hashes {
			known[base+int64(j)] = h
			out[i] = append(out[i], h[:]...)
		}
	}
	next := Edge{Size: first + int64(len(records))}
	var err error
	if next.Hashes, err = reader.ReadHashes(Frontier(next.Size)); err != nil {
		return nil, Edge{}, err
	}
	return out, next, nil
}

// HashAt returns the hash at position pos of an entry's stored hashes.
func HashAt(stored []byte, pos int) (tlog.Hash, error) {
	var h tlog.Hash
	if (pos+1)*tlog.HashSize > len(stored) {
		return h, fmt.Errorf("auditlog: an entry stored %d hashes, not %d", len(stored)/tlog.HashSize, pos+1)
	}
	copy(h[:], stored[pos*tlog.HashSize:])
	return h, nil
}

// A Hasher hashes a tree entry by entry and keeps only the hashes of its
// complete subtrees, as many as the ones in the binary form of its size:
// what checking a checkpoint's root needs, in memory that does not grow
// with the log (a Tree of ten million entries holds 640 MB of hashes).
type Hasher struct {
	n        int64
	subtrees []tlog.Hash // largest first, as Frontier orders them
	// Stored, if set, is called with each hash a store keeps (see
	// tlog.StoredHashes) as the entries make it: by stored-hash index.
	Stored func(index int64, h tlog.Hash)
}

// Add appends an entry.
func (h *Hasher) Add(record []byte) { h.AddHash(tlog.RecordHash(record)) }

// AddHash appends an entry whose record hashes to leaf.
func (h *Hasher) AddHash(leaf tlog.Hash) {
	h.subtrees = append(h.subtrees, leaf)
	h.stored(0)
	// Each low 1 bit of the size before it is a subtree of the new
	// entry's size, to be joined with it, as a binary counter carries.
	level := 0
	for k := h.n; k&1 == 1; k >>= 1 {
		last := len(h.subtrees) - 1
		h.subtrees[last-1] = tlog.NodeHash(h.subtrees[last-1], h.subtrees[last])
		h.subtrees = h.subtrees[:last]
		level++
		h.stored(level)
	}
	h.n++
}

// stored tells Stored of the hash of the level-th subtree the entry being
// added completes, the last of subtrees.
func (h *Hasher) stored(level int) {
	if h.Stored != nil {
		h.Stored(tlog.StoredHashIndex(level, h.n>>level), h.subtrees[len(h.subtrees)-1])
	}
}

// Size is the number of entries.
func (h *Hasher) Size() int64 { return h.n }

// Root returns the hash of the tree's root: RFC 6962 splits a tree at its
// largest complete subtree, so the root joins the subtrees from the
// smallest up.
func (h *Hasher) Root() tlog.Hash {
	if len(h.subtrees) == 0 {
		root, _ := tlog.TreeHash(0, nil)
		return root
	}
	root := h.subtrees[len(h.subtrees)-1]
	for i := len(h.subtrees) - 2; i >= 0; i-- {
		root = tlog.NodeHash(h.subtrees[i], root)
	}
	return root
}

// Prove returns the inclusion proofs of the entries at indexes in the tree
// of the n records that records yields, in order. It keeps only the hashes
// the proofs need, which it learns from the tree's shape alone, so its
// memory does not grow with the tree.
func Prove(n int64, indexes []int64, records func(yield func(record []byte) error) error) ([]tlog.RecordProof, error) {
	needed := map[int64]tlog.Hash{}
	shape := tlog.HashReaderFunc(func(stored []int64) ([]tlog.Hash, error) {
		for _, i := range stored {
			needed[i] = tlog.Hash{}
		}
		return make([]tlog.Hash, len(stored)), nil
	})
	for _, i := range indexes {
		if _, err := tlog.ProveRecord(n, i, shape); err != nil {
			return nil, err
		}
	}
	h := Hasher{Stored: func(index int64, hash tlog.Hash) {
		if _, ok := needed[index]; ok {
			needed[index] = hash
		}
	}}
	if err := records(func(record []byte) error { h.Add(record); return nil }); err != nil {
		return nil, err
	}
	if h.Size() != n {
		return nil, fmt.Errorf("auditlog: %d records, not the %d to prove in", h.Size(), n)
	}
	read := tlog.HashReaderFunc(func(stored []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(stored))
		for j, i := range stored {
			out[j] = needed[i]
		}
		return out, nil
	})
	proofs := make([]tlog.RecordProof, len(indexes))
	for j, i := range indexes {
		var err error
		if proofs[j], err = tlog.ProveRecord(n, i, read); err != nil {
			return nil, err
		}
	}
	return proofs, nil
}
