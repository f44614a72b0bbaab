package sqlstore

import (
	"slices"
	"sync"

	"github.com/openpca/openpca"
)

// caCache keeps decoded CA records by id. An entry serves a read only if
// its version is the stored one, which FindCA reads first: the cache saves
// decoding, never freshness.
type caCache struct {
	mu sync.Mutex
	m  map[string]*openpca.CA
}

// maxCachedCAs bounds the cache; past it the cache starts over.
const maxCachedCAs = 10000

func (c *caCache) get(id string, version int64) *openpca.CA {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ca, ok := c.m[id]; ok && ca.Version == version {
		return c.clone(ca)
	}
	return nil
}

func (c *caCache) put(ca *openpca.CA) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedCAs {
		c.m = make(map[string]*openpca.CA)
	}
	c.m[ca.ID] = c.clone(ca)
}

// clear forgets every record.
func (c *caCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
}

// clone copies a record deeply enough that callers may change it: they
// replace fields, and edit only the tag list in place.
func (c *caCache) clone(ca *openpca.CA) *openpca.CA {
	cp := *ca
	cp.Tags = slices.Clone(ca.Tags)
	return &cp
}
