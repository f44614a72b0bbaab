package authority

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestOCSPSlots: a CA takes half its key store's slots at most, and the
// store as many as it has; responders' keys are made one at a time, on a
// slot apart from the answers' processors; a slot given back goes to a
// signing that waits; given back twice, it counts once; a wait that ends takes
// nothing; and once every signing has ended, nothing is held or kept.
func TestOCSPSlots(t *testing.T) {
	ctx := t.Context()
	o := newOCSPSlots(1, 4)
	take := func(store, caID string, wait time.Duration) (func(), error) {
		t.Helper()
		if store == "" {
			return o.processor(ctx, wait)
		}
		return o.store(ctx, store, caID, wait)
	}
	must := func(release func(), err error) func() {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return release
	}
	busy := func(store, caID string) {
		t.Helper()
		if release, err := take(store, caID, 10*time.Millisecond); !errors.Is(err, errOCSPBusy) {
			if release != nil {
				release()
			}
			t.Fatalf("%s slot for %s: %v; want every one busy", store, caID, err)
		}
	}
	a1, a2 := must(take("kms", "a", 0)), must(take("kms", "a", 0))
	busy("kms", "a") // its share, half of 4
	b1 := must(take("kms", "b", 0))
	p := must(take("", "", 0))
	busy("", "")
	// The responders' keys have a slot of their own, one.
	k := must(o.key(ctx, 0))
	if release, err := o.key(ctx, 10*time.Millisecond); !errors.Is(err, errOCSPBusy) {
		if release != nil {
			release()
		}
		t.Fatalf("a second responder's key at once: %v; want the slot busy", err)
	}
	k()
	must(o.key(ctx, 0))()
	c1 := must(take("kms", "c", 0))
	busy("kms", "d") // the store's four
	busy("kms", "b") // its share has room, the store none
	c1()
	b2 := must(take("kms", "b", 0)) // its share's slot was given back
	must(take("pkcs11", "d", 0))()  // another store's are its own
	waited := make(chan error, 1)
	go func() {
		release, err := o.store(ctx, "kms", "d", time.Minute)
		if err == nil {
			release()
		}
		waited <- err
	}()
	a1()
	a1() // once
	if err := <-waited; err != nil {
		t.Errorf("a signing waiting for a slot given back: %v", err)
	}
	a1 = must(take("kms", "a", 0))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := o.store(cancelled, "kms", "e", time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("a wait whose request ended: %v", err)
	}
	for _, release := range []func(){a1, a2, b1, b2, p} {
		release()
	}
	if len(o.shares) != 0 || len(o.stores["kms"]) != 0 || len(o.processors) != 0 {
		t.Errorf("with no signing under way, %d CAs' shares kept, %d of the store's slots and %d of the processors' taken", len(o.shares), len(o.stores["kms"]), len(o.processors))
	}
}
