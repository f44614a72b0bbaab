// Package postgres opens the store on PostgreSQL, through pgx, for several
// servers sharing one database. Row locks and transaction-scoped advisory
// locks keep the store's invariants across servers.
package postgres

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/openpca/openpca/groupcommit"
	"github.com/openpca/openpca/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Tuning.
const (
	maxBatch = 256 // writes per group-commit transaction, at most
	maxConns = 16  // connections of a server
)

// migrationLock is the advisory lock that servers starting at once take
// in turn to migrate the schema, for the transaction that does, so that
// nothing can leave it held (a pooler that gives the unlock to another
// server connection than the lock's, say).
const migrationLock int64 = 0x6f70656e706361 // "openpca"

// lockWait bounds each wait of a migration's transaction for a lock: the
// migration lock, held by a server migrating, or a restore settling (which
// can take minutes, on a large database). Past it the transaction is made
// again, and the server logs that it waits. (Its tables, the migration
// takes in brief tries instead: tableLocker.)
const lockWait = 10 * time.Second

// sessionDefaults are settings of each connection's session, where
// nothing else set them (the server's configuration, the role or the
// database, the address or PGOPTIONS). A server that stops (frozen, or cut
// off by the network) within a transaction holds its row locks, the CA's
// among them, and with them every other server's writes for that CA
// (each for lock_timeout, then refused) until PostgreSQL ends the
// session: its transaction is ended once idle
// for 15 seconds (a server's last well under a second between
// statements), and a peer gone silent is found by TCP keepalives within
// about 30 seconds rather than the system's 2 hours. They are set once
// connected, not as startup parameters, which poolers such as PgBouncer
// refuse.
var sessionDefaults = map[string]string{
	"idle_in_transaction_session_timeout": "15s",
	// A write waits 2 s at most for a lock another transaction holds
	// (55P03, ServiceUnavailable), rather than until its batch's time runs
	// out (30 s): a CA's rows that a frozen server holds then fail its
	// writes alone (groupcommit's SetContended), not every CA's batched
	// with them and behind them. Locks are held for a batch's commit, some
	// milliseconds; migrations and restores set waits of their own, and
	// a start waits out a rotation of the master key (WaitLocks).
	"lock_timeout":            "2s",
	"tcp_keepalives_idle":     "15",
	"tcp_keepalives_interval": "5",
	"tcp_keepalives_count":    "3",
}

// waitLocks has the statements of tx that follow wait for locks 5
// minutes (not where the operator set a longer wait, or none), and
// returns what puts back the wait of before (sqlstore.Dialect.WaitLocks).
func waitLocks(ctx context.Context, tx *sql.Tx) (func() error, error) {
	var before string
	if err := tx.QueryRowContext(ctx, `SELECT pg_catalog.current_setting('lock_timeout')`).Scan(&before); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_catalog.set_config('lock_timeout', '5min', true)
		WHERE $1::interval BETWEEN '1 millisecond' AND '5 minutes'`, before); err != nil {
		return nil, err
	}
	return func() error {
		_, err := tx.ExecContext(ctx, `SELECT pg_catalog.set_config('lock_timeout', $1, true)`, before)
		return err
	}, nil
}

// setSessionDefaults sets the sessionDefaults that are at PostgreSQL's
// own defaults on a new connection.
func setSessionDefaults(ctx context.Context, conn *pgx.Conn) error {
	names := slices.Sorted(maps.Keys(sessionDefaults))
	rows, err := conn.Query(ctx, `SELECT name FROM pg_settings WHERE name = ANY($1) AND source = 'default'`, names)
	if err != nil {
		return err
	}
	unset, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, name := range unset {
		if _, err := conn.Exec(ctx, `SELECT set_config($1, $2, false)`, name, sessionDefaults[name]); err != nil {
			return fmt.Errorf("setting %s: %w", name, err)
		}
	}
	// Whatever the role or the database say: the store's transactions
	// rely on each statement seeing what committed before it (a rotation
	// of the master key reseals what a transaction it waited for stored).
	// Those that need a snapshot (a report's scan) ask for theirs.
	if _, err := conn.Exec(ctx, `SET default_transaction_isolation = 'read committed'`); err != nil {
		return fmt.Errorf("setting default_transaction_isolation: %w", err)
	}
	// A write is acknowledged, a certificate returned, only once it is
	// durable: synchronous_commit off (of the server, the role, the
	// database or the address) has PostgreSQL answer a COMMIT before its
	// log is on disk, and a crash of PostgreSQL then loses what the server
	// acknowledged. The other values (local, remote_write, on,
	// remote_apply) all wait for the local flush, and are kept.
	if _, err := conn.Exec(ctx, `SELECT set_config('synchronous_commit', 'on', false) WHERE current_setting('synchronous_commit') = 'off'`); err != nil {
		return fmt.Errorf("setting synchronous_commit: %w", err)
	}
	return nil
}

// Options are how to open a database.
type Options struct {
	// Schema is what to do with a database of an earlier version
	// (default: bring it up to date).
	Schema sqlstore.Schema
	// Bind binds access keys' secrets to their accounts, as an upgrade
	// from a version before 2026-12 must (sqlstore.Config.Bind).
	Bind sqlstore.Binder
	// Session names the sessions in pg_stat_activity (application_name),
	// over any name the address gives; by default the address's, or
	// "openpca".
	Session string
	// Logger is told of waits for a lock to migrate the schema; nil
	// logs nothing.
	Logger *slog.Logger
	// lockWait, if not 0, replaces lockWait (for tests).
	lockWait time.Duration
}

// Open connects to the database at dsn (postgres://...) and brings its
// schema up to date.
func Open(ctx context.Context, dsn string, opts Options) (*sqlstore.DB, error) {
	db, err := openDB(dsn, opts.Session)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := checkVersion(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	m, _ := fs.Sub(migrations, "migrations")
	tables, err := ownTables(m)
	if err != nil {
		db.Close()
		return nil, err
	}
	wait := cmp.Or(opts.lockWait, lockWait)
	store, err := sqlstore.Open(ctx, sqlstore.Config{
		Dialect: sqlstore.Dialect{
			Name:        "postgres",
			Numbered:    true,
			ForShare:    " FOR SHARE",
			ForUpdate:   " FOR UPDATE",
			SkipLocked:  " SKIP LOCKED",
			LockKey:     `SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`,
			Retryable:   retryable,
			Full:        full,
			Unreachable: unreachable,
			Timeout:     timeout,
			LockTimeout: func(err error) bool {
				pe, ok := errors.AsType[*pgconn.PgError](err)
				return ok && pe.Code == "55P03"
			},
			WaitLocks: waitLocks,
			// A migration is not cut short by the statement_timeout of the
			// role or the database: a long one (a copy of every
			// certificate) would fail every start; its waits for locks are
			// bounded by lock_timeout.
			LockMigrations: func(ctx context.Context, tx *sql.Tx) error {
				if err := setTimeouts(ctx, tx, wait, 0); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, `SELECT pg_catalog.pg_advisory_xact_lock($1::bigint)`, migrationLock)
				return err
			},
			LockTables: tableLocker{tables: tables, wait: wait, logger: opts.Logger}.lock,
			RetryMigration: func(err error) bool {
				pe, ok := errors.AsType[*pgconn.PgError](err)
				switch {
				case ok && pe.Code == "55P03":
					if opts.Logger != nil {
						opts.Logger.Warn("waiting for a lock to read or migrate the schema: another server migrating it, or a restore settling the database",
							"waited", wait, "error", err)
					}
					return true
				case retryable(err):
					return true
				}
				return false
			},
			// pg_xact_status tells a transaction's outcome as long
			// as its id is recent. An id
			// is unique only within one run of the server: one that
			// lost the log's tail (a crash, a failover to a standby
			// that lacks the transaction, a restored copy) hands the
			// lost transaction's id out again, and another's commit
			// then reads as the lost one's. "committed" is believed
			// only from the run that gave the id: the postmaster's
			// start, and the reset of the shared statistics, which a
			// restart after a backend's crash (same postmaster)
			// discards. "aborted" is true of the transaction on the
			// server asked, whichever run: a transaction of that id
			// there never committed.
			Outcome: groupcommit.Outcome{
				ID:     `SELECT pg_current_xact_id_if_assigned()::text || ' ' || ` + pgRun,
				Status: `SELECT CASE WHEN s = 'committed' AND split_part($1::text, ' ', 2) <> ` + pgRun + ` THEN NULL ELSE s END FROM pg_xact_status(split_part($1::text, ' ', 1)::xid8) AS s`,
			},
			// clock_timestamp() is the time as the statement reads it;
			// now() is when its transaction began.
			Clock:      `SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)`,
			Migrations: m,
		},
		Write:    db,
		Read:     db,
		Scan:     scanner{db},
		MaxBatch: maxBatch,
		Schema:   opts.Schema,
		Bind:     opts.Bind,
		Close:    db.Close,
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return store, nil
}

// CommandSession returns a name for the sessions of one run of an
// operator's command (Options.Session) that must tell its own sessions from
// every other: a settling of a restored database (OtherSessions,
// GuardSettling), a rotation of the master key (OtherKeys). It is new
// each time, so that two runs at once each see the other.
func CommandSession(command string) string { return "openpca-" + command + "-" + rand.Text() }

// restoreSessions begins the names of a restore's sessions
// (CommandSession("restore")).
const restoreSessions = "openpca-restore-"

// keySessionPrefix begins the name of the sessions of a server, or of an
// operator's command, that seals with a master key (KeySession).
const keySessionPrefix = "openpca key="

// KeySession names the sessions of a server, or of an operator's command,
// that seals with the master key of the fingerprint given
// (seal.Fingerprint): OtherKeys reads the name, to find those that seal
// with another key than a rotation's new one.
func KeySession(fingerprint string) string { return keySessionPrefix + fingerprint }

// SessionsError lists sessions on the database that an operator's command
// may not run beside, each as "<application> from <address> since
// <time>", as much as its role may see: a running server keeps at least
// one open (it reads the schema's version every few seconds).
type SessionsError struct {
	// Other says which: "other" (OtherSessions, GuardSettling), or
	// "other master keys'" (OtherKeys).
	Other    string
	Sessions []string
	// Earliest is when the first of them began, by the database's clock
	// (Clock); the zero time if PostgreSQL does not show the role when
	// one of them did.
	Earliest time.Time
	// Restore says that one of them is another restore's
	// (CommandSession("restore")).
	Restore bool
}

func (e *SessionsError) Error() string {
	return fmt.Sprintf("the database has %s sessions (%s)", e.Other, strings.Join(e.Sessions, "; "))
}

// OtherSessions returns a *SessionsError if the database at dsn has
// sessions other than those named session (CommandSession).
func OtherSessions(ctx context.Context, dsn, session string) error {
	db, err := openDB(dsn, session)
	if err != nil {
		return err
	}
	defer db.Close()
	return otherSessions(ctx, db)
}

// GuardSettling runs first in the transaction that settles a restored
// database, on sessions named by CommandSession: it takes the lock that a
// server takes as it starts (migrationLock), for the rest of the
// transaction, and returns a *SessionsError if another session is there.
// A server that started before holds a session, and one that starts
// meanwhile waits for the lock, to find the database settled.
func GuardSettling(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `SELECT pg_catalog.pg_advisory_xact_lock($1::bigint)`, migrationLock); err != nil {
		return err
	}
	return otherSessions(ctx, tx)
}

// otherSessions returns a *SessionsError if the database q queries has
// sessions not named as q's own.
func otherSessions(ctx context.Context, q querier) error {
	return sessions(ctx, q, "other", `application_name IS DISTINCT FROM current_setting('application_name')`)
}

// OtherKeys returns a *SessionsError if the database at dsn has sessions
// of servers or commands that seal with a master key other than the one
// of the fingerprint given: named KeySession of another fingerprint, or
// "openpca", as servers of the version before name theirs, whose key is
// not known. A rotation of the master key asks, on sessions named
// CommandSession, once it has rewritten the check of the master key,
// which a server or command starting waits for (sqlstore's InitSetting)
// to read: one started before has a session by then, and one started
// after reads the check once the rotation ends, to find its key retired.
func OtherKeys(ctx context.Context, dsn, session, fingerprint string) error {
	db, err := openDB(dsn, session)
	if err != nil {
		return err
	}
	defer db.Close()
	return sessions(ctx, db, "other master keys'", `(application_name LIKE $1 AND application_name <> $2 OR application_name = 'openpca')`,
		keySessionPrefix+"%", KeySession(fingerprint))
}

type querier interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

// sessions returns a *SessionsError, saying which sessions they are
// (other), if the database q queries has client sessions that where
// selects.
func sessions(ctx context.Context, q querier, other, where string, args ...any) error {
	// Of another role's sessions, a role without pg_read_all_stats sees
	// little more than that they are there, and not their backend_type:
	// autovacuum's workers, which run on a database just restored, are
	// told apart by having no user.
	rows, err := q.QueryContext(ctx, `SELECT COALESCE(application_name, ''), COALESCE(host(client_addr), ''), backend_start
		FROM pg_stat_activity WHERE datname = current_database() AND `+where+`
		AND COALESCE(backend_type, 'client backend') = 'client backend' AND usesysid IS NOT NULL ORDER BY backend_start`, args...)
	if err != nil {
		return fmt.Errorf("listing the database's sessions: %w", err)
	}
	defer rows.Close()
	e := &SessionsError{Other: other}
	for rows.Next() {
		var app, addr string
		var since sql.NullTime
		if err := rows.Scan(&app, &addr, &since); err != nil {
			return fmt.Errorf("listing the database's sessions: %w", err)
		}
		e.Restore = e.Restore || strings.HasPrefix(app, restoreSessions)
		s := cmp.Or(app, "a session")
		if addr != "" {
			s += " from " + addr
		}
		switch {
		case !since.Valid:
			e.Earliest = time.Time{}
		case len(e.Sessions) == 0 || since.Time.Before(e.Earliest):
			e.Earliest = since.Time
		}
		if since.Valid {
			s += " since " + since.Time.UTC().Format(time.RFC3339)
		}
		e.Sessions = append(e.Sessions, s)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("listing the database's sessions: %w", err)
	}
	if len(e.Sessions) > 0 {
		return e
	}
	return nil
}

// Clock returns the time by the database's clock, which SessionsError
// gives the sessions' beginnings by, on a session named session.
func Clock(ctx context.Context, dsn, session string) (time.Time, error) {
	db, err := openDB(dsn, session)
	if err != nil {
		return time.Time{}, err
	}
	defer db.Close()
	var now time.Time
	err = db.QueryRowContext(ctx, `SELECT clock_timestamp()`).Scan(&now)
	return now, err
}

// openDB opens a pool of connections to dsn as a server makes them: by
// connConfig, with the sessionDefaults.
func openDB(dsn, session string) (*sql.DB, error) {
	cfg, err := connConfig(dsn, session)
	if err != nil {
		return nil, err
	}
	return stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(setSessionDefaults)), nil
}

// minVersion is the earliest PostgreSQL the store runs on (its
// server_version_num): pg_xact_status and pg_current_xact_id_if_assigned
// came in 13, and before 15 the statistics that tell the server's run
// (pgRun) were read from the statistics collector's files, at every
// write.
const minVersion = 150000

// checkVersion refuses a PostgreSQL earlier than minVersion, on which
// every write would fail, or wait on the statistics collector.
func checkVersion(ctx context.Context, db *sql.DB) error {
	var v int
	if err := db.QueryRowContext(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&v); err != nil {
		return err
	}
	if v < minVersion {
		return fmt.Errorf("postgres: the server is PostgreSQL %d.%d; OpenPCA needs %d or later", v/10000, v%10000, minVersion/10000)
	}
	return nil
}

// pgRun names the server's run: its postmaster's start and the last reset
// of its shared statistics (discarded by the recovery that follows any
// crash), in microseconds.
const pgRun = `((extract(epoch FROM pg_postmaster_start_time()) * 1000000)::bigint::text || '-' || COALESCE((extract(epoch FROM pg_stat_get_bgwriter_stat_reset_time()) * 1000000)::bigint::text, ''))`

// retryable reports the errors of a transaction that PostgreSQL aborted to
// break a deadlock or keep transactions serializable: run again, it may
// well succeed.
// full reports PostgreSQL's disk_full.
func full(err error) bool {
	pe, ok := errors.AsType[*pgconn.PgError](err)
	return ok && pe.Code == "53100"
}

// unreachable reports whether err is of a connection to PostgreSQL that
// was lost or could not be made, or of a server shutting down, starting
// or out of connections (class 08, 57P01 to 57P03, 53300), or of a
// session it ended for idling (25P03, 25P04, 57P05), not of what a
// statement asked.
func unreachable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	// PostgreSQL's own word decides, also on a connection it refused: a
	// wrong password or a database that does not exist is no outage, too
	// many connections (53300) is one for now.
	// A session PostgreSQL ended for idling (idle_in_transaction_session_
	// timeout, which the server sets: a server frozen within a
	// transaction finds it on waking; idle_session_timeout;
	// transaction_timeout) is a connection lost too.
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pe.Code {
		case "57P01", "57P02", "57P03", "53300", "25P03", "25P04", "57P05":
			return true
		}
		return strings.HasPrefix(pe.Code, "08")
	}
	// A connection that could not be made is the database away, even when
	// its error is a deadline's: Go's dial timeout is one (errors.Is
	// context.DeadlineExceeded), and a request that spent its whole time
	// connecting found no database either.
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	// Otherwise a deadline's error, a net.Error too, is the request's own
	// bound or a lock waited on: no sign of a database away.
	if errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	// A connection that pgx closed already, having lost it (the
	// database crashed or restarted): the statement was never sent.
	if errors.Is(err, pgconn.ErrConnClosed) {
		return true
	}
	_, network := errors.AsType[net.Error](err)
	return network || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, driver.ErrBadConn)
}

// timeout reports a statement that PostgreSQL ended past its lock_timeout
// (55P03) or statement_timeout (57014), as a role's or a database's
// settings may bound them: a lock held a while (another server's
// transaction, a migration, a pg_dump), not the request's fault.
func timeout(err error) bool {
	pe, ok := errors.AsType[*pgconn.PgError](err)
	return ok && (pe.Code == "55P03" || pe.Code == "57014")
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}
