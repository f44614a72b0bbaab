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
