package crl

import (
	"testing"
	"time"
)

// TestRetryAfter: a publication that keeps failing is retried after 30 s,
// then twice as long each time, up to 15 minutes.
func TestRetryAfter(t *testing.T) {
	for failures, want := range map[int]time.Duration{
		1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 5: 8 * time.Minute, 6: 15 * time.Minute, 100: 15 * time.Minute,
	} {
		if got := retryAfter(failures); got != want {
			t.Errorf("after %d failures: %v, want %v", failures, got, want)
		}
	}
}

// TestPause: a large CA's next CRL waits 50 µs for each entry of its
// last; a small one's is not held back.
func TestPause(t *testing.T) {
	for _, tc := range []struct {
		revoked int
		want    time.Duration
	}{
		{0, 0},
		{1999, 0},
		{2000, 100 * time.Millisecond},
		{97_000, 4850 * time.Millisecond},
		{1_000_000, 50 * time.Second},
	} {
		if got := pause(tc.revoked); got != tc.want {
			t.Errorf("after a CRL of %d entries: %s, want %s", tc.revoked, got, tc.want)
		}
	}
}
