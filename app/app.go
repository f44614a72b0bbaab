// Package app wires OpenPCA together: it opens the store and the master
// key, builds the service and the HTTP server, and closes them in order.
// The openpca command and the tests both start servers through it.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/openpca/openpca/authority"
	"github.com/openpca/openpca/awsjson"
	"github.com/openpca/openpca/seal"
	"github.com/openpca/openpca/server"
	"github.com/openpca/openpca/sqlite"
)

// Config is how a server is set up. Zero values take the defaults below.
type Config struct {
	DataDir   string
	Region    string
	AccountID string
	// MasterKey is the base64 master key; if empty, the key is read from
	// MasterKeyFile, which is created on first start.
	MasterKey     string
	MasterKeyFile string
	// MaxCAsPerAccount bounds the CAs of one account.
	MaxCAsPerAccount int
	Logger           *slog.Logger
	// Now overrides the clock, for tests.
	Now func() time.Time
}

// Defaults.
const (
	DefaultDataDir   = "openpca-data"
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "111122223333"
	DefaultListen    = "127.0.0.1:8080"
)

// App is a running OpenPCA.
type App struct {
	server *server.Server
	store  *sqlite.DB
	logger *slog.Logger
	now    func() time.Time

	stopJanitor context.CancelFunc
	janitorDone chan struct{}
}

// janitorInterval is how often deleted CAs past their restoration period
// are purged. Until then the service already treats them as gone.
const janitorInterval = time.Minute

// Open prepares an App: it creates the data folder, opens the database and
// applies its migrations, and loads (or creates) the master key.
func Open(ctx context.Context, cfg Config) (*App, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.AccountID == "" {
		cfg.AccountID = DefaultAccountID
	}
	if cfg.MasterKeyFile == "" {
		cfg.MasterKeyFile = filepath.Join(cfg.DataDir, "master.key")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	logger := cfg.Logger
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data folder: %w", err)
	}
	sealer, err := openSealer(cfg, logger)
	if err != nil {
		return nil, err
	}
	store, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "openpca.db"))
	if err != nil {
		return nil, err
	}
	svc := authority.New(authority.Config{
		Store: store, Sealer: sealer, Logger: logger, Region: cfg.Region,
		Now: cfg.Now, MaxCAsPerAccount: cfg.MaxCAsPerAccount,
	})
	srv := server.New(server.Config{
		Service:       svc,
		Store:         store,
		Authenticator: awsjson.StaticAuthenticator{AccountID: cfg.AccountID, Principal: "account:" + cfg.AccountID},
		Logger:        logger,
	})
	a := &App{server: srv, store: store, logger: logger, now: cfg.Now, janitorDone: make(chan struct{})}
	if a.now == nil {
		a.now = time.Now
	}
	a.purge(ctx)
	jctx, cancel := context.WithCancel(context.Background())
	a.stopJanitor = cancel
	go a.janitor(jctx)
	return a, nil
}

// janitor purges CAs deleted for good every janitorInterval, until ctx ends.
func (a *App) janitor(ctx context.Context) {
	defer close(a.janitorDone)
	t := time.NewTicker(janitorInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.purge(ctx)
		}
	}
}

func (a *App) purge(ctx context.Context) {
	n, err := a.store.PurgeCAs(ctx, a.now())
	if err != nil && ctx.Err() == nil {
		a.logger.Error("purging deleted certificate authorities", "error", err)
	} else if n > 0 {
		a.logger.Info("purged certificate authorities past their restoration period", "count", n)
	}
}

func openSealer(cfg Config, logger *slog.Logger) (*seal.Sealer, error) {
	if cfg.MasterKey != "" {
		key, err := seal.ParseKey(cfg.MasterKey)
		if err != nil {
			return nil, err
		}
		return seal.New(key)
	}
	key, created, err := seal.LoadOrCreateKeyFile(cfg.MasterKeyFile)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	if created {
		logger.Warn("created a new master key; back it up: without it no CA private key can be opened", "path", cfg.MasterKeyFile)
	}
	return seal.New(key)
}

// Serve answers requests on l until Shutdown.
func (a *App) Serve(l net.Listener) error {
	a.logger.Info("serving the AWS Private CA API", "address", l.Addr().String())
	return a.server.Serve(l)
}

// Shutdown lets requests in flight finish (until ctx ends) and then closes
// the database.
func (a *App) Shutdown(ctx context.Context) error {
	err := a.server.Shutdown(ctx)
	return errors.Join(err, a.Close())
}

// Close stops the background work and closes the database; Shutdown calls
// it after the requests in flight have finished.
func (a *App) Close() error {
	a.stopJanitor()
	<-a.janitorDone
	return a.store.Close()
}
