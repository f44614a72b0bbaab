package policy

import "sync"

// Cache keeps parsed policies by their text, so that a policy attached to
// a key or a CA is parsed once, not at each request. It is safe for
// concurrent use; the zero Cache is ready.
//
// It is bounded by what it holds as well as by how many: a CA's policy is
// any account's to write (PutPolicy), up to MaxSize, and one of 80 KB of
// short conditions is over 1 MB parsed. Past either bound, policies it
// holds are dropped, at random, until the new one fits.
type Cache struct {
	mu    sync.Mutex
	m     map[cacheKey]cached
	bytes int // the footprints of what m holds, and its keys' text
}

type cacheKey struct {
	kind Kind
	doc  string
}

type cached struct {
	p    *Policy
	cost int
}

// maxCached bounds how many policies a Cache holds, and maxCachedBytes
// their estimated size in memory (see footprint), with their text: 32 MiB
// holds a thousand policies of 4 KB, or some twenty-five of the largest.
const (
	maxCached      = 1000
	maxCachedBytes = 32 << 20
)

// Parse is Parse of doc, from the cache when it holds it.
func (c *Cache) Parse(doc string, kind Kind) (*Policy, error) {
	k := cacheKey{kind, doc}
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return e.p, nil
	}
	p, err := Parse([]byte(doc), kind)
	if err != nil {
		return nil, err
	}
	cost := len(doc) + p.footprint()
	if cost > maxCachedBytes {
		return p, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[cacheKey]cached)
	}
	if old, ok := c.m[k]; ok { // parsed meanwhile by another request
		return old.p, nil
	}
	// Map iteration order is random: what goes is drawn at random.
	for key, e := range c.m {
		if len(c.m) < maxCached && c.bytes+cost <= maxCachedBytes {
			break
		}
		delete(c.m, key)
		c.bytes -= e.cost
	}
	c.m[k] = cached{p, cost}
	c.bytes += cost
	return p, nil
}

// footprint estimates the memory a parsed policy takes, generously: each
// string's header and text, each element's slot in its list, and each
// statement's and condition's own fields (a Condition is some 120 bytes,
// with its key twice).
func (p *Policy) footprint() int {
	const (
		str       = 16 + 8 // a string's header, and its slot's pointer or rounding
		statement = 320
		condition = 160
	)
	n := 64 + len(p.Version) + len(p.ID)
	strs := func(list []string) {
		for _, s := range list {
			n += str + len(s)
		}
	}
	for _, s := range p.Statements {
		n += statement + len(s.Sid)
		strs(s.Principals)
		strs(s.Actions)
		strs(s.NotActions)
		strs(s.Resources)
		strs(s.NotResources)
		for _, c := range s.Conditions {
			n += condition + len(c.Operator) + 2*len(c.Key)
			strs(c.Values)
		}
	}
	return n
}
