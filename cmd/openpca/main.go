// Command openpca is a private certificate authority that speaks the AWS
// Private CA API. "openpca serve" runs the server; the other subcommands are
// tools for its operator.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/clientaddr"
	"github.com/openpca/openpca/connlimit"
	"github.com/openpca/openpca/internal/asynclog"
	"github.com/openpca/openpca/internal/nodump"
	"github.com/openpca/openpca/internal/smallfile"
)

// gcPercent is the garbage collector's target unless GOGC is set. The
// server's live heap is small, and collecting less often saves 3 to 8% of
// the CPU per certificate under load against 100, and makes audit reports
// 10% faster, for 22 MiB more memory at a report's peak (measured at 16
// clients, and on a million-certificate report).
const gcPercent = 400

// limitMemory gives the garbage collector a soft memory limit of 90% of
// the container's (its cgroup's), unless GOMEMLIMIT is set or AUTOMEMLIMIT
// is "off". At gcPercent the heap may grow to five times what is live (an
// audit report to S3 peaked at 214 MiB): under a tight limit the collector
// must work harder rather than the server be killed.
func limitMemory(logger *slog.Logger) {
	if _, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		return // the runtime has it already
	}
	limit, err := memlimit.Set(memlimit.WithProvider(memlimit.FromCgroup))
	switch {
	case errors.Is(err, memlimit.ErrNoCgroup), errors.Is(err, memlimit.ErrCgroupsNotSupported):
	case err != nil:
		logger.Warn("the container's memory limit could not be read; the garbage collector has no soft limit", "error", err)
	case limit < 1<<62: // a cgroup without a limit gives about 2^63
		logger.Info("the garbage collector's soft memory limit comes from the container's", "bytes", limit)
	}
}

// spareProcs is how many processors (Ps) the server adds to the CPUs it
// runs on SQLite with. SQLite's reads, writes and fsyncs are system calls
// that keep their P until the runtime's monitor takes it back, and the
// group commit's fsync alone takes 0.3 ms, a thousand times a second under
// load: with a P of each core held so, the other goroutines waited. With
// two spare Ps (alternated runs, 20,000 certificates each), issuance at 16
// clients went from 2,940 and 3,136 certificates a second to 3,557 and
// 3,611, p99 from 11.7 and 11.1 ms to 9.4 and 9.2; at 64 clients from
// 3,578 and 3,639 to 4,424 and 4,534; one spare bought about half of that,
// four no more than two, and 1 and 4 clients moved within noise.
// PostgreSQL's round trips go through the network poller, which holds no
// P, and it gained 0 to 4%.
const spareProcs = 2

// procs is the number of Ps for a server: the runtime's default, unless
// the server runs on SQLite, GOMAXPROCS is not set and the default is not
// below the CPUs. A default below them comes from a CPU limit (a cgroup's
// quota), which Ps beyond it would burn early and be throttled. A default
// equal to the CPUs already runs on all of them at once, quota or not (Go
// takes at least 2): Ps beyond run no more at once than it does.
func procs(def, cpus int, env, sqlite bool) int {
	if env || !sqlite || def < cpus {
		return def
	}
	return cpus + spareProcs
}

// addProcs sets procs' Ps, and logs it, so that an operator who sees more
// Ps than CPUs knows why.
func addProcs(logger *slog.Logger, sqlite bool) {
	_, env := os.LookupEnv("GOMAXPROCS")
	def, cpus := runtime.GOMAXPROCS(0), runtime.NumCPU()
	if n := procs(def, cpus, env, sqlite); n != def {
		runtime.GOMAXPROCS(n)
		logger.Info("the runtime's processors: two more than the CPUs, since SQLite's system calls hold one each while they block", "GOMAXPROCS", n, "cpus", cpus)
	}
}

// The server's log: lines that wait to be written, at most logLines
// (past them, while its reader does not read, lines are dropped, and a
// line says how many); and how long a stopping server waits to write them.
const (
	logLines = 4096
	logDrain = 2 * time.Second
)

// asyncLogger is a logger whose lines, of handler, are written to stderr
// in the background (asynclog), and what writes those left when the
// command ends.
func asyncLogger(stderr io.Writer, handler func(io.Writer) slog.Handler) (*slog.Logger, func()) {
	logs := asynclog.New(stderr, logLines, func(w io.Writer, n int64) {
		slog.New(handler(w)).Error("log lines were dropped: the log's reader fell behind", "dropped", n)
	})
	return slog.New(handler(logs)), func() { logs.Close(logDrain) }
}

func main() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(gcPercent)
	}
	// Before any key is read: the server's and the operator commands'.
	if err := nodump.Disable(os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, "openpca: warning: core dumps could not be turned off:", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A second signal stops the process at once, as if none were caught:
	// an operator need not wait out --shutdown-timeout.
	go func() {
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0) // -h: the usage asked for is printed
		}
		if !errors.Is(err, errUsage) {
			// Written, or given up on after logDrain: a server's log's
			// reader may have stopped reading, and the process must end.
			printed := make(chan struct{})
			go func() {
				fmt.Fprintln(os.Stderr, "openpca:", err)
				close(printed)
			}()
			select {
			case <-printed:
			case <-time.After(logDrain):
			}
		}
		if errors.Is(err, errVerification) {
			os.Exit(1)
		}
		os.Exit(2)
	}
}

// errUsage is the error of a command given without what it needs, whose
// usage is printed instead: the command fails with nothing more to say.
var errUsage = errors.New("usage")

const usage = `usage: openpca <command> [flags]

commands:
  serve         run the AWS Private CA API server
  accounts      create or list accounts (create, list)
  keys          create, list or revoke access keys (create, list, revoke)
  buckets       give buckets to accounts (create, list, remove)
  cas           list every CA with where its key is kept (list)
  operator-log  what operators changed with these commands, the newest first
  master-key    make a master key, rotate to a new one, or wrap it by KMS (new, rotate, wrap)
  backup        write a consistent copy of the database while servers run (SQLite)
  restore       make a new data folder's database from a backup (SQLite), or settle one pg_restore made (PostgreSQL)
  policy        the IAM policies of access keys (attach, detach, list, simulate)
  audit         the tamper-evident audit log (public-key, verify, proof, reports)
  witness       run a witness that cosigns audit logs' checkpoints (serve, public-key)

Run "openpca <command> -h" for a command's flags. Every flag can also be set
with an environment variable: --data-dir is OPENPCA_DATA_DIR (for the
witness's commands, OPENPCA_WITNESS_DATA_DIR).
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if err := subcommand(args, usage, stdout, stderr); err != nil {
		return err
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr, lookupEnv)
	case "accounts":
		return accounts(ctx, args[1:], stdout, stderr, lookupEnv)
	case "keys":
		return keys(ctx, args[1:], stdout, stderr, lookupEnv)
	case "buckets":
		return buckets(ctx, args[1:], stdout, stderr, lookupEnv)
	case "cas":
		return cas(ctx, args[1:], stdout, stderr, lookupEnv)
	case "operator-log":
		return operatorLog(ctx, args[1:], stdout, stderr, lookupEnv)
	case "master-key":
		return masterKeyCommand(ctx, args[1:], stdout, stderr, lookupEnv)
	case "backup":
		return backupCommand(ctx, args[1:], stdout, stderr, lookupEnv)
	case "restore":
		return restoreCommand(ctx, args[1:], stdout, stderr, lookupEnv)
	case "policy":
		return policyCommand(ctx, args[1:], stdout, stderr, lookupEnv)
	case "audit":
		return auditCommand(ctx, args[1:], stdout, stderr, lookupEnv)
	case "witness":
		return witnessCommand(ctx, args[1:], stdout, stderr, lookupEnv)
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// subcommand checks that a command of several (such as "keys") is given
// which one, of names if they are given, before anything is opened: if
// not, it prints usage and fails; asked for help, it prints usage for
// stdout and returns flag.ErrHelp.
func subcommand(args []string, usage string, stdout, stderr io.Writer, names ...string) error {
	usage = strings.TrimSuffix(usage, "\n")
	switch {
	case len(args) == 0:
		fmt.Fprintln(stderr, usage)
		return errUsage
	case isHelp(args[0]):
		fmt.Fprintln(stdout, usage)
		return flag.ErrHelp
	case len(names) > 0 && !slices.Contains(names, args[0]):
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return nil
}

// isHelp reports whether arg asks for a command's usage.
func isHelp(arg string) bool {
	return slices.Contains([]string{"-h", "-help", "--help", "help"}, arg)
}

// parseFlags sets each flag from the command line, or else from its
// OPENPCA_* environment variable: a flag that may be given several times
// (--trusted-proxies, --witness) given in both holds the command line's
// alone, not both lists. The command's arguments are those positional
// names ("KEY-ID NAME", or "" for none), and an argument more or fewer is
// refused: one ignored (a second bucket to remove, a mistyped flag, a new
// master key's file given without its flag) would leave the operator
// believing it done.
func parseFlags(fs *flag.FlagSet, positional string, args []string, lookupEnv func(string) (string, bool)) error {
	envName := envNamer(fs)
	fs.VisitAll(func(f *flag.Flag) { f.Usage += " (env " + envName(f.Name) + ")" })
	// Flags may follow the arguments too, as in "buckets create NAME
	// --account ID": the flag package stops at the first argument.
	var given []string
	// The flag package prints its error and every flag's usage; main
	// prints the error once, after which the whole usage would be noise.
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	for err == nil && fs.NArg() > 0 {
		given = append(given, fs.Arg(0))
		err = fs.Parse(fs.Args()[1:])
	}
	if err == nil {
		err = fs.Parse(append([]string{"--"}, given...))
	}
	fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return err
	case err != nil:
		return fmt.Errorf("%w (\"%s -h\" lists its flags)", err, fs.Name())
	case fs.NArg() != len(strings.Fields(positional)):
		return fmt.Errorf("usage: %s (and flags; got %d arguments: %q)", strings.TrimSpace(fs.Name()+" "+positional), fs.NArg(), fs.Args())
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) {
		set[f.Name] = true
		if slices.Contains(secretFlags, f.Name) || f.Name == "database" && hasPassword(f.Value.String()) {
			fmt.Fprintf(fs.Output(), "openpca: WARNING: --%s on the command line can be read by every user of this machine (ps, /proc/PID/cmdline); give it in %s instead\n",
				f.Name, envName(f.Name))
		}
	})
	serverName := envNamer(flag.NewFlagSet("openpca", flag.ContinueOnError))
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		v, ok := lookupEnv(name)
		switch {
		case set[f.Name] || err != nil:
		case ok:
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s: %w", name, e)
			}
		case name != serverName(f.Name):
			// A witness set up before its variables had their prefix
			// would start in another folder, under a new key, silently.
			if _, ok := lookupEnv(serverName(f.Name)); ok {
				err = fmt.Errorf("%s is set, which a witness no longer reads (it is the server's): give %s, or --%s", serverName(f.Name), name, f.Name)
			}
		}
	})
	if err != nil {
		return err
	}
	// The master key is given itself or as a file, one way: the command
	// line's wins over the environment's (a key left in the environment
	// must not be taken for the file named), and two given on one of
	// them are refused.
	key, file := fs.Lookup("master-key"), fs.Lookup("master-key-file")
	if key == nil || file == nil || key.Value.String() == "" || file.Value.String() == "" {
		return nil
	}
	switch {
	case set[key.Name] == set[file.Name]:
		return fmt.Errorf("--master-key and --master-key-file (%s and %s) name two master keys: give one", envName(key.Name), envName(file.Name))
	case set[key.Name]:
		return file.Value.Set("")
	default:
		return key.Value.Set("")
	}
}

// envNamer returns what names the environment variable of a flag of fs:
// --data-dir is OPENPCA_DATA_DIR, but OPENPCA_WITNESS_DATA_DIR for a
// witness's commands, which an auditor may run beside a server whose
// environment is set: they must not take its folder or its address.
func envNamer(fs *flag.FlagSet) func(flag string) string {
	prefix := "OPENPCA_"
	if strings.HasPrefix(fs.Name(), "openpca witness ") {
		prefix = "OPENPCA_WITNESS_"
	}
	return func(flag string) string {
		return prefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
	}
}

// hasPassword reports whether a database address holds a password.
func hasPassword(address string) bool {
	u, err := url.Parse(address)
	if err != nil {
		return false
	}
	_, ok := u.User.Password()
	return ok || u.Query().Has("password")
}

// secretFlags are the flags that take a secret.
var secretFlags = []string{"master-key", "root-secret-access-key"}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	fs := flag.NewFlagSet("openpca serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := app.DefaultConfig()
	var (
		logLevel         slog.Level
		logFormat        string
		shutdownTimeout  time.Duration
		pprofListen      string
		metricsListen    string
		revocationListen string
		pinFile          string
	)
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "address to serve the API on")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "where relying parties reach this server, for the OCSP responder and local CRLs in certificates (default http(s)://<listen>)")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "folder for the database, the master key and local buckets")
	fs.StringVar(&cfg.Database, "database", "", "a postgres:// address to keep the store in PostgreSQL, shared by several servers (default: SQLite in the data folder)")
	fs.StringVar(&cfg.Region, "region", cfg.Region, "region in the ARNs of new CAs; the database records the first server's, and refuses another")
	fs.StringVar(&cfg.AccountID, "account-id", cfg.AccountID, "12-digit id of the default account, which owns the buckets no account was given; the database records the first server's, and refuses another")
	fs.StringVar(&cfg.MasterKeyFile, "master-key-file", "", "file holding the base64 master key that seals CA keys; created if missing (default <data-dir>/master.key)")
	fs.StringVar(&cfg.MasterKey, "master-key", "", "the base64 master key itself, instead of a file; prefer the environment variable")
	fs.StringVar(&cfg.MasterKeyKMSKey, "master-key-kms-key", "", "a symmetric KMS key (at --kms-endpoint, or AWS KMS) that wraps the master key in its file, so that the data folder holds no usable key")
	previous := previousMasterKeyFlag(fs)
	fs.IntVar(&cfg.MaxCAsPerAccount, "max-cas-per-account", cfg.MaxCAsPerAccount, "most CAs an account may have, deleted ones included until their restoration period ends")
	fs.Func("trusted-proxies", "comma-separated networks or addresses of the proxies in front of the server whose X-Forwarded-For and X-Forwarded-Proto it believes, for aws:SourceIp and aws:SecureTransport (the API's and the console's) and the limits of an address; they must hold only such proxies (repeatable; default none: the connection's address)", func(list string) error {
		p, err := clientaddr.Parse(list)
		cfg.TrustedProxies = append(cfg.TrustedProxies, p...)
		return err
	})
	fs.IntVar(&cfg.MaxConnections, "max-connections", cfg.MaxConnections, "most connections the API keeps open at once; past it, a new one takes the place of the one idle the longest, or waits, those of addresses whose connections were cut off lately last (0: no bound)")
	fs.IntVar(&cfg.MaxConnectionsPerNetwork, "max-connections-per-network", cfg.MaxConnectionsPerNetwork, "most of them from one address (an IPv6 /64), those of --trusted-proxies apart; past it, a new one is closed at once (0: no bound)")
	fs.Float64Var(&cfg.MaxHandshakeRatePerNetwork, "max-handshake-rate-per-network", cfg.MaxHandshakeRatePerNetwork, "over TLS, most connections a second, each a handshake, one address (an IPv6 /64) opens to the API, in bursts of as many, those of --trusted-proxies apart; past it, a new one is closed at once (0: no bound)")
	fs.Float64Var(&cfg.AccountRequestRate, "account-request-rate", 0, "most API requests and console pages a second of one account, past which they are ThrottlingException (429 in the console), which clients retry (0: no bound, else 0.001 or more); for a server that several accounts share")
	fs.StringVar(&cfg.ObjectStore, "object-store", cfg.ObjectStore, "where audit reports and CRLs go: local (bucket B is the folder <data-dir>/s3/B) or s3 (default local, or s3 with --s3-endpoint)")
	fs.StringVar(&cfg.S3Endpoint, "s3-endpoint", "", "URL of an S3-compatible server for audit reports and CRLs (implies --object-store s3); credentials come from the standard AWS configuration")
	fs.StringVar(&cfg.RootAccessKeyID, "root-access-key-id", "", "access key id of the default account; without it the first start makes one and prints it")
	fs.StringVar(&cfg.RootSecretAccessKey, "root-secret-access-key", "", "its secret; prefer the environment variable")
	fs.BoolVar(&cfg.InsecureNoAuth, "insecure-no-auth", false, "accept unsigned requests, for the default account (development only)")
	fs.BoolVar(&cfg.NoConsole, "no-console", false, "do not serve the web console under /console/")
	fs.DurationVar(&cfg.ConsoleSearchTime, "console-search-time", cfg.ConsoleSearchTime, "how long a console search of a CA's certificates by text, or its charts' counts, may read before it is given up")
	fs.StringVar(&cfg.KeyStore, "key-store", cfg.KeyStore, "where the keys of new CAs are kept: software (sealed with the master key), pkcs11 or kms")
	fs.StringVar(&cfg.PKCS11.Module, "pkcs11-module", "", "the PKCS#11 library of the token that keeps CA keys, such as /usr/lib/softhsm/libsofthsm2.so")
	fs.StringVar(&cfg.PKCS11.TokenLabel, "pkcs11-token-label", "", "the label of that token")
	fs.StringVar(&pinFile, "pkcs11-pin-file", "", "a file holding the token's user PIN; without it, the PIN is read from OPENPCA_PKCS11_PIN")
	fs.StringVar(&cfg.AuditKeyStore, "audit-key-store", cfg.AuditKeyStore, "where a new database's audit log key is made: software (sealed with the master key) or pkcs11; once made, it stays there")
	fs.StringVar(&cfg.PKCS11Standard, "pkcs11-standard", "", "the KeyStorageSecurityStandard the token is certified to meet, such as FIPS_140_2_LEVEL_3_OR_HIGHER (default none)")
	fs.StringVar(&cfg.KMSEndpoint, "kms-endpoint", "", "URL of a KMS-compatible server for the kms key store (default AWS KMS); credentials come from the standard AWS configuration")
	fs.Func("kms-key-policy", "a file with the key policy (JSON) each new CA key in KMS is made with, instead of KMS's default, which lets the account's IAM policies grant kms:Sign to anyone", func(path string) error {
		b, err := smallfile.Read(path)
		if err == nil && len(bytes.TrimSpace(b)) == 0 {
			err = fmt.Errorf("%s is empty", path)
		}
		cfg.KMSKeyPolicy = string(b)
		return err
	})
	fs.StringVar(&cfg.KMSStandard, "kms-standard", "", "the KeyStorageSecurityStandard the kms store meets (default FIPS_140_2_LEVEL_3_OR_HIGHER on AWS KMS, none with --kms-endpoint)")
	fs.BoolVar(&cfg.RequireHardwareKeys, "require-hardware-keys", false, "refuse to create CAs whose keys would be kept in software")
	fs.BoolVar(&cfg.AllowUnmetKeyStandard, "allow-unmet-key-standard", false, "accept a KeyStorageSecurityStandard no key store is declared to meet, and report it as asked")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert", "", "PEM certificate (chain) to serve HTTPS with")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.BoolVar(&cfg.TLSSelfSigned, "tls-self-signed", false, "serve HTTPS with a certificate from a local CA kept in <data-dir>/tls, whose bundle path is printed")
	fs.BoolVar(&cfg.OCSPSignedByCA, "ocsp-signed-by-ca", false, "have each CA sign its OCSP answers with its own key, each signing in its log, instead of by a delegated responder whose certificate it issues")
	fs.DurationVar(&cfg.OCSPMaxAge, "ocsp-max-age", 0, "how long HTTP caches in front of the server (a CDN) may serve an OCSP answer without asking again, never past its nextUpdate; a revocation may take as long to reach relying parties behind them (0: caches ask each time)")
	fs.IntVar(&cfg.OCSPSigners, "ocsp-signers", 0, "how many OCSP answers this server signs at once with its own processors; past a second's wait for one, an answer is tryLater (0: half the CPUs, one at least)")
	fs.IntVar(&cfg.OCSPStoreSigners, "ocsp-store-signers", cfg.OCSPStoreSigners, "how many OCSP answers CAs sign at once in each token or KMS (with --ocsp-signed-by-ca), no CA more than half of them (one at least); past a second's wait for one, an answer is tryLater")
	fs.IntVar(&cfg.OCSPUnknownBudget, "ocsp-unknown-budget", cfg.OCSPUnknownBudget, "bytes that this server's OCSP answers for serials a CA never issued may add to its key-use log per hour where the CA signs them itself (each server of a database has its own); past it they get tryLater")
	fs.DurationVar(&cfg.AuditReportInterval, "audit-report-interval", cfg.AuditReportInterval, "least time between two audit reports of one CA")
	fs.DurationVar(&cfg.AuditReportLease, "audit-report-lease", cfg.AuditReportLease, "how long a server holds a report it generates without renewing; another server takes it over after")
	fs.IntVar(&cfg.ReportWorkers, "report-workers", cfg.ReportWorkers, "audit reports this server generates at once; 0 for none (other servers sharing the database generate)")
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: DEBUG, INFO, WARN or ERROR")
	fs.StringVar(&logFormat, "log-format", "json", "log format: json or text")
	fs.Func("witness", "a witness to ask for cosignatures of the audit log's checkpoints: URL=KEY, its address and public key; repeat for each", func(v string) error {
		cfg.Witnesses = append(cfg.Witnesses, v)
		return nil
	})
	fs.IntVar(&cfg.WitnessQuorum, "witness-quorum", 0, "how many witnesses must cosign a checkpoint for it to count (default all); more than half of them, as auditors require")
	fs.DurationVar(&cfg.ReportWitnessWait, "report-witness-wait", cfg.ReportWitnessWait, "how long an audit report waits for witnesses to cosign its log; past it, it goes without")
	fs.StringVar(&revocationListen, "revocation-listen", "", "an address to serve the OCSP responder and local CRLs on in plain HTTP as well, which relying parties fetch them over (NSS and GnuTLS fetch no OCSP answer over HTTPS); certificates then name them there (or at --revocation-url)")
	fs.StringVar(&cfg.RevocationURL, "revocation-url", "", "where relying parties reach the OCSP responder and local CRLs, for the certificates to name (default http://<revocation-listen> with it, else the public URL)")
	fs.StringVar(&metricsListen, "metrics-listen", "", "an address to serve /metrics on instead of the API's: the metrics count every account's CAs and requests, which a server shared by accounts keeps from them")
	fs.StringVar(&pprofListen, "pprof-listen", "", "an address to serve Go's profiler on (/debug/pprof/), for finding where time goes; off by default, and never for the outside")
	fs.DurationVar(&shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long to let requests in flight finish on SIGINT or SIGTERM")
	if err := parseFlags(fs, "", args, lookupEnv); err != nil {
		return err
	}
	cfg.Stdout = stdout
	if shutdownTimeout < 0 {
		return fmt.Errorf("--shutdown-timeout must be 0 (cut requests off at once) or more, not %s", shutdownTimeout)
	}
	if err := previous(&cfg, lookupEnv, stderr); err != nil {
		return err
	}
	// The PIN comes from a file or the environment, never from a flag that
	// ps would show.
	if pinFile != "" {
		pin, err := readSecretFile("--pkcs11-pin-file", pinFile, stderr)
		if err != nil {
			return err
		}
		cfg.PKCS11.PIN = pin
	} else if pin, ok := lookupEnv("OPENPCA_PKCS11_PIN"); ok {
		cfg.PKCS11.PIN = pin
	}
	opts := &slog.HandlerOptions{Level: logLevel}
	handler := func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, opts) }
	switch logFormat {
	case "json":
	case "text":
		handler = func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, opts) }
	default:
		return fmt.Errorf("--log-format must be json or text, not %q", logFormat)
	}
	var closeLogs func()
	cfg.Logger, closeLogs = asyncLogger(stderr, handler)
	defer closeLogs()
	// SIGHUP (a service manager's reload, a terminal closed) reloads the
	// TLS certificate once serving; by default it would end the server at
	// once, cutting requests in flight, or a migration.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	limitMemory(cfg.Logger)
	addProcs(cfg.Logger, cfg.Database == "")

	if pprofListen != "" {
		pl, err := net.Listen("tcp", pprofListen)
		if err != nil {
			return fmt.Errorf("--pprof-listen: %w", err)
		}
		defer pl.Close()
		if ip, ok := pl.Addr().(*net.TCPAddr); ok && !ip.IP.IsLoopback() {
			cfg.Logger.Warn("the profiler answers beyond this machine, without authentication: give --pprof-listen a loopback address", "pprof_listen", pl.Addr().String())
		}
		go (&http.Server{Handler: profiler(), ReadHeaderTimeout: 10 * time.Second}).Serve(pl)
		cfg.Logger.Info("serving the profiler", "url", "http://"+pl.Addr().String()+"/debug/pprof/")
	}
	cfg.PrivateMetrics = metricsListen != ""
	// The addresses are taken before the server opens its database, which
	// it may migrate: a start refused for an address in use leaves it as
	// it was.
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	// A port the system chose is the one certificates must name; the
	// host stays as given.
	if host, port, _ := net.SplitHostPort(cfg.Listen); port == "0" && cfg.PublicURL == "" {
		cfg.Listen = net.JoinHostPort(host, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	var rl net.Listener
	if revocationListen != "" {
		if rl, err = net.Listen("tcp", revocationListen); err != nil {
			l.Close()
			return fmt.Errorf("--revocation-listen: %w", err)
		}
		defer rl.Close()
		if cfg.RevocationURL == "" {
			// The port the system chose, if asked to; the host as given,
			// or, for every address, the public URL's host, which relying
			// parties reach (else every address, which Open warns of).
			host, _, _ := net.SplitHostPort(revocationListen)
			if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
				host = "0.0.0.0"
				if u, err := url.Parse(cfg.PublicURL); cfg.PublicURL != "" && err == nil && u.Hostname() != "" {
					host = u.Hostname()
				}
			}
			cfg.RevocationURL = "http://" + net.JoinHostPort(host, strconv.Itoa(rl.Addr().(*net.TCPAddr).Port))
		}
	}
	var ml net.Listener
	if metricsListen != "" {
		if ml, err = net.Listen("tcp", metricsListen); err != nil {
			l.Close()
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		defer ml.Close()
	}
	a, err := app.Open(ctx, cfg)
	if err != nil {
		l.Close()
		return err
	}
	if ml != nil {
		go serveMetrics(ml, a.Metrics(), cfg.Logger)
		cfg.Logger.Info("serving the metrics", "url", "http://"+ml.Addr().String()+"/metrics")
	}
	served := make(chan error, 2)
	go func() { served <- a.Serve(l) }()
	if rl != nil {
		go func() {
			if err := a.ServeRevocation(rl); err != nil {
				served <- fmt.Errorf("--revocation-listen: %w", err)
			}
		}()
	}
	var superseded error
wait:
	for {
		select {
		case err := <-served:
			a.Close()
			return err
		case <-ctx.Done():
			break wait
		case superseded = <-a.Superseded():
			break wait
		case <-hup:
			switch reloaded, err := a.ReloadTLS(); {
			case err != nil:
				cfg.Logger.Error("SIGHUP: reloading the TLS certificate failed; the one loaded before is served", "error", err)
			case reloaded:
				cfg.Logger.Info("SIGHUP: reloaded the TLS certificate")
			default:
				cfg.Logger.Info("SIGHUP: no TLS certificate is served yet, or at all: nothing to reload")
			}
		}
	}
	cfg.Logger.Info("shutting down: finishing requests in flight", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	shut := a.Shutdown(sctx)
	if errors.Is(shut, context.DeadlineExceeded) {
		shut = fmt.Errorf("requests still in flight after --shutdown-timeout (%s) were cut off: %w", shutdownTimeout, shut)
	}
	err = errors.Join(superseded, shut)
	if serr := <-served; serr != nil {
		err = errors.Join(err, serr)
	}
	if err == nil {
		cfg.Logger.Info("stopped")
	}
	return err
}

// The metrics listener's bounds. It serves a scraper or two, but whoever
// else reaches its address must no more hold the server's memory, or its
// file descriptors (which the API's listener and the database share),
// than on the API's: with Go's defaults, a connection held 1 MiB of
// headers for 10 s, and one idle after a request stayed open for good.
const (
	metricsConnections           = 64
	metricsConnectionsPerNetwork = 8
	metricsTimeout               = 10 * time.Second
	metricsIdle                  = 2 * time.Minute
	metricsHeaderBytes           = 16 << 10
)

// serveMetrics serves the metrics h (app.App.Metrics) on l, within the
// bounds above.
func serveMetrics(l net.Listener, h http.Handler, logger *slog.Logger) error {
	limited := connlimit.Listen(l, connlimit.Limits{Total: metricsConnections, PerNetwork: metricsConnectionsPerNetwork, Logger: logger})
	srv := &http.Server{Handler: noBody(h), ReadHeaderTimeout: metricsTimeout, ReadTimeout: metricsTimeout,
		WriteTimeout: time.Minute, IdleTimeout: metricsIdle, MaxHeaderBytes: metricsHeaderBytes}
	limited.Limit(srv)
	return srv.Serve(limited)
}

// noBody answers a request with a body 400, at once, and ends its
// connection, reading none of the body: a scraper sends none. net/http
// read what a handler left of a body before the answer, for the
// listener's read timeout: a body declared and never sent held a
// connection, which connlimit does not take back while in a request, for
// 10 s, and eight addresses that sent them again as they were answered
// held all 64, while scrapes waited.
func noBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 {
			h.ServeHTTP(w, r)
			return
		}
		// What is left of the body is not read after the answer either.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
		w.Header().Set("Connection", "close")
		http.Error(w, "a request to the metrics listener has no body", http.StatusBadRequest)
	})
}

// readSecretFile reads the secret (a master key, a PIN) in the file of
// flag, without its newline, and warns if others than its owner can read
// the file: "openpca master-key new > new.key" makes one as the umask
// says, often readable by every user.
func readSecretFile(flag, path string, stderr io.Writer) (string, error) {
	b, err := smallfile.Read(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(stderr, "openpca: WARNING: %s %s can be read by others than its owner (mode %s): chmod 600 it\n", flag, path, fi.Mode().Perm())
	}
	return strings.TrimSpace(string(b)), nil
}

// profiler serves Go's profiles, as net/http/pprof does on its default
// mux, on a mux of its own; not the command line, which may hold a secret.
func profiler() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
