package auditlog_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"math/bits"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/internal/auditlogtest"
)

// yieldEach yields each of recs, as WriteProof and Prove take records.
func yieldEach(recs [][]byte) func(yield func([]byte) error) error {
	return func(yield func([]byte) error) error {
		for _, r := range recs {
			if err := yield(r); err != nil {
				return err
			}
		}
		return nil
	}
}

func records(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, `{"kind":"ISSUE","n":%d}`, i)
	}
	return out
}

// TestAppendInBatches grows a tree in batches of every size from 1 to 9,
// keeping only what the store keeps (each entry's hashes) and reading only
// the Frontier: every root and every stored hash is the one a tree built
// entry by entry has.
func TestAppendInBatches(t *testing.T) {
	recs := records(300)
	var whole auditlogtest.Tree
	for _, r := range recs {
		if err := whole.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	for batch := 1; batch <= 9; batch++ {
		stored := map[int64][]byte{} // entry → its hashes, as the store keeps them
		read := func(indexes []int64) map[int64]tlog.Hash {
			m := map[int64]tlog.Hash{}
			for _, i := range indexes {
				seq, pos := auditlog.Producer(i)
				h, err := auditlog.HashAt(stored[seq], pos)
				if err != nil {
					t.Fatalf("batch %d: hash %d: %v", batch, i, err)
				}
				m[i] = h
			}
			return m
		}
		var last auditlog.Edge
		for first := 0; first < len(recs); first += batch {
			end := min(first+batch, len(recs))
			edge := auditlog.Edge{Size: int64(first)}
			for _, index := range auditlog.Frontier(edge.Size) {
				edge.Hashes = append(edge.Hashes, read([]int64{index})[index])
			}
			if first > 0 && !reflect.DeepEqual(edge, last) {
				t.Fatalf("batch %d: the edge auditlog.Append returned at %d is not the one the stored hashes give", batch, first)
			}
			hashes, next, err := auditlog.Append(edge, recs[first:end])
			if err != nil {
				t.Fatalf("batch %d at %d: %v", batch, first, err)
			}
			last = next
			for i, h := range hashes {
				stored[int64(first+i)] = h
			}
			root, err := tlog.TreeHash(int64(end), tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
				m := read(indexes)
				out := make([]tlog.Hash, len(indexes))
				for i, index := range indexes {
					out[i] = m[index]
				}
				return out, nil
			}))
			want, _ := whole.Root(int64(end))
			if err != nil || root != want {
				t.Fatalf("batch %d: root of %d entries %v (%v), want %v", batch, end, root, err, want)
			}
		}
	}
	if _, _, err := auditlog.Append(auditlog.Edge{Size: 5}, recs[5:6]); err == nil {
		t.Error("Append without the frontier it needs succeeded")
	}
}

// TestHasher checks the root a Hasher keeps against a whole Tree's, at
// every size from 0 to 300, across several powers of two, and that it
// keeps no more hashes than the size has 1 bits.
func TestHasher(t *testing.T) {
	var tree auditlogtest.Tree
	stored := map[int64]tlog.Hash{}
	h := auditlog.Hasher{Stored: func(i int64, hash tlog.Hash) { stored[i] = hash }}
	for i, rec := range append([][]byte{nil}, records(300)...) {
		if i > 0 {
			if err := tree.Add(rec); err != nil {
				t.Fatal(err)
			}
			h.Add(rec)
		}
		want, err := tree.Root(tree.Size())
		if err != nil {
			t.Fatal(err)
		}
		if h.Size() != tree.Size() || h.Root() != want {
			t.Fatalf("at %d entries: the hasher's root %v, the tree's %v", i, h.Root(), want)
		}
		if kept := auditlog.Subtrees(&h); kept != bits.OnesCount64(uint64(i)) {
			t.Fatalf("at %d entries the hasher keeps %d hashes", i, kept)
		}
	}
	n := tlog.StoredHashCount(tree.Size())
	if int64(len(stored)) != n {
		t.Fatalf("the hasher told of %d stored hashes, the tree has %d", len(stored), n)
	}
	for i := range n {
		want, err := tree.ReadHashes([]int64{i})
		if err != nil {
			t.Fatal(err)
		}
		if stored[i] != want[0] {
			t.Fatalf("stored hash %d: the hasher's %v, the tree's %v", i, stored[i], want[0])
		}
	}
}

// TestProve proves entries of trees of several sizes, as a whole Tree
// proves them, and checks the proofs against the trees' roots.
func TestProve(t *testing.T) {
	recs := records(300)
	for _, n := range []int64{1, 2, 7, 64, 65, 300} {
		var tree auditlogtest.Tree
		for _, r := range recs[:n] {
			tree.Add(r)
		}
		root, _ := tree.Root(n)
		indexes := []int64{0, n / 2, n - 1}
		proofs, err := auditlog.Prove(n, indexes, yieldEach(recs[:n]))
		if err != nil {
			t.Fatal(err)
		}
		for j, i := range indexes {
			want, _ := tlog.ProveRecord(n, i, &tree)
			if !reflect.DeepEqual(proofs[j], want) {
				t.Errorf("entry %d of %d: proof %v, the tree's %v", i, n, proofs[j], want)
			}
			if err := tlog.CheckRecord(proofs[j], n, root, i, tlog.RecordHash(recs[i])); err != nil {
				t.Errorf("entry %d of %d: %v", i, n, err)
			}
		}
	}
	_, err := auditlog.Prove(5, []int64{1}, func(yield func([]byte) error) error { return yield(recs[0]) })
	if err == nil {
		t.Error("a proof in a tree of 5 from 1 record")
	}
}

// TestEdgeEncoding reads back every edge of a growing tree, and refuses
// encodings whose hashes do not fit their size.
func TestEdgeEncoding(t *testing.T) {
	var edge auditlog.Edge
	recs := records(70)
	for i := range recs {
		b, err := edge.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := auditlog.ParseEdge(b)
		if err != nil || !reflect.DeepEqual(back, edge) {
			t.Fatalf("edge of %d: read back %+v, %v", edge.Size, back, err)
		}
		if _, edge, err = auditlog.Append(edge, recs[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := edge.MarshalBinary() // 70 entries: three hashes
	for _, bad := range [][]byte{nil, b[:7], b[:len(b)-1], append(b, 0), append([]byte{0x80}, b[1:]...)} {
		if e, err := auditlog.ParseEdge(bad); err == nil {
			t.Errorf("ParseEdge(%x) = %+v, want an error", bad, e)
		}
	}
}

func TestCheckpoint(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, auditlog.KeyName)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	_, otherKey, _ := note.GenerateKey(rand.Reader, auditlog.KeyName)
	c := auditlog.Checkpoint{Origin: auditlog.Origin("arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/x"), Size: 42,
		Root: tlog.RecordHash([]byte("x")), Time: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	signed, err := c.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := auditlog.OpenCheckpoint(signed, vkey); err != nil || got != c {
		t.Fatalf("OpenCheckpoint = %+v, %v; want %+v", got, err, c)
	}
	for _, tt := range []struct {
		name   string
		signed []byte
		key    string
		want   string
	}{
		{"other key", signed, otherKey, "signed by another key"},
		{"altered", bytes.Replace(signed, []byte("\n42\n"), []byte("\n43\n"), 1), vkey, "signature is not valid"},
		{"not a note", []byte("hello\n"), vkey, "not a signed note"},
		{"not a key", signed, "nonsense", "not an audit verifier key"},
	} {
		if _, err := auditlog.OpenCheckpoint(tt.signed, tt.key); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
	for _, text := range []string{"o\n1\nAAAA\ntime 2026-11-23T10:00:00Z\n", "o\n01\n" + strings.Repeat("A", 43) + "=\ntime x\n", "o\n1\n"} {
		if _, err := auditlog.ParseCheckpoint(text); err == nil {
			t.Errorf("ParseCheckpoint(%q) succeeded", text)
		}
	}
}

func TestProofFile(t *testing.T) {
	h := &auditlog.ProofHeader{Format: auditlog.ProofFormat, CertificateAuthorityArn: "arn", Checkpoint: "c"}
	recs := append(records(2), bytes.Repeat([]byte("x"), 100<<10)) // longer than the reader's buffer
	var b bytes.Buffer
	err := auditlogtest.WriteProof(&b, h, yieldEach(recs))
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	read := func(data []byte) (*auditlog.ProofHeader, error) {
		got = nil
		return auditlog.ReadProof(bytes.NewReader(data), nil, func(seq int64, r []byte) error {
			if seq != int64(len(got)) {
				t.Errorf("record %d numbered %d", len(got), seq)
			}
			got = append(got, bytes.Clone(r))
			return nil
		})
	}
	if !bytes.HasPrefix(b.Bytes(), []byte{0x1f, 0x8b}) {
		t.Fatalf("the proof file is not compressed: %q", b.Bytes()[:10])
	}
	// The lines themselves, as proof files of earlier versions hold them.
	line, _ := h.Line()
	legacy := bytes.NewBuffer(line)
	for _, r := range recs {
		legacy.Write(append(r, '\n'))
	}
	for name, data := range map[string][]byte{"compressed": b.Bytes(), "legacy": legacy.Bytes()} {
		if gh, err := read(data); err != nil || !reflect.DeepEqual(gh, h) || len(got) != 3 || !bytes.Equal(got[2], recs[2]) {
			t.Fatalf("%s: read back %+v, %d records, %v", name, gh, len(got), err)
		}
		if _, err := read(data[:len(data)-1]); err == nil || !strings.Contains(err.Error(), "cut short") {
			t.Errorf("%s: a cut file: %v", name, err)
		}
	}
	damaged := bytes.Clone(b.Bytes())
	damaged[len(damaged)/2] ^= 0xff
	if _, err := read(damaged); err == nil {
		t.Error("a damaged compressed file was read")
	}
	long := append(bytes.Clone(line), bytes.Repeat([]byte("x"), 2<<20)...)
	if _, err := read(append(long, '\n')); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("a line of 2 MiB: %v", err)
	}
	if _, err := read([]byte("{}\n")); err == nil {
		t.Error("a file without the header's format was read")
	}
	err = auditlogtest.WriteProof(&b, h, func(yield func([]byte) error) error { return yield([]byte("a\nb")) })
	if err == nil {
		t.Error("a record spanning lines was written")
	}
}

// FuzzReadProof: whatever a proof file holds (an auditor reads what the
// operator hands over), ReadProof neither panics nor hands out a line
// longer than MaxLine, and what it reads, written again by WriteProof,
// reads back the same.
func FuzzReadProof(f *testing.F) {
	h := &auditlog.ProofHeader{Format: auditlog.ProofFormat, CertificateAuthorityArn: "arn", Checkpoint: "c"}
	write := func(recs [][]byte) []byte {
		var b bytes.Buffer
		err := auditlogtest.WriteProof(&b, h, yieldEach(recs))
		if err != nil {
			f.Fatal(err)
		}
		return b.Bytes()
	}
	f.Add(write(records(3)))
	line, _ := h.Line()
	f.Add(append(line, "{\"kind\":\"ISSUE\"}\n"...))
	f.Fuzz(func(t *testing.T, data []byte) {
		read := func(data []byte) (*auditlog.ProofHeader, [][]byte, error) {
			var recs [][]byte
			h, err := auditlog.ReadProof(bytes.NewReader(data), nil, func(_ int64, r []byte) error {
				if len(r) > auditlog.MaxLine {
					t.Fatalf("a record of %d bytes", len(r))
				}
				recs = append(recs, bytes.Clone(r))
				return nil
			})
			return h, recs, err
		}
		h, recs, err := read(data)
		if err != nil {
			return
		}
		var b bytes.Buffer
		err = auditlogtest.WriteProof(&b, h, yieldEach(recs))
		if err != nil {
			t.Fatalf("writing again what was read: %v", err)
		}
		h2, recs2, err := read(b.Bytes())
		line, _ := h.Line()
		line2, _ := h2.Line()
		if err != nil || !bytes.Equal(line, line2) || !reflect.DeepEqual(recs, recs2) {
			t.Fatalf("read back %s with %d records (%v), not %s with %d", line2, len(recs2), err, line, len(recs))
		}
	})
}
