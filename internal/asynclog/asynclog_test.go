package asynclog

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// stuck is a reader that stopped reading, until released.
type stuck struct {
	mu      sync.Mutex
	entered sync.Once
	writing chan struct{} // closed once a write waits
	release chan struct{}
	got     strings.Builder
}

func newStuck() *stuck { return &stuck{writing: make(chan struct{}), release: make(chan struct{})} }

func (s *stuck) Write(p []byte) (int, error) {
	s.entered.Do(func() { close(s.writing) })
	<-s.release
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got.Write(p)
}

func (s *stuck) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got.String()
}

// TestWriterNeverWaits: with its reader stuck, writes neither wait nor
// fail, and past the buffer they are dropped; once the reader reads
// again, the lines kept are written in order, then a note of those
// dropped; Close gives up on a reader stuck for good.
func TestWriterNeverWaits(t *testing.T) {
	out := newStuck()
	lw := New(out, 4, func(w io.Writer, n int64) { fmt.Fprintf(w, "dropped %d\n", n) })
	fmt.Fprintf(lw, "line 0\n")
	<-out.writing
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i < 100; i++ {
			if n, err := fmt.Fprintf(lw, "line %d\n", i); err != nil || n == 0 {
				t.Errorf("write %d: %d, %v", i, n, err)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("writes waited for a stuck reader")
	}
	// One line is with the stuck reader, four in the buffer.
	if got := lw.Dropped(); got != 95 {
		t.Errorf("%d dropped, want 95", got)
	}
	close(out.release)
	lw.Close(10 * time.Second)
	if got, want := out.String(), "line 0\nline 1\nline 2\nline 3\nline 4\ndropped 95\n"; got != want {
		t.Errorf("written:\n%s\nwant:\n%s", got, want)
	}

	forever := New(newStuck(), 4, nil)
	fmt.Fprintln(forever, "never written")
	start := time.Now()
	forever.Close(100 * time.Millisecond)
	if time.Since(start) > 5*time.Second {
		t.Error("Close waited for a reader stuck for good")
	}
}
