package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/auth"
	"github.com/openpca/openpca/seal"
)

// openAdmin parses the flags of an operator command (where the data folder
// and the master key are, and the command's own, which more defines) and
// its arguments, those positional names (see parseFlags), and opens the
// data folder.
func openAdmin(ctx context.Context, name, positional string, args []string, stderr io.Writer, lookupEnv func(string) (string, bool),
	more func(*flag.FlagSet)) (*app.Admin, *flag.FlagSet, error) {
	fs := flag.NewFlagSet("openpca "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, previous := adminFlags(fs)
	more(fs)
	if err := parseFlags(fs, positional, args, lookupEnv); err != nil {
		return nil, nil, err
	}
	if err := previous(cfg, lookupEnv, stderr); err != nil {
		return nil, nil, err
	}
	a, err := app.OpenAdmin(ctx, *cfg)
	return a, fs, err
}

// record adds what an operator's command changed to the operator log. The
// change is made by then: a failure to record it is warned of, not taken
// for the command's, so that a script does not make a second key, say.
func record(ctx context.Context, a *app.Admin, stderr io.Writer, command, detail string) {
	if err := recordAction(ctx, a, command, detail); err != nil {
		fmt.Fprintf(stderr, "openpca: done, but not recorded in the operator log: %v\n", err)
	}
}

func recordAction(ctx context.Context, a *app.Admin, command, detail string) error {
	action := &openpca.OperatorAction{At: time.Now().UTC(), User: osUser(), Command: command, Detail: detail}
	action.Host, _ = os.Hostname()
	return a.Store.RecordOperatorAction(ctx, action)
}

// recordOpening is record for the master key's commands, which open the
// data only once done, with the key they leave.
func recordOpening(ctx context.Context, cfg app.Config, stderr io.Writer, command, detail string) {
	a, err := app.OpenAdmin(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "openpca: done, but not recorded in the operator log: %v\n", err)
		return
	}
	defer a.Close()
	record(ctx, a, stderr, command, detail)
}

// osUser names the user running the command, and whom sudo ran it for.
func osUser() string {
	name := strconv.Itoa(os.Getuid())
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if by := os.Getenv("SUDO_USER"); by != "" {
		name += " (sudo by " + by + ")"
	}
	return name
}

// adminFlags defines the flags that say where a server's data is, and
// returns what reads the previous master key once they are parsed.
func adminFlags(fs *flag.FlagSet) (*app.Config, func(*app.Config, func(string) (string, bool), io.Writer) error) {
	cfg := app.DefaultConfig()
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "the server's data folder")
	// Not given, the one the database records: a command given another
	// than the servers' is refused, and one given none has no reason to be.
	fs.StringVar(&cfg.AccountID, "account-id", "", "the server's default account (its --account-id), which the database records; another is refused (default: the recorded one, else "+app.DefaultAccountID+")")
	fs.StringVar(&cfg.Database, "database", "", "the server's postgres:// address, if it keeps its store in PostgreSQL")
	fs.StringVar(&cfg.MasterKeyFile, "master-key-file", "", "file holding the base64 master key (default <data-dir>/master.key)")
	fs.StringVar(&cfg.MasterKey, "master-key", "", "the base64 master key itself; prefer the environment variable")
	fs.StringVar(&cfg.KMSEndpoint, "kms-endpoint", "", "a KMS-compatible server that unwraps a master key wrapped by KMS (default AWS KMS)")
	fs.StringVar(&cfg.MasterKeyKMSKey, "master-key-kms-key", "", "the symmetric KMS key that wraps the master key in its file")
	return &cfg, previousMasterKeyFlag(fs)
}

// previousMasterKeyFlag defines --previous-master-key-file, and returns
// what sets the previous master key, from that file or from
// OPENPCA_PREVIOUS_MASTER_KEY, once the flags are parsed.
func previousMasterKeyFlag(fs *flag.FlagSet) func(*app.Config, func(string) (string, bool), io.Writer) error {
	var file string
	fs.StringVar(&file, "previous-master-key-file", "", "a file holding the master key being rotated away from, which still opens what it sealed (or set OPENPCA_PREVIOUS_MASTER_KEY)")
	return func(cfg *app.Config, lookupEnv func(string) (string, bool), stderr io.Writer) error {
		if file != "" {
			k, err := readMasterKeyFile("--previous-master-key-file", file, cfg.DataDir, stderr)
			if err != nil {
				return err
			}
			cfg.PreviousMasterKeys = append(cfg.PreviousMasterKeys, k)
		} else if k, ok := lookupEnv("OPENPCA_PREVIOUS_MASTER_KEY"); ok {
			cfg.PreviousMasterKeys = append(cfg.PreviousMasterKeys, k)
		}
		return nil
	}
}

// readMasterKeyFile reads a master key from the file of flag, as
// --master-key-file's is read: refused if another user could have
// written it (app.CheckKeyFile). A new master key of theirs would have
// every CA key resealed with a key they know; a previous one, values of
// theirs opened as the server's.
func readMasterKeyFile(flag, path, dataDir string, stderr io.Writer) (string, error) {
	if err := app.CheckKeyFile(path, dataDir); err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	return readSecretFile(flag, path, stderr)
}

// masterKeyCommand runs "openpca master-key new|rotate".
func masterKeyCommand(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	usage := "usage: openpca master-key new | rotate [--new-master-key-file FILE] | wrap --master-key-kms-key KEY  [--data-dir DIR] [--database URL] [--master-key-file FILE]"
	if err := subcommand(args, usage, stdout, stderr); err != nil {
		return err
	}
	switch args[0] {
	case "new":
		// It takes no flags, but its arguments are parsed all the same:
		// "new -h" asks for its usage, and "new FILE" is refused, rather
		// than either printing a key.
		fs := flag.NewFlagSet("openpca master-key new", flag.ContinueOnError)
		fs.SetOutput(stderr)
		if err := parseFlags(fs, "", args[1:], lookupEnv); err != nil {
			return err
		}
		key, err := app.NewMasterKey()
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, key)
		return nil
	case "wrap":
		fs := flag.NewFlagSet("openpca master-key wrap", flag.ContinueOnError)
		fs.SetOutput(stderr)
		cfg, _ := adminFlags(fs)
		if err := parseFlags(fs, "", args[1:], lookupEnv); err != nil {
			return err
		}
		if err := app.WrapMasterKey(ctx, *cfg); err != nil {
			return err
		}
		recordOpening(ctx, *cfg, stderr, "master-key wrap", "the master key's file wrapped by KMS key "+cfg.MasterKeyKMSKey)
		fmt.Fprintf(stdout, "The master key's file is wrapped by KMS key %s; start the servers with --master-key-kms-key %s.\n", cfg.MasterKeyKMSKey, cfg.MasterKeyKMSKey)
		return nil
	case "rotate":
		fs := flag.NewFlagSet("openpca master-key rotate", flag.ContinueOnError)
		fs.SetOutput(stderr)
		cfg, previous := adminFlags(fs)
		var newFile string
		fs.StringVar(&newFile, "new-master-key-file", "", "a file holding the new master key (default: a new random key); on SQLite, the new key replaces the master key's file")
		if err := parseFlags(fs, "", args[1:], lookupEnv); err != nil {
			return err
		}
		if cfg.Database != "" && newFile == "" {
			// A key no running server holds would lock them all out.
			return errors.New("on PostgreSQL, name the new master key the servers already open with (--new-master-key-file), after the rolling restarts the README describes")
		}
		if err := previous(cfg, lookupEnv, stderr); err != nil {
			return err
		}
		var newKey string
		if newFile != "" {
			var err error
			if newKey, err = readMasterKeyFile("--new-master-key-file", newFile, cfg.DataDir, stderr); err != nil {
				return err
			}
		} else {
			var err error
			if newKey, err = app.NewMasterKey(); err != nil {
				return err
			}
			if cfg.MasterKey != "" {
				// There is no file to put it in: the operator keeps it.
				fmt.Fprintf(stdout, "The new master key is shown this once; the servers need it (OPENPCA_MASTER_KEY):\n%s\n", newKey)
			}
		}
		if err := app.RotateMasterKey(ctx, *cfg, newKey); err != nil {
			return err
		}
		// Recorded with the new key, as the servers will open the data.
		after := *cfg
		switch {
		case after.MasterKey != "":
			after.MasterKey = newKey
		case after.Database != "": // the old key's file stays as it was
			after.MasterKeyFile = newFile
		}
		recordOpening(ctx, after, stderr, "master-key rotate", "every sealed secret resealed with a new master key")
		fmt.Fprintln(stdout, "Everything the master key sealed is sealed with the new one. Start the servers with it, without a previous master key.")
		if cfg.Database == "" {
			fmt.Fprintln(stdout, "Backups made before now open only with the old key, which is not kept: keep it with them, or make a new backup (openpca backup).")
		} else {
			fmt.Fprintln(stdout, "Dumps of the database made before now open only with the old key: keep it with them, or dump the database anew.")
		}
		return nil
	}
	fmt.Fprintln(stderr, usage)
	return fmt.Errorf("unknown master-key command %q", args[0])
}

// accounts runs "openpca accounts create|list".
func accounts(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if err := subcommand(args, "usage: openpca accounts create [--id ID] [--name NAME] | list", stdout, stderr, "create", "list"); err != nil {
		return err
	}
	var id, name string
	a, _, err := openAdmin(ctx, "accounts "+args[0], "", args[1:], stderr, lookupEnv, func(fs *flag.FlagSet) {
		if args[0] == "create" {
			fs.StringVar(&id, "id", "", "the new account's 12-digit id (default: a random one)")
			fs.StringVar(&name, "name", "", "a name for the account")
		}
	})
	if err != nil {
		return err
	}
	defer a.Close()
	switch args[0] {
	case "create":
		if id == "" {
			if id, err = auth.NewAccountID(); err != nil {
				return err
			}
		}
		if !openpca.ValidAccountID(id) {
			return fmt.Errorf("--id must be 12 digits, not %q", id)
		}
		if err := checkName("--name", name); err != nil {
			return err
		}
		err := a.Store.CreateAccount(ctx, &openpca.Account{ID: id, Name: name, CreatedAt: time.Now().UTC()})
		if errors.Is(err, openpca.ErrConflict) {
			return fmt.Errorf("account %s already exists", id)
		}
		if err != nil {
			return err
		}
		record(ctx, a, stderr, "accounts create", fmt.Sprintf("account %s, named %q", id, name))
		fmt.Fprintln(stdout, id)
		return nil
	case "list":
		list, err := a.Store.ListAccounts(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ACCOUNT\tNAME\tCREATED")
		for _, acc := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", acc.ID, printable(acc.Name), acc.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	}
	return fmt.Errorf("unknown accounts command %q", args[0])
}

// keys runs "openpca keys create|list|revoke".
func keys(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if err := subcommand(args, "usage: openpca keys create --account ID [--read-only] [--policy FILE]... | list [--account ID] | revoke KEY-ID", stdout, stderr, "create", "list", "revoke"); err != nil {
		return err
	}
	var account string
	var readOnly bool
	var policies []openpca.KeyPolicy
	a, fs, err := openAdmin(ctx, "keys "+args[0], map[string]string{"revoke": "KEY-ID"}[args[0]], args[1:], stderr, lookupEnv, func(fs *flag.FlagSet) {
		if args[0] == "create" || args[0] == "list" {
			fs.StringVar(&account, "account", "", "the account of the keys")
		}
		if args[0] == "create" {
			fs.BoolVar(&readOnly, "read-only", false, "attach the managed ReadOnly policy, which allows the Describe*, Get* and List* operations: alone, the key may call those only; with --policy, what that policy allows too, unless either denies it (a key's policies add up, as IAM's do)")
			fs.Func("policy", "attach the IAM policy in this JSON file, named after the file (repeatable)", func(path string) error {
				kp, err := readPolicyFile(path, "")
				policies = append(policies, kp)
				return err
			})
		}
	})
	if err != nil {
		return err
	}
	defer a.Close()
	now := time.Now().UTC()
	switch args[0] {
	case "create":
		if account == "" {
			return errors.New("--account is required")
		}
		key, secret, err := auth.NewAccessKey(a.Sealer, account, now)
		if err != nil {
			return err
		}
		if readOnly {
			policies = append(policies, openpca.KeyPolicy{Name: "ReadOnly", Managed: true})
		}
		if err := checkKeyPolicies(policies); err != nil {
			return err
		}
		key.Policies = policies
		if err := a.Store.PutAccessKey(ctx, key); errors.Is(err, openpca.ErrNotFound) {
			return fmt.Errorf("there is no account %s; create it with openpca accounts create", account)
		} else if err != nil {
			return err
		}
		record(ctx, a, stderr, "keys create", fmt.Sprintf("key %s of account %s, policies: %s", key.ID, account, policyRecord(key.Policies)))
		fmt.Fprintf(stdout, "AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", key.ID, secret)
		return nil
	case "list":
		list, err := a.Store.ListAccessKeys(ctx, account)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ACCESS KEY\tACCOUNT\tCREATED\tACCESS\tSTATUS")
		for _, k := range list {
			access, status := policyNames(k.Policies), "active"
			if _, err := auth.ResolvePolicies(k.Policies); err != nil {
				// As the server warns at start: such a key is refused.
				status = "denied: its policy no longer reads (openpca policy detach)"
			}
			if !k.RevokedAt.IsZero() {
				status = "revoked " + k.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.AccountID, k.CreatedAt.Format(time.RFC3339), access, status)
		}
		return tw.Flush()
	case "revoke":
		if err := a.Store.RevokeAccessKey(ctx, fs.Arg(0), now); errors.Is(err, openpca.ErrNotFound) {
			return fmt.Errorf("there is no access key %s", fs.Arg(0))
		} else if err != nil {
			return err
		}
		record(ctx, a, stderr, "keys revoke", "key "+fs.Arg(0))
		fmt.Fprintf(stdout, "revoked %s\n", fs.Arg(0))
		return nil
	}
	return fmt.Errorf("unknown keys command %q", args[0])
}

// keepCRLsOwn refuses to give bucket to owner while CAs of other accounts
// publish their CRLs there: they would go on writing to another account's
// bucket, and naming it in their certificates. A bucket is checked when a
// CA's CRL configuration names it, not at each CRL.
func keepCRLsOwn(ctx context.Context, a *app.Admin, bucket, owner string) error {
	accounts, err := a.Store.ListAccounts(ctx)
	if err != nil {
		return err
	}
	ids := []string{a.AccountID}
	for _, acct := range accounts {
		if acct.ID != a.AccountID {
			ids = append(ids, acct.ID)
		}
	}
	now := time.Now()
	for _, id := range ids {
		if id == owner {
			continue
		}
		for after := (openpca.CACursor{}); ; {
			cas, err := a.Store.ListCAs(ctx, id, after, 100)
			if err != nil {
				return err
			}
			for _, ca := range cas {
				if cfg := ca.CRL(); cfg != nil && cfg.S3BucketName == bucket && !ca.Gone(now) {
					return fmt.Errorf("CA %s of account %s publishes its CRLs to bucket %s: change its CRL configuration first", ca.ARN, ca.AccountID, bucket)
				}
			}
			if len(cas) < 100 {
				break
			}
			after = openpca.CACursor{CreatedAt: cas[len(cas)-1].CreatedAt, ID: cas[len(cas)-1].ID}
		}
	}
	return nil
}

// buckets runs "openpca buckets create|list|remove".
func buckets(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if err := subcommand(args, "usage: openpca buckets create NAME --account ID [--object-store local|s3] | list | remove NAME", stdout, stderr, "create", "list", "remove"); err != nil {
		return err
	}
	var account, objectStore string
	a, fs, err := openAdmin(ctx, "buckets "+args[0], map[string]string{"create": "NAME", "remove": "NAME"}[args[0]], args[1:], stderr, lookupEnv, func(fs *flag.FlagSet) {
		if args[0] == "create" {
			fs.StringVar(&account, "account", "", "the account that owns the bucket")
			fs.StringVar(&objectStore, "object-store", "local", "the server's object store: local (the bucket's folder is made in the data folder) or s3 (the bucket must exist there; it is checked when a CA's CRLs or a report name it)")
		}
	})
	if err != nil {
		return err
	}
	defer a.Close()
	name := func() (string, error) { return fs.Arg(0), openpca.CheckBucketName(fs.Arg(0)) }
	switch args[0] {
	case "create":
		bucket, err := name()
		if err != nil {
			return err
		}
		if account == "" {
			return errors.New("--account is required")
		}
		if objectStore != "local" && objectStore != "s3" {
			return fmt.Errorf("--object-store must be local or s3, not %q", objectStore)
		}
		if err := keepCRLsOwn(ctx, a, bucket, account); err != nil {
			return err
		}
		if objectStore == "local" {
			if err := a.CheckLocalBuckets(); err != nil {
				return err
			}
		}
		err = a.Store.PutBucket(ctx, &openpca.Bucket{Name: bucket, AccountID: account, CreatedAt: time.Now().UTC()})
		switch {
		case errors.Is(err, openpca.ErrNotFound):
			return fmt.Errorf("there is no account %s; create it with openpca accounts create", account)
		case errors.Is(err, openpca.ErrConflict):
			b, _ := a.Store.FindBucket(ctx, bucket)
			return fmt.Errorf("bucket %s belongs to account %s; openpca buckets remove %s first to give it to another", bucket, b.AccountID, bucket)
		case err != nil:
			return err
		}
		if objectStore == "local" {
			if err := a.MakeLocalBucket(bucket); err != nil {
				return err
			}
		}
		record(ctx, a, stderr, "buckets create", fmt.Sprintf("bucket %s of account %s", bucket, account))
		fmt.Fprintf(stdout, "bucket %s belongs to account %s\n", bucket, account)
		return nil
	case "list":
		list, err := a.Store.ListBuckets(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "BUCKET\tACCOUNT\tSINCE")
		for _, b := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", b.Name, b.AccountID, b.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	case "remove":
		bucket, err := name()
		if err != nil {
			return err
		}
		if err := keepCRLsOwn(ctx, a, bucket, a.AccountID); err != nil {
			return err
		}
		if err := a.Store.DeleteBucket(ctx, bucket); errors.Is(err, openpca.ErrNotFound) {
			return fmt.Errorf("bucket %s has no owner recorded", bucket)
		} else if err != nil {
			return err
		}
		record(ctx, a, stderr, "buckets remove", "bucket "+bucket)
		fmt.Fprintf(stdout, "bucket %s belongs to the default account again; its objects stay where they are\n", bucket)
		return nil
	}
	return fmt.Errorf("unknown buckets command %q", args[0])
}

// operatorLog runs "openpca operator-log": the operators' latest actions,
// the newest first.
func operatorLog(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	var limit int
	a, _, err := openAdmin(ctx, "operator-log", "", args, stderr, lookupEnv, func(fs *flag.FlagSet) {
		fs.IntVar(&limit, "limit", 100, "how many of the latest actions to show")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	if limit < 1 {
		return errors.New("--limit must be 1 or more")
	}
	list, err := a.Store.ListOperatorActions(ctx, limit)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tUSER\tHOST\tCOMMAND\tWHAT")
	// A policy's document may span lines: the table keeps one a row.
	for _, action := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", action.At.Format(time.RFC3339), printable(action.User), printable(action.Host), action.Command, printable(action.Detail))
	}
	return tw.Flush()
}

// printable is s as a listing shows it on one line of an operator's
// terminal: what a command was given (sudo's user from its environment, an
// account's or a policy's name stored by an earlier version) writes no
// control character to it (an escape sequence can clear the screen or
// retitle the window), nor a format one (U+202E shows what follows it
// reversed), and its spaces and line breaks are single spaces.
func printable(s string) string {
	return strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && !unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)), " ")
}

// checkName refuses a name an operator gives (an account's) that
// printable would change.
func checkName(flag, name string) error {
	if printable(name) != name {
		return fmt.Errorf("%s %q has a control or format character, or spaces other than single ones between words", flag, name)
	}
	return nil
}

// cas runs "openpca cas list": every CA with where its key really is.
func cas(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if err := subcommand(args, "usage: openpca cas list [--account ID]", stdout, stderr, "list"); err != nil {
		return err
	}
	var account string
	a, _, err := openAdmin(ctx, "cas list", "", args[1:], stderr, lookupEnv, func(fs *flag.FlagSet) {
		fs.StringVar(&account, "account", "", "list only this account's CAs")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	accounts := []string{account}
	if account == "" {
		list, err := a.Store.ListAccounts(ctx)
		if err != nil {
			return err
		}
		accounts = accounts[:0]
		for _, acc := range list {
			accounts = append(accounts, acc.ID)
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CERTIFICATE AUTHORITY\tSTATUS\tKEY STORE\tKEY\tSTANDARD")
	now := time.Now()
	for _, acc := range accounts {
		var after openpca.CACursor
		for {
			page, err := a.Store.ListCAs(ctx, acc, after, 100)
			if err != nil {
				return err
			}
			for _, ca := range page {
				key := string(ca.KeyHandle)
				if ca.KeyStore == seal.SoftwareStore {
					key = "sealed with the master key"
				}
				standard := string(ca.KeyStorageSecurityStandard)
				if standard == "" {
					standard = "none"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ca.ARN, ca.StatusAt(now), ca.KeyStore, key, standard)
			}
			if len(page) < 100 {
				break
			}
			after = openpca.CACursor{CreatedAt: page[len(page)-1].CreatedAt, ID: page[len(page)-1].ID}
		}
	}
	return tw.Flush()
}
