package policy

import "sync"

// Cache keeps parsed policies by their text, so that a policy attached to
// a key or a CA is parsed once, not at each request. It is safe for
// concurrent use; the zero Cache is ready.
type Cache struct {
	mu sync.Mutex
	m  map[cacheKey]*Policy
}

type cacheKey struct {
	kind Kind
	doc  string
}

// maxCached bounds a Cache; past it, the cache starts over.
const maxCached = 1000

// Parse is Parse of doc, from the cache when it holds it.
func (c *Cache) Parse(doc string, kind Kind) (*Policy, error) {
	k := cacheKey{kind, doc}
	c.mu.Lock()
	p, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := Parse([]byte(doc), kind)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCached {
		c.m = make(map[cacheKey]*Policy)
	}
	c.m[k] = p
	return p, nil
}
