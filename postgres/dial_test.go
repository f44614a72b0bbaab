package postgres

import (
	"testing"
	"time"
)

// TestConnectTimeout: each attempt to connect, whole, is bounded by the
// address's connect_timeout, or by connectTimeout when it sets none or 0
// (libpq's "no bound": a host that takes the connection and says nothing
// held it until the request's own deadline).
func TestConnectTimeout(t *testing.T) {
	for _, tc := range []struct {
		params string
		want   time.Duration
	}{
		{"", connectTimeout},
		{"&connect_timeout=0", connectTimeout},
		{"&connect_timeout=7", 7 * time.Second},
	} {
		cfg, err := connConfig("postgres://u@127.0.0.1:5432/db?sslmode=disable"+tc.params, "")
		if err != nil {
			t.Fatal(err)
		}
		if cfg.ConnectTimeout != tc.want || cfg.DialFunc == nil {
			t.Errorf("%q: connections are made within %v, want %v", tc.params, cfg.ConnectTimeout, tc.want)
		}
	}
}
