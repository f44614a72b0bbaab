package app

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/audit"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/authority"
	"github.com/openpca/openpca/clientaddr"
	"github.com/openpca/openpca/console"
	"github.com/openpca/openpca/kms"
	"github.com/openpca/openpca/pkcs11"
	"github.com/openpca/openpca/seal"
	"github.com/openpca/openpca/witness"
	"github.com/openpca/openpca/witnessing"
)

// Config is how a server is set up. Start from DefaultConfig: Validate
// checks a Config and fills in what follows from the rest of it.
type Config struct {
	DataDir string
	// Listen is the address the server is meant to serve on; the openpca
	// command listens there, and the public URL defaults to it.
	Listen string
	// Database is where the store is: "" for SQLite in the data folder, or
	// a postgres:// address for PostgreSQL, shared by several servers
	// (which must then share the master key).
	Database string
	// Region is in the ARNs of new CAs, and AccountID is the default
	// account's (which owns the buckets no account was given, and gets the
	// first root key). The database records both at the first start, and
	// refuses a server or command given others (see identity). An
	// AccountID of "" (a command not given --account-id) takes the
	// recorded one, else DefaultAccountID. Commands compare no region:
	// theirs is only their KMS client's.
	Region    string
	AccountID string
	// MasterKey is the base64 master key; if empty, the key is read from
	// MasterKeyFile, which is created on first start.
	MasterKey     string
	MasterKeyFile string
	// MasterKeyKMSKey, if set, is a symmetric KMS key (at KMSEndpoint, or
	// AWS KMS) that wraps the master key in its file: the data folder then
	// holds no usable key material.
	MasterKeyKMSKey string
	// PreviousMasterKeys are base64 master keys the server still opens
	// values with, but never seals with: servers sharing a database run
	// with the new key and the old one while it is rotated.
	PreviousMasterKeys []string
	// MaxCAsPerAccount bounds the CAs of one account.
	MaxCAsPerAccount int
	// AccountRequestRate bounds each account's API requests a second
	// (ThrottlingException past it); 0: no bound.
	AccountRequestRate float64
	// TrustedProxies are the proxies in front of the server whose
	// X-Forwarded-For it believes: for aws:SourceIp and the limits of an
	// address.
	TrustedProxies clientaddr.Proxies
	// MaxConnections bounds the API's connections open at once, and
	// MaxConnectionsPerNetwork those from one address (an IPv6 /64),
	// trusted proxies' apart; 0: no bound.
	MaxConnections           int
	MaxConnectionsPerNetwork int
	// MaxHandshakeRatePerNetwork bounds the connections a second one
	// address (an IPv6 /64) opens to the API over TLS, each a handshake,
	// trusted proxies' apart; 0: no bound.
	MaxHandshakeRatePerNetwork float64
	// ObjectStore is where audit reports and CRLs go: "local" (folders
	// under <data-dir>/s3) or "s3"; "" means "s3" if S3Endpoint, an
	// S3-compatible server, is set, else "local".
	ObjectStore string
	S3Endpoint  string
	// PublicURL is where relying parties reach the server: the OCSP
	// responder's address in certificates, and the CRL distribution
	// points of local buckets. Default http(s)://Listen.
	PublicURL string
	// RevocationURL is where relying parties fetch what says whether a
	// certificate is revoked, if not at PublicURL: the OCSP responder's
	// address in certificates, and the CRL distribution points of local
	// buckets. A plain HTTP listener of its own (App.Revocation) serves
	// them where the API is served over HTTPS: relying parties fetch them
	// over HTTP (RFC 5280, RFC 6960). Default PublicURL.
	RevocationURL string
	// OCSPUnknownRate bounds the OCSP responses per second signed for
	// serials no CA issued; 0 means authority.DefaultOCSPUnknownRate.
	OCSPUnknownRate float64
	// OCSPUnknownBudget bounds the bytes such responses add to each CA's
	// key-use log per hour; 0 means authority.DefaultOCSPUnknownBudget.
	OCSPUnknownBudget int
	// OCSPSigners bounds the OCSP answers signed at once with the server's
	// processors; 0 means authority.Config's default, half its CPUs.
	OCSPSigners int
	// OCSPStoreSigners bounds the OCSP answers CAs sign at once in each
	// token or KMS (authority.Config.OCSPStoreSigners).
	OCSPStoreSigners int
	// OCSPSignedByCA has CAs sign their OCSP answers with their own keys
	// rather than by delegated responders.
	OCSPSignedByCA bool
	// OCSPMaxAge is how long HTTP caches may serve an OCSP answer
	// without asking again (server.Config.OCSPMaxAge).
	OCSPMaxAge time.Duration
	// AuditReportInterval is the least time between two reports of a CA.
	AuditReportInterval time.Duration
	// RootAccessKeyID and RootSecretAccessKey, if set, are an access key of
	// the default account (from OPENPCA_ROOT_ACCESS_KEY_ID and
	// OPENPCA_ROOT_SECRET_ACCESS_KEY). Without them, the first start makes
	// a key and prints it to Stdout, once.
	RootAccessKeyID     string
	RootSecretAccessKey string
	// InsecureNoAuth accepts unsigned requests, for the default account.
	InsecureNoAuth bool
	// NoConsole turns the web console (/console/) off. Without
	// authentication (InsecureNoAuth) there is no console either: it
	// signs in with access keys.
	NoConsole bool
	// ConsoleSearchTime bounds a console search of a CA's certificates by
	// text, and its charts; 0 means console.DefaultSearchTime.
	ConsoleSearchTime time.Duration
	// PrivateMetrics keeps /metrics off the API's listener; App.Metrics
	// serves them (openpca serve --metrics-listen).
	PrivateMetrics bool
	// KeyStore is where the keys of new CAs are kept: "software" (the
	// default, sealed with the master key), "pkcs11" or "kms".
	KeyStore string
	// PKCS11 is the token of the pkcs11 store, which is configured when
	// PKCS11.Module is set; PKCS11Standard is the key storage security
	// standard the operator declares the token meets ("" for none).
	PKCS11         pkcs11.Config
	PKCS11Standard string
	// AuditKeyStore is where the audit log's key is made: "software"
	// (sealed in the database) or "pkcs11" (in the token). It decides only
	// when the store has no audit key yet: a key, once made, stays where it
	// is.
	AuditKeyStore string
	// KMSEndpoint is a KMS-compatible server for the kms store; without
	// it, KeyStore "kms" uses AWS KMS. KMSStandard is the standard the
	// operator declares it meets: by default FIPS_140_2_LEVEL_3_OR_HIGHER
	// for AWS KMS, and none for another server.
	KMSEndpoint string
	KMSStandard string
	// KMSKeyPolicy is the key policy (a JSON document) each new CA key in
	// KMS is made with, instead of KMS's default, which lets the account's
	// IAM policies grant kms:Sign to anyone: with one that grants it to the
	// server alone, nothing else can sign for a CA outside its audit log.
	KMSKeyPolicy string
	// RequireHardwareKeys refuses to create CAs in the software store.
	RequireHardwareKeys bool
	// AllowUnmetKeyStandard accepts a requested KeyStorageSecurityStandard
	// no store is declared to meet (see authority.Config).
	AllowUnmetKeyStandard bool
	// TLSCertFile and TLSKeyFile serve HTTPS with a certificate of the
	// operator's; TLSSelfSigned with one from a CA the server makes in
	// <data-dir>/tls.
	TLSCertFile   string
	TLSKeyFile    string
	TLSSelfSigned bool
	// Stdout receives what the operator must see once: a new root key, the
	// TLS CA bundle path.
	Stdout io.Writer
	// AuditReportLease is how long a server holds a report it generates
	// without renewing; another takes the report over after it.
	AuditReportLease time.Duration
	// ReportWorkers is how many reports are generated at once; with none
	// the server only serves the API, and other servers sharing its store
	// generate.
	ReportWorkers int
	// Witnesses are the witnesses the server asks to cosign its checkpoints
	// (c2sp.org/tlog-witness), each "URL=KEY": the witness's submission
	// prefix and its public key. WitnessQuorum is how many must cosign a
	// checkpoint for the server to count it witnessed; 0 means all.
	Witnesses     []string
	WitnessQuorum int
	witnesses     []witnessing.Witness // Witnesses, parsed by Validate
	// ReportWitnessWait is how long an audit report waits for witnesses to
	// cosign a checkpoint of its log; past it the report goes without their
	// cosignatures.
	ReportWitnessWait time.Duration
	// Logger defaults to JSON on the standard error.
	Logger *slog.Logger
	// Now overrides the clock, for tests.
	Now func() time.Time
	// session names the store's sessions on PostgreSQL, if not "" (see
	// postgres.Options.Session).
	session string
}

// Defaults.
const (
	DefaultDataDir       = "openpca-data"
	DefaultRegion        = "us-east-1"
	DefaultAccountID     = "111122223333"
	DefaultListen        = "127.0.0.1:8080"
	DefaultReportWorkers = 2
)

// DefaultConfig returns the configuration of a server started with no
// flags: everything in the data folder, SQLite and local buckets.
func DefaultConfig() Config {
	return Config{
		DataDir:                    DefaultDataDir,
		Listen:                     DefaultListen,
		Region:                     DefaultRegion,
		AccountID:                  DefaultAccountID,
		MaxCAsPerAccount:           authority.DefaultMaxCAsPerAccount,
		OCSPUnknownRate:            authority.DefaultOCSPUnknownRate,
		OCSPUnknownBudget:          authority.DefaultOCSPUnknownBudget,
		OCSPStoreSigners:           authority.DefaultOCSPStoreSigners,
		AuditReportInterval:        authority.DefaultAuditReportInterval,
		AuditReportLease:           audit.DefaultLease,
		ReportWorkers:              DefaultReportWorkers,
		ReportWitnessWait:          DefaultReportWitnessWait,
		ConsoleSearchTime:          console.DefaultSearchTime,
		MaxConnections:             DefaultMaxConnections,
		MaxConnectionsPerNetwork:   DefaultMaxConnectionsPerNetwork,
		MaxHandshakeRatePerNetwork: DefaultMaxHandshakeRatePerNetwork,
		KeyStore:                   seal.SoftwareStore,
		AuditKeyStore:              seal.SoftwareStore,
	}
}

// region is what a region in an ARN may be: AWS's have at most 20
// characters (us-isob-east-1, ap-southeast-2); one of more than
// maxRegion would make CA ARNs too long for the console's forms.
var region = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-[0-9]+$`)

const maxRegion = 32

// Default bounds of the API's connections. Before a request is read
// whole, nothing tells an outsider's connection from a client's, and each
// can hold a request's headers (up to 16 KiB) and a goroutine:
// 8,000 connections, each sending 15 KiB of headers slowly, took 570 MB
// of a server here. Bounded, they take at most about 280 MB in all, and
// 18 MB from any one address. A client's SDK keeps a few connections, a
// load test from one machine a few dozen. With the listener full, idle
// connections make room (connlimit).
const (
	DefaultMaxConnections           = 4096
	DefaultMaxConnectionsPerNetwork = 256
)

// DefaultMaxHandshakeRatePerNetwork is how many connections a second one
// address may open to the API over TLS, in bursts of as many. A handshake
// costs the server 0.3 ms (its ECDSA certificate) to 1.6 ms (RSA-2048) of
// CPU and a client that replays a ClientHello nothing: one address had a
// server make 4,200 a second, 1.6 of its 2 CPUs. An SDK keeps its
// connections, and the CLI opens one per command.
const DefaultMaxHandshakeRatePerNetwork = 100

// MaxReportWorkers bounds --report-workers: each worker holds a report's
// buffers and polls the store.
const MaxReportWorkers = 64

// rootKeyID is what a root access key id given to the server may be, and
// minRootSecret the shortest secret it takes.
var rootKeyID = regexp.MustCompile(`^[A-Za-z0-9]{4,128}$`)

// minAccountRequestRate is the least --account-request-rate but none: a
// request each 1,000 seconds, which a client is told to wait for
// (Retry-After), and not for ages (1e-300 was taken).
const minAccountRequestRate = 0.001

// A root secret given by the operator: at least minRootSecret characters,
// of at least minSecretChars different ones. A random secret of 32 hex
// digits has fewer than 6 different ones less than once in 10^12 (fewer
// than 8 was once in 28 million); a line of one character pasted by
// mistake, or "abab...", has one or two. At most maxRootSecret, so that
// the console's sign-in form holds it (4 KiB, each character
// percent-encoded in three bytes at worst).
const (
	minRootSecret  = 32
	maxRootSecret  = 1024
	minSecretChars = 6
)

// strongSecret reports whether secret may be a root secret: long enough,
// of enough different characters, and printable ASCII without spaces, as
// a secret copied from a terminal or a file is once its line is trimmed.
func strongSecret(secret string) bool {
	seen := map[rune]bool{}
	for _, r := range secret {
		if r <= ' ' || r > '~' {
			return false
		}
		seen[r] = true
	}
	return len(secret) >= minRootSecret && len(secret) <= maxRootSecret && len(seen) >= minSecretChars
}

// Validate checks cfg, naming the flag of what is wrong, and fills in what
// follows from the rest: the master key file in the data folder, the
// object store from the S3 endpoint, the public URL from the listen
// address.
func (cfg *Config) Validate() error {
	switch {
	case cfg.DataDir == "":
		return fmt.Errorf("--data-dir must name a folder")
	case !region.MatchString(cfg.Region) || len(cfg.Region) > maxRegion:
		return fmt.Errorf("--region must be a region such as us-east-1, of at most %d characters, not %q", maxRegion, cfg.Region)
	case cfg.AccountID != "" && !openpca.ValidAccountID(cfg.AccountID):
		return fmt.Errorf("--account-id must be 12 digits, not %q", cfg.AccountID)
	case cfg.ReportWorkers < 0 || cfg.ReportWorkers > MaxReportWorkers:
		return fmt.Errorf("--report-workers must be from 0 to %d, not %d", MaxReportWorkers, cfg.ReportWorkers)
	case cfg.ConsoleSearchTime < 0:
		return fmt.Errorf("--console-search-time must not be negative")
	case cfg.MaxConnections < 0 || cfg.MaxConnectionsPerNetwork < 0 || !(cfg.MaxHandshakeRatePerNetwork >= 0) || math.IsInf(cfg.MaxHandshakeRatePerNetwork, 0):
		return fmt.Errorf("--max-connections, --max-connections-per-network and --max-handshake-rate-per-network must be 0 (no bound) or positive")
	case cfg.AccountRequestRate != 0 && !(cfg.AccountRequestRate >= minAccountRequestRate) || math.IsInf(cfg.AccountRequestRate, 0):
		return fmt.Errorf("--account-request-rate must be 0 (no bound) or at least %g (a request each %.0f seconds), not %g", minAccountRequestRate, 1/minAccountRequestRate, cfg.AccountRequestRate)
	case cfg.MaxCAsPerAccount <= 0 || cfg.OCSPUnknownBudget <= 0 || cfg.OCSPUnknownRate <= 0:
		return fmt.Errorf("--max-cas-per-account, --ocsp-unknown-budget and the OCSP rate must be positive")
	case cfg.OCSPMaxAge < 0:
		return fmt.Errorf("--ocsp-max-age must not be negative")
	case cfg.OCSPSigners < 0:
		return fmt.Errorf("--ocsp-signers must be 0 (half the CPUs) or positive")
	case cfg.OCSPStoreSigners <= 0:
		return fmt.Errorf("--ocsp-store-signers must be positive")
	case cfg.ReportWitnessWait < 0:
		return fmt.Errorf("--report-witness-wait must not be negative")
	case cfg.AuditReportInterval <= 0 || cfg.AuditReportLease < time.Second:
		// 0 would have meant the default, 30 minutes, not no interval.
		return fmt.Errorf("--audit-report-interval must be positive (1ms for next to none), and --audit-report-lease a second or more")
	case cfg.RootAccessKeyID != "" && !rootKeyID.MatchString(cfg.RootAccessKeyID):
		return fmt.Errorf("--root-access-key-id must be 4 to 128 letters and digits, as access key ids are")
	case cfg.RootSecretAccessKey != "" && !strongSecret(cfg.RootSecretAccessKey):
		return fmt.Errorf("--root-secret-access-key must be %d to %d characters (AWS's are 40), of at least %d different ones, printable and without spaces: it is all that stands between the network and the default account", minRootSecret, maxRootSecret, minSecretChars)
	case (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == ""):
		return fmt.Errorf("--tls-cert and --tls-key go together")
	case cfg.TLSSelfSigned && cfg.TLSCertFile != "":
		return fmt.Errorf("--tls-self-signed and --tls-cert exclude each other")
	case (cfg.PKCS11.Module == "") != (cfg.PKCS11.TokenLabel == ""):
		return fmt.Errorf("--pkcs11-module and --pkcs11-token-label go together: they name the token")
	case cfg.PKCS11Standard != "" && cfg.PKCS11.Module == "":
		return fmt.Errorf("--pkcs11-standard describes a token: it needs --pkcs11-module")
	case cfg.KMSStandard != "" && cfg.KMSEndpoint == "" && cfg.KeyStore != kms.Name:
		return fmt.Errorf("--kms-standard describes the kms store: it needs --key-store kms or --kms-endpoint")
	}
	if cfg.MasterKeyFile == "" {
		cfg.MasterKeyFile = filepath.Join(cfg.DataDir, "master.key")
	}
	switch cfg.ObjectStore {
	case "":
		cfg.ObjectStore = "local"
		if cfg.S3Endpoint != "" {
			cfg.ObjectStore = "s3"
		}
	case "local", "s3":
	default:
		return fmt.Errorf("--object-store must be local or s3, not %q", cfg.ObjectStore)
	}
	if cfg.ObjectStore == "local" && cfg.S3Endpoint != "" {
		return fmt.Errorf("--s3-endpoint needs --object-store s3")
	}
	switch cfg.KeyStore {
	case seal.SoftwareStore, pkcs11.Name, kms.Name:
	default:
		return fmt.Errorf("--key-store must be software, pkcs11 or kms, not %q", cfg.KeyStore)
	}
	if cfg.KMSKeyPolicy != "" {
		var doc map[string]any
		switch {
		case cfg.KeyStore != kms.Name && cfg.KMSEndpoint == "":
			return fmt.Errorf("--kms-key-policy is the policy of the keys the kms store makes: it needs --key-store kms or --kms-endpoint")
		case len(cfg.KMSKeyPolicy) > kms.MaxKeyPolicy:
			return fmt.Errorf("--kms-key-policy: the policy is %d bytes; KMS takes at most %d", len(cfg.KMSKeyPolicy), kms.MaxKeyPolicy)
		case json.Unmarshal([]byte(cfg.KMSKeyPolicy), &doc) != nil || doc == nil:
			return fmt.Errorf("--kms-key-policy: the policy is not a JSON object")
		}
	}
	switch cfg.AuditKeyStore {
	case seal.SoftwareStore:
	case pkcs11.Name:
		if cfg.PKCS11.Module == "" {
			return fmt.Errorf("--audit-key-store pkcs11 needs a token: --pkcs11-module")
		}
	default:
		return fmt.Errorf("--audit-key-store must be software or pkcs11, not %q (the audit key cannot be kept in KMS yet)", cfg.AuditKeyStore)
	}
	if err := cfg.parseWitnesses(); err != nil {
		return err
	}
	if cfg.PublicURL != "" && !httpURL(cfg.PublicURL) {
		return fmt.Errorf("--public-url must be an http:// or https:// address such as https://ca.example.com, not %q", cfg.PublicURL)
	}
	if cfg.RevocationURL != "" && !httpURL(cfg.RevocationURL) {
		return fmt.Errorf("--revocation-url must be an http:// (or https://) address such as http://ocsp.example.com, not %q", cfg.RevocationURL)
	}
	for _, e := range []struct{ flag, value string }{{"--s3-endpoint", cfg.S3Endpoint}, {"--kms-endpoint", cfg.KMSEndpoint}} {
		if e.value != "" && !httpURL(e.value) {
			return fmt.Errorf("%s must be an http:// or https:// address such as http://127.0.0.1:9000, not %q", e.flag, e.value)
		}
	}
	if cfg.PublicURL == "" {
		scheme := "http"
		if cfg.TLSCertFile != "" || cfg.TLSSelfSigned {
			scheme = "https"
		}
		// ":8080" listens on every address, as 0.0.0.0 does; "http://:8080"
		// is no address at all (Open warns of both).
		listen := cfg.Listen
		if host, port, err := net.SplitHostPort(listen); err == nil && host == "" {
			listen = net.JoinHostPort("0.0.0.0", port)
		}
		cfg.PublicURL = scheme + "://" + listen
	}
	if cfg.RevocationURL == "" {
		cfg.RevocationURL = cfg.PublicURL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	return nil
}

// httpURL reports whether s is an http:// or https:// address of a host,
// without credentials, query or fragment.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != "" && u.User == nil && !strings.ContainsAny(s, "?#") && validPort(u.Port())
}

// validPort reports whether port, of a URL, is none or a TCP port (0
// too: a configuration validated again keeps the public URL it was given
// from a --listen of port 0, which serve replaces by the port bound).
func validPort(port string) bool {
	_, err := strconv.ParseUint(port, 10, 16)
	return port == "" || err == nil
}

// parseWitnesses reads Witnesses into witnesses, and checks the quorum.
func (cfg *Config) parseWitnesses() error {
	cfg.witnesses = nil
	var keys []string
	for _, w := range cfg.Witnesses {
		// A witness key has no "=" (its base64 needs no padding); the URL
		// may, in its query.
		i := strings.LastIndex(w, "=")
		ok := i > 0
		rawURL, key := w[:max(i, 0)], w[i+1:]
		u, err := url.Parse(rawURL)
		if !ok || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--witness must be URL=KEY, the witness's http(s) address and its public key, not %q", w)
		}
		keys = append(keys, key)
		cfg.witnesses = append(cfg.witnesses, witnessing.Witness{Key: key, Client: &witness.Client{URL: rawURL}})
	}
	verifiers, err := auditlog.NewWitnessVerifiers(keys)
	if err != nil {
		return fmt.Errorf("--witness: %w", err)
	}
	for i, v := range verifiers {
		cfg.witnesses[i].Client.Verifier = v
	}
	switch {
	case cfg.WitnessQuorum == 0:
		cfg.WitnessQuorum = len(cfg.witnesses)
	case cfg.WitnessQuorum < 0 || cfg.WitnessQuorum > len(cfg.witnesses):
		return fmt.Errorf("--witness-quorum must be between 1 and the %d witnesses given, not %d", len(cfg.witnesses), cfg.WitnessQuorum)
	}
	return nil
}
