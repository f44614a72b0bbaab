// Package clientaddr tells the address of the client a request comes
// from, through the proxies in front of the server that the operator
// trusts: the connection's address, or, when that is a trusted proxy's,
// the nearest address in X-Forwarded-For that is not a trusted proxy's.
// Any client can send X-Forwarded-For, so it is believed only from a
// trusted proxy, and read from the right: each proxy appends the address
// it got the request from, and what is left of the nearest untrusted
// address is the client's to write. The networks named must hold only
// such proxies: any other host in them could name itself any address.
package clientaddr

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the networks of the proxies whose X-Forwarded-For the server
// believes.
type Proxies []netip.Prefix

// Parse reads a comma-separated list of networks (10.0.0.0/8) and
// addresses (one proxy's). A network of every address is refused: every
// client could then name its own.
func Parse(list string) (Proxies, error) {
	var p Proxies
	for s := range strings.SplitSeq(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(s)
		if !strings.Contains(s, "/") {
			var addr netip.Addr
			if addr, err = netip.ParseAddr(s); err == nil && addr.Zone() == "" {
				addr = addr.Unmap()
				prefix = netip.PrefixFrom(addr, addr.BitLen())
			} else if err == nil {
				err = errors.New("a zone") // a zoned address matches no network
			}
		}
		switch {
		case err != nil || !prefix.IsValid():
			return nil, fmt.Errorf("%q is neither an address nor a network", s)
		case prefix.Addr().Is4In6():
			return nil, fmt.Errorf("%q: name an IPv4 network as such (10.0.0.0/8), not mapped into IPv6", s)
		case prefix.Bits() == 0:
			return nil, errors.New("a network of every address cannot be trusted: every client could name its own address")
		}
		p = append(p, prefix.Masked())
	}
	return p, nil
}

// Network is the network of addr that a limit counts it in: its first v4
// bits if it is IPv4 (mapped into IPv6 or not), its first v6 bits if it is
// IPv6, without zone; the zero Prefix for an address that is none.
func Network(addr netip.Addr, v4, v6 int) netip.Prefix {
	if !addr.IsValid() {
		return netip.Prefix{}
	}
	addr = addr.Unmap().WithZone("")
	bits := v4
	if addr.Is6() {
		bits = v6
	}
	p, _ := addr.Prefix(bits)
	return p
}

// Trusts reports whether addr is a trusted proxy's.
func (p Proxies) Trusts(addr netip.Addr) bool {
	for _, prefix := range p {
		if prefix.Contains(addr) {
			return true
		}
	}
	return false
}

// Secure reports whether r came over TLS to the server or, from a
// trusted proxy, to it: a proxy that ends TLS says so with
// X-Forwarded-Proto, of which its own word, the last, counts.
func (p Proxies) Secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !p.Trusts(ap.Addr().Unmap().WithZone("")) {
		return false
	}
	lines := r.Header.Values("X-Forwarded-Proto")
	if len(lines) == 0 {
		return false
	}
	last := lines[len(lines)-1]
	return strings.EqualFold(strings.TrimSpace(last[strings.LastIndexByte(last, ',')+1:]), "https")
}

// maxHops bounds how many addresses of X-Forwarded-For are read: no path
// through proxies is longer.
const maxHops = 32

// Of returns the address of r's client, or the zero Addr if it cannot be
// told: the connection has no IP address (a test's recorder), or a
// trusted proxy wrote something that is not one ("unknown"), or more
// proxies than maxHops.
func (p Proxies) Of(r *http.Request) netip.Addr {
	client, _ := p.walk(r)
	return client
}

// Nearest returns the address of r's client if it can be told, else the
// nearest one that can: that of the proxy that wrote what cannot be read.
// It is for limits per address, which must count every request somewhere.
func (p Proxies) Nearest(r *http.Request) netip.Addr {
	client, nearest := p.walk(r)
	if client.IsValid() {
		return client
	}
	return nearest
}

// walk returns the client's address, if it can be told, and the nearest
// address that can.
func (p Proxies) walk(r *http.Request) (client, nearest netip.Addr) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, netip.Addr{}
	}
	// Without its zone, as an address of X-Forwarded-For: a zoned
	// address (a link-local client's, fe80::1%eth0) is in no network
	// netip knows, neither a trusted proxy's nor one a policy names.
	addr := ap.Addr().Unmap().WithZone("")
	if !p.Trusts(addr) {
		return addr, addr
	}
	// From the right: the last proxy's word first.
	lines := r.Header.Values("X-Forwarded-For")
	hops := 0
	for i := len(lines) - 1; i >= 0; i-- {
		for line := lines[i]; ; {
			var hop string
			cut := strings.LastIndexByte(line, ',')
			line, hop = line[:max(cut, 0)], line[cut+1:]
			if hops++; hops > maxHops {
				return netip.Addr{}, addr
			}
			next, ok := parseHop(hop)
			if !ok {
				return netip.Addr{}, addr // no more to believe
			}
			addr = next
			if !p.Trusts(addr) {
				return addr, addr
			}
			if cut < 0 {
				break
			}
		}
	}
	// Every address a trusted proxy's: the client is one of them.
	return addr, addr
}

// parseHop reads an address of X-Forwarded-For, with the port or the
// brackets some proxies write ("192.0.2.1:5678", "[2001:db8::1]:443").
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	addr, err := netip.ParseAddr(s)
	if err != nil {
		var ap netip.AddrPort
		if ap, err = netip.ParseAddrPort(s); err == nil {
			addr = ap.Addr()
		} else if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
			addr, err = netip.ParseAddr(s[1 : len(s)-1])
		}
	}
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.Unmap().WithZone(""), true
}
