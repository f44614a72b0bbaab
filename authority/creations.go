package authority

import (
	"context"
	"runtime"
	"sync"

	"github.com/openpca/openpca"
)

// Bounds of one account's CA creations on a server. Each makes a key
// (seconds of CPU for RSA-4096): 32 at once from one account took the CPU
// from every other account's requests. Two run at once; others wait their
// turn, as many as creationsWaiting, and past that are
// ThrottlingException, which the SDKs retry (AWS throttles
// CreateCertificateAuthority too).
const (
	creationsRunning = 2
	creationsWaiting = 8
)

// The creations of all accounts under way or waiting on a server are at
// most creationsPerSlot per key making it runs at once, and never fewer
// than creationsAccounts accounts' own bounds, so that one account, or
// three, cannot throttle all others. Many accounts, each within its own
// bound, could otherwise queue creations for longer than a request may
// last: they would wait out their requests' time (110 s) and fail late,
// their keys' CPU spent for nothing, where a throttled client retries
// later. An RSA-4096 key took 0.4 to 2.3 s of a CPU here, 1.25 s on
// average (measured with the machine busy), so the last of 40 creations
// waits about 25 s on two CPUs, 50 s on one.
const (
	creationsPerSlot  = 8
	creationsAccounts = 4
)

// serverBound is how many creations of all accounts may be under way or
// waiting at once.
func (cr *creations) serverBound() int {
	return max(creationsPerSlot*cap(cr.slots), creationsAccounts*(creationsRunning+creationsWaiting))
}

// creations counts, per account, the CA creations waiting or making
// their keys, which count toward the account's limit until their keys are
// made (then the store counts them), so that requests at once make no key
// past it; and it shares out the server's key making, as many at once as
// it has CPUs.
type creations struct {
	mu       sync.Mutex
	accounts map[string]*accountCreations
	reserved int // of all accounts
	slots    chan struct{}
	// tokens are the idempotency tokens of creations under way, by
	// account and token: closed when the creation ends.
	tokens map[[2]string]chan struct{}
}

type accountCreations struct {
	reserved int           // under way or waiting
	running  chan struct{} // of creationsRunning
}

// cpus is how many of the server's processors run at once: its CPUs, or
// fewer Ps (a CPU quota's). On SQLite the server runs two Ps more than its
// CPUs (for the system calls that block them), which do not run more at
// once: bounds of a share of the processors are of its CPUs.
func cpus() int { return min(runtime.GOMAXPROCS(0), runtime.NumCPU()) }

func newCreations() *creations {
	return &creations{accounts: map[string]*accountCreations{}, slots: make(chan struct{}, cpus()), tokens: map[[2]string]chan struct{}{}}
}

// join has a creation with an idempotency token wait for one of the same
// account and token under way on this server to end (then waited is
// true, and the caller looks for the CA it made); else it registers this
// one, until end. A retry of a creation still making its key would
// otherwise find no CA of its token, and the first's reservation in the
// way of the account's limit.
func (cr *creations) join(ctx context.Context, account, token string) (end func(), waited bool, err error) {
	key := [2]string{account, token}
	cr.mu.Lock()
	running, ok := cr.tokens[key]
	if !ok {
		running = make(chan struct{})
		cr.tokens[key] = running
	}
	cr.mu.Unlock()
	if !ok {
		return func() {
			cr.mu.Lock()
			delete(cr.tokens, key)
			cr.mu.Unlock()
			close(running)
		}, false, nil
	}
	select {
	case <-running:
		return nil, true, nil
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// start reserves a creation for account, which has stored CAs of its
// limit max, and waits for its turn to make its key. The returned done
// gives the turn and the reservation back. A key made with the server's
// processors (local) waits for one of them too; one made elsewhere (KMS)
// does not, since a creation waiting on a slow or throttling KMS would
// hold it from every other account's creations meanwhile.
func (cr *creations) start(ctx context.Context, account string, stored, max int, local bool) (done func(), err error) {
	cr.mu.Lock()
	a := cr.accounts[account]
	if a == nil {
		a = &accountCreations{running: make(chan struct{}, creationsRunning)}
		cr.accounts[account] = a
	}
	switch {
	case stored+a.reserved >= max:
		err = limitExceeded(account, max)
	case a.reserved >= creationsRunning+creationsWaiting:
		err = openpca.Errorf(openpca.CodeThrottling, "Rate exceeded: account %s has %d certificate authorities being created on this server; retry once they are made.", account, a.reserved)
	case cr.reserved >= cr.serverBound():
		err = openpca.Errorf(openpca.CodeThrottling, "Rate exceeded: this server has %d certificate authorities being created; retry later.", cr.reserved)
	default:
		a.reserved++
		cr.reserved++
	}
	if a.reserved == 0 {
		delete(cr.accounts, account)
	}
	cr.mu.Unlock()
	if err != nil {
		return nil, err
	}
	release := func() {
		cr.mu.Lock()
		defer cr.mu.Unlock()
		cr.reserved--
		if a.reserved--; a.reserved == 0 {
			delete(cr.accounts, account)
		}
	}
	select {
	case a.running <- struct{}{}:
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
	if !local {
		return func() {
			<-a.running
			release()
		}, nil
	}
	select {
	case cr.slots <- struct{}{}:
	case <-ctx.Done():
		<-a.running
		release()
		return nil, ctx.Err()
	}
	return func() {
		<-cr.slots
		<-a.running
		release()
	}, nil
}
