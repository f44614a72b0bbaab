package postgres

import (
	"testing"
	"time"
)

// TestDialTimeout: a dial is bounded by the address's connect_timeout, or
// by dialTimeout when it sets none (libpq's 0, which would wait for the
// kernel's SYN retries, about 2 minutes).
func TestDialTimeout(t *testing.T) {
	for _, tc := range []struct{ connectTimeout, want time.Duration }{
		{0, dialTimeout},
		{7 * time.Second, 7 * time.Second},
	} {
		if got := dialer(tc.connectTimeout).Timeout; got != tc.want {
			t.Errorf("connect_timeout %v: the dial's timeout is %v, want %v", tc.connectTimeout, got, tc.want)
		}
	}
}
