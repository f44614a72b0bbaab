// Package app wires OpenPCA together: it opens the store, the object store,
// the master key and the key stores, builds the service, the background
// workers (audit reports, CRLs, the janitor) and the HTTP server, and stops
// them in order. The openpca command and the tests both start servers
// through it.
package app

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/audit"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/auth"
	"github.com/openpca/openpca/authority"
	"github.com/openpca/openpca/awsjson"
	"github.com/openpca/openpca/connlimit"
	"github.com/openpca/openpca/console"
	"github.com/openpca/openpca/crl"
	"github.com/openpca/openpca/localfs"
	"github.com/openpca/openpca/pkcs11"
	"github.com/openpca/openpca/postgres"
	"github.com/openpca/openpca/s3"
	"github.com/openpca/openpca/seal"
	"github.com/openpca/openpca/server"
	"github.com/openpca/openpca/sigv4"
	"github.com/openpca/openpca/sqlite"
	"github.com/openpca/openpca/sqlstore"
	"github.com/openpca/openpca/tlshello"
	"github.com/openpca/openpca/witnessing"
)

// App is a running OpenPCA.
type App struct {
	cfg    Config
	sealer *seal.Sealer
	// masterKey is the master key's fingerprint (seal.Fingerprint), which
	// the server logs: a rolling rotation's sessions are named by it.
	masterKey string
	keyStores []authority.KeyStore
	closeKeys func() error // of the stores that hold sessions
	token     *pkcs11.Store
	server    *server.Server
	store     *sqlstore.DB
	objects   openpca.ObjectStore
	logger    *slog.Logger
	now       func() time.Time
	lock      *os.File // the data folder's lock, held while the App runs

	// keysClosed is closed once closeKeys has returned, which Close may
	// give up waiting for.
	keysClosed chan struct{}

	service    *authority.Service
	reports    *audit.Generator
	crls       *crl.Publisher
	witnessing *witnessing.Witnessing // nil without witnesses
	stop       context.CancelFunc     // stops the janitor
	superseded chan error             // see Superseded
	background sync.WaitGroup
	destroying atomic.Bool // a round of purged CAs' keys is being destroyed

	tlsMu   sync.Mutex // held while the TLS certificate is loaded
	tlsAddr net.Addr   // the address served over TLS; nil for plain HTTP
	tlsCert atomic.Pointer[tls.Certificate]
	// renewFailed is when the janitor last failed to issue the
	// self-signed TLS certificate again (see renewSelfSigned).
	renewFailed time.Time

	// clockOffset is how far the database's clock was ahead of this
	// server's at the last look, in nanoseconds, and clockOff whether that
	// was beyond clockTolerance (see checkClock).
	clockOffset atomic.Int64
	clockOff    bool
}

// DefaultReportWitnessWait is how long an audit report waits for
// witnesses to cosign a checkpoint of its log, when the server has
// witnesses: a few of their rounds (see witnessing.Interval and Retry).
const DefaultReportWitnessWait = 30 * time.Second

// janitorInterval is how often deleted CAs past their restoration period
// are purged. Until then the service already treats them as gone.
const janitorInterval = time.Minute

// startTokens is how many idempotency tokens past their window a server
// removes as it starts (about 70 ms on SQLite).
const startTokens = 10_000

// schemaInterval is how often a server looks whether a later version
// has migrated its database.
const schemaInterval = 5 * time.Second

// clockTolerance is how far this server's clock may be off the
// database's before the server warns: well within the shortest lease
// (the audit reports' 15 s, renewed every 5 s), far beyond what NTP
// leaves.
const clockTolerance = time.Second

// Open prepares an App: it locks the data folder, opens the database and
// applies its migrations, loads (or creates) the master key, and starts
// the background work: the janitor, the audit report generator and the CRL
// publisher.
func Open(ctx context.Context, cfg Config) (*App, error) {
	// Servers sharing a database would each keep a local bucket of their
	// own: each would publish CRLs, and serve them at the same address,
	// different ones. A server alone on the database says so. (Operator
	// commands on the database write no bucket.)
	if cfg.Database != "" && cfg.ObjectStore == "" && cfg.S3Endpoint == "" {
		return nil, fmt.Errorf("--database shares the store between servers, and each would keep CRLs and audit reports in its own data folder: give --s3-endpoint, or --object-store local for a server alone on the database")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data folder: %w", err)
	}
	if err := checkDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if plainToOthers(cfg) {
		logger.Warn("serving plain HTTP beyond this machine: the console's sign-in form carries a secret access key, and its session cookie, in the clear; serve TLS (--tls-cert, --tls-self-signed), or end it at a proxy and say so with an https:// --public-url",
			"listen", cfg.Listen)
	}
	if u, err := url.Parse(cfg.RevocationURL); err == nil {
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsUnspecified() {
			logger.Warn("the URL relying parties fetch revocation from names no address that they can reach, and certificates carry it (the OCSP responder, local CRLs): give --public-url, or --revocation-url",
				"revocation_url", cfg.RevocationURL)
		}
		if u.Scheme == "https" {
			logger.Warn("certificates will name the OCSP responder and local CRLs over HTTPS, which relying parties fetch over HTTP (RFC 5280, RFC 6960): NSS and GnuTLS fetch no OCSP answer over HTTPS, and take a revoked certificate for good; serve them in plain HTTP as well (--revocation-listen)",
				"revocation_url", cfg.RevocationURL)
		}
	}
	if why := audit.SplitView(cfg.WitnessQuorum, len(cfg.witnesses)); why != "" {
		logger.Warn("--witness-quorum is half the witnesses or fewer: a checkpoint counts as witnessed when another history of the log could too; give a quorum of more than half, as auditors should require",
			"why", why)
	}
	if fi, err := os.Stat(cfg.DataDir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		logger.Warn("the data folder can be read by users other than its owner; the files the server makes in it are its owner's alone, but make the folder 0700 (chmod 700)",
			"path", cfg.DataDir, "mode", fi.Mode().Perm().String())
	}
	a := &App{cfg: cfg, logger: logger, now: cfg.Now, superseded: make(chan error, 1), keysClosed: make(chan struct{})}
	if a.now == nil {
		a.now = time.Now
	}
	var err error
	if a.lock, err = lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	a.closeKeys = func() error { return nil }
	fail := func(err error) (*App, error) {
		if a.store != nil {
			a.store.Close()
		}
		a.closeKeys()
		a.lock.Close()
		return nil, err
	}
	if err := removeSealTemporaries(cfg.DataDir, filepath.Join(cfg.DataDir, "tls"), filepath.Dir(cfg.MasterKeyFile)); err != nil {
		return fail(err)
	}
	if err := refuseCutRestore(cfg); err != nil {
		return fail(err)
	}
	if a.objects, err = openObjectStore(ctx, cfg, logger); err != nil {
		return fail(err)
	}
	nodeID, err := readOrCreate(filepath.Join(cfg.DataDir, "node-id"), uuid.NewString)
	if err != nil {
		return fail(err)
	}
	// The jobs this server holds (reports, CRLs, witnessing) are held by
	// its start: the data folder's node id, which says which server it is,
	// and a part of this start's own. A server takes back at once jobs
	// its owner name holds, and a node id is copied with a data folder (an
	// image, a snapshot): two servers of one id both wrote the same report.
	// A server restarted takes its jobs back when their leases end, as
	// another would.
	owner := nodeID + "/" + uuid.NewString()[:8]
	// The database is migrated once what could refuse the start (the
	// master key, the key stores, the TLS files, the audit key, the
	// default account and the region) is
	// checked: a server of an earlier version may still run on it, and a
	// start refused would have left it a schema that version misreads. A
	// new database has none to keep; and a rotation to finish (which seals
	// again) is finished on the schema this version knows.
	files := &keyFiles{ctx: ctx, cfg: cfg}
	keys, made, err := readMasterKeys(files, true, logger)
	if err != nil {
		return fail(err)
	}
	cfg.session = keySession(cfg, keys)
	bind, err := keys.binder(files)
	if err != nil {
		return fail(err)
	}
	a.store, err = openStore(ctx, cfg, sqlstore.AsIs, bind)
	migrated := errors.Is(err, sqlstore.ErrNoSchema)
	if migrated || err == nil && rotationLeft(cfg) {
		if a.store != nil {
			a.store.Close()
		}
		a.store, err = openStore(ctx, cfg, sqlstore.Migrate, bind)
		migrated = true
	}
	if err != nil {
		return fail(err)
	}
	// Read before anything is written (a rotation finished, the schema
	// migrated, under a restore's feet), and again once migrated.
	if err := a.refuseRestoring(ctx); err != nil {
		return fail(err)
	}
	if keys, err = loadMasterKeys(ctx, files, a.store, keys, made, logger); err != nil {
		return fail(err)
	}
	if a.sealer, err = keys.sealer(); err != nil {
		return fail(err)
	}
	a.masterKey = seal.Fingerprint(keys.current)
	a.store.SealsWith(a.masterKey)
	if err := a.openKeyStores(ctx); err != nil {
		return fail(err)
	}
	if err := a.checkTLS(); err != nil {
		return fail(err)
	}
	// The audit key's setting is older than any schema a server upgrades
	// from; its key may be in a token that lacks it.
	auditKey, verifierKey, err := auditlog.LoadKey(ctx, a.store, a.auditKeys())
	if err != nil {
		return fail(err)
	}
	// Before the schema is migrated (a server refused leaves it to the
	// servers of an earlier version), and before the default account gets
	// a root key or anything is published.
	if cfg.AccountID, cfg.Region, err = identity(ctx, a.store, cfg.AccountID, cfg.Region); err != nil {
		return fail(err)
	}
	a.cfg.AccountID, a.cfg.Region = cfg.AccountID, cfg.Region
	if !migrated {
		if err := a.migrate(ctx); err != nil {
			return fail(err)
		}
	}
	// Read once migrated too, which waits for a restore's settling to end.
	if err := a.refuseRestoring(ctx); err != nil {
		return fail(err)
	}
	a.warnKeyStoresMissing(ctx)
	authenticator, err := a.authenticator(ctx)
	if err != nil {
		return fail(err)
	}
	// Before any worker starts, which a start refused would leave going.
	var sessionKey []byte
	if _, ok := authenticator.(console.Authenticator); ok && !cfg.NoConsole {
		if sessionKey, err = a.consoleSessionKey(ctx); err != nil {
			return fail(err)
		}
	}
	log := auditlog.NewLog(a.store, auditKey, verifierKey, cfg.Now)
	keysUnavailable := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "openpca_ca_keys_unavailable_total",
		Help: "Requests and rounds of work whose CA key this server could not open, or sign with, by the key store that keeps it (away, slow, or holding another key), or that holds what no master key of this server opens: each a ServiceUnavailableException, which clients retry, so alert on any (a round of work that lost its lease, the database away, counts too).",
	}, []string{"key_store"})
	for _, ks := range a.keyStores {
		keysUnavailable.WithLabelValues(ks.Name())
	}
	caKeys := authority.NewKeys(a.keyStores, logger, func(store string) { keysUnavailable.WithLabelValues(store).Inc() })
	alarms := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "openpca_audit_log_integrity_alarms_total",
		Help: "Times a CA's key-use log was found not to match its hashes (entries changed or removed under the server), by a report, a proof or witnessing.",
	})
	alarm := func(ctx context.Context, e *openpca.LogIntegrityError) {
		alarms.Inc()
		logger.ErrorContext(ctx, "integrity alarm: a CA's key-use log does not match its hashes; it was changed under the server",
			"ca", e.CAID, "entry", e.Entry, "problem", e.Detail())
	}
	refused := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "openpca_key_destructions_refused_total",
		Help: "Keys in a token or KMS that a purge was asked to destroy without the audit key's signed word for it (a CA marked deleted, or a key recorded, in the database by hand; or by a version before 2026-12), and left in their stores: alert on any.",
	})
	collectors := []prometheus.Collector{server.CACollector(a.store, a.keyStoreNames(), logger), a.store.Collector(), alarms, keysUnavailable, refused}
	if a.checkClock(ctx) {
		collectors = append(collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "openpca_database_clock_offset_seconds",
			Help: "How far the shared database's clock was ahead of this server's (negative: behind) at the last look, every 5 s: servers time their leases on shared work each by its own clock; alert on a second or more.",
		}, func() float64 { return time.Duration(a.clockOffset.Load()).Seconds() }))
	}
	if cfg.TLSCertFile != "" || cfg.TLSSelfSigned {
		collectors = append(collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "openpca_tls_certificate_expiry_timestamp_seconds",
			Help: "When the TLS certificate served ends, in seconds since 1970 (0 before it is loaded): alert on it well before; a self-signed one is issued again a month before.",
		}, a.tlsExpiry))
	}
	var witnessed func(ctx context.Context, caID string, size int64) (*openpca.WitnessedCheckpoint, error)
	var latestWitnessed func(ctx context.Context, caID string) (*openpca.WitnessedCheckpoint, error)
	var witnesses []note.Verifier
	if len(cfg.Witnesses) > 0 {
		// Witnessing keeps the wall clock's pace, whatever the tests do
		// to the service's.
		a.witnessing = witnessing.Start(witnessing.Config{Store: a.store, Log: log, Witnesses: cfg.witnesses, Quorum: cfg.WitnessQuorum,
			Owner: owner, Logger: logger, Alarm: alarm})
		collectors = append(collectors, a.witnessing.Collector())
		// A report's log is cosigned in a round begun once the report is
		// being made, after it was requested.
		witnessed = func(ctx context.Context, caID string, size int64) (*openpca.WitnessedCheckpoint, error) {
			return a.witnessing.AtLeast(ctx, caID, size, cfg.ReportWitnessWait)
		}
		latestWitnessed = a.store.WitnessedCheckpoint
		for _, w := range cfg.witnesses {
			witnesses = append(witnesses, w.Client.Verifier)
		}
	}
	a.reports = audit.StartGenerator(audit.GeneratorConfig{
		Store: a.store, Objects: a.objects, Log: log, Logger: logger,
		Owner: owner, DefaultAccount: cfg.AccountID, Workers: cfg.ReportWorkers, Lease: cfg.AuditReportLease, Now: cfg.Now, Witnessed: witnessed,
		Witnesses: witnesses, Quorum: cfg.WitnessQuorum, Alarm: alarm,
	})
	// A start is often the operator's answer to what made CRL writes fail
	// (a full disk, an object store away): their backoff, up to 15
	// minutes, need not outlast it. Failing to end it holds no start.
	if err := a.store.RetryCRLsNow(ctx); err != nil {
		logger.Warn("CRLs whose writes failed wait out their retry", "error", err)
	}
	a.crls = crl.Start(crl.Config{Store: a.store, Objects: a.objects, Keys: caKeys, Logger: logger, Owner: owner, DefaultAccount: cfg.AccountID, Now: cfg.Now})
	collectors = append(collectors, a.crls.Collector())
	svc := authority.New(authority.Config{
		Store: a.store, Keys: caKeys, RequireHardware: cfg.RequireHardwareKeys, AllowUnmetStandard: cfg.AllowUnmetKeyStandard,
		Logger: logger, Region: cfg.Region, DefaultAccountID: cfg.AccountID,
		Now: cfg.Now, MaxCAsPerAccount: cfg.MaxCAsPerAccount,
		Objects: a.objects, Reports: a.reports, CRLs: a.crls, AuditReportInterval: cfg.AuditReportInterval, Log: log,
		PublicURL: cfg.RevocationURL, OCSPUnknownRate: cfg.OCSPUnknownRate, OCSPUnknownBudget: cfg.OCSPUnknownBudget, OCSPSigners: cfg.OCSPSigners, OCSPStoreSigners: cfg.OCSPStoreSigners, OCSPSignedByCA: cfg.OCSPSignedByCA,
		Witnessed: latestWitnessed, Alarm: alarm, DestructionRefused: refused.Inc,
	})
	var local server.LocalObjects
	if l, ok := a.objects.(*localfs.Store); ok {
		local = l
	}
	rates := awsjson.NewAccountRates(cfg.AccountRequestRate)
	var web http.Handler
	if signIn, ok := authenticator.(console.Authenticator); ok && !cfg.NoConsole {
		if web, err = console.New(console.Config{Rates: rates, Service: svc, AuditLog: svc, Certificates: svc, Store: a.store, Objects: a.objects, Auth: signIn, Logger: logger, Now: cfg.Now, SessionKey: sessionKey,
			HTTPS: strings.HasPrefix(strings.ToLower(cfg.PublicURL), "https://"), SearchTime: cfg.ConsoleSearchTime, Proxies: cfg.TrustedProxies, MaxConnections: cfg.MaxConnections}); err != nil {
			return fail(err)
		}
	}
	a.server = server.New(server.Config{
		Console:        web,
		PrivateMetrics: cfg.PrivateMetrics,
		AccountRates:   rates,
		TrustedProxies: cfg.TrustedProxies,
		MaxConnections: cfg.MaxConnections,
		Service:        svc,
		AuditLog:       svc,
		OCSP:           svc,
		OCSPMaxAge:     cfg.OCSPMaxAge,
		LocalObjects:   local,
		Collectors:     collectors,
		Ready:          a.store.Ready,
		Authenticator:  authenticator,
		Logger:         logger,
	})

	a.service = svc
	bctx, stop := context.WithCancel(context.Background())
	a.stop = stop
	// At start, a bounded share of the tokens: a database of an earlier
	// version keeps every token it was given, and removing a million took
	// 7 s; the janitor removes the rest.
	a.purge(ctx, bctx, svc, startTokens)
	a.background.Go(func() { a.janitor(bctx, svc) })
	return a, nil
}

// authenticator makes sure the default account exists with a key, and
// returns what authenticates requests: SigV4 verification, or with
// InsecureNoAuth nothing at all.
func (a *App) authenticator(ctx context.Context) (awsjson.Authenticator, error) {
	cfg := a.cfg
	key, secret, err := auth.Bootstrap(ctx, a.store, a.sealer, cfg.AccountID, cfg.RootAccessKeyID, cfg.RootSecretAccessKey, time.Now().UTC())
	if err != nil {
		return nil, err
	}
	switch {
	case secret != "":
		a.logger.Warn("created the default account's first access key; its secret is printed once, on standard output", "account", cfg.AccountID, "access_key_id", key.ID)
		fmt.Fprintf(cfg.Stdout, "Created an access key for the default account %s. It is shown this once; keep it:\n"+
			"  AWS_ACCESS_KEY_ID=%s\n  AWS_SECRET_ACCESS_KEY=%s\n", cfg.AccountID, key.ID, secret)
	case key == nil:
		a.logger.Warn("the default account has no active access key, and none is made: openpca keys create makes one", "account", cfg.AccountID)
	}
	if err := a.warnUnreadablePolicies(ctx); err != nil {
		return nil, err
	}
	if cfg.InsecureNoAuth {
		a.logger.Warn("INSECURE: --insecure-no-auth is set: requests are not authenticated, and anyone who can reach this server acts as the default account",
			"account", cfg.AccountID)
		return awsjson.StaticAuthenticator{AccountID: cfg.AccountID, Principal: "unauthenticated"}, nil
	}
	return &auth.Authenticator{
		// Signatures are checked against the wall clock, which clients
		// sign with, even where tests move the service's clock (cfg.Now).
		Verifier: &sigv4.Verifier{Service: openpca.SigningName, Region: cfg.Region, Keys: auth.Keys{Store: a.store, Sealer: a.sealer}, Now: time.Now},
		Store:    a.store,
	}, nil
}

// warnUnreadablePolicies says which stored policies this version no
// longer reads, or, a CA's, no longer takes (an earlier one took them):
// now, not at their first refusal, which another account sees only as a
// CA not found. An access key's such policy denies every request of the
// key; a CA's shares the CA with no account.
func (a *App) warnUnreadablePolicies(ctx context.Context) error {
	keys, err := a.store.ListAccessKeys(ctx, "")
	if err != nil {
		return err
	}
	for _, k := range keys {
		if !k.RevokedAt.IsZero() {
			continue
		}
		named, err := auth.ResolvePolicies(k.Policies)
		if err != nil {
			a.logger.Warn("an access key's policy no longer reads: its requests are denied until the policy is detached (openpca policy detach)", "key", k.ID, "error", err)
		}
		// Taken by an earlier version, and read still: what names no
		// action of this server grants nothing, and denies nothing.
		for _, n := range named {
			if err := authority.CheckKeyPolicy(n.Policy); err != nil {
				a.logger.Warn("an access key's policy names what is no action of this server: it grants nothing, and a Deny of it denies nothing; attach it again, mended", "key", k.ID, "policy", n.Name, "error", err)
			}
		}
	}
	policies := authority.NewCAPolicies()
	return a.store.CAPolicies(ctx, func(arn, doc string) {
		if _, err := policies.Parse(doc, arn); err != nil {
			a.logger.Warn("a certificate authority's policy is no longer one this version takes: it is shared with no account until it is put again (PutPolicy) or deleted", "ca", arn, "error", err)
		}
	})
}

// openStore opens the database of cfg.
// needDatabase refuses, for an operator's command, a data folder without
// a database: opening it would make an empty one, and a mistyped
// --data-dir (or a cron job's working folder, where the default leads)
// then backed up nothing, successfully, or took the master key given as
// a new database's.
func needDatabase(cfg Config) error {
	if cfg.Database != "" {
		return nil
	}
	_, err := os.Lstat(filepath.Join(cfg.DataDir, "openpca.db"))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s has no database (openpca.db): is --data-dir right? A server makes it on its first start", cfg.DataDir)
	}
	return err
}

// refuseCutRestore refuses a data folder without a database where a
// restore left its partial copy: the restore was cut short, and a server
// would start with a new, empty database in place of the backup's CAs.
// The caller holds the folder's lock, which a restore holds throughout.
func refuseCutRestore(cfg Config) error {
	if cfg.Database != "" {
		return nil
	}
	path := filepath.Join(cfg.DataDir, "openpca.db")
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		return err
	}
	left, err := sqlite.Partials(path)
	if err != nil || len(left) == 0 {
		return err
	}
	return fmt.Errorf("a restore into %s was cut short, and left %s: run the restore again, which removes it, or remove it to start a server without the backup's CAs", cfg.DataDir, left[0])
}

// migrate brings the database opened as it is up to date, and logs the
// versions if that changed it: servers of the earlier version still
// running on it may misread it now, and should be stopped.
func (a *App) migrate(ctx context.Context) error {
	from, err := a.store.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if err := a.store.Migrate(ctx); err != nil {
		return err
	}
	to, err := a.store.SchemaVersion(ctx)
	if err == nil && to != from {
		a.logger.Warn("brought the database's schema up to this version's (migrations numbered from and to): servers of earlier versions on it must be stopped (those that check the schema stop by themselves)",
			"from", from, "to", to)
	}
	return err
}

// consoleSessionKey returns the key of the console's sessions
// (console.SessionKeySetting), which the first server on the database
// makes: a random key, sealed with the master key.
func (a *App) consoleSessionKey(ctx context.Context) ([]byte, error) {
	// Read first: a start writes nothing it need not (a full disk).
	sealed, err := a.store.Setting(ctx, console.SessionKeySetting)
	if err != nil {
		return nil, err
	}
	if sealed == nil {
		if sealed, err = newSessionKey(a.sealer); err != nil {
			return nil, err
		}
		if sealed, err = a.store.InitSetting(ctx, console.SessionKeySetting, sealed); err != nil {
			return nil, err
		}
	}
	key, err := a.sealer.Open(sealed, []byte(console.SessionKeySetting))
	if err != nil {
		return nil, fmt.Errorf("the console's session key (setting %s) does not open with the master key: %w (deleting the setting, with every server stopped, is safe: it ends the console's sessions; or start with --no-console)", console.SessionKeySetting, err)
	}
	return key, nil
}

// newSessionKey makes a key for the console's sessions, sealed with the
// master key of sealer.
func newSessionKey(sealer *seal.Sealer) ([]byte, error) {
	key := make([]byte, 32)
	rand.Read(key)
	return sealer.Seal(key, []byte(console.SessionKeySetting))
}

// openStore opens the store of cfg, doing with a schema of an earlier
// version what schema says, and binding access keys' secrets with bind if
// it migrates one from before 2026-12.
func openStore(ctx context.Context, cfg Config, schema sqlstore.Schema, bind sqlstore.Binder) (*sqlstore.DB, error) {
	switch {
	case cfg.Database == "":
		return sqlite.Open(ctx, filepath.Join(cfg.DataDir, "openpca.db"), sqlite.Options{Logger: cfg.Logger, Schema: schema, Bind: bind})
	case strings.HasPrefix(cfg.Database, "postgres://"), strings.HasPrefix(cfg.Database, "postgresql://"):
		return postgres.Open(ctx, cfg.Database, postgres.Options{Schema: schema, Session: cfg.session, Logger: cfg.Logger, Bind: bind})
	}
	return nil, fmt.Errorf("--database must be a postgres:// address, or empty for SQLite in the data folder")
}

// plainToOthers reports whether cfg serves plain HTTP on an address that
// other machines may reach, with no proxy said to end TLS in front.
func plainToOthers(cfg Config) bool {
	if cfg.TLSCertFile != "" || cfg.TLSSelfSigned || cfg.NoConsole || strings.HasPrefix(strings.ToLower(cfg.PublicURL), "https://") {
		return false
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return true
	}
	if host == "localhost" {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err != nil || !ip.IsLoopback()
}

// dataFiles are the files a server opens by name in its data folder.
var dataFiles = []string{"lock", "node-id", "master.key", "master.key" + pendingSuffix,
	"openpca.db", "openpca.db-wal", "openpca.db-shm", "openpca.db-journal", "tls"}

// checkDataDir refuses a data folder that another user could have laid
// out or can change: one that is not the server's user's (or root's), or
// that users outside its groups may write to, or that holds a file of
// another user, or a link where the server opens a file by name. Such a
// folder (made ahead in a shared directory, say) could give the server a
// master key or a database of someone else's, or have it write, as its
// user, where a link points. Root is trusted, and so are the server's own
// groups: a container's volume is often root's, writable by the pod's
// group.
func checkDataDir(dir string) error {
	fi, err := checkFolder(dir, false)
	if err != nil {
		return err
	}
	if !trusted(fi) {
		return fmt.Errorf("the data folder %s belongs to user %d, not to this server's (%d): another user may have laid it out", dir, owner(fi), os.Geteuid())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			return err
		}
		if !trusted(fi) {
			return fmt.Errorf("%s in the data folder belongs to user %d, not to this server's (%d): another user may have put it there", filepath.Join(dir, e.Name()), owner(fi), os.Geteuid())
		}
	}
	return nil
}

// checkFolder refuses, for a server and for an operator's command
// (command) alike, a data folder with a link of another user on the way
// to it (or in its place), one that users outside this process's user and
// groups may write to, and one with a link where a file is opened by
// name; it returns the folder's information. A command, often run as root
// on the folder of the server's user, trusts that user's files and group,
// but not to lead it elsewhere.
func checkFolder(dir string, command bool) (os.FileInfo, error) {
	if err := checkLinks(dir, "the data folder"); err != nil {
		return nil, err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	// The folder's group is trusted by its members, and by root's
	// commands, which run on the server's folder (a container's volume is
	// often writable by the pod's group).
	if writableByOthers(fi, command && os.Geteuid() == 0) {
		return nil, fmt.Errorf("the data folder %s can be written by users outside this process's user and groups (mode %s): chmod 700 it", dir, fi.Mode().Perm())
	}
	for _, name := range dataFiles {
		if li, err := os.Lstat(filepath.Join(dir, name)); err == nil && li.Mode()&os.ModeSymlink != 0 {
			return nil, fmt.Errorf("%s in the data folder is a link: it is opened by name, and would be read or written where it points", filepath.Join(dir, name))
		}
	}
	return fi, nil
}

// writableByOthers reports whether users outside this process's user and
// groups (and the folder's group, unless trustGroup) may write to the
// folder fi.
func writableByOthers(fi os.FileInfo, trustGroup bool) bool {
	groups, _ := os.Getgroups()
	gid := int(fi.Sys().(*syscall.Stat_t).Gid)
	ours := slices.Contains(groups, gid) || gid == os.Getegid() || trustGroup
	return fi.Mode().Perm()&0o002 != 0 || fi.Mode().Perm()&0o020 != 0 && !ours
}

// checkLinks refuses a link of another user on the way to dir (or in its
// place), what names it.
func checkLinks(dir, what string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := abs; ; p = filepath.Dir(p) {
		if li, err := os.Lstat(p); err == nil && li.Mode()&os.ModeSymlink != 0 && !trusted(li) {
			return fmt.Errorf("%s, on the way to %s %s, is a link of user %d, not of this process's (%d): another user may point it elsewhere", p, what, dir, owner(li), os.Geteuid())
		}
		if filepath.Dir(p) == p {
			return nil
		}
	}
}

// checkFolders refuses a folder that another user could change under this
// process: one with a link on the way to it (or in its place) of a user
// ok does not take, or that is, or is below, a folder of such a user's, or
// one that users outside this process's user and groups may write to
// without the sticky bit (as /tmp has: there, another user can neither
// rename nor remove what is not theirs). A folder above another user's can
// have the whole path swapped while the process uses it. what names the
// folder.
func checkFolders(dir, what string, ok func(os.FileInfo) bool) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return err
	}
	for _, path := range []string{abs, real} {
		for p := path; ; p = filepath.Dir(p) {
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			switch {
			case !ok(fi) && fi.Mode()&os.ModeSymlink != 0:
				return fmt.Errorf("%s, on the way to %s %s, is a link of user %d, not of this process's (%d): that user may point it elsewhere", p, what, dir, owner(fi), os.Geteuid())
			case fi.IsDir() && !ok(fi):
				return fmt.Errorf("%s, on the way to %s %s, is a folder of user %d, not of this process's (%d): that user could put another in its place", p, what, dir, owner(fi), os.Geteuid())
			case fi.IsDir() && fi.Mode()&os.ModeSticky == 0 && writableByOthers(fi, false):
				return fmt.Errorf("%s, on the way to %s %s, can be written by users outside this process's user and groups (mode %s), without the sticky bit: they could put another in its place", p, what, dir, fi.Mode().Perm())
			}
			if filepath.Dir(p) == p {
				break
			}
		}
	}
	return nil
}

// ownersOf reports whether a file is this process's user's, root's, or
// of the owner of the data folder dir, whose files root's commands trust.
func ownersOf(dir string) func(os.FileInfo) bool {
	dataOwner := uint32(os.Geteuid())
	if fi, err := os.Stat(dir); err == nil {
		dataOwner = owner(fi)
	}
	return func(fi os.FileInfo) bool { return trusted(fi) || owner(fi) == dataOwner }
}

// owner is the user a file belongs to; trusted reports whether that is
// this process's user or root.
func owner(fi os.FileInfo) uint32 { return fi.Sys().(*syscall.Stat_t).Uid }

func trusted(fi os.FileInfo) bool { return owner(fi) == uint32(os.Geteuid()) || owner(fi) == 0 }

// lockDataDir takes an exclusive lock on the data folder: one SQLite
// database serves one process.
func lockDataDir(dir string) (*os.File, error) {
	if err := refuseRootWriting(dir); err != nil { // its lock may be made
		return nil, err
	}
	// Not through a link, which would have a command run as root make
	// (or lock) a file where the folder's owner pointed it.
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("the data folder %s is in use by another openpca serve", dir)
	}
	return f, nil
}

// lockRotation takes the data folder's rotation lock, shared or
// exclusive, without waiting: a lock on the folder itself, so that a
// command run as another user than the server's (root, say) leaves no file
// of its own in the folder.
func lockRotation(dir string, exclusive bool) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	how, err := syscall.LOCK_SH, errors.New("a master key rotation is under way on "+dir+": run this again once it ends")
	if exclusive {
		how, err = syscall.LOCK_EX, errors.New("an operator command is running on "+dir+": rotate the master key once it ends")
	}
	if syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB) != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// readOrCreate returns the trimmed content of the file at path, creating
// it with make() first if it does not exist or is empty. It is written
// whole and durably: a file left empty by a crash would have named this
// server "", as every other server left so.
func readOrCreate(path string, make func() string) (string, error) {
	b, err := os.ReadFile(path)
	if v := strings.TrimSpace(string(b)); err == nil && v != "" {
		return v, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	v := make()
	return v, seal.WriteFile(path, []byte(v+"\n"))
}

// removeSealTemporaries removes the temporary files seal.WriteFile leaves
// beside a file when the process dies before renaming one into place: one
// may hold a new master key in the clear. dirs are where it writes (the
// data folder, its tls folder, the master key's file's folder). A write
// of another process at that moment (master-key wrap, or a rotation of
// another data folder whose key file is in the same folder) then fails at
// its rename and leaves its file as it was: it can be run again.
func removeSealTemporaries(dirs ...string) error {
	for _, dir := range dirs {
		names, err := filepath.Glob(filepath.Join(dir, seal.TempPattern))
		if err != nil {
			return err
		}
		for _, name := range names {
			if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("removing %s, left by a write a crash cut short: %w", name, err)
			}
		}
	}
	return nil
}

func openObjectStore(ctx context.Context, cfg Config, logger *slog.Logger) (openpca.ObjectStore, error) {
	switch cfg.ObjectStore {
	case "local":
		return localfs.New(filepath.Join(cfg.DataDir, "s3"), strings.TrimSuffix(cfg.RevocationURL, "/")+"/s3", logger)
	case "s3":
		return s3.Open(ctx, cfg.S3Endpoint, cfg.Region)
	}
	return nil, fmt.Errorf("unknown object store %q: use local or s3", cfg.ObjectStore)
}

// janitor purges CAs deleted for good every janitorInterval, until ctx
// ends or a later version migrates the database (see Superseded), which
// it looks for every schemaInterval, and before each purge: a server of
// an earlier version read the record of a key being made, added later, as
// one to destroy. Every schemaInterval, it also renews the self-signed TLS
// certificate when due.
func (a *App) janitor(ctx context.Context, svc *authority.Service) {
	purge, schema := time.NewTicker(janitorInterval), time.NewTicker(schemaInterval)
	defer purge.Stop()
	defer schema.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-schema.C:
			a.renewSelfSigned(a.now())
			a.checkClock(ctx)
		case <-purge.C:
			if a.supersededBy(ctx) {
				return
			}
			a.purge(ctx, ctx, svc, math.MaxInt64)
			continue
		}
		if a.supersededBy(ctx) {
			return
		}
	}
}

// supersededBy reports whether a later version has migrated the
// database, and then tells Superseded.
func (a *App) supersededBy(ctx context.Context) bool {
	// Within the interval: a store that stopped answering would hold the
	// janitor for good.
	cctx, cancel := context.WithTimeout(ctx, schemaInterval)
	defer cancel()
	err := a.store.CheckSchema(cctx)
	if !errors.Is(err, sqlstore.ErrLaterSchema) {
		if err != nil && ctx.Err() == nil {
			a.logger.Warn("reading the database's schema version", "error", err)
		}
		return false
	}
	a.logger.Error("a later version of OpenPCA has migrated the database: this server stops; start that version in its place", "error", err)
	a.superseded <- err
	return true
}

// checkClock measures how far this server's clock is off the database's,
// for a database with a clock of its own (PostgreSQL, which servers
// share), and reports whether it has one. It warns once the clock is off
// by more than clockTolerance, and says so once it agrees again: servers
// sharing the database time their leases on audit reports, CRLs and
// witnessing each by its own clock, so one off from the others by more
// than a lease takes jobs over from peers that still work on them, and
// the jobs are done twice; and a certificate or CRL carries the time of
// whichever server signed it. A failed look says nothing: the schema's
// look, at the same pace, warns of a database away.
func (a *App) checkClock(ctx context.Context) bool {
	cctx, cancel := context.WithTimeout(ctx, schemaInterval)
	defer cancel()
	offset, uncertainty, ok, err := a.store.ClockOffset(cctx, a.now)
	if !ok || err != nil {
		return ok
	}
	a.clockOffset.Store(int64(offset))
	off := offset.Abs() > clockTolerance+uncertainty
	switch {
	case off && !a.clockOff:
		a.logger.Warn("this server's clock is off the database's, which servers sharing it measure themselves against: each times its leases on audit reports, CRLs and witnessing by its own clock, and one off by more than a lease takes jobs over from live peers; keep the clocks synchronised (NTP)",
			"database_ahead_by", offset, "uncertainty", uncertainty)
	case !off && a.clockOff:
		a.logger.Info("this server's clock agrees with the database's again", "database_ahead_by", offset)
	}
	a.clockOff = off
	return true
}

// Superseded receives once a later version of OpenPCA has migrated the
// database: this server may misread what that one stores, and must stop.
func (a *App) Superseded() <-chan error { return a.superseded }

// purge removes idempotency tokens past their window (tokens of them at
// most), the CAs deleted for good, and then, in the background,
// the keys of every CA purged whose key is not yet destroyed (its store was
// away, or a server stopped in between): a key store that does not answer
// must not hold a start. One round of destruction runs at a time, until
// background ends (Close): the keys it leaves are tried again at the next
// start.
func (a *App) purge(ctx, background context.Context, svc *authority.Service, tokens int64) {
	// Tokens past their window answer nothing; kept a clock step longer,
	// so that a server whose clock runs ahead removes none another still
	// answers with.
	if _, err := a.store.ExpireIdempotencyTokens(ctx, a.now().Add(-authority.IdempotencyWindow-openpca.ClockStep), tokens); err != nil && ctx.Err() == nil {
		a.logger.Error("removing idempotency tokens past their window", "error", err)
	}
	purged, err := a.store.PurgeCAs(ctx, a.now())
	if err != nil && ctx.Err() == nil {
		a.logger.Error("purging deleted certificate authorities", "error", err)
	}
	if len(purged) > 0 {
		a.logger.Info("purged certificate authorities past their restoration period", "count", len(purged))
	}
	for _, ca := range purged {
		if ca.KeepKey {
			a.logger.Warn("the key of a CA deleted for good is left in its store: the CA was in the backup this database was restored from, and servers of the backed-up database may sign with it still; destroy it by hand once none does",
				"ca", ca.ARN, "key_store", ca.KeyStore, "key_handle", string(ca.KeyHandle), "key_id", ca.KeyID)
		}
	}
	if !a.destroying.CompareAndSwap(false, true) {
		return
	}
	keys, err := a.store.KeysToDestroy(ctx, a.now())
	if err != nil || len(keys) == 0 {
		a.destroying.Store(false)
		if err != nil && ctx.Err() == nil {
			a.logger.Error("reading the keys of purged certificate authorities", "error", err)
		}
		return
	}
	a.background.Go(func() {
		defer a.destroying.Store(false)
		svc.DestroyKeys(background, keys)
	})
}

// Metrics serves GET /metrics, the Prometheus metrics, alone, for a
// listener of its own (server.Server.Metrics).
func (a *App) Metrics() http.Handler { return a.server.Metrics() }

// Service is the service that answers the API's operations.
func (a *App) Service() *authority.Service { return a.service }

// Serve answers requests on l until Shutdown, over TLS if the Config asks.
func (a *App) Serve(l net.Listener) error {
	tc, err := a.tlsConfig(l.Addr())
	if err != nil {
		l.Close()
		return err
	}
	lim := connlimit.Limits{Total: a.cfg.MaxConnections, PerNetwork: a.cfg.MaxConnectionsPerNetwork,
		Exempt: a.cfg.TrustedProxies.Trusts, Logger: a.logger}
	if tc != nil {
		lim.RatePerNetwork = a.cfg.MaxHandshakeRatePerNetwork
	}
	limited := connlimit.Listen(l, lim)
	l = limited
	scheme := "http"
	if tc != nil {
		l, scheme = tlshello.NewListener(l, tc), "https"
	}
	a.logger.Info("serving the AWS Private CA API", "url", scheme+"://"+l.Addr().String(), "public_url", a.cfg.PublicURL,
		"master_key_fingerprint", a.masterKey)
	return a.server.Serve(l, limited.Limit)
}

// ServeRevocation serves the OCSP responder and local buckets' CRLs alone
// on l, in plain HTTP, until Shutdown (server.Server.ServeRevocation),
// with bounds of connections of its own, the API listener's numbers.
func (a *App) ServeRevocation(l net.Listener) error {
	limited := connlimit.Listen(l, connlimit.Limits{Total: a.cfg.MaxConnections, PerNetwork: a.cfg.MaxConnectionsPerNetwork,
		Exempt: a.cfg.TrustedProxies.Trusts, Logger: a.logger})
	a.logger.Info("serving the OCSP responder and local CRLs", "url", "http://"+l.Addr().String(), "revocation_url", a.cfg.RevocationURL)
	return a.server.ServeRevocation(limited, limited.Limit)
}

// Shutdown lets requests in flight finish (until ctx ends) and then closes
// the App.
func (a *App) Shutdown(ctx context.Context) error {
	err := a.server.Shutdown(ctx)
	return errors.Join(err, a.Close())
}

// Close stops the background work (a report being generated stays
// CREATING and resumes at the next start), closes the database and
// releases the data folder.
func (a *App) Close() error {
	a.stop()
	a.background.Wait()
	a.service.Wait()
	a.reports.Close()
	a.crls.Close()
	if a.witnessing != nil {
		a.witnessing.Close()
	}
	err := a.store.Close()
	return errors.Join(err, a.closeKeyStores(), a.lock.Close())
}

// keysCloseWait bounds how long Close waits for the key stores to close:
// a token that hangs holds its sessions' calls, which closing it waits
// for, for good.
const keysCloseWait = 10 * time.Second

// closeKeyStores closes the key stores, or gives up on them after
// keysCloseWait, leaving their sessions to the process's end.
func (a *App) closeKeyStores() error {
	done := make(chan error, 1)
	go func() {
		done <- a.closeKeys()
		close(a.keysClosed)
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(keysCloseWait):
		a.logger.Warn("the key stores did not close: a token's calls in flight never returned; their sessions end with the process", "waited", keysCloseWait)
		return nil
	}
}

// KeyStoresClosed is closed once Close has closed the key stores, which
// it gives up waiting for after keysCloseWait: a PKCS#11 module stays
// loaded, with its configuration, until then.
func (a *App) KeyStoresClosed() <-chan struct{} { return a.keysClosed }

// Admin is the store and master key of a data folder, opened for an
// operator's command; a server may be running on the same folder.
type Admin struct {
	Store   *sqlstore.DB
	Sealer  *seal.Sealer
	DataDir string
	// AccountID is the default account's: the owner of buckets no account
	// was given. Region is the servers' (in their CAs' ARNs). Both are
	// those the database records, else the defaults (see identity).
	AccountID string
	Region    string
	rotation  *os.File // the rotation lock, shared
}

// OpenAdmin opens the data folder of cfg for an operator's command. Unlike
// Open, it creates no master key: the one a server made must be used.
func OpenAdmin(ctx context.Context, cfg Config) (*Admin, error) {
	return openCommand(ctx, cfg, sqlstore.RefuseEarlier)
}

// openCommand opens the data folder of cfg for a command, which a server
// may run beside, doing with a schema of an earlier version what schema
// says.
func openCommand(ctx context.Context, cfg Config, schema sqlstore.Schema) (*Admin, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := needDatabase(cfg); err != nil {
		return nil, err
	}
	if cfg.Database != "" {
		// PostgreSQL's servers roll a rotation without a data folder's
		// lock (RotateMasterKey), and a command needs no folder.
		return openAdmin(ctx, cfg, false, schema)
	}
	// No command runs while a master key rotation does: it would settle
	// the rotation from under it, and remove its new key as the database
	// is resealed with it, or seal what it stores with the key the
	// rotation replaces. Commands share the lock; a rotation holds it
	// alone.
	rotation, err := lockRotation(cfg.DataDir, false)
	if err != nil {
		return nil, err
	}
	if _, err := checkFolder(cfg.DataDir, true); err != nil {
		rotation.Close()
		return nil, err
	}
	a, err := openAdmin(ctx, cfg, false, schema)
	if err != nil {
		rotation.Close()
		return nil, err
	}
	a.rotation = rotation
	return a, nil
}

// openAdmin opens the data folder of cfg; folderLocked says that the
// caller holds the folder's lock (lockDataDir) already.
func openAdmin(ctx context.Context, cfg Config, folderLocked bool, schema sqlstore.Schema) (*Admin, error) {
	// A rotation's new key beside the master key, with no rotation under
	// way, is one interrupted, which only a holder of the data folder's
	// lock (no server runs) may settle.
	if !folderLocked && cfg.MasterKey == "" && rotationLeft(cfg) {
		// Settling it renames the new key's file and writes the TLS CA's
		// key.
		if err := refuseRootWriting(cfg.DataDir, filepath.Join(cfg.DataDir, "tls"), filepath.Dir(cfg.MasterKeyFile), cfg.MasterKeyFile); err != nil {
			return nil, err
		}
		lock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("a master key rotation is under way on %s: run this again once it ends (%w)", cfg.DataDir, err)
		}
		defer lock.Close()
	}
	files := &keyFiles{ctx: ctx, cfg: cfg}
	keys, _, err := readMasterKeys(files, false, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	cfg.session = keySession(cfg, keys)
	bind, err := keys.binder(files)
	if err != nil {
		return nil, err
	}
	db, err := openStore(ctx, cfg, schema, bind)
	if err != nil {
		return nil, err
	}
	// A key sealed with a master key other than the database's would be
	// stored, and then fail every request.
	if keys, err = loadMasterKeys(ctx, files, db, keys, false, slog.New(slog.DiscardHandler)); err != nil {
		db.Close()
		return nil, err
	}
	sealer, err := keys.sealer()
	if err != nil {
		db.Close()
		return nil, err
	}
	db.SealsWith(seal.Fingerprint(keys.current))
	// A command takes no --region: its own is not compared (see identity).
	account, region, err := identity(ctx, db, cfg.AccountID, "")
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Admin{Store: db, Sealer: sealer, DataDir: cfg.DataDir, AccountID: account, Region: region}, nil
}

// CheckLocalBuckets refuses a data folder that buckets of the local
// object store may not be made in: one that fails the checks a server's
// does (on PostgreSQL, a command has not checked it, since it takes no
// lock there, and one run as root would make the bucket wherever a link
// in a folder others may write to points), or another user's, for a
// command run as root (refuseRootWriting). A command checks before it
// records the bucket.
func (a *Admin) CheckLocalBuckets() error {
	if _, err := os.Stat(a.DataDir); err == nil {
		if _, err := checkFolder(a.DataDir, true); err != nil {
			return err
		}
	}
	return refuseRootWriting(a.DataDir, filepath.Join(a.DataDir, "s3"))
}

// MakeLocalBucket makes the folder of bucket in the local object store of
// the data folder, once CheckLocalBuckets passes.
func (a *Admin) MakeLocalBucket(bucket string) error {
	if err := os.MkdirAll(a.DataDir, 0o700); err != nil {
		return err
	}
	if err := a.CheckLocalBuckets(); err != nil {
		return err
	}
	return os.MkdirAll(filepath.Join(a.DataDir, "s3", bucket), 0o700)
}

// Close closes the store, and lets a rotation run.
func (a *Admin) Close() error {
	err := a.Store.Close()
	if a.rotation != nil { // none on PostgreSQL
		err = errors.Join(err, a.rotation.Close())
	}
	return err
}

// refuseRestoring returns an error if a restore of the database began
// (openpca restore --database) and has not settled it.
func (a *App) refuseRestoring(ctx context.Context) error {
	begun, err := a.store.RestoreBegun(ctx)
	if err == nil && begun != "" {
		err = fmt.Errorf("a restore of this database (openpca restore --database) began at %s and has not settled it: a server starts on it once it has; if it was cut short, or refused the database, run it again, which says why", begun)
	}
	return err
}
