// Package sqlstore is the store of OpenPCA on a SQL database through
// database/sql: the queries and the transactions that keep its invariants.
// Packages sqlite and postgres open it on their database with the Dialect
// that says how that database writes placeholders, takes locks and runs
// migrations.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/groupcommit"
)

// Dialect is what differs between the databases the store runs on.
type Dialect struct {
	Name string
	// Numbered writes placeholders as $1, $2, ... instead of ?.
	Numbered bool
	// Row locks, appended to a SELECT where the queries say {FOR_SHARE},
	// {FOR_UPDATE} and {SKIP_LOCKED}. A database whose write transactions
	// run one at a time (SQLite) needs none.
	ForShare, ForUpdate, SkipLocked string
	// LockKey, if set, is a statement taking a lock on a text key (its one
	// argument) until the transaction ends.
	LockKey string
	// Retryable, if set, reports errors of a transaction the database
	// aborted (to break a deadlock, say) that may succeed if run again.
	Retryable func(error) bool
	// Full, if set, reports errors of a database out of disk space, which
	// clients are told to retry later (ServiceUnavailableException), not
	// an internal failure.
	Full func(error) bool
	// Unreachable, if set, reports whether an error is of a database
	// that could not be reached (a connection lost or refused, the
	// server shutting down): clients are told to retry later too.
	Unreachable func(error) bool
	// Timeout, if set, reports whether an error is of a statement the
	// database ended for waiting too long (its lock_timeout or
	// statement_timeout, which the operator may set): busy for now,
	// clients are told to retry later.
	Timeout func(error) bool
	// LockTimeout, if set, reports whether an error is of a statement that
	// waited out the lock_timeout for a row another transaction holds:
	// the writes of the same CA after it in its batch fail at once
	// (groupcommit's SetContended).
	LockTimeout func(error) bool
	// WaitLocks, if set, has the statements of its transaction that follow
	// wait for locks as long as a master key's rotation may hold them,
	// where other statements wait less, until restore puts back the wait
	// of before (see waitingLocks).
	WaitLocks func(ctx context.Context, tx *sql.Tx) (restore func() error, err error)
	// LockMigrations, if set, runs first in the transaction that reads
	// the schema's version and applies the migrations it lacks, all of
	// them or none: it serializes that transaction among the processes
	// that start at once, and bounds each wait of it for a lock.
	LockMigrations func(ctx context.Context, tx *sql.Tx) error
	// LockTables, if set, runs in that transaction before the first
	// migration it applies: it takes at once the locks that the
	// migrations would take one after another, so that the transaction
	// waits for other transactions on the tables before it has done any
	// work, not midway.
	LockTables func(ctx context.Context, tx *sql.Tx) error
	// RetryMigration, if set, reports whether a migration that failed
	// with err waited for a lock past the bound LockMigrations set, or
	// was ended to break a deadlock, and is to be made again; it may say
	// so in a log.
	RetryMigration func(err error) bool
	// Outcome, if set, is how to ask the database how a transaction
	// ended whose COMMIT failed without saying: one that committed is
	// then answered as a success, and one that aborted as what failed
	// it, rather than both as uncertain.
	Outcome groupcommit.Outcome
	// Clock, if set, is a query of the database's own time, in
	// microseconds since 1970, for ClockOffset. Unset for a database on
	// the server's machine (SQLite), whose clock is the server's.
	Clock string
	// Migrations holds the numbered schema migrations, NNNN_name.sql.
	Migrations fs.FS
	// Scrub, if set, asks the database to clear from its files, as soon
	// as it can, what was deleted or overwritten (old pages kept for
	// recovery): it is called after secrets went (keys resealed with a
	// new master key, CAs purged with their sealed keys), which the files
	// would otherwise keep, for anyone with a copy of them and the old
	// master key. It returns at once: what went is gone for the database
	// already, and an operation that committed must not fail for it (a
	// rotation would take its new key for unused, and remove it).
	Scrub func()
}

// ErrNoSchema says that a database opened without Migrate holds no schema.
var ErrNoSchema = errors.New("the database holds no OpenPCA schema: is it the right one? A server makes the schema on its first start")

// Schema is what Open does with a database whose schema is behind this
// version's. A database of a later version is refused whatever it says:
// this version could misread, or overwrite, what that one stores.
type Schema int

const (
	// Migrate brings it up to date: for a server, and for a command that
	// holds the data folder, so that no server runs on it.
	Migrate Schema = iota
	// RefuseEarlier refuses it: for an operator's command, which may run
	// beside a server of the earlier version, under which a migration
	// would change the schema.
	RefuseEarlier
	// AsIs opens it as it is, without migrating it: for a backup, which
	// copies what is there, so that a database can be backed up before
	// this version's server migrates it.
	AsIs
)

// Config is how to open a DB.
type Config struct {
	Dialect Dialect
	// Write runs the transactions; Read the reads, and may be Write.
	Write, Read *sql.DB
	// MaxBatch bounds how many writes share a group-commit transaction;
	// BatchTimeout how long one may take (0: groupcommit.DefaultTimeout).
	MaxBatch     int
	BatchTimeout time.Duration
	// Scan, if set, runs the reads Scanner names instead of Read.
	Scan Scanner
	// Metrics, if set, are the dialect's own, which the store's Collector
	// reports beside its own.
	Metrics prometheus.Collector
	// Ready, if set, is what the database needs to take writes, beside
	// Ready's own write (SQLite's: free space on its disk).
	Ready func(context.Context) error
	// Schema is what to do with a database whose schema is behind this
	// version's.
	Schema Schema
	// Check, if set, runs before each write transaction commits, and in
	// Ready: an error rolls the transaction back (SQLite's: the database's
	// file is still the one open, not removed or replaced, when a commit
	// would go to a file the next start does not open).
	Check func() error
	// Bind, if set, rebinds access keys' secrets to their accounts, for
	// the migration that binds them (bindAccessKeys): an upgrade of a
	// database holding access keys needs it.
	Bind Binder
	// Close closes what Open was given; the DB calls it last.
	Close func() error
}

// Binder is given the database's master key check (the MasterKeyCheck
// setting's value, nil if it has none) and refuses master keys that do
// not open it, or returns the Bind of an access key's secret. It needs
// the master key, which the store never holds: given the wrong one, the
// upgrade would bind no secret and be recorded done.
type Binder func(check []byte) (Bind, error)

// Bind opens an access key's secret as versions before 2026-12 sealed it,
// bound to the key's id alone, and seals it again bound to the key's id
// and account (auth.AssociatedData).
type Bind func(accountID, keyID string, sealed []byte) ([]byte, error)

// DB is the store.
type DB struct {
	dialect Dialect
	locks   *strings.Replacer // of the queries' lock placeholders, by the dialect's
	write   *sql.DB
	read    *sql.DB
	scanner Scanner
	metrics prometheus.Collector
	w, r    *statements
	// commits batches writes of every kind; issuances batches the
	// issuances without a token, most writes, more tightly.
	commits   *groupcommit.Committer
	issuances *groupcommit.Batcher[*openpca.Issuance]
	cas       caCache
	readiness readiness
	ready     func(context.Context) error
	check     func() error
	sealing   string // see SealsWith
	bind      Binder
	close     func() error
}

var _ openpca.Store = (*DB)(nil)

// Open brings the schema up to date and returns the store.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	db := &DB{dialect: cfg.Dialect, write: cfg.Write, read: cfg.Read, scanner: cfg.Scan, metrics: cfg.Metrics, ready: cfg.Ready, check: cfg.Check, bind: cfg.Bind, close: cfg.Close,
		locks: strings.NewReplacer("{FOR_SHARE}", cfg.Dialect.ForShare, "{FOR_UPDATE}", cfg.Dialect.ForUpdate, "{SKIP_LOCKED}", cfg.Dialect.SkipLocked)}
	// The hot queries are prepared once the schema is up to date (a
	// migration's steps in Go run unprepared, in its transaction). A
	// schema opened as it is may be of an earlier version, without what
	// they name: they are prepared when first run.
	var err error
	if db.w, err = newStatements(ctx, cfg.Write, db.rewrite); err != nil {
		return nil, err
	}
	if db.r, err = newStatements(ctx, cfg.Read, db.rewrite); err != nil {
		db.w.close()
		return nil, err
	}
	if err := db.migrate(ctx, cfg.Schema); err != nil {
		db.w.close()
		db.r.close()
		return nil, fmt.Errorf("%s: the schema: %w", db.dialect.Name, err)
	}
	if cfg.Schema != AsIs {
		if err := db.w.prepareHot(ctx, hotQueries...); err != nil {
			db.w.close()
			db.r.close()
			return nil, err
		}
	}
	if cfg.Schema == Migrate {
		if err := db.completeEarlierCAs(ctx); err != nil {
			db.w.close()
			db.r.close()
			return nil, err
		}
	}
	if db.commits, err = groupcommit.New(ctx, cfg.Write, cfg.MaxBatch, cfg.BatchTimeout); err != nil {
		db.w.close()
		db.r.close()
		return nil, err
	}
	db.issuances = groupcommit.NewBatcher(cfg.Write, cfg.MaxBatch, cfg.BatchTimeout, db.issueBatch)
	db.commits.SetOutcome(cfg.Dialect.Outcome)
	db.issuances.SetOutcome(cfg.Dialect.Outcome)
	if cfg.Dialect.LockTimeout != nil {
		// A CA's rows locked elsewhere (a server frozen in a transaction)
		// fail its writes, each batch's once, not those of the other CAs
		// batched with them, and behind them.
		db.commits.SetContended(cfg.Dialect.LockTimeout)
		db.issuances.SetContended(func(is *openpca.Issuance) string { return is.Use.CAID }, cfg.Dialect.LockTimeout)
	}
	if cfg.Check != nil {
		db.commits.SetCheck(cfg.Check)
		db.issuances.SetCheck(cfg.Check)
	}
	return db, nil
}

// Close finishes the queued writes and closes the database.
func (db *DB) Close() error {
	db.commits.Close()
	db.issuances.Close()
	db.w.close()
	db.r.close()
	return db.close()
}

// rewrite turns a query as this package writes it into the dialect's.
func (db *DB) rewrite(q string) string {
	q = db.locks.Replace(q)
	if !db.dialect.Numbered {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// exec runs a statement on the write pool.
func (db *DB) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return db.w.exec(ctx, q, args...)
}

// queryRow and query run reads on the read pool.
func (db *DB) queryRow(ctx context.Context, q string, args ...any) rowScanner {
	return db.r.queryRow(ctx, q, args...)
}

func (db *DB) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return db.r.query(ctx, q, args...)
}

// txExec, txQueryRow and txQuery run a statement inside a transaction.
func (db *DB) txExec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	return db.w.txExec(ctx, tx, q, args...)
}

func (db *DB) txQueryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) rowScanner {
	return db.w.txQueryRow(ctx, tx, q, args...)
}

func (db *DB) txQuery(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	return tx.QueryContext(ctx, db.w.rewrite(q), args...)
}

// lockKey takes the dialect's transaction lock on key, if it has one.
func (db *DB) lockKey(ctx context.Context, tx *sql.Tx, key string) error {
	if db.dialect.LockKey == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, db.rewrite(db.dialect.LockKey), key)
	return err
}

// MigrationsTable makes the table that records the migrations applied,
// in every dialect, before the first migration.
const MigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`

// migrate applies, in order, each migration not yet recorded, in one
// transaction: an upgrade that fails (a migration refused, or a start
// ended) leaves the schema as it was, for the servers of its version, not
// half applied, which neither version could use. A transaction that
// waited for a lock past its bound (RetryMigration) is made again.
func (db *DB) migrate(ctx context.Context, schema Schema) error {
	for {
		err := db.migrateOnce(ctx, schema)
		if err == nil || db.dialect.RetryMigration == nil || !db.dialect.RetryMigration(err) {
			return err
		}
	}
}

func (db *DB) migrateOnce(ctx context.Context, schema Schema) error {
	names, versions, err := db.migrations()
	if err != nil {
		return err
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if db.dialect.LockMigrations != nil {
		if err := db.dialect.LockMigrations(ctx, tx); err != nil {
			return err
		}
	}
	// Only a migration makes a schema: a command on a database without
	// one (a mistyped name) is refused, and leaves it as it was.
	if schema == Migrate {
		if _, err := tx.ExecContext(ctx, MigrationsTable); err != nil {
			return err
		}
	}
	// A later version's schema may hold what this one would misread, or
	// overwrite: it is refused, not used.
	var have sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&have)
	switch {
	case err != nil && schema == Migrate:
		return err
	case err != nil || !have.Valid && schema != Migrate:
		return errors.Join(ErrNoSchema, err)
	}
	if known := slices.Max(versions); have.Int64 > int64(known) {
		return laterSchema(have.Int64, known)
	}
	if schema == AsIs {
		return nil
	}
	applied, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return err
	}
	done := map[int]bool{}
	for applied.Next() {
		var v int
		if err := applied.Scan(&v); err != nil {
			applied.Close()
			return err
		}
		done[v] = true
	}
	if err := applied.Close(); err != nil {
		return err
	}
	locked := false
	for i, name := range names {
		version := versions[i]
		if done[version] {
			continue
		}
		if schema == RefuseEarlier {
			return fmt.Errorf("the database is of an earlier version of OpenPCA (it lacks migration %s): start this version's server first, which brings it up to date; a command does not, as a server of the earlier version may still be running on it", name)
		}
		if !locked && db.dialect.LockTables != nil {
			if err := db.dialect.LockTables(ctx, tx); err != nil {
				return err
			}
		}
		locked = true
		body, err := fs.ReadFile(db.dialect.Migrations, name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("%s: %w (no migration was applied: they are applied all together, or none)", name, err)
		}
		if _, step, _ := strings.Cut(name, "_"); migrationSteps[step] != nil {
			if err := migrationSteps[step](db, ctx, tx); err != nil {
				return fmt.Errorf("%s: %w (no migration was applied: they are applied all together, or none)", name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, db.rewrite(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), version, time.Now().UnixMicro()); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Migrate brings the schema of a database opened AsIs up to date, and
// prepares its hot queries, before any other use of the store: a server
// that opens its database as it is checks what could refuse its start
// before it migrates, so that a start refused leaves the database as the
// servers of its version still running on it need it.
func (db *DB) Migrate(ctx context.Context) error {
	if err := db.migrate(ctx, Migrate); err != nil {
		return fmt.Errorf("%s: the schema: %w", db.dialect.Name, err)
	}
	// Opened as it was, it has no hot queries prepared: they name what
	// the schema may not have had.
	if err := db.w.prepareHot(ctx, hotQueries...); err != nil {
		return err
	}
	return db.completeEarlierCAs(ctx)
}

// ErrLaterSchema says that a later version of OpenPCA migrated the
// database: this one could misread, or overwrite, what that one stores.
var ErrLaterSchema = errors.New("the database is of a later version of OpenPCA")

func laterSchema(have int64, known int) error {
	return fmt.Errorf("%w (its schema has migration %d, this version's last is %d): run that version, or a later one", ErrLaterSchema, have, known)
}

// CheckSchema returns ErrLaterSchema if a later version has migrated the
// database since it was opened: a server of this version still running on
// it must stop.
func (db *DB) CheckSchema(ctx context.Context) error {
	_, versions, err := db.migrations()
	if err != nil {
		return err
	}
	have, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if known := slices.Max(versions); have > known {
		return laterSchema(int64(have), known)
	}
	return nil
}

// SchemaBehind reports whether the database lacks migrations of this
// version: a database opened AsIs, of an earlier version.
func (db *DB) SchemaBehind(ctx context.Context) (bool, error) {
	_, versions, err := db.migrations()
	if err != nil {
		return false, err
	}
	have, err := db.SchemaVersion(ctx)
	return have < slices.Max(versions), err
}

// migrations are the dialect's migrations' file names, in order, and their
// numbers.
func (db *DB) migrations() ([]string, []int, error) { return Migrations(db.dialect.Migrations) }

// Migrations returns the file names of the migrations in m (NNNN_name.sql),
// in order, and their numbers.
func Migrations(m fs.FS) ([]string, []int, error) {
	names, err := fs.Glob(m, "*.sql")
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(names)
	versions := make([]int, len(names))
	for i, name := range names {
		if versions[i], err = strconv.Atoi(strings.SplitN(name, "_", 2)[0]); err != nil {
			return nil, nil, fmt.Errorf("migration %s: name must start with its number", name)
		}
	}
	return names, versions, nil
}

// SchemaVersion returns the highest migration applied.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// inTx runs fn in a write transaction, committing if it returns nil.
func (db *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return db.retry(ctx, func() error {
		tx, err := db.write.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			tx.Rollback()
			return err
		}
		if db.check != nil {
			if err := db.check(); err != nil {
				tx.Rollback()
				return err
			}
		}
		err = db.dialect.Outcome.Commit(ctx, db.write, tx)
		// database/sql rolls back a transaction whose context ended, and
		// Commit then says only that it is done: the context's end is
		// the cause (a client that hung up is no internal failure).
		if errors.Is(err, sql.ErrTxDone) && ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	})
}

// retryAttempts bounds how often a transaction the database aborted runs
// again.
const retryAttempts = 5

// retry runs fn, and again while it fails with an error the dialect says
// is worth retrying, after a short random pause that grows each time.
func (db *DB) retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		// A transaction whose COMMIT may have committed is not run again.
		if err == nil || db.dialect.Retryable == nil || !db.dialect.Retryable(err) || errors.Is(err, groupcommit.ErrUncertain) || attempt == retryAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(rand.Int64N(int64(attempt) * int64(10*time.Millisecond)))):
		}
	}
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

// wrap adds context to an error, leaving the domain's own errors as they
// are so that callers can test for them.
func (db *DB) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*openpca.Error](err); ok {
		return err
	}
	err = fmt.Errorf("%s: %s: %w", db.dialect.Name, what, err)
	if db.dialect.Full != nil && db.dialect.Full(err) {
		db.readiness.full.Store(&fullWrite{at: time.Now(), err: err})
		return errors.Join(errFull, err)
	}
	// A retry may find the database, or another connection to it; the
	// error is the cause, which the server logs. A write whose commit's
	// answer was lost with the connection may be durable: a client that
	// retries it with its idempotency token gets what it made.
	if db.dialect.Unreachable != nil && db.dialect.Unreachable(err) {
		if errors.Is(err, groupcommit.ErrUncertain) {
			return &openpca.Error{Code: openpca.CodeServiceUnavailable, Message: "The server lost its database's answer to the write, which may have been stored; retry it (an issuance with the same idempotency token gets what was stored).", Cause: err}
		}
		return &openpca.Error{Code: openpca.CodeServiceUnavailable, Message: "The server cannot reach its database now; retry later.", Cause: err}
	}
	// A write whose batch ran out of time waited on a database that did
	// not answer (stopped, cut off without a word, or a lock held); so
	// did a statement the database itself ended for its wait.
	if errors.Is(err, groupcommit.ErrTimedOut) || db.dialect.Timeout != nil && db.dialect.Timeout(err) {
		return &openpca.Error{Code: openpca.CodeServiceUnavailable, Message: "The server's database did not answer in time; retry later.", Cause: err}
	}
	return err
}

// errFull is what a client is told of a write that failed for want of
// disk space; Ready says not ready for a while after, and why, which the
// server logs.
var errFull = openpca.Errorf(openpca.CodeServiceUnavailable, "The server has no room to store writes now; retry later.")
