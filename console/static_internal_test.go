package console

import "testing"

func TestAcceptsGzip(t *testing.T) {
	for _, c := range []struct {
		header string
		want   bool
	}{
		{"", false},
		{"identity", false},
		{"deflate, br", false},
		{"gzip", true},
		{"GZip", true},
		{"br, gzip;q=0.5", true},
		{"gzip; Q=0.001", true},
		{"gzip;q=0", false},
		{"gzip;q=0.000", false},
		{"gzip;q=high", false},
		{"*", true},
		{"*;q=0", false},
		{"gzip;q=0, *", false},
		{"*;q=0, gzip", true},
		{"br, *;q=0.1", true},
		{"x-gzip", true},
		{"x-gzip;q=0, *", false},
	} {
		if got := acceptsGzip(c.header); got != c.want {
			t.Errorf("Accept-Encoding %q: %v, want %v", c.header, got, c.want)
		}
	}
}
