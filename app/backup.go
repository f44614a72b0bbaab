package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/openpca/openpca/sqlite"
	"github.com/openpca/openpca/sqlstore"
)

// errPostgresBackup is the answer to a backup or restore of a store kept
// in PostgreSQL, which has tools of its own for both.
var errPostgresBackup = errors.New("a store in PostgreSQL is backed up and restored with PostgreSQL's own tools: pg_dump and pg_restore, or pg_basebackup with WAL archiving for a point in time")

// Backup writes a consistent copy of the SQLite database of cfg's data
// folder to the new file to, while servers go on using it. The master key
// must open the database, so that the backup is known to be usable with
// it; a rotation of the master key does not run meanwhile, since the copy
// would hold some secrets sealed with one key and some with the other.
// The master key itself is not in the backup: it is kept apart.
func Backup(ctx context.Context, cfg Config, to string) (*Admin, sqlite.Summary, error) {
	if cfg.Database != "" {
		return nil, sqlite.Summary{}, errPostgresBackup
	}
	// As it is: a database can be backed up before a new version's server
	// migrates it.
	a, err := openCommand(ctx, cfg, sqlstore.AsIs)
	if err != nil {
		return nil, sqlite.Summary{}, err
	}
	sum, err := sqlite.Backup(ctx, filepath.Join(cfg.DataDir, "openpca.db"), to)
	if err != nil {
		a.Close()
		return nil, sum, err
	}
	return a, sum, nil
}

// Restore makes the backup from the database of cfg's data folder, which
// must have none, and opens it with the master key of cfg, which must open
// it: otherwise the folder is left without a database again. No server or
// command may run on the folder meanwhile. CAs number their next CRLs from
// now's Unix milliseconds on, past every CRL published since the backup
// (unless a CA published more than a thousand a second since the last
// restore). The CAs active in the backup are disabled, unless keepStatus
// (sqlite.Summary.Active says which).
func Restore(ctx context.Context, cfg Config, from string, now time.Time, keepStatus bool) (*Admin, sqlite.Summary, error) {
	if cfg.Database != "" {
		return nil, sqlite.Summary{}, errPostgresBackup
	}
	if err := cfg.Validate(); err != nil { // the master key's file, by default in the folder
		return nil, sqlite.Summary{}, err
	}
	// Checked first: the advice a missing key gets elsewhere (start a
	// server on the folder) would make a new database, and a new key, in
	// the way of the restore.
	if cfg.MasterKey == "" && !fileExists(cfg.MasterKeyFile) {
		return nil, sqlite.Summary{}, fmt.Errorf("nothing was restored: no master key at %s: give the master key the backup was made with (--master-key-file or OPENPCA_MASTER_KEY)", cfg.MasterKeyFile)
	}
	if err := refuseRootWriting(cfg.DataDir, cfg.MasterKeyFile); err != nil {
		return nil, sqlite.Summary{}, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, sqlite.Summary{}, err
	}
	if _, err := checkFolder(cfg.DataDir, true); err != nil {
		return nil, sqlite.Summary{}, err
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, sqlite.Summary{}, err
	}
	defer lock.Close()
	rotation, err := lockRotation(cfg.DataDir, true)
	if err != nil {
		return nil, sqlite.Summary{}, err
	}
	path := filepath.Join(cfg.DataDir, "openpca.db")
	sum, err := sqlite.Restore(ctx, from, path, now.UnixMilli(), now, keepStatus)
	if err != nil {
		rotation.Close()
		return nil, sum, err
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
