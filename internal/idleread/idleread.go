// Package idleread bounds the time a read may go without a byte: an
// object store that stops sending in the middle of an object would
// otherwise hold its reader for as long as the whole read may take.
package idleread

import (
	"io"
	"time"
)

// Reader reads from R, and resets Idle to D at each byte it reads: the
// caller has Idle end the read (cancel its context) when it fires.
type Reader struct {
	R    io.Reader
	Idle *time.Timer
	D    time.Duration
}

func (r *Reader) Read(b []byte) (int, error) {
	n, err := r.R.Read(b)
	if n > 0 {
		r.Idle.Reset(r.D)
	}
	return n, err
}
