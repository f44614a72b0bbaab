// Package clientaddr tells the address of the client a request comes
// from, through the proxies in front of the server that the operator
// trusts: the connection's address, or, when that is a trusted proxy's,
// the nearest address in X-Forwarded-For that is not a trusted proxy's.
// Any client can send X-Forwarded-For, so it is believed only from a
// trusted proxy, and read from the right: each proxy appends the address
// it got the request from, and what is left of the nearest untrusted
// address is the client's to write.
package clientaddr

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the networks of the proxies whose X-Forwarded-For the server
// believes.
type Proxies []netip.Prefix

// Parse reads a comma-separated list of networks (10.0.0.0/8) and
// addresses (one proxy's).
func Parse(list string) (Proxies, error) {
	var p Proxies
	for s := range strings.SplitSeq(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			addr, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%q is neither an address nor a network", s)
			}
			addr = addr.Unmap()
			p = append(p, netip.PrefixFrom(addr, addr.BitLen()))
			continue
		}
		prefix, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a network", s)
		}
		p = append(p, prefix.Masked())
	}
	return p, nil
}

func (p Proxies) trusted(addr netip.Addr) bool {
	for _, prefix := range p {
		if prefix.Contains(addr) {
			return true
		}
	}
	return false
}

// Of returns the address of r's client; the zero Addr if the connection's
// address is not one (a test's recorder).
func (p Proxies) Of(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if !p.trusted(addr) {
		return addr
	}
	// From the right: the last proxy's word first.
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr // past what a trusted proxy wrote: no more to believe
		}
		addr = hop.Unmap()
		if !p.trusted(addr) {
			return addr
		}
	}
	return addr
}
