package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/openpca/openpca/audit"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/postgres"
	"github.com/openpca/openpca/sqlite"
	"github.com/openpca/openpca/sqlstore"
)

// errPostgresBackup is the answer to a backup of a store kept in
// PostgreSQL, which has tools of its own.
var errPostgresBackup = errors.New("a store in PostgreSQL is backed up with PostgreSQL's own tools: pg_dump, or pg_basebackup with WAL archiving for a point in time; restore with pg_restore, then run openpca restore --database on the restored database before any server starts on it")

// Backup writes a consistent copy of the SQLite database of cfg's data
// folder to the new file to, while servers go on using it. The master key
// must open the database, so that the backup is known to be usable with
// it; a rotation of the master key does not run meanwhile, since the copy
// would hold some secrets sealed with one key and some with the other.
// The master key itself is not in the backup: it is kept apart.
func Backup(ctx context.Context, cfg Config, to string) (*Admin, sqlstore.Summary, error) {
	if cfg.Database != "" {
		return nil, sqlstore.Summary{}, errPostgresBackup
	}
	// As it is: a database can be backed up before a new version's server
	// migrates it.
	a, err := openCommand(ctx, cfg, sqlstore.AsIs)
	if err != nil {
		return nil, sqlstore.Summary{}, err
	}
	if err := checkBackupFolder(filepath.Dir(to), cfg.DataDir); err != nil {
		a.Close()
		return nil, sqlstore.Summary{}, err
	}
	sum, err := sqlite.Backup(ctx, filepath.Join(cfg.DataDir, "openpca.db"), to)
	if err != nil {
		a.Close()
		return nil, sum, err
	}
	return a, sum, nil
}

// checkBackupFolder refuses a folder to write a backup of the database in
// dataDir in that another user than this process's, root or the data
// folder's owner (who holds the database already) could change under the
// command (checkFolders): the backup is made in a folder of its own in
// it, then moved into place, and another user who swapped that folder for
// one of theirs, holding a link, had a command of root's write the whole
// database, readable by all, where the link led.
func checkBackupFolder(dir, dataDir string) error {
	return checkFolders(dir, "the backup's folder", ownersOf(dataDir))
}

// Restore makes the backup from the database of cfg's data folder, which
// must have none, and opens it with the master key of cfg, which must open
// it: otherwise the folder is left without a database again. No server or
// command may run on the folder meanwhile. CAs number their next CRLs from
// now's Unix milliseconds on, past every CRL published since the backup
// (unless a CA published more than a thousand a second since the last
// restore). The CAs active in the backup are disabled, unless
// how.KeepStatus (sqlstore.Restored.Active says which).
//
// On PostgreSQL, PostgreSQL's tools restore the database, and Restore,
// given no backup (from), only settles it (sqlstore.DB.SettleRestored).
func Restore(ctx context.Context, cfg Config, from string, now time.Time, how sqlstore.Settling) (*Admin, sqlstore.Summary, error) {
	if cfg.Database != "" {
		return settlePostgres(ctx, cfg, from, now, how)
	}
	if err := cfg.Validate(); err != nil { // the master key's file, by default in the folder
		return nil, sqlstore.Summary{}, err
	}
	// A backup holds values sealed with one key, the master key of its
	// time. Restored with another and that one as previous, it was kept,
	// sealed with the previous key, in a folder no server opened with the
	// master key alone, while the operator took it to be moved to the
	// new one.
	if len(cfg.PreviousMasterKeys) > 0 {
		return nil, sqlstore.Summary{}, errors.New("nothing was restored: restore takes the master key the backup was made with, and no previous one: " +
			"for a backup made before a rotation, give that rotation's old key as the master key, then rotate the restored folder to the new one (openpca master-key rotate)")
	}
	// Checked first: the advice a missing key gets elsewhere (start a
	// server on the folder) would make a new database, and a new key, in
	// the way of the restore.
	if cfg.MasterKey == "" && !fileExists(cfg.MasterKeyFile) {
		return nil, sqlstore.Summary{}, fmt.Errorf("nothing was restored: no master key at %s: give the master key the backup was made with (--master-key-file or OPENPCA_MASTER_KEY)", cfg.MasterKeyFile)
	}
	if err := refuseRootWriting(cfg.DataDir, cfg.MasterKeyFile); err != nil {
		return nil, sqlstore.Summary{}, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, sqlstore.Summary{}, err
	}
	if _, err := checkFolder(cfg.DataDir, true); err != nil {
		return nil, sqlstore.Summary{}, err
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, sqlstore.Summary{}, err
	}
	defer lock.Close()
	rotation, err := lockRotation(cfg.DataDir, true)
	if err != nil {
		return nil, sqlstore.Summary{}, err
	}
	files := &keyFiles{ctx: ctx, cfg: cfg}
	keys, _, err := readMasterKeys(files, false, slog.New(slog.DiscardHandler))
	if err != nil {
		rotation.Close()
		return nil, sqlstore.Summary{}, fmt.Errorf("nothing was restored: %w", err)
	}
	// Checked on the copy, before it is put in place: a restore cut short
	// after that leaves no database that was not.
	check := func(ctx context.Context, store *sqlstore.DB) error {
		keys, err := loadMasterKeys(ctx, files, store, keys, false, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		sealer, err := keys.sealer()
		if err != nil {
			return err
		}
		if err := checkLogs(ctx, store); err != nil {
			return err
		}
		// The logs were checked against the verifier key the backup
		// names, which only the master key shows to be the audit key's.
		return auditlog.CheckKey(ctx, store, sealer)
	}
	bind, err := keys.binder(files)
	if err != nil {
		rotation.Close()
		return nil, sqlstore.Summary{}, fmt.Errorf("nothing was restored: %w", err)
	}
	path := filepath.Join(cfg.DataDir, "openpca.db")
	existed := fileExists(path) // and Restore refuses
	sum, err := sqlite.Restore(ctx, from, path, now.UnixMilli(), now, how, check, bind)
	if err != nil {
		rotation.Close()
		// Put in place, but not known to be durably: the folder's sync
		// failed.
		if !existed && fileExists(path) {
			return nil, sum, fmt.Errorf("the database was restored, but: %w", err)
		}
		return nil, sum, fmt.Errorf("nothing was restored: %w", err)
	}
	a, err := openAdmin(ctx, cfg, true, sqlstore.Migrate) // no server runs: it holds the folder's lock
	if err != nil {
		// Removed before the lock goes: a command run meanwhile would
		// open the refused database, or make an empty one in its place.
		for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
			if rmErr := os.Remove(p); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
				err = errors.Join(err, rmErr)
			}
		}
		rotation.Close()
		return nil, sum, fmt.Errorf("nothing was restored: %w", err)
	}
	a.rotation = rotation
	return a, sum, nil
}

// settlePostgres settles a PostgreSQL database that PostgreSQL's tools
// have just restored. No server may run on it: it would serve what the
// settling changes (a CA being disabled, say) as it was, and it is no
// restored database if servers were using it, whose work since a backup
// the settling would undo. A running server keeps a session open, so
// any other session is refused.
func settlePostgres(ctx context.Context, cfg Config, from string, now time.Time, how sqlstore.Settling) (*Admin, sqlstore.Summary, error) {
	if from != "" {
		return nil, sqlstore.Summary{}, errors.New("on PostgreSQL, --from takes no backup: restore the dump with PostgreSQL's tools (pg_restore, or psql for a plain one) into a new database, then run openpca restore --database on it, without --from, before any server starts on it")
	}
	if err := cfg.Validate(); err != nil {
		return nil, sqlstore.Summary{}, err
	}
	// Its sessions are named as its own. Opened as it is, so that a
	// database without a schema (pg_restore not run, or a mistyped name)
	// is refused rather than given one.
	cfg.session = postgres.CommandSession("restore")
	// Before anything here writes to it (opening it checks the master
	// key, which may write a setting), which what is foreign would see.
	if foreign, err := postgres.Foreign(ctx, cfg.Database, cfg.session); err != nil || len(foreign) > 0 {
		if err == nil {
			err = fmt.Errorf("the restored database holds what OpenPCA makes none of, which servers would run at their changes, read in place of its tables, or be changed through: %s (if they are your own, drop, reset or revoke them, and run this again)", strings.Join(foreign, ", "))
		}
		return nil, sqlstore.Summary{}, notSettled(err)
	}
	// Servers trust the schema to keep what the rows may hold (a unique
	// index), and what commits (a table unlogged would lose it in a
	// crash), as a restore on SQLite checks it.
	if diffs, err := postgres.SchemaDiffs(ctx, cfg.Database, cfg.session); err != nil || len(diffs) > 0 {
		if err == nil {
			err = fmt.Errorf("the restored database's schema is not OpenPCA's: it %s (if the changes are your own, undo them, and run this again)", strings.Join(diffs[:min(len(diffs), 5)], "; it "))
		}
		return nil, sqlstore.Summary{}, notSettled(err)
	}
	a, err := openAdmin(ctx, cfg, false, sqlstore.AsIs)
	if err != nil {
		return nil, sqlstore.Summary{}, notSettled(err)
	}
	// Servers that start from here on are refused until the database is
	// settled, and every other session is refused here: at once, and
	// again in the transaction that settles. The clock is read once the
	// record is committed: a session begun after that belongs to a
	// server that reads the record, and is refused.
	if err := a.Store.BeginRestore(ctx, now); err != nil {
		a.Close()
		return nil, sqlstore.Summary{}, notSettled(err)
	}
	recorded, err := postgres.Clock(ctx, cfg.Database, cfg.session)
	if err == nil {
		err = awaitSessions(ctx, cfg)
	}
	if err != nil {
		// Only a session from before the record may show the database in
		// use, which is no restored one: the record is taken back, as
		// for any other failure here (an interruption too), which has
		// shown neither. One since (an operator's psql, say) shows no
		// more than that it raced the restore. A session whose start is
		// not known (another role's, or one a pooler such as PgBouncer
		// opened long before) counts as from before. Another restore's
		// shows a restore under way, whose record it is too: it is kept.
		s, ok := errors.AsType[*postgres.SessionsError](err)
		switch {
		case ok && s.Restore:
			err = fmt.Errorf("%w; another restore runs on it, whose settling ends the record that servers refuse", err)
		case !ok || s.Earliest.Before(recorded):
			err = errors.Join(err, abandonRestore(ctx, a.Store))
		}
		a.Close()
		return nil, sqlstore.Summary{}, notSettled(err)
	}
	// Brought up to date, as a dump of an earlier version may need: no
	// server of that version runs on it.
	if err := a.Store.Migrate(ctx); err != nil {
		a.Close()
		return nil, sqlstore.Summary{}, notSettled(err)
	}
	err = auditlog.CheckKey(ctx, a.Store, a.Sealer)
	if err == nil {
		err = checkLogs(ctx, a.Store)
	}
	if err != nil {
		a.Close()
		return nil, sqlstore.Summary{}, notSettled(err)
	}
	// A session found here came after the first look, and is no sign
	// that servers use the database: it stays recorded as being restored.
	settled, err := a.Store.SettleRestored(ctx, now.UnixMilli(), now, how, postgres.GuardSettling)
	if err != nil {
		a.Close()
		return nil, sqlstore.Summary{}, notSettled(err)
	}
	sum, err := a.Store.Summary(ctx)
	if err != nil {
		a.Close()
		return nil, sqlstore.Summary{}, fmt.Errorf("settled, but not summed up: %w", err)
	}
	sum.Restored = settled
	return a, sum, nil
}

// sessionsGone bounds how long a restore looks for the other sessions on
// a database to end (awaitSessions), a look every sessionsLook.
const (
	sessionsGone = 10 * time.Second
	sessionsLook = 250 * time.Millisecond
)

// awaitSessions returns nil once the database of cfg has no sessions but
// the restore's, or the *SessionsError of the last look, after
// sessionsGone. A server that began to start before the restore recorded
// itself, and reads the record once it is there, is refused, and its
// sessions end within a moment: it is no server that uses the database,
// and the restore waits for it rather than take its record back, which
// would let that server start on the database unsettled. One that takes
// longer than sessionsGone from its first session to reading the record
// (a key store that answers that slowly) still can.
func awaitSessions(ctx context.Context, cfg Config) error {
	for deadline := time.Now().Add(sessionsGone); ; {
		err := postgres.OtherSessions(ctx, cfg.Database, cfg.session)
		if _, ok := errors.AsType[*postgres.SessionsError](err); !ok || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(sessionsLook):
		}
	}
}

// abandonWait bounds how long a restore takes to take its record back.
const abandonWait = 10 * time.Second

// abandonRestore takes back the record of a restore that found the
// database in use (AbandonRestore), even once the restore is interrupted:
// a record left would refuse every server that starts on the database.
func abandonRestore(ctx context.Context, store *sqlstore.DB) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abandonWait)
	defer cancel()
	if err := store.AbandonRestore(ctx); err != nil {
		return fmt.Errorf("%w: the database stays recorded as being restored, and servers refuse to start on it; if servers use it, take the record back by hand (DELETE FROM settings WHERE name = 'restore-begun')", err)
	}
	return nil
}

// notSettled is the error of a settling that failed, err, with advice if
// other sessions are on the database.
func notSettled(err error) error {
	if _, ok := errors.AsType[*postgres.SessionsError](err); ok {
		return fmt.Errorf("nothing was settled: %w; a restored database is settled before any server starts on it, and one that servers use is no restored database, whose work since its backup this would undo: stop them, or close the sessions, and run this again", err)
	}
	return fmt.Errorf("nothing was settled: %w", err)
}

// checkLogs checks the key-use log of every CA in a restored database
// (audit.CheckLogs), before it is settled: PRAGMA quick_check, or a
// dump's restore, finds a database sound whose rows were changed, by
// damage or by hand, and what servers would make of it (reports, proofs)
// would fail at an auditor's, or raise the integrity alarm at the first
// report. A restore is refused instead, naming the CA and the entry.
func checkLogs(ctx context.Context, store *sqlstore.DB) error {
	// A database that has no audit key has no witnessed checkpoints,
	// which only need it.
	key := ""
	if v, err := store.Setting(ctx, auditlog.KeySetting); err != nil {
		return err
	} else if v != nil {
		if key, err = auditlog.PublicKey(ctx, store); err != nil {
			return err
		}
	}
	if _, _, err := audit.CheckLogs(ctx, store, key); err != nil {
		return fmt.Errorf("the backup's key-use logs do not verify: %w", err)
	}
	over, err := store.LogsOverrun(ctx)
	if err == nil && len(over) > 0 {
		err = fmt.Errorf("the backup's key-use logs do not verify: those of %s hold entries past their size, or certificates that name such entries, which no server writes (the size was made smaller, say)", strings.Join(over, ", "))
	}
	return err
}
