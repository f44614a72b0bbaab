// Package sqlite opens the embedded store: one SQLite database file in WAL
// mode, through the pure-Go modernc.org/sqlite driver. Writes go through
// one connection, as SQLite allows one writer at a time, and its write
// transactions run one at a time, which keeps the store's invariants
// without row locks; reads use a pool of their own beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/openpca/openpca/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Tuning.
const (
	maxBatch           = 256                    // writes per group-commit transaction, at most
	readers            = 4                      // read connections
	checkpointInterval = 500 * time.Millisecond // how often the log is copied into the database
)

// Open opens (creating if needed) the database at path and brings its
// schema up to date. What goes wrong in the background (checkpoints of the
// write-ahead log) goes to logger.
func Open(ctx context.Context, path string, logger *slog.Logger) (*sqlstore.DB, error) {
	if err := restrictFiles(path); err != nil {
		return nil, err
	}
	pragmas := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(ON)"} {
		pragmas.Add("_pragma", p)
	}
	base := "file:" + path + "?" + pragmas.Encode()
	// The writer never checkpoints: a checkpoint fsyncs the database file
	// and would stall the commits waiting behind it. A connection of its
	// own checkpoints in the background instead.
	write, err := sql.Open("sqlite", base+"&_txlock=immediate&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	read, err := sql.Open("sqlite", base+"&_pragma=query_only(ON)")
	if err != nil {
		write.Close()
		return nil, err
	}
	// Keep every reader open: a new connection starts with a cold page
	// cache and unprepared statements.
	read.SetMaxOpenConns(readers)
	read.SetMaxIdleConns(readers)
	checkpoint, err := sql.Open("sqlite", base)
	if err != nil {
		errors.Join(read.Close(), write.Close())
		return nil, err
	}
	checkpoint.SetMaxOpenConns(1)
	stop, stopped := make(chan struct{}), make(chan struct{})
	closeAll := func() error {
		return errors.Join(read.Close(), checkpoint.Close(), write.Close())
	}
	m, _ := fs.Sub(migrations, "migrations")
	db, err := sqlstore.Open(ctx, sqlstore.Config{
		Dialect:  sqlstore.Dialect{Name: "sqlite", Migrations: m},
		Write:    write,
		Read:     read,
		MaxBatch: maxBatch,
		Close: func() error {
			close(stop)
			<-stopped
			return closeAll()
		},
	})
	if err != nil {
		closeAll()
		return nil, err
	}
	go checkpoints(checkpoint, logger, stop, stopped)
	return db, nil
}

// restrictFiles makes the database at path, creating it if needed, and
// its -wal and -shm files readable by their owner alone: they hold the CAs'
// records and sealed keys. SQLite gives the -wal and -shm files the mode
// of the database file, so a new database's are 0600 too, whatever the
// umask; files of older versions are tightened here.
func restrictFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// checkpoints copies the write-ahead log into the database file until
// stop is closed. A passive checkpoint runs beside readers and writers; it
// resets the log once every reader has moved past it. A failure is logged
// when checkpoints start failing and when they work again, not at every
// attempt.
func checkpoints(db *sql.DB, logger *slog.Logger, stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			_, err := db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
			switch {
			case err != nil && !failing:
				logger.Error("checkpointing the SQLite write-ahead log failed; it grows until a checkpoint works", "error", err)
			case err == nil && failing:
				logger.Info("checkpointing the SQLite write-ahead log works again")
			}
			failing = err != nil
		}
	}
}
