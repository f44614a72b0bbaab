package authority

import (
	"context"
	"sync"
	"time"
)

// DefaultOCSPStoreSigners is how many OCSP answers a server has CAs sign
// at once in each key store that is a token or KMS, where CAs sign their
// answers themselves (Config.OCSPStoreSigners). Such a store's own limits
// (a KMS request quota, a token's sessions) are shared with issuance: an
// outsider who knows many issued serials would otherwise spend them on
// answers, each signed anew. Two at once, at 10 ms a KMS signing, is 200
// a second at most.
const DefaultOCSPStoreSigners = 2

// ocspSlots bounds the OCSP signings made at once: with the server's
// processors (a responder's key, or a CA's in software), in a pool of
// processors slots, and in each token or KMS, in a pool of perStore slots
// of which no CA takes more than half (one at least), so that a slow key
// (in a custom key store, say) does not hold back every other CA's
// answers.
type ocspSlots struct {
	processors, perStore int
	mu                   sync.Mutex
	taken                map[string]int // by pool: "" the processors', else a key store's name
	byCA                 map[string]int // slots of key stores, by CA id
	freed                chan struct{}  // closed, and replaced, as a slot is given back
}

func newOCSPSlots(processors, perStore int) *ocspSlots {
	return &ocspSlots{processors: processors, perStore: perStore, taken: map[string]int{}, byCA: map[string]int{}, freed: make(chan struct{})}
}

// processor waits, within wait, for a slot of the server's processors;
// past the wait, errOCSPBusy. The returned function gives it back, and may
// be called more than once.
func (o *ocspSlots) processor(ctx context.Context, wait time.Duration) (release func(), err error) {
	return o.take(ctx, "", "", wait)
}

// take waits, within wait, for a slot of pool ("" the processors', else a
// key store's name), for the CA of id caID if pool is a key store's.
func (o *ocspSlots) take(ctx context.Context, pool, caID string, wait time.Duration) (func(), error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		o.mu.Lock()
		if o.free(pool, caID) {
			o.taken[pool]++
			if pool != "" {
				o.byCA[caID]++
			}
			o.mu.Unlock()
			return sync.OnceFunc(func() { o.give(pool, caID) }), nil
		}
		freed := o.freed
		o.mu.Unlock()
		select {
		case <-freed:
		case <-t.C:
			return nil, errOCSPBusy
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// free reports whether pool has a slot for caID; o.mu is held.
func (o *ocspSlots) free(pool, caID string) bool {
	if pool == "" {
		return o.taken[pool] < o.processors
	}
	return o.taken[pool] < o.perStore && o.byCA[caID] < max(1, o.perStore/2)
}

func (o *ocspSlots) give(pool, caID string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	// Emptied entries go, so that the maps hold only signings under way.
	if o.taken[pool]--; o.taken[pool] == 0 {
		delete(o.taken, pool)
	}
	if pool != "" {
		if o.byCA[caID]--; o.byCA[caID] == 0 {
			delete(o.byCA, caID)
		}
	}
	close(o.freed)
	o.freed = make(chan struct{})
}
