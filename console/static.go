package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
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
// large ones gzipped (the WebAssembly takes 1.9 MB so), made at their first
// request rather than at each start of a server.
type staticFile struct {
	name string
	data []byte
	etag string // of data; a gzipped answer's is etag with -gz

	once sync.Once
	gz   []byte
}

// minGzip is the size from which a static file is sent gzipped to the
// browsers that take it: the WebAssembly, not the small scripts.
const minGzip = 64 << 10

// loadStatic reads the console's scripts from files.
func loadStatic(files fs.FS) (map[string]*staticFile, error) {
	out := map[string]*staticFile{}
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(files, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		out[name] = &staticFile{name: name, data: data, etag: hex.EncodeToString(sum[:16])}
		return nil
	})
	return out, err
}

// serve answers r with the file: gzipped if it is large and the browser
// takes gzip, 304 if the browser has it.
func (f *staticFile) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Kept by the browser alone (a session fetched it), and asked about
	// again before each use: a server upgraded in between serves its own.
	h.Set("Cache-Control", "private, no-cache")
	body, etag := f.data, f.etag
	if len(f.data) >= minGzip {
		h.Set("Vary", "Accept-Encoding")
		if acceptsGzip(strings.Join(r.Header.Values("Accept-Encoding"), ",")) {
			body, etag = f.gzipped(), f.etag+"-gz"
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", strconv.Quote(etag))
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(body))
}

func (f *staticFile) gzipped() []byte {
	f.once.Do(func() {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(f.data) // to memory: no error
		zw.Close()
		f.gz = b.Bytes()
	})
	return f.gz
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
