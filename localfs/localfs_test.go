package localfs_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/localfs"
)

func TestPutAndCheck(t *testing.T) {
	root := filepath.Join(t.TempDir(), "s3")
	st, err := localfs.New(root, "http://pca.example/s3/", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if u := st.URL("bucket", "crl/x.crl"); u != "http://pca.example/s3/bucket/crl/x.crl" {
		t.Errorf("URL %s", u)
	}
	if err := st.CheckBucket(t.Context(), "missing", ""); !errors.Is(err, openpca.ErrBucketNotFound) {
		t.Errorf("missing bucket: %v", err)
	}
	os.WriteFile(filepath.Join(root, "a-file"), nil, 0o644)
	if err := st.CheckBucket(t.Context(), "a-file", ""); !errors.Is(err, openpca.ErrBucketNotFound) {
		t.Errorf("a file is not a bucket: %v", err)
	}
	os.Mkdir(filepath.Join(root, "bucket"), 0o755)
	if err := st.CheckBucket(t.Context(), "bucket", ""); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(t.Context(), openpca.Object{Bucket: "bucket", Key: "audit-report/ca/r.json", ContentType: "application/json"}, strings.NewReader("[1]")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "bucket", "audit-report", "ca", "r.json")); string(b) != "[1]" {
		t.Errorf("object holds %q", b)
	}
	// Replacing an object is atomic: readers see the old or the new one.
	big := bytes.Repeat([]byte("x"), 1<<20)
	if err := st.Put(t.Context(), openpca.Object{Bucket: "bucket", Key: "audit-report/ca/r.json", ContentType: "application/json"}, bytes.NewReader(big)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "bucket", "audit-report", "ca", "r.json")); !bytes.Equal(b, big) {
		t.Error("object not replaced")
	}
	entries, _ := os.ReadDir(filepath.Join(root, "bucket", "audit-report", "ca"))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	r, err := st.Get(t.Context(), "bucket", "audit-report/ca/r.json")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, big) {
		t.Error("Get reads another object")
	}
	if _, err := st.Get(t.Context(), "bucket", "audit-report/ca/none.json"); !errors.Is(err, openpca.ErrNotFound) {
		t.Errorf("Get of a missing object: %v", err)
	}
}

func TestRefusesEscapes(t *testing.T) {
	root := filepath.Join(t.TempDir(), "s3")
	st, _ := localfs.New(root, "http://pca.example/s3/", slog.New(slog.DiscardHandler))
	os.Mkdir(filepath.Join(root, "bucket"), 0o755)
	for _, key := range []string{"../outside", "a/../../outside", "/abs", "a//b", "dir/", ""} {
		if err := st.Put(t.Context(), openpca.Object{Bucket: "bucket", Key: key, ContentType: "text/plain"}, strings.NewReader("x")); err == nil {
			t.Errorf("key %q was accepted", key)
		}
	}
	for _, bucket := range []string{"..", "../etc", "a/b", "UPPER", "ab", "192.168.1.1", "-dash", "dots..dots"} {
		if err := st.CheckBucket(t.Context(), bucket, ""); err == nil || errors.Is(err, openpca.ErrBucketNotFound) {
			t.Errorf("bucket %q: %v, want an invalid name", bucket, err)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "outside")); err == nil {
		t.Error("a key escaped the bucket")
	}
}

func TestFailedPutLeavesNothing(t *testing.T) {
	root := filepath.Join(t.TempDir(), "s3")
	st, _ := localfs.New(root, "http://pca.example/s3/", slog.New(slog.DiscardHandler))
	os.Mkdir(filepath.Join(root, "bucket"), 0o755)
	err := st.Put(t.Context(), openpca.Object{Bucket: "bucket", Key: "k", ContentType: "text/plain"}, &failing{})
	if err == nil {
		t.Fatal("a failing reader was stored")
	}
	entries, _ := os.ReadDir(filepath.Join(root, "bucket"))
	if len(entries) != 0 {
		t.Errorf("a failed Put left %v", entries)
	}
}

type failing struct{ sent bool }

func (f *failing) Read(p []byte) (int, error) {
	if !f.sent {
		f.sent = true
		return copy(p, "partial"), nil
	}
	return 0, errors.New("broken")
}

// TestOpenFollowsNoLink: links in a bucket, to a file outside it, to a
// folder, or as the bucket itself, are not followed; only regular files
// are opened.
func TestOpenFollowsNoLink(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "s3")
	st, err := localfs.New(root, "http://pca.example/s3/", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "master.key")
	os.WriteFile(secret, []byte("secret"), 0o600)
	bucket := filepath.Join(root, "bucket")
	os.MkdirAll(filepath.Join(bucket, "crl"), 0o700)
	os.WriteFile(filepath.Join(bucket, "crl", "real.crl"), []byte("crl"), 0o600)
	outside := filepath.Join(dir, "outside")
	os.MkdirAll(outside, 0o700)
	os.WriteFile(filepath.Join(outside, "x.crl"), []byte("secret"), 0o600)
	for _, link := range []struct{ target, name string }{
		{secret, filepath.Join(bucket, "crl", "key.crl")},
		{filepath.Join(bucket, "crl", "real.crl"), filepath.Join(bucket, "crl", "inside.crl")},
		{outside, filepath.Join(bucket, "linked")},
		{bucket, filepath.Join(root, "linked-bucket")},
	} {
		if err := os.Symlink(link.target, link.name); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(bucket, "crl", "fifo.crl"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := st.Open("bucket", "crl/real.crl")
	if err != nil {
		t.Fatalf("a regular file: %v", err)
	}
	f.Close()
	for _, o := range []struct{ bucket, key string }{
		{"bucket", "crl/key.crl"}, {"bucket", "crl/inside.crl"}, {"bucket", "linked/x.crl"},
		{"linked-bucket", "crl/real.crl"}, {"bucket", "crl"}, {"bucket", "crl/fifo.crl"}, {"bucket", "crl/missing.crl"},
	} {
		if f, err := st.Open(o.bucket, o.key); err == nil {
			b, _ := io.ReadAll(f)
			f.Close()
			t.Errorf("opened %s/%s: %q", o.bucket, o.key, b)
		}
	}
}

// TestWritesStayInTheRoot: a link in a bucket, or a bucket that is a
// link, to a folder outside the store has nothing written, checked or
// removed there.
func TestWritesStayInTheRoot(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "s3")
	st, err := localfs.New(root, "http://pca.example/s3/", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(dir, "outside")
	os.MkdirAll(outside, 0o700)
	os.WriteFile(filepath.Join(outside, ".tmp-x.crl-1"), []byte("keep"), 0o600)
	os.MkdirAll(filepath.Join(root, "bucket"), 0o700)
	if err := os.Symlink(outside, filepath.Join(root, "bucket", "crl")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "linked-bucket")); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, o := range []openpca.Object{{Bucket: "bucket", Key: "crl/x.crl"}, {Bucket: "linked-bucket", Key: "x.crl"}} {
		if err := st.Put(ctx, o, strings.NewReader("crl")); err == nil {
			t.Errorf("wrote %s/%s through a link", o.Bucket, o.Key)
		}
		st.DiscardPartial(ctx, o.Bucket, o.Key)
	}
	if err := st.CheckBucket(ctx, "linked-bucket", ""); !errors.Is(err, openpca.ErrBucketAccess) {
		t.Errorf("a bucket that links out of the store: %v, want ErrBucketAccess", err)
	}
	if got := names(t, outside); got != ".tmp-x.crl-1" {
		t.Errorf("outside the store: %s", got)
	}
	// A link that stays within the store is a folder of it.
	os.MkdirAll(filepath.Join(root, "bucket", "real"), 0o700)
	if err := os.Symlink("real", filepath.Join(root, "bucket", "inner")); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, openpca.Object{Bucket: "bucket", Key: "inner/y.crl"}, strings.NewReader("crl")); err != nil {
		t.Errorf("a link within the store: %v", err)
	}
}

// TestUnfinishedWritesGo: the temporary files of writes a dead server
// never finished go when the store opens, and when the object is written
// again; nothing else goes.
func TestUnfinishedWritesGo(t *testing.T) {
	root := filepath.Join(t.TempDir(), "s3")
	dir := filepath.Join(root, "bucket", "audit-report", "ca")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".tmp-r.json-123", ".tmp-r.json.proof.jsonl-456", "r.json", "other.json"} {
		os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600)
	}
	st, err := localfs.New(root, "http://pca.example/s3/", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); got != "other.json r.json" {
		t.Errorf("after opening the store: %s", got)
	}
	os.WriteFile(filepath.Join(dir, ".tmp-r.json-789"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(dir, ".tmp-other.json-789"), []byte("x"), 0o600)
	if err := st.DiscardPartial(t.Context(), "bucket", "audit-report/ca/r.json"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); got != ".tmp-other.json-789 other.json r.json" {
		t.Errorf("after discarding r.json's unfinished writes: %s", got)
	}
}

// TestUnreadableFolder: a folder under the root that the server cannot
// read (the lost+found of a volume mounted as the root) keeps its
// temporary files, logged, and the store opens, cleaning up the others.
func TestUnreadableFolder(t *testing.T) {
	if ranAsUnprivileged(t) {
		return
	}
	root := filepath.Join(t.TempDir(), "s3")
	for _, dir := range []string{"reports", "lost+found"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(root, dir, ".tmp-r.json-1"), []byte("x"), 0o600)
	}
	locked := filepath.Join(root, "lost+found")
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(locked, 0o700)
	var logs bytes.Buffer
	if _, err := localfs.New(root, "http://pca.example/s3/", slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatalf("the store does not open: %v", err)
	}
	if got := names(t, filepath.Join(root, "reports")); got != "" {
		t.Errorf("left in a readable folder: %s", got)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), locked) {
		t.Errorf("the unreadable folder was not logged: %s", logs.String())
	}
	// The root itself must be readable.
	os.Chmod(locked, 0o700)
	os.Chmod(root, 0)
	defer os.Chmod(root, 0o700)
	if _, err := localfs.New(root, "http://pca.example/s3/", slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a root that cannot be read was taken")
	}
}

// ranAsUnprivileged runs the test as the user nobody, in a process of its
// own, when it runs as root, since root reads every folder, and reports
// whether it did: the test then ends in root's process, with the other's
// outcome.
func ranAsUnprivileged(t *testing.T) bool {
	if os.Geteuid() != 0 {
		return false
	}
	// The test binary, where nobody may run it.
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // the test's folder, then its first
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "localfs.test")
	b, err := os.ReadFile(os.Args[0])
	if err == nil {
		err = os.WriteFile(bin, b, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run", "^"+t.Name()+"$", "-test.v")
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "TMPDIR=/tmp")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	return true
}

func names(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return strings.Join(out, " ")
}
