package clientaddr

import (
	"crypto/tls"
	"net/http"
	"net/netip"
	"strings"
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
		want         string // "" for none
		nearest      string // if not want
	}{
		{"no proxy trusted: the connection's, whatever it says", "10.1.2.3:443", []string{"203.0.113.7"}, nil, "10.1.2.3", ""},
		{"an untrusted client's word is not believed", "198.51.100.9:5000", []string{"203.0.113.7"}, proxies, "198.51.100.9", ""},
		{"a trusted proxy's client", "10.1.2.3:443", []string{"203.0.113.7"}, proxies, "203.0.113.7", ""},
		{"what the client wrote left of it is not believed", "10.1.2.3:443", []string{"6.6.6.6, 203.0.113.7"}, proxies, "203.0.113.7", ""},
		{"through two trusted proxies", "192.0.2.1:443", []string{"203.0.113.7, 10.9.9.9"}, proxies, "203.0.113.7", ""},
		{"over two header lines", "192.0.2.1:443", []string{"6.6.6.6, 203.0.113.7", "10.9.9.9"}, proxies, "203.0.113.7", ""},
		{"IPv6 through an IPv6 proxy", "[2001:db8::5]:443", []string{"2001:db8:1::1, 2001:db8::7"}, proxies, "2001:db8:1::1", ""},
		{"an IPv4-mapped proxy", "[::ffff:10.1.2.3]:443", []string{"203.0.113.7"}, proxies, "203.0.113.7", ""},
		{"a port, as some proxies write", "10.1.2.3:443", []string{"203.0.113.7:5678"}, proxies, "203.0.113.7", ""},
		{"IPv6 in brackets, with a port", "10.1.2.3:443", []string{"[2001:db8:1::1]:443"}, proxies, "2001:db8:1::1", ""},
		{"IPv6 in brackets", "10.1.2.3:443", []string{"[2001:db8:1::1]"}, proxies, "2001:db8:1::1", ""},
		{"a zone is dropped", "10.1.2.3:443", []string{"fe80::1%eth0"}, proxies, "fe80::1", ""},
		{"no header: the proxy is the client", "10.1.2.3:443", nil, proxies, "10.1.2.3", ""},
		{"unknown: none, the proxy's the nearest", "192.0.2.1:443", []string{"unknown, 10.9.9.9"}, proxies, "", "10.9.9.9"},
		{"an empty entry", "192.0.2.1:443", []string{"203.0.113.7,"}, proxies, "", "192.0.2.1"},
		{"all of them trusted: the client is one", "192.0.2.1:443", []string{"10.9.9.9"}, proxies, "10.9.9.9", ""},
		{"more proxies than any path has", "10.0.0.1:443", []string{"203.0.113.7, " + strings.Repeat("10.0.0.2, ", maxHops) + "10.0.0.3"}, proxies, "", "10.0.0.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			want, nearest := netip.Addr{}, netip.Addr{}
			if tc.want != "" {
				want, nearest = netip.MustParseAddr(tc.want), netip.MustParseAddr(tc.want)
			} else {
				nearest = netip.MustParseAddr(tc.nearest)
			}
			if got := tc.proxies.Of(r); got != want {
				t.Errorf("Of = %v, want %v", got, want)
			}
			if got := tc.proxies.Nearest(r); got != nearest {
				t.Errorf("Nearest = %v, want %v", got, nearest)
			}
		})
	}
	if got := proxies.Nearest(&http.Request{RemoteAddr: "@"}); got.IsValid() {
		t.Errorf("a connection without an address: %v", got)
	}
}

// TestSecure: a request came over TLS if the server's connection is TLS,
// or if a trusted proxy says, last in X-Forwarded-Proto, that its own was;
// anyone else's word counts for nothing.
func TestSecure(t *testing.T) {
	proxies, err := Parse("10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, remote string
		tls          bool
		proto        []string
		want         bool
	}{
		{"TLS to the server", "198.51.100.9:5000", true, nil, true},
		{"plain HTTP", "198.51.100.9:5000", false, nil, false},
		{"a client's word", "198.51.100.9:5000", false, []string{"https"}, false},
		{"a trusted proxy that ended TLS", "10.1.2.3:443", false, []string{"https"}, true},
		{"in capitals", "10.1.2.3:443", false, []string{"HTTPS"}, true},
		{"a trusted proxy that got plain HTTP", "10.1.2.3:443", false, []string{"http"}, false},
		{"what a client wrote before the proxy's word", "10.1.2.3:443", false, []string{"https, http"}, false},
		{"over two lines, the last counts", "10.1.2.3:443", false, []string{"http", "https"}, true},
		{"a trusted proxy that says nothing", "10.1.2.3:443", false, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for _, v := range tc.proto {
				r.Header.Add("X-Forwarded-Proto", v)
			}
			if got := proxies.Secure(r); got != tc.want {
				t.Errorf("Secure = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	if p, err := Parse(" 10.0.0.0/8 ,192.0.2.1,, 2001:db8::1 "); err != nil || len(p) != 3 || p[1] != netip.MustParsePrefix("192.0.2.1/32") || p[2].Bits() != 128 {
		t.Errorf("Parse = %v, %v", p, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example", "10.0.0.1/", "0.0.0.0/0", "::/0", "fe80::1%eth0", "::ffff:10.0.0.0/104"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

// FuzzOf: any header and connection address give the client's address,
// the connection's, one of the header's, or none; never a panic.
func FuzzOf(f *testing.F) {
	proxies, _ := Parse("10.0.0.0/8,2001:db8::/32")
	f.Add("10.0.0.1:1", "203.0.113.7, 10.0.0.2")
	f.Add("[2001:db8::1]:1", "::1,,x")
	f.Add("10.0.0.1:1", "[2001:db8::9]:80, unknown")
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {xff}}}
		if client, nearest := proxies.Of(r), proxies.Nearest(r); client.IsValid() && client != nearest {
			t.Errorf("Of %v, Nearest %v", client, nearest)
		}
	})
}

// TestNetwork: an address's network, IPv4 mapped into IPv6 or not, zone
// or not; none for no address.
func TestNetwork(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.77", "192.0.2.0/24"},
		{"::ffff:192.0.2.77", "192.0.2.0/24"},
		{"2001:db8:1:2::3", "2001:db8:1::/48"},
		{"fe80::1%eth0", "fe80::/48"},
	} {
		if got := Network(netip.MustParseAddr(tc.addr), 24, 48).String(); got != tc.want {
			t.Errorf("Network(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
	if got := Network(netip.Addr{}, 24, 48); got.IsValid() {
		t.Errorf("Network of no address = %s", got)
	}
}

// TestConnectionZoneDropped: the address of a client connected over a
// link-local address has no zone, as one of X-Forwarded-For has none: it
// is aws:SourceIp, and a zoned address is in no network (netip), so a
// policy's Deny of fe80::/10 denied such a client nothing.
func TestConnectionZoneDropped(t *testing.T) {
	linkLocal, err := Parse("fe80::/10")
	if err != nil {
		t.Fatal(err)
	}
	r := &http.Request{RemoteAddr: "[fe80::1%eth0]:443", Header: http.Header{"X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Proto": {"https"}}}
	if got, want := Proxies(nil).Of(r), netip.MustParseAddr("fe80::1"); got != want {
		t.Errorf("Of = %v, want %v", got, want)
	}
	// A proxy of a trusted network, connected over its link-local address.
	if got, want := linkLocal.Of(r), netip.MustParseAddr("203.0.113.7"); got != want {
		t.Errorf("through a trusted link-local proxy: Of = %v, want %v", got, want)
	}
	if !linkLocal.Secure(r) {
		t.Error("through a trusted link-local proxy that says https: not secure")
	}
}
