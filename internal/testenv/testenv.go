// Package testenv starts real OpenPCA servers for tests: a SQLite file in a
// temporary folder, an HTTP listener on 127.0.0.1, and the AWS SDK's acmpca
// client pointed at it.
package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	_ "modernc.org/sqlite" // for DB

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/auth"
	"github.com/openpca/openpca/authority"
)

// Env is a running server and a client for it.
type Env struct {
	URL       string
	Client    *acmpca.Client
	Clock     *Clock
	Config    app.Config
	app       *app.App
	served    chan error
	transport *http.Transport
}

// Option changes the configuration of a server before it starts.
type Option func(*app.Config)

// Start starts a server with a fresh data folder and stops it when the test
// ends.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	clock := &Clock{now: time.Now().UTC()}
	cfg := app.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Now = clock.Now
	cfg.RootAccessKeyID, cfg.RootSecretAccessKey = AccessKeyID, SecretAccessKey
	cfg.Stdout = io.Discard
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.Database == "" {
		seedDatabase(t, cfg.DataDir)
	}
	e := &Env{Clock: clock, Config: cfg}
	e.start(t)
	t.Cleanup(func() { e.Stop(t) })
	return e
}

func (e *Env) start(t testing.TB) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.URL = "http://" + l.Addr().String()
	if e.Config.TLSSelfSigned {
		e.URL = "https://" + l.Addr().String()
	}
	// The server says where it is in the certificates it issues, unless
	// the test gives where a proxy in front of it would be.
	cfg := e.Config
	if cfg.PublicURL == "" {
		cfg.PublicURL = e.URL
	}
	a, err := app.Open(context.Background(), cfg)
	if err != nil {
		l.Close()
		t.Fatalf("starting server: %v", err)
	}
	e.app, e.served = a, make(chan error, 1)
	go func() { e.served <- a.Serve(l) }()
	e.transport = newTransport()
	if e.Config.TLSSelfSigned {
		e.transport.TLSClientConfig = &tls.Config{RootCAs: e.waitTLSCA(t)}
	}
	e.Client = NewClient(e.URL, e.transport)
}

// waitTLSCA waits for the server to write its TLS CA bundle, and returns
// a pool that trusts it.
func (e *Env) waitTLSCA(t testing.TB) *x509.CertPool {
	t.Helper()
	path := filepath.Join(e.Config.DataDir, "tls", "ca.pem")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			pool := x509.NewCertPool()
			if pool.AppendCertsFromPEM(b) {
				return pool
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server wrote no TLS CA bundle at %s", path)
		}
	}
}

// Transport is the HTTP transport of the Env's client, for other clients
// of the same server.
func (e *Env) Transport() *http.Transport { return e.transport }

// NewAccount creates an account and an access key for it, as an operator
// would with openpca accounts create and openpca keys create, and returns
// a client that signs with the key.
func (e *Env) NewAccount(t testing.TB, accountID string) (*acmpca.Client, string) {
	t.Helper()
	a, err := app.OpenAdmin(context.Background(), e.Config)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Store.CreateAccount(context.Background(), &openpca.Account{ID: accountID, CreatedAt: time.Now()})
	a.Close()
	if err != nil {
		t.Fatal(err)
	}
	return e.NewKey(t, accountID)
}

// NewReadOnlyKey creates an access key of an existing account with the
// managed ReadOnly policy, as openpca keys create --read-only does, and
// returns a client that signs with it.
func (e *Env) NewReadOnlyKey(t testing.TB, accountID string) (*acmpca.Client, string) {
	t.Helper()
	return e.NewKey(t, accountID, openpca.KeyPolicy{Name: "ReadOnly", Managed: true})
}

// NewKey creates an access key of an existing account with policies (none:
// full access to the account), as openpca keys create does, and returns a
// client that signs with it.
func (e *Env) NewKey(t testing.TB, accountID string, policies ...openpca.KeyPolicy) (*acmpca.Client, string) {
	t.Helper()
	a, err := app.OpenAdmin(context.Background(), e.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	key, secret, err := auth.NewAccessKey(a.Sealer, accountID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key.Policies = policies
	if err := a.Store.PutAccessKey(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	return NewClientWith(e.URL, e.transport, key.ID, secret), key.ID
}

// Stop shuts the server down gracefully; it is safe to call twice.
func (e *Env) Stop(t testing.TB) {
	t.Helper()
	if e.app == nil {
		return
	}
	// A connection the client opened but never used would hold up the
	// server's shutdown for five seconds: close them first.
	e.transport.CloseIdleConnections()
	// A request in flight is waited for: an RSA-4096 key's generation,
	// which tests use to hold one, took 2 s under the race detector here
	// and has a long tail.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.app.Shutdown(ctx); err != nil {
		t.Errorf("shutting down: %v", err)
	}
	if err := <-e.served; err != nil {
		t.Errorf("serving: %v", err)
	}
	e.app = nil
}

// ServeRevocation serves the OCSP responder and local CRLs on l, in plain
// HTTP, as --revocation-listen does, until the server stops.
func (e *Env) ServeRevocation(t testing.TB, l net.Listener) {
	t.Helper()
	a := e.app
	done := make(chan error, 1)
	go func() { done <- a.ServeRevocation(l) }()
	t.Cleanup(func() {
		e.Stop(t)
		if err := <-done; err != nil {
			t.Errorf("serving revocation: %v", err)
		}
	})
}

// Restart stops the server and starts it again on the same data folder.
func (e *Env) Restart(t testing.TB) {
	t.Helper()
	e.Stop(t)
	e.start(t)
}

// Service is the running server's service, for tests that look inside it.
func (e *Env) Service() *authority.Service { return e.app.Service() }

// KeyStoresClosed is closed once the running server's key stores have
// closed (app.App.KeyStoresClosed), after it stops.
func (e *Env) KeyStoresClosed() <-chan struct{} { return e.app.KeyStoresClosed() }

// DB opens the server's SQLite database directly, as someone with the
// data folder in hand would. Beside a running server, a write waits for
// the server's writer to let go (a busy timeout) rather than fail.
func (e *Env) DB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.Config.DataDir, "openpca.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The default account's access key in test servers.
const (
	AccessKeyID     = "AKIDEXAMPLE"
	SecretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// NewClient returns an acmpca client for the server at url, signing with
// the default account's key. It does not retry what the server answers, so
// that a test sees each error as the server sent it; it retries only a
// request whose connection broke, as the SDK's default retryer does (a
// reset can reach the client as "use of closed network connection",
// aws/aws-sdk-go-v2#2737).
func NewClient(url string, transport *http.Transport) *acmpca.Client {
	return NewClientWith(url, transport, AccessKeyID, SecretAccessKey)
}

// NewClientWith returns an acmpca client that signs with the given key.
func NewClientWith(url string, transport *http.Transport, keyID, secret string) *acmpca.Client {
	return acmpca.New(acmpca.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Retryables = []retry.IsErrorRetryable{retry.RetryableConnectionError{}}
			o.RateLimiter = ratelimit.None
		}),
		HTTPClient: &http.Client{Timeout: time.Minute, Transport: transport},
	})
}

// newTransport keeps enough idle connections for concurrent tests and
// benchmarks, so that they do not open a connection per request.
func newTransport() *http.Transport {
	return &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
}

// Clock is a clock a test can move forward.
type Clock struct {
	mu       sync.Mutex
	now      time.Time
	advanced time.Duration // by Advance, in all
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// CatchUp moves the clock forward to the time of day, plus what Advance
// added, if it is behind: time passes for a server as a test waits for it
// (for the second after its last CRL's, say), and runs ahead of relying
// parties' clocks no further than the test moved it.
func (c *Clock) CatchUp() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now().UTC().Add(c.advanced); now.After(c.now) {
		c.now = now
	}
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.advanced += d
}
