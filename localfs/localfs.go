// Package localfs is the embedded object store: bucket B is the folder
// <root>/B, and object K of it the file <root>/B/K. A bucket exists when
// its folder does; OpenPCA never creates one.
package localfs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/openpca/openpca"
)

// Store keeps buckets as folders under a root folder.
type Store struct {
	root, baseURL string
}

var _ openpca.ObjectStore = (*Store)(nil)

// New returns a Store rooted at root, creating the root if needed, whose
// public objects are served at baseURL/<bucket>/<key>. The root is the
// server's alone: temporary files found in it are what Puts left when the
// server died, and go. A folder under the root that cannot be read (the
// lost+found of a volume mounted there, a bucket made by another user)
// keeps its temporary files, and is logged at WARN: removing them is
// housekeeping, which must not keep the server from starting, and a
// report resumed in that folder discards its own.
func New(root, baseURL string, logger *slog.Logger) (*Store, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasPrefix(d.Name(), tempPrefix) {
			if err = os.Remove(path); errors.Is(err, fs.ErrNotExist) {
				err = nil
			}
		}
		if err != nil && path != root {
			logger.Warn("the temporary files of unfinished writes in this folder stay: it cannot be read", "path", path, "error", err)
			if d == nil || d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("localfs: removing the temporary files of unfinished writes: %w", err)
	}
	return &Store{root: root, baseURL: strings.TrimSuffix(baseURL, "/")}, nil
}

// tempPrefix starts the names of the temporary files objects are written
// to, beside them, before they are renamed into place.
const tempPrefix = ".tmp-"

// writeSize is the most an object is written in at once.
const writeSize = 256 << 10

// Delete implements openpca.ObjectStore.
func (s *Store) Delete(_ context.Context, bucket, key string) error {
	root, rel, err := s.open(bucket, key)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// DiscardPartial implements openpca.ObjectStore.
func (s *Store) DiscardPartial(_ context.Context, bucket, key string) error {
	root, rel, err := s.open(bucket, key)
	if err != nil {
		return err
	}
	defer root.Close()
	d, err := root.Open(filepath.Dir(rel))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	for _, name := range names {
		if strings.HasPrefix(name, tempPrefix+filepath.Base(rel)+"-") {
			if rerr := root.Remove(filepath.Join(filepath.Dir(rel), name)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				err = errors.Join(err, rerr)
			}
		}
	}
	return err
}

// open opens the store's root folder, in which every write is kept
// (os.Root follows no link out of it: a link someone left in a bucket
// must not have the server write elsewhere), and returns the path of
// key in bucket within it.
func (s *Store) open(bucket, key string) (*os.Root, string, error) {
	if err := openpca.CheckBucketName(bucket); err != nil {
		return nil, "", err
	}
	rel, err := objectPath(bucket, key)
	if err != nil {
		return nil, "", err
	}
	root, err := os.OpenRoot(s.root)
	return root, rel, err
}

// URL implements openpca.ObjectStore.
func (s *Store) URL(bucket, key string) string { return s.baseURL + "/" + bucket + "/" + key }

// Open opens an object for reading. It follows no symbolic link, in the
// bucket's folder or on the key's path, and opens regular files only: a
// link someone left in a bucket must not serve a file from elsewhere, such
// as the master key.
func (s *Store) Open(bucket, key string) (*os.File, error) {
	if err := openpca.CheckBucketName(bucket); err != nil {
		return nil, err
	}
	path, err := objectPath(bucket, key)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(s.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: s.root, Err: err}
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i, name := range parts {
		flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i < len(parts)-1 {
			flags |= unix.O_DIRECTORY
		} else {
			flags |= unix.O_NONBLOCK // a FIFO must not block the open
		}
		next, err := unix.Openat(fd, name, flags, 0)
		unix.Close(fd)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: filepath.Join(s.root, path), Err: err}
		}
		fd = next
	}
	f := os.NewFile(uintptr(fd), filepath.Join(s.root, path))
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: f.Name(), Err: fs.ErrNotExist}
	}
	return f, nil
}

// Get implements openpca.ObjectStore, with Open.
func (s *Store) Get(_ context.Context, bucket, key string) (io.ReadCloser, error) {
	f, err := s.Open(bucket, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, openpca.ErrNotFound
	}
	return f, err
}

// Root is the folder that holds the buckets.
func (s *Store) Root() string { return s.root }

// CheckBucket implements openpca.ObjectStore.
func (s *Store) CheckBucket(ctx context.Context, bucket string, _ openpca.S3ObjectAcl) error {
	// A temporary file's name: a probe left by a server that died before
	// removing it goes at the next start, with the writes' temporaries.
	root, rel, err := s.open(bucket, tempPrefix+"permission-test-"+rand.Text())
	if err != nil {
		return err
	}
	defer root.Close()
	fi, err := root.Stat(bucket)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.IsDir()) {
		return openpca.ErrBucketNotFound
	}
	if err != nil { // a link out of the store, say, or a folder it may not read
		return openpca.ErrBucketAccess
	}
	f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return openpca.ErrBucketAccess
	}
	f.Close()
	return root.Remove(rel)
}

// Put implements openpca.ObjectStore: it writes a temporary file beside
// the object, syncs it, and renames it into place. Files have no ACL: each
// is readable by the server's user alone (0600, in folders it makes 0700),
// and the server serves CRLs itself.
func (s *Store) Put(ctx context.Context, o openpca.Object, r io.Reader) (err error) {
	root, rel, err := s.open(o.Bucket, o.Key)
	if err != nil {
		return err
	}
	defer root.Close()
	if _, err := root.Stat(o.Bucket); err != nil {
		return fmt.Errorf("localfs: bucket %s: %w", o.Bucket, err)
	}
	dir := filepath.Dir(rel)
	if err := root.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	temp := filepath.Join(dir, tempPrefix+filepath.Base(rel)+"-"+rand.Text())
	f, err := root.OpenFile(temp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			root.Remove(temp)
		}
	}()
	// Written in large pieces: the kernel spends less per byte on large
	// writes. (The file's own ReadFrom, which io.Copy would take, copies in
	// pieces of 32 KiB.)
	if _, err := io.CopyBuffer(struct{ io.Writer }{f}, contextReader{ctx, r}, make([]byte, writeSize)); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := root.Rename(temp, rel); err != nil {
		return err
	}
	// The rename, and the folders MkdirAll may have made on the way (a
	// CA's first report's audit-report/<id>), are durable once each
	// folder up to the bucket's is: a power cut could otherwise lose the
	// folder of an object the database says is written.
	for d := dir; ; d = filepath.Dir(d) {
		if err := syncFolder(root, d); err != nil {
			return err
		}
		if d == o.Bucket {
			return nil
		}
	}
}

func syncFolder(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// objectPath is the file of key in dir; a key that would leave the bucket
// is refused.
func objectPath(dir, key string) (string, error) {
	clean := filepath.Clean("/" + key)
	if key == "" || strings.HasSuffix(key, "/") || clean != "/"+key {
		return "", fmt.Errorf("localfs: %q is not an object key this store can hold", key)
	}
	return filepath.Join(dir, clean), nil
}

// contextReader stops a copy when its context ends.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
