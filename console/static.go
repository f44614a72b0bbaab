package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// staticFile is one of the console's scripts, served so that a browser
// fetches it once per version of the server: the console's answers are
// no-store, and every load of the verifier's page fetched its 6.9 MB of
// WebAssembly again. A browser keeps it and asks, by its ETag, whether it
// changed (it changes only with the binary); one that takes gzip gets the
// large ones gzipped (the WebAssembly takes 1.9 MB so). Both are made at
// the file's first request, not at each start of a server, whose memory
// would hold a copy of the file for nothing until a browser asks.
type staticFile struct {
	files fs.FS
	name  string

	once sync.Once
	err  error
	etag string // of the file; a gzipped answer's is etag with -gz
	gz   []byte // the file gzipped, if it is large
}

// minGzip is the size from which a static file is sent gzipped to the
// browsers that take it: the WebAssembly, not the small scripts.
const minGzip = 64 << 10

// listStatic lists the console's scripts in files.
func listStatic(files fs.FS) (map[string]*staticFile, error) {
	out := map[string]*staticFile{}
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out[name] = &staticFile{files: files, name: name}
		}
		return err
	})
	return out, err
}

// serve answers r with the file: gzipped if it is large and the browser
// takes gzip, 304 if the browser has it.
func (f *staticFile) serve(w http.ResponseWriter, r *http.Request) {
	unreadable := func() { http.Error(w, "the console's file cannot be read", http.StatusInternalServerError) }
	if err := f.prepare(); err != nil {
		unreadable()
		return
	}
	h := w.Header()
	// Kept by the browser alone (a session fetched it), and asked about
	// again before each use: a server upgraded in between serves its own.
	h.Set("Cache-Control", "private, no-cache")
	if f.gz != nil {
		h.Set("Vary", "Accept-Encoding")
		if acceptsGzip(strings.Join(r.Header.Values("Accept-Encoding"), ",")) {
			h.Set("Content-Encoding", "gzip")
			h.Set("ETag", strconv.Quote(f.etag+"-gz"))
			http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.gz))
			return
		}
	}
	file, err := f.files.Open(f.name)
	if err != nil {
		unreadable()
		return
	}
	defer file.Close()
	// Embedded files seek: served from the binary's data, not a copy.
	content, ok := file.(io.ReadSeeker)
	if !ok {
		unreadable()
		return
	}
	h.Set("ETag", strconv.Quote(f.etag))
	http.ServeContent(w, r, f.name, time.Time{}, content)
}

// prepare makes the file's ETag, and its gzip if it is large, once.
func (f *staticFile) prepare() error {
	f.once.Do(func() {
		var data []byte
		if data, f.err = fs.ReadFile(f.files, f.name); f.err != nil {
			return
		}
		sum := sha256.Sum256(data)
		f.etag = hex.EncodeToString(sum[:16])
		if len(data) >= minGzip {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(data) // to memory: no error
			zw.Close()
			f.gz = b.Bytes()
		}
	})
	return f.err
}

// acceptsGzip reports whether an Accept-Encoding header takes gzip: with
// a weight above 0, named (x-gzip too) or, if not named, by * (RFC 9110,
// 12.5.3).
func acceptsGzip(header string) bool {
	named, star := -1.0, -1.0
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(params)), "q="); ok {
			var err error
			if q, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
				q = 0
			}
		}
		switch coding = strings.TrimSpace(coding); {
		case strings.EqualFold(coding, "gzip"), strings.EqualFold(coding, "x-gzip"):
			named = q
		case coding == "*":
			star = q
		}
	}
	if named >= 0 {
		return named > 0
	}
	return star > 0
}
