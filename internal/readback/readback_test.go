package readback

import (
	"testing"
	"time"
)

// TestSchedule: each read-back is due at its time; a read that fails is
// tried again, Tries times in all, before it is given up for the next,
// which has Tries of its own; the schedule is over once the last is read
// or given up.
func TestSchedule(t *testing.T) {
	start := time.Unix(1000, 0)
	s := NewSchedule(start, []time.Duration{time.Minute, time.Hour})
	if s.DueAt(start.Add(time.Minute-time.Second)) || !s.DueAt(start.Add(time.Minute)) {
		t.Fatal("the first read-back is not due at its time alone")
	}
	s.Read(true)
	if s.Read(false) || s.DueAt(start.Add(time.Minute)) || !s.DueAt(start.Add(time.Hour)) {
		t.Fatal("a read-back read leaves the next, due at its own time")
	}
	// With all its tries: a failure of the one before does not count.
	for i := range Tries - 1 {
		if s.Read(true) || len(s.Times) != 1 {
			t.Fatalf("after %d failed reads, the read-back was given up", i+1)
		}
	}
	if !s.Read(true) {
		t.Errorf("the last read-back, failed %d times, is not given up", Tries)
	}
}
