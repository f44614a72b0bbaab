package clientaddr

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestOf(t *testing.T) {
	proxies, err := Parse("10.0.0.0/8, 192.0.2.1, 2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, remote string
		xff          []string
		proxies      Proxies
		want         string
	}{
		{"no proxy trusted: the connection's, whatever it says", "10.1.2.3:443", []string{"203.0.113.7"}, nil, "10.1.2.3"},
		{"an untrusted client's word is not believed", "198.51.100.9:5000", []string{"203.0.113.7"}, proxies, "198.51.100.9"},
		{"a trusted proxy's client", "10.1.2.3:443", []string{"203.0.113.7"}, proxies, "203.0.113.7"},
		{"what the client wrote left of it is not believed", "10.1.2.3:443", []string{"6.6.6.6, 203.0.113.7"}, proxies, "203.0.113.7"},
		{"through two trusted proxies", "192.0.2.1:443", []string{"203.0.113.7, 10.9.9.9"}, proxies, "203.0.113.7"},
		{"over two header lines", "192.0.2.1:443", []string{"6.6.6.6, 203.0.113.7", "10.9.9.9"}, proxies, "203.0.113.7"},
		{"IPv6 through an IPv6 proxy", "[2001:db8::5]:443", []string{"2001:db8:1::1, 2001:db8::7"}, proxies, "2001:db8:1::1"},
		{"an IPv4-mapped proxy", "[::ffff:10.1.2.3]:443", []string{"203.0.113.7"}, proxies, "203.0.113.7"},
		{"no header: the proxy's", "10.1.2.3:443", nil, proxies, "10.1.2.3"},
		{"garbage: the last address believed", "192.0.2.1:443", []string{"not-an-address, 10.9.9.9"}, proxies, "10.9.9.9"},
		{"all of them trusted: the client is one", "192.0.2.1:443", []string{"10.9.9.9"}, proxies, "10.9.9.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := tc.proxies.Of(r); got != netip.MustParseAddr(tc.want) {
				t.Errorf("Of = %v, want %s", got, tc.want)
			}
		})
	}
	if got := proxies.Of(&http.Request{RemoteAddr: "@"}); got.IsValid() {
		t.Errorf("a connection without an address: %v", got)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example", "10.0.0.1/"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

// FuzzOf: any header and connection address give an address of the
// connection or of the header, never a panic.
func FuzzOf(f *testing.F) {
	proxies, _ := Parse("10.0.0.0/8,2001:db8::/32")
	f.Add("10.0.0.1:1", "203.0.113.7, 10.0.0.2")
	f.Add("[2001:db8::1]:1", "::1,,x")
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {xff}}}
		proxies.Of(r)
	})
}
