package localfs

import "os"

// writebackEvery is how many bytes of an object being written may wait in
// the page cache before the disk is asked to start writing them.
const writebackEvery = 8 << 20

// writeback writes a file and, every writebackEvery bytes, starts the
// disk writing what came before, without waiting for it. The fsync that
// makes an object durable then has little left to wait for (a 1M-row
// audit report and its proof file are over a gigabyte), and a large
// object does not fill the page cache with dirty pages.
type writeback struct {
	f                *os.File
	written, started int64
}

func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.written += int64(n)
	if w.written-w.started >= writebackEvery {
		startWriteback(w.f, w.started, w.written-w.started)
		w.started = w.written
	}
	return n, err
}
