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
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/openpca/openpca/internal/sqliteuri"
	"github.com/openpca/openpca/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Tuning.
const (
	maxBatch           = 256                    // writes per group-commit transaction, at most
	readers            = 4                      // read connections, and scan connections in use
	checkpointInterval = 100 * time.Millisecond // how often the log is copied into the database
	walCheckInterval   = 10 * time.Millisecond  // how often the log's size is looked at
	// truncateWait bounds how long a truncating checkpoint waits for
	// readers still on the log, holding up writers meanwhile; past it, the
	// next tick tries again.
	truncateWait = 200 * time.Millisecond
	busyTimeout  = 10 * time.Second // how long a connection waits for a lock another holds
)

// DefaultTruncateAt is the size of the write-ahead log at which it is
// checkpointed in full and truncated. Truncating holds writers up while it
// copies what is left of the log and waits for the readers still on it,
// 10 ms or more under load: at 16 MiB that came every 1,300 certificates,
// often enough to set the 99th percentile of issuance latency (13.5 ms at
// 16 clients, against 12.0 ms at 48 MiB, in alternated runs). The log
// stays near 48 MiB, under 64 MiB.
const DefaultTruncateAt = 48 << 20

// Options tune a database; the zero value takes the defaults.
type Options struct {
	// Logger receives what goes wrong in the background (checkpoints of
	// the write-ahead log); nil discards it.
	Logger *slog.Logger
	// TruncateAt is the size of the write-ahead log at which it is
	// checkpointed in full and truncated; 0 means DefaultTruncateAt.
	TruncateAt int64
}

// Open opens (creating if needed) the database at path and brings its
// schema up to date.
func Open(ctx context.Context, path string, opts Options) (*sqlstore.DB, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.TruncateAt == 0 {
		opts.TruncateAt = DefaultTruncateAt
	}
	// Connections open as they are needed: by an absolute path, which a
	// change of working folder cannot move.
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if err := restrictFiles(path); err != nil {
		return nil, err
	}
	pragmas := url.Values{}
	for _, p := range []string{fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()), "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(ON)"} {
		pragmas.Add("_pragma", p)
	}
	base := sqliteuri.File(path) + "?" + pragmas.Encode()
	// The writer never checkpoints on its own (see checkpointer).
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
	scan := newScanner(path)
	closeAll := func() error {
		scan.close()
		return errors.Join(read.Close(), checkpoint.Close(), write.Close())
	}
	m, _ := fs.Sub(migrations, "migrations")
	db, err := sqlstore.Open(ctx, sqlstore.Config{
		Dialect:  sqlstore.Dialect{Name: "sqlite", Migrations: m},
		Write:    write,
		Read:     read,
		Scan:     scan,
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
	c := &checkpointer{write: write, passive: checkpoint, wal: path + "-wal", opts: opts}
	go c.run(stop, stopped)
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

// checkpointer keeps the write-ahead log bounded. The writer never
// checkpoints on its own: a checkpoint fsyncs the database file and would
// stall the commits waiting behind it. Instead, a connection of its own
// copies the log into the database with passive checkpoints, beside readers
// and writers; but a log that is written all the time never gets copied in
// full, and only a log copied in full starts over. So once the log passes
// TruncateAt, a truncating checkpoint on the writer's own connection,
// between two group commits, copies what is left (little, after the
// passive ones), waits briefly for the readers still on the log, and
// truncates it.
type checkpointer struct {
	write, passive *sql.DB
	wal            string
	opts           Options
	failing        bool
}

func (c *checkpointer) run(stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	t := time.NewTicker(walCheckInterval)
	defer t.Stop()
	lastPassive := time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			if fi, err := os.Stat(c.wal); err == nil && fi.Size() >= c.opts.TruncateAt {
				c.report(c.truncate())
			} else if now.Sub(lastPassive) >= checkpointInterval {
				_, err := c.passive.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
				c.report(err)
				lastPassive = now
			}
		}
	}
}

// truncate checkpoints the log in full and truncates it, on the writer's
// connection, waiting truncateWait at most for readers.
func (c *checkpointer) truncate() error {
	ctx := context.Background()
	conn, err := c.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, truncateWait.Milliseconds())); err != nil {
		return err
	}
	defer conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, busyTimeout.Milliseconds()))
	// A reader still on the log makes the checkpoint give up (busy = 1):
	// the next tick tries again.
	var busy, logFrames, copied int
	return conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &copied)
}

// report logs when checkpoints start failing and when they work again,
// not at every attempt.
func (c *checkpointer) report(err error) {
	switch {
	case err != nil && !c.failing:
		c.opts.Logger.Error("checkpointing the SQLite write-ahead log failed; it grows until a checkpoint works", "error", err)
	case err == nil && c.failing:
		c.opts.Logger.Info("checkpointing the SQLite write-ahead log works again")
	}
	c.failing = err != nil
}
