package console

import (
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"
)

// TestSignInKnownNetwork: with the server's bound of sign-ins spent (a
// flood from many networks), a network from which a key signed in within
// signInKnownFor still gets its sign-ins, within its own bound; another
// network, or the same once that time is past, does not.
func TestSignInKnownNetwork(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	c, err := New(Config{Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	from := func(addr string) bool {
		r := httptest.NewRequest("POST", "/console/sign-in", nil)
		r.RemoteAddr = addr + ":40000"
		return c.allowSignIn(r)
	}
	c.noteSignIn(httptest.NewRequest("POST", "/console/sign-in", nil), now) // httptest's 192.0.2.1
	for c.signIns.Allow() {
	}
	for _, tc := range []struct {
		addr  string
		after time.Duration
		want  bool
	}{
		{"198.51.100.7", 0, false}, // a network of no sign-in
		{"192.0.2.77", 0, true},    // another address of the known network
		{"192.0.2.78", signInKnownFor - time.Second, true},
		{"192.0.2.79", signInKnownFor, false}, // no longer known
	} {
		now = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC).Add(tc.after)
		if got := from(tc.addr); got != tc.want {
			t.Errorf("a sign-in from %s, %v after a key's from 192.0.2.1, with the server's bound spent: allowed %v, want %v", tc.addr, tc.after, got, tc.want)
		}
	}
	// Its own network's bound still holds.
	now = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	allowed := 0
	for i := range 200 {
		if from(fmt.Sprintf("192.0.2.%d", 100+i%10)) {
			allowed++
		}
	}
	if allowed > signInNetBurst {
		t.Errorf("%d of 200 sign-ins from the known network allowed at once, more than its bound of %d", allowed, signInNetBurst)
	}
}
