package audit

import (
	"bytes"
	"context"
	"hash/maphash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/localfs"
)

// counted is an object store whose objects' reads are counted.
type counted struct {
	*localfs.Store
	read *int64
}

func (c counted) Get(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
	r, err := c.Store.Get(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	return countedReader{r, c.read}, nil
}

type countedReader struct {
	io.ReadCloser
	read *int64
}

func (r countedReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	*r.read += int64(n)
	return n, err
}

// TestReadSumBounded: a read back reads an object no further than the
// size written and a byte, which tells a longer one: the object may be
// anyone's who can write to the bucket, as large as they like.
func TestReadSumBounded(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "reports"), 0o700); err != nil {
		t.Fatal(err)
	}
	store, err := localfs.New(dir, "http://pca.example/s3", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	written := bytes.Repeat([]byte("row\n"), 1000)
	longer := append(bytes.Clone(written), bytes.Repeat([]byte{'x'}, 1<<20)...)
	var read int64
	g := &Generator{cfg: GeneratorConfig{Objects: counted{store, &read}}, seed: maphash.MakeSeed()}
	sum := func(b []byte) uint64 {
		h := g.newHash()
		h.Write(b)
		return h.Sum64()
	}
	for _, tc := range []struct {
		name   string
		object []byte
		same   bool
	}{
		{"as written", written, true},
		{"a megabyte longer", longer, false},
	} {
		if err := store.Put(t.Context(), openpca.Object{Bucket: "reports", Key: "report.json"}, bytes.NewReader(tc.object)); err != nil {
			t.Fatal(err)
		}
		read = 0
		got, err := g.readSum(t.Context(), "reports", "report.json", int64(len(written)))
		if err != nil {
			t.Fatal(err)
		}
		if same := got == sum(written); same != tc.same {
			t.Errorf("the object %s read back as the same: %v", tc.name, same)
		}
		if read > int64(len(written))+1 {
			t.Errorf("the object %s: read %d bytes of it, past the %d written and one", tc.name, read, len(written))
		}
	}
}

// unbounded is an object store that records whether its calls to discard
// unfinished uploads came with a deadline.
type unbounded struct {
	*localfs.Store
	calls, bounded int
}

func (u *unbounded) DiscardPartial(ctx context.Context, _, _ string) error {
	u.calls++
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= deleteTimeout {
		u.bounded++
	}
	return nil
}

// TestDiscardPartialsBounded: each look for a report's unfinished uploads
// has deleteTimeout: the S3 client tries a bucket that does not answer
// for 15 minutes, three times for each of the report's attempts.
func TestDiscardPartialsBounded(t *testing.T) {
	store, err := localfs.New(t.TempDir(), "http://pca.example/s3", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	u := &unbounded{Store: store}
	g := &Generator{cfg: GeneratorConfig{Objects: u}}
	g.discardPartials(t.Context(), &openpca.AuditReport{Bucket: "reports", Key: "report.json"}, []string{"a", "b"}, slog.New(slog.DiscardHandler))
	if u.calls != 2 || u.bounded != 2 {
		t.Errorf("%d looks for unfinished uploads, %d of them bounded, want 2 and 2", u.calls, u.bounded)
	}
}
