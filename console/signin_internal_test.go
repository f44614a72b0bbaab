package console

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auth"
	"github.com/openpca/openpca/seal"
	"github.com/openpca/openpca/sigv4"
	"github.com/openpca/openpca/sqlite"
	"github.com/openpca/openpca/sqlstore"
)

// signInConsole is a console on a real SQLite store that holds an access
// key of an account, and a sign-in to it from addr, answered with its
// status code.
type signInConsole struct {
	*Console
	db     *sqlstore.DB
	sealer *seal.Sealer
	logs   bytes.Buffer // the handler runs in the test's goroutine
}

func newSignInConsole(t *testing.T, now *time.Time) (c *signInConsole, keyID, secret string) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "openpca.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sealer, err := seal.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAccount(ctx, &openpca.Account{ID: "111122223333", CreatedAt: *now}); err != nil {
		t.Fatal(err)
	}
	c = &signInConsole{db: db, sealer: sealer}
	keyID, secret = c.newKey(t, sealer, *now)
	c.Console, err = New(Config{Store: db, Auth: &auth.Authenticator{Verifier: &sigv4.Verifier{Keys: auth.Keys{Store: db, Sealer: sealer}}, Store: db},
		Logger: slog.New(slog.NewTextHandler(&c.logs, nil)), Now: func() time.Time { return *now }, SessionKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	return c, keyID, secret
}

// newKey stores a new key of the account, its secret sealed by sealer.
func (c *signInConsole) newKey(t *testing.T, sealer *seal.Sealer, now time.Time) (id, secret string) {
	key, secret, err := auth.NewAccessKey(sealer, "111122223333", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.db.PutAccessKey(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	return key.ID, secret
}

func (c *signInConsole) signIn(addr, keyID, secret string) int {
	r := httptest.NewRequest("POST", "/console/sign-in", strings.NewReader(url.Values{"access_key_id": {keyID}, "secret_access_key": {secret}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = addr + ":40000"
	w := httptest.NewRecorder()
	c.Console.signIn(w, r)
	return w.Code
}

// TestSignInKnownNetwork: with the server's bound of sign-ins spent (a
// flood from many networks), a network from which a key signed in within
// signInKnownFor still gets its sign-ins, within its own bound; another
// network, or the same once that time is past, does not, nor one from
// which a sign-in was only tried, with a wrong secret.
func TestSignInKnownNetwork(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	c, keyID, secret := newSignInConsole(t, &now)
	signIn := func(addr, secret string) int { return c.signIn(addr, keyID, secret) }
	if code := signIn("192.0.2.1", secret); code != http.StatusSeeOther {
		t.Fatalf("signing in: %d", code)
	}
	if code := signIn("203.0.113.1", "not the secret"); code != http.StatusUnauthorized {
		t.Fatalf("signing in with a wrong secret: %d", code)
	}
	from := func(addr string) bool {
		r := httptest.NewRequest("POST", "/console/sign-in", nil)
		r.RemoteAddr = addr + ":40000"
		return c.allowSignIn(r)
	}
	// The server's bound spent, and kept so: drained, it refilled by one
	// every 5 ms, and a loaded machine's pause between the drain and a
	// case let a sign-in through (CI failed so once).
	c.signIns = rate.NewLimiter(0, 0)
	for _, tc := range []struct {
		addr  string
		after time.Duration
		want  bool
	}{
		{"198.51.100.7", 0, false}, // a network of no sign-in
		{"203.0.113.2", 0, false},  // a network of a wrong secret
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

// TestSignInKeySealedElsewhere: a key whose secret this server cannot
// open (sealed under a master key it does not hold) is answered as a
// wrong secret, as an unknown key is, and not as a failure, which would
// tell that the key exists; the log says why.
func TestSignInKeySealedElsewhere(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	c, _, _ := newSignInConsole(t, &now)
	other, err := seal.New(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealedElsewhere, secret := c.newKey(t, other, now)
	for _, tc := range []struct{ name, keyID string }{
		{"an unknown key", "OPCAAAAAAAAAAAAAAAAA"},
		{"a key sealed elsewhere", sealedElsewhere},
	} {
		if code := c.signIn("192.0.2.1", tc.keyID, secret); code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", tc.name, code)
		}
	}
	if !strings.Contains(c.logs.String(), "does not open with this server's master key") {
		t.Errorf("nothing logged of the key sealed elsewhere:\n%s", c.logs.String())
	}
}
