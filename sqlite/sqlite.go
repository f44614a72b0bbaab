// Package sqlite is the embedded store: one SQLite database file in WAL
// mode, through the pure-Go modernc.org/sqlite driver.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/openpca/openpca/groupcommit"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is the SQLite store. Writes go through one connection, as SQLite
// allows one writer at a time; reads use a pool of their own, which WAL
// mode lets run beside the writer.
type DB struct {
	write      *sql.DB
	read       *sql.DB
	checkpoint *sql.DB
	stop       chan struct{} // closed by Close
	stopped    chan struct{} // closed when checkpoints returns
	w, r       *statements   // prepared on write and read
	commits    *groupcommit.Committer
	cas        caCache
}

// maxBatch bounds how many writes share one transaction.
const maxBatch = 256

// readers is the size of the read connection pool.
const readers = 4

// Open opens (creating if needed) the database at path and brings its
// schema up to date.
func Open(ctx context.Context, path string) (*DB, error) {
	pragmas := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(ON)"} {
		pragmas.Add("_pragma", p)
	}
	base := "file:" + path + "?" + pragmas.Encode()
	// The writer never checkpoints: a checkpoint fsyncs the database file
	// and would stall the commits waiting behind it. A connection of its
	// own checkpoints in the background instead (see checkpoints).
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
	db := &DB{write: write, read: read, checkpoint: checkpoint, stop: make(chan struct{}), stopped: make(chan struct{})}
	if err := db.migrate(ctx); err != nil {
		errors.Join(read.Close(), write.Close())
		return nil, fmt.Errorf("sqlite: migrating %s: %w", path, err)
	}
	if db.w, err = newStatements(ctx, write, false, writeQueries...); err != nil {
		errors.Join(read.Close(), write.Close())
		return nil, err
	}
	if db.r, err = newStatements(ctx, read, true); err != nil {
		errors.Join(read.Close(), write.Close())
		return nil, err
	}
	if db.commits, err = groupcommit.New(ctx, write, maxBatch); err != nil {
		errors.Join(read.Close(), write.Close())
		return nil, err
	}
	go db.checkpoints()
	return db, nil
}

// checkpointInterval is how often the log is copied into the database.
const checkpointInterval = 500 * time.Millisecond

// checkpoints copies the write-ahead log into the database file until
// Close. A passive checkpoint runs beside readers and writers; it resets
// the log once every reader has moved past it.
func (db *DB) checkpoints() {
	defer close(db.stopped)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
			db.checkpoint.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
		}
	}
}

// Close closes the database; in WAL mode the last connection to close
// checkpoints the log into the database file.
func (db *DB) Close() error {
	close(db.stop)
	<-db.stopped
	db.commits.Close()
	db.w.close()
	db.r.close()
	return errors.Join(db.read.Close(), db.checkpoint.Close(), db.write.Close())
}

// migrate applies, in order, each migration not yet recorded.
func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		version, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(name, "migrations/"), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with its number", name)
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		if err := db.inTx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil || n > 0 {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, time.Now().UnixMicro())
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// inTx runs fn in a write transaction, committing if it returns nil.
func (db *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// micros and fromMicros convert times to and from the stored form; the zero
// time is stored as NULL.
func micros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func fromMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMicro(n.Int64).UTC()
}

// CommitStats reports how the store batches its writes.
func (db *DB) CommitStats() groupcommit.Stats { return db.commits.Stats() }
