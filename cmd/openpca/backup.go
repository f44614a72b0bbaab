package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/sqlstore"
)

// backupCommand runs "openpca backup".
func backupCommand(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	cfg, to, err := fileFlags("backup", "to", "the new file to write the backup to (required; never replaced)", args, stderr, lookupEnv, nil, nil)
	if err != nil {
		return err
	}
	a, sum, err := app.Backup(ctx, *cfg, to)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := recordAction(ctx, a, "backup", fmt.Sprintf("the database backed up to %s: %s", to, describe(sum))); err != nil {
		// Versions before the operator log's have none to record in.
		if behind, berr := a.Store.SchemaBehind(ctx); berr == nil && behind {
			fmt.Fprintln(stderr, "openpca: the database is of an earlier version, backed up as it is; the backup is not in its operator log, which that version may not have")
		} else {
			fmt.Fprintf(stderr, "openpca: done, but not recorded in the operator log: %v\n", err)
		}
	}
	fmt.Fprintf(stdout, "Backed up %s to %s: %s.\n", cfg.DataDir, to, describe(sum))
	fmt.Fprintln(stdout, "The master key is not in it: keep a copy of the master key apart from the backup, since restoring needs it.")
	return nil
}

// restoreCommand runs "openpca restore".
func restoreCommand(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	var how sqlstore.Settling
	onPostgres := func(cfg *app.Config) bool { return cfg.Database != "" }
	cfg, from, err := fileFlags("restore", "from", "the backup to restore (required), into a data folder with no database; none on PostgreSQL, whose own tools restore it: this then settles the restored database", args, stderr, lookupEnv, func(fs *flag.FlagSet) {
		fs.BoolVar(&how.SoleCopy, "sole-copy", false, "the backed-up database's servers are gone for good (a recovery, not a copy beside them): when a restored CA whose key is in a token or KMS is deleted for good, its purge destroys the key, as theirs would have (by default it leaves it in its store, for you to destroy once no old server uses it); CAs an earlier restore marked so stay marked")
		fs.BoolVar(&how.KeepStatus, "keep-status", false, "leave the CAs active in the backup active (by default they are disabled, to be enabled again one by one: one may have been disabled or deleted since, its key leaked say, or this may be a copy beside the servers of the old database)")
	}, onPostgres)
	if err != nil {
		return err
	}
	a, sum, err := app.Restore(ctx, *cfg, from, time.Now(), how)
	if err != nil {
		return err
	}
	defer a.Close()
	action := fmt.Sprintf("the database restored from %s: %s", from, describe(sum))
	if onPostgres(cfg) {
		action = "the database restored by PostgreSQL's tools settled: " + describe(sum)
	}
	if len(sum.Active) > 0 && !sum.KeptStatus {
		action += fmt.Sprintf("; the %d CAs active in it disabled", len(sum.Active))
	}
	switch {
	case sum.SoleCopy:
		action += "; the sole copy (--sole-copy): purges destroy the restored CAs' keys, but those an earlier restore kept"
	case sum.KeysKept > 0:
		action += fmt.Sprintf("; purges leave the keys of %d more CAs in a token or KMS", sum.KeysKept)
	}
	record(ctx, a, stderr, "restore", action)
	if onPostgres(cfg) {
		fmt.Fprintf(stdout, "Settled the restored database: %s.\n", describe(sum))
	} else {
		fmt.Fprintf(stdout, "Restored %s into %s: %s.\n", from, cfg.DataDir, describe(sum))
	}
	fmt.Fprint(stdout, `What the CAs did after the backup is not in it:
- Certificates issued since are unknown to the server: it cannot revoke them, and its OCSP answers "unknown" for them.
- Revocations made since are undone: revoke those certificates again. Their CAs' CRLs in the buckets list them until a new CRL replaces each: keep a copy.
- A CA's audit log that grew after the backup is shorter here than witnesses may have cosigned since: if they did, they refuse it as another history, and this restore shows to every auditor who requires them.
- The CAs number their next CRLs past every CRL published since.
- Access keys revoked since are active again, and changes to keys' policies since are undone: revoke those keys again ("openpca keys list" shows the active ones).
- CAs disabled, deleted or shared differently since are as they were at the backup. Console sessions are not kept: everyone signs in again.
`)
	if !onPostgres(cfg) {
		fmt.Fprintln(stdout, "Local buckets (the data folder's s3 folder) are not in the backup: copy them from the old data folder.")
	}
	switch {
	case len(sum.Active) > 0 && sum.KeptStatus:
		fmt.Fprintln(stdout, "These CAs were active at the backup, and are active again (--keep-status): disable any disabled or deleted since, before a server starts on it:")
	case len(sum.Active) > 0:
		fmt.Fprintln(stdout, "These CAs were active at the backup, and are now DISABLED, so that none disabled or deleted since issues again, nor a copy beside the old servers under their CAs' names. Each account enables its CAs still in service with UpdateCertificateAuthority (aws acm-pca update-certificate-authority --status ACTIVE):")
	}
	for _, ca := range sum.Active {
		fmt.Fprintln(stdout, "  "+ca)
	}
	switch {
	case len(sum.DeletedKept) > 0 && sum.SoleCopy:
		fmt.Fprintln(stdout, "CAs deleted at the backup, whose keys are in a token or KMS, have their restoration periods again, from now: one may have been restored since. Each is purged when its period ends, and its key destroyed (--sole-copy), unless an earlier restore marked it to be kept:")
	case len(sum.DeletedKept) > 0:
		fmt.Fprintln(stdout, "CAs deleted at the backup, whose keys are in a token or KMS, have their restoration periods again, from now: servers of the old database may have restored them since, and sign with their keys. Each is purged when its period ends, and its key left in its store: destroy it by hand once no server of the old database uses it:")
	}
	for _, ca := range sum.DeletedKept {
		fmt.Fprintln(stdout, "  "+ca)
	}
	if sum.KeysKept > 0 {
		fmt.Fprintf(stdout, "CAs not deleted at the backup whose keys are in a token or KMS, which servers of the old database share and may sign with: %d. If this database deletes one of them, its purge leaves the key in its store, and logs a WARN line that names it: destroy it by hand once no server of the old database uses it. (If those servers are gone for good, restore with --sole-copy instead.)\n", sum.KeysKept)
	}
	if len(sum.UpgradeImports) > 0 {
		fmt.Fprintln(stdout, "CAs whose certificates the restore logged as the upgrade's imports (openpca:upgrade): the backup is of a version that logged no imports, or was edited to look so. Each such entry vouches for the certificate the backup held, not for how it came there; if the backup is of this version, it was edited: check these CAs' certificates:")
		for _, ca := range sum.UpgradeImports {
			fmt.Fprintln(stdout, "  "+ca)
		}
	}
	if sum.Unwitnessed > 0 {
		fmt.Fprintf(stdout, "CAs whose logs have no checkpoint in the backup that witnesses cosigned: %d. Their logs were checked against themselves alone, which a backup edited by hand, its witnessed checkpoints taken out, passes too. A server with witnesses (--witness) compares each log with theirs at its next round of witnessing (at the latest when the log next grows), and logs an ERROR for one they cosigned more of.\n", sum.Unwitnessed)
	}
	if len(sum.KeysNotHeld) > 0 {
		fmt.Fprintln(stdout, "Keys in a token or KMS were being made, at the backup, for CAs it does not hold, or (without --sole-copy) were to be destroyed, their CAs purged. Servers of the old database may have stored those CAs since, or destroy the keys themselves: this server leaves the keys alone. Destroy each by hand if no server uses it:")
		for _, k := range sum.KeysNotHeld {
			fmt.Fprintln(stdout, "  "+k)
		}
	}
	return nil
}

// fileFlags parses the flags of a command on a data folder and one file,
// named by the flag name, and those more adds. The file is required,
// unless optional says it is not for the configuration given.
func fileFlags(command, name, usage string, args []string, stderr io.Writer, lookupEnv func(string) (string, bool), more func(*flag.FlagSet), optional func(*app.Config) bool) (*app.Config, string, error) {
	fs := flag.NewFlagSet("openpca "+command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, previous := adminFlags(fs)
	var file string
	fs.StringVar(&file, name, "", usage)
	if more != nil {
		more(fs)
	}
	if err := parseFlags(fs, "", args, lookupEnv); err != nil {
		return nil, "", err
	}
	if err := previous(cfg, lookupEnv, stderr); err != nil {
		return nil, "", err
	}
	if file == "" && (optional == nil || !optional(cfg)) {
		fs.Usage()
		return nil, "", fmt.Errorf("--%s is required", name)
	}
	return cfg, file, nil
}

// describe says what a backup holds.
func describe(sum sqlstore.Summary) string {
	s := fmt.Sprintf("%d CAs, %d key uses", sum.CAs, sum.KeyUses)
	if !sum.Last.IsZero() {
		s += ", the newest at " + sum.Last.Format(time.RFC3339)
	}
	return s
}
