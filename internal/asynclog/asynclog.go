// Package asynclog is an io.Writer for log lines that never holds up what
// logs: lines wait in a buffer for a goroutine to write them, and when the
// buffer is full (the log's reader stopped reading: a pipe to a stuck
// process, a full disk) they are dropped and counted, not waited for. A
// server that logged synchronously to a pipe nobody drained hung every
// request, answered its health checks all the same, and ignored SIGTERM,
// whose "shutting down" line could not be written.
package asynclog

import (
	"bytes"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Writer writes lines to its io.Writer in the background. Each Write is
// one line (log/slog's handlers write each record in one call).
type Writer struct {
	w       io.Writer
	lines   chan []byte
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	dropped atomic.Int64
	noted   int64 // of dropped, by the writing goroutine
	note    func(w io.Writer, dropped int64)
}

// New starts a Writer to w that holds at most capacity lines not yet
// written. note, if set, writes to w a line that says how many were
// dropped, once the lines before them are written.
func New(w io.Writer, capacity int, note func(w io.Writer, dropped int64)) *Writer {
	lw := &Writer{w: w, lines: make(chan []byte, capacity), stop: make(chan struct{}), done: make(chan struct{}), note: note}
	go lw.run()
	return lw
}

// Write takes a line to write, or drops it if the buffer is full. It never
// fails and never waits.
func (lw *Writer) Write(p []byte) (int, error) {
	select {
	case lw.lines <- bytes.Clone(p):
	default:
		lw.dropped.Add(1)
	}
	return len(p), nil
}

// Dropped is how many lines were dropped, in all.
func (lw *Writer) Dropped() int64 { return lw.dropped.Load() }

func (lw *Writer) run() {
	defer close(lw.done)
	for {
		select {
		case line := <-lw.lines:
			lw.write(line)
		case <-lw.stop:
			for {
				select {
				case line := <-lw.lines:
					lw.write(line)
				default:
					return
				}
			}
		}
	}
}

func (lw *Writer) write(line []byte) {
	lw.w.Write(line)
	if lw.note != nil && len(lw.lines) == 0 {
		if n := lw.dropped.Load(); n > lw.noted {
			lw.note(lw.w, n-lw.noted)
			lw.noted = n
		}
	}
}

// Close writes the lines waiting, for at most wait: a reader that no
// longer reads must not keep the process from exiting. Lines written
// after Close may not be written.
func (lw *Writer) Close(wait time.Duration) {
	lw.once.Do(func() { close(lw.stop) })
	select {
	case <-lw.done:
	case <-time.After(wait):
	}
}
