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
// processors (a responder's key, or a CA's in software), and in each token
// or KMS, of whose slots no CA takes more than half (one at least), so
// that a slow key (in a custom key store, say) does not hold back every
// other CA's answers. Each bound is a channel's buffer: a slot given back
// goes to one signing waiting for it, in the order they came, and wakes
// no other.
type ocspSlots struct {
	processors chan struct{}
	// keys is the slot of the responders' keys being made, one at a time,
	// apart from the answers': an RSA-4096 key takes up to two seconds of
	// a processor, and the keys of many CAs made at once (after a restart,
	// one request to each) held every answer's slot, on a 2-CPU server
	// its one, and other accounts' answers were tryLater.
	keys     chan struct{}
	perStore int
	mu       sync.Mutex
	stores   map[string]chan struct{} // by key store's name, made at its first signing
	shares   map[string]*caShare      // by CA id, while a signing of the CA waits or runs
}

// caShare is a CA's share of its key store's slots.
type caShare struct {
	slots chan struct{}
	users int // the CA's signings that hold or wait for one of slots
}

func newOCSPSlots(processors, perStore int) *ocspSlots {
	return &ocspSlots{processors: make(chan struct{}, processors), keys: make(chan struct{}, 1), perStore: perStore,
		stores: map[string]chan struct{}{}, shares: map[string]*caShare{}}
}

// processor waits, within wait, for a slot of the server's processors;
// past the wait, errOCSPBusy. The returned function gives it back, and may
// be called more than once.
func (o *ocspSlots) processor(ctx context.Context, wait time.Duration) (release func(), err error) {
	return o.one(ctx, o.processors, wait)
}

// key waits, within wait, for the slot of the responders' keys; past the
// wait, errOCSPBusy. The returned function gives it back, and may be
// called more than once.
func (o *ocspSlots) key(ctx context.Context, wait time.Duration) (release func(), err error) {
	return o.one(ctx, o.keys, wait)
}

// one waits, within wait, for one of slots.
func (o *ocspSlots) one(ctx context.Context, slots chan struct{}, wait time.Duration) (release func(), err error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	if err := take(ctx, slots, t.C); err != nil {
		return nil, err
	}
	return sync.OnceFunc(func() { <-slots }), nil
}

// store waits, within wait, for one of the CA of id caID's share of the
// slots of the key store named store, then for one of the store's slots;
// past the wait, errOCSPBusy. The returned function gives them back, and
// may be called more than once.
func (o *ocspSlots) store(ctx context.Context, store, caID string, wait time.Duration) (release func(), err error) {
	o.mu.Lock()
	pool := o.stores[store]
	if pool == nil {
		pool = make(chan struct{}, o.perStore)
		o.stores[store] = pool
	}
	share := o.shares[caID]
	if share == nil {
		share = &caShare{slots: make(chan struct{}, max(1, o.perStore/2))}
		o.shares[caID] = share
	}
	share.users++
	o.mu.Unlock()
	leave := func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		if share.users--; share.users == 0 {
			delete(o.shares, caID)
		}
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	if err := take(ctx, share.slots, t.C); err != nil {
		leave()
		return nil, err
	}
	if err := take(ctx, pool, t.C); err != nil {
		<-share.slots
		leave()
		return nil, err
	}
	return sync.OnceFunc(func() {
		<-pool
		<-share.slots
		leave()
	}), nil
}

// take takes one of slots, at once if one is free, else once one is,
// before timeout (errOCSPBusy) or ctx ends.
func take(ctx context.Context, slots chan struct{}, timeout <-chan time.Time) error {
	select {
	case slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case slots <- struct{}{}:
		return nil
	case <-timeout:
		return errOCSPBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}
