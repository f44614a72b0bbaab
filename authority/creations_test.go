package authority

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/openpca/openpca"
)

// TestCreations: an account's creations run two at once, the others
// wait, and past the waiting bound are throttled; those under way or
// waiting count toward the limit; another account's run meanwhile.
func TestCreations(t *testing.T) {
	cr := newCreations()
	cr.slots = make(chan struct{}, 4)
	ctx := t.Context()
	var dones []func()
	for range creationsRunning {
		done, err := cr.start(ctx, "a", 0, 100, true)
		if err != nil {
			t.Fatal(err)
		}
		dones = append(dones, done)
	}
	// A third waits, until its request ends.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := cr.start(short, "a", 0, 100, true); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a third creation at once: %v; want it to wait", err)
	}
	// Or until one of the two is done.
	started := make(chan func())
	go func() {
		done, err := cr.start(ctx, "a", 0, 100, true)
		if err != nil {
			t.Error(err)
		}
		started <- done
	}()
	select {
	case <-started:
		t.Fatal("a third creation started beside two")
	case <-time.After(50 * time.Millisecond):
	}
	other, err := cr.start(ctx, "b", 0, 100, true)
	if err != nil {
		t.Fatalf("another account's creation: %v", err)
	}
	other()
	dones[0]()
	dones[0] = <-started
	// Reserved ones count toward the limit.
	if _, err := cr.start(ctx, "a", 8, 10, true); openpca.ErrorCode(err) != openpca.CodeLimitExceeded {
		t.Errorf("a creation with 8 stored and 2 under way, of 10: %v; want the limit", err)
	}
	// Past the waiting bound: throttled.
	waiting, cancelWaiting := context.WithCancel(ctx)
	errs := make(chan error, creationsWaiting)
	for range creationsWaiting {
		go func() {
			_, err := cr.start(waiting, "a", 0, 100, true)
			errs <- err
		}()
	}
	for reserved := 0; reserved < creationsRunning+creationsWaiting; time.Sleep(time.Millisecond) {
		cr.mu.Lock()
		reserved = cr.accounts["a"].reserved
		cr.mu.Unlock()
	}
	if _, err := cr.start(ctx, "a", 0, 100, true); openpca.ErrorCode(err) != openpca.CodeThrottling {
		t.Fatalf("a creation past %d waiting: %v; want it throttled", creationsWaiting, err)
	}
	cancelWaiting()
	for range creationsWaiting {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("a waiting creation: %v", err)
		}
	}
	for _, done := range dones {
		done()
	}
	if len(cr.accounts) != 0 || len(cr.slots) != 0 {
		t.Errorf("left after every creation ended: %d accounts, %d slots", len(cr.accounts), len(cr.slots))
	}
}

// TestCreationsServerBound: past the server's bound of creations of all
// accounts, under way or waiting, another account's creation is
// throttled, though its own bound has room; one ending makes room. No one
// account can reach the server's bound alone.
func TestCreationsServerBound(t *testing.T) {
	cr := newCreations()
	cr.slots = make(chan struct{}, 1)
	ctx := t.Context()
	bound := cr.serverBound()
	if perAccount := creationsRunning + creationsWaiting; bound < 2*perAccount {
		t.Fatalf("the server's bound, %d, is within two accounts' own, of %d", bound, perAccount)
	}
	first, err := cr.start(ctx, "a0", 0, 100, true)
	if err != nil {
		t.Fatal(err)
	}
	defer first()
	// The others wait for the one slot, each until its context ends; as
	// many accounts as it takes, each to its own bound.
	cancels := make([]context.CancelFunc, bound)
	errs := make([]chan error, bound)
	for i := 1; i < bound; i++ {
		waiting, cancel := context.WithCancel(ctx)
		cancels[i], errs[i] = cancel, make(chan error, 1)
		go func() {
			_, err := cr.start(waiting, fmt.Sprintf("a%d", i/(creationsRunning+creationsWaiting)), 0, 100, true)
			errs[i] <- err
		}()
	}
	defer func() {
		for i := 1; i < bound; i++ {
			if cancels[i] != nil {
				cancels[i]()
				<-errs[i]
			}
		}
	}()
	for reserved := 0; reserved < bound; time.Sleep(time.Millisecond) {
		cr.mu.Lock()
		reserved = cr.reserved
		cr.mu.Unlock()
	}
	bounded, cancelBounded := context.WithTimeout(ctx, 5*time.Second) // not to wait for ever if let through
	defer cancelBounded()
	if _, err := cr.start(bounded, "other", 0, 100, true); openpca.ErrorCode(err) != openpca.CodeThrottling {
		t.Fatalf("an account's first creation past %d on the server: %v; want it throttled", bound, err)
	}
	last := bound - 1
	cancels[last]()
	if err := <-errs[last]; !errors.Is(err, context.Canceled) {
		t.Fatalf("a waiting creation whose request ended: %v", err)
	}
	cancels[last] = nil
	// It waits its turn, until its request ends.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := cr.start(short, "other", 0, 100, true); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a creation once one ended: %v; want it to wait", err)
	}
}

// TestCPUs: the bounds of a share of the processors (key creations, OCSP
// signers) are of the CPUs, not of the Ps: on SQLite the server runs two
// more Ps than CPUs, and half of them was every CPU of a 2-CPU machine.
func TestCPUs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	n := runtime.NumCPU()
	for _, tc := range []struct{ procs, want int }{{n + 2, n}, {n, n}, {1, 1}} {
		runtime.GOMAXPROCS(tc.procs)
		if got := cpus(); got != tc.want {
			t.Errorf("GOMAXPROCS %d on %d CPUs: %d, want %d", tc.procs, n, got, tc.want)
		}
		if got := cap(newCreations().slots); got != tc.want {
			t.Errorf("GOMAXPROCS %d on %d CPUs: %d key creations at once, want %d", tc.procs, n, got, tc.want)
		}
	}
}
