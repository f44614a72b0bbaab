// Package readback is what reading objects back after they are written
// shares: a server that stalled as it wrote an object (a CRL, an audit
// report) may land its write after another server's newer one, and only
// reading the object back, some minutes later, tells. A loop looks for
// read-backs due at an interval; each object written has a schedule of
// read-backs, and a bound on the reads that fail.
package readback

import (
	"context"
	"sync"
	"time"
)

// After are when, after it is written, an object is read back: a server
// that died or stalled as it wrote may have left its request on the way,
// held by a proxy, or resent by its kernel for up to about 15 minutes.
var After = []time.Duration{2 * time.Minute, 20 * time.Minute}

// Loop calls a function at an interval, in the background, until Stop.
type Loop struct {
	stop context.CancelFunc
	done sync.WaitGroup
}

// Start calls look every poll, with a context that ends at Stop.
func Start(poll time.Duration, look func(context.Context)) *Loop {
	ctx, stop := context.WithCancel(context.Background())
	l := &Loop{stop: stop}
	l.done.Go(func() {
		t := time.NewTicker(poll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				look(ctx)
			}
		}
	})
	return l
}

// Stop ends the loop, and waits for a look under way to return.
func (l *Loop) Stop() {
	l.stop()
	l.done.Wait()
}

// Tries is how many reads that fail (the bucket out of reach) a
// read-back is given, one at each look, before it is given up for the
// next.
const Tries = 5

// Schedule is when an object written is to be read back.
type Schedule struct {
	// Times are the read-backs left.
	Times []time.Time
	// Failures are the reads of the first that failed.
	Failures int
}

// NewSchedule reads back an object written at now, after each of after.
func NewSchedule(now time.Time, after []time.Duration) *Schedule {
	s := &Schedule{}
	for _, d := range after {
		s.Times = append(s.Times, now.Add(d))
	}
	return s
}

// DueAt reports whether a read-back is due at now.
func (s *Schedule) DueAt(now time.Time) bool { return len(s.Times) > 0 && !s.Times[0].After(now) }

// Read records the read-back due: one that read the object, or, failed,
// the last of its Tries, leaves the next, with Tries of its own. It
// reports whether none is left.
func (s *Schedule) Read(failed bool) (over bool) {
	if failed {
		if s.Failures++; s.Failures < Tries {
			return false
		}
	}
	s.Failures = 0
	s.Times = s.Times[1:]
	return len(s.Times) == 0
}
