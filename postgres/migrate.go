package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Tries of a migration to lock its tables (tableLocker): the first waits
// firstLockTry at most, each after a failed one twice as long, up to
// lastLockTry, or deadlock_timeout and deadlockMargin if that is longer,
// and the pause before a try is lockTryPauses times its wait.
const (
	firstLockTry  = 100 * time.Millisecond
	lastLockTry   = time.Second
	lockTryPauses = 10
	// PostgreSQL cancels an autovacuum that holds a lock back only from
	// the waiter's deadlock check, deadlock_timeout (1 s by default) into
	// its wait: a try that ends by then never makes one yield, and the
	// migration would wait out each vacuum of its tables (busy on every
	// table of a dump just restored).
	deadlockMargin = 100 * time.Millisecond
)

// createTable finds the tables a migration makes.
var createTable = regexp.MustCompile(`(?i)\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)`)

// ownTables returns the names of the tables that the migrations in m
// make, and schema_migrations: OpenPCA's tables, the only ones a migration
// locks. Others may share the schema (an extension's, another
// application's), which the role may not be allowed to lock, and whose
// transactions are not the migration's to wait for.
func ownTables(m fs.FS) ([]string, error) {
	files, err := fs.Glob(m, "*.sql")
	if err != nil {
		return nil, err
	}
	tables := []string{"schema_migrations"}
	for _, name := range files {
		body, err := fs.ReadFile(m, name)
		if err != nil {
			return nil, err
		}
		for _, match := range createTable.FindAllSubmatch(body, -1) {
			tables = append(tables, strings.ToLower(string(match[1])))
		}
	}
	slices.Sort(tables)
	return slices.Compact(tables), nil
}

// tableLocker takes, before a migration does any work, every table of
// OpenPCA's that the database has, in one statement: the transactions of
// servers of the earlier version, and a pg_dump's, are waited for first,
// rather than met midway by a wait past lockWait that would undo the work
// done (a copy of every certificate, say).
//
// It waits in tries, at one savepoint, each undone when it fails, so that
// it gives back what it took: a lock that waits holds back every statement
// on its table that comes after it, so one wait for a pg_dump (minutes)
// would stall the reads of every running server as long. A try waits
// firstLockTry at first, longer than a running server's transactions of
// issuance and revocation (milliseconds); the tries then grow, to lastLockTry, so that transactions longer than
// a try (a report's scan of an old server) cannot keep the migration out
// for good, and the pauses grow with them, so that beside a pg_dump the
// running servers are held back a tenth of the time at most.
type tableLocker struct {
	tables []string
	wait   time.Duration // lock_timeout of the rest of the transaction
	logger *slog.Logger
}

func (l tableLocker) lock(ctx context.Context, tx *sql.Tx) error {
	// The tables of the schema the migrations make theirs in, which they
	// name without a schema: a table of the same name elsewhere on the
	// search_path is not OpenPCA's.
	var present []string
	rows, err := tx.QueryContext(ctx, `SELECT quote_ident(current_schema()) || '.' || quote_ident(t) FROM unnest($1::text[]) AS t
		WHERE to_regclass(quote_ident(current_schema()) || '.' || quote_ident(t)) IS NOT NULL ORDER BY t`, l.tables)
	if err != nil {
		return err
	}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		present = append(present, t)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if len(present) == 0 {
		return nil
	}
	lock := `LOCK TABLE ` + strings.Join(present, ", ") + ` IN ACCESS EXCLUSIVE MODE`
	var deadlock float64
	if err := tx.QueryRowContext(ctx, `SELECT EXTRACT(epoch FROM current_setting('deadlock_timeout')::interval)::float8`).Scan(&deadlock); err != nil {
		return err
	}
	last := max(lastLockTry, time.Duration(deadlock*float64(time.Second))+deadlockMargin)
	if _, err := tx.ExecContext(ctx, `SAVEPOINT lock_tables`); err != nil {
		return err
	}
	began := time.Now()
	var told time.Time // the first failed try is told of at once
	for try := firstLockTry; ; try = min(2*try, last) {
		err := l.try(ctx, tx, lock, try)
		if err == nil {
			break
		}
		// A try past its lock_timeout, or its statement_timeout: a try
		// waits lock_timeout for each table in turn, holding those it has.
		if pe, ok := errors.AsType[*pgconn.PgError](err); !ok || pe.Code != "55P03" && pe.Code != "57014" || ctx.Err() != nil {
			return err
		}
		// Kept for the next try: a savepoint made again would nest.
		if _, err := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT lock_tables`); err != nil {
			return err
		}
		if l.logger != nil && time.Since(told) >= lockWait {
			told = time.Now()
			l.logger.Warn("waiting to migrate the schema for the transactions of servers of the earlier version, or of a pg_dump, on its tables",
				"waited", time.Since(began).Round(time.Second))
		}
		// The pause is a statement, in which the transaction is not idle:
		// idle_in_transaction_session_timeout would end the session.
		pause := lockTryPauses * min(2*try, last)
		if _, err := tx.ExecContext(ctx, `SELECT pg_sleep($1)`, pause.Seconds()); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT lock_tables`); err != nil {
		return err
	}
	return setTimeouts(ctx, tx, l.wait, 0)
}

// try makes one try to lock the tables, waiting wait at most.
func (l tableLocker) try(ctx context.Context, tx *sql.Tx, lock string, wait time.Duration) error {
	if err := setTimeouts(ctx, tx, wait, wait); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, lock)
	return err
}

// setTimeouts sets lock_timeout and statement_timeout (0: none) for the
// rest of the transaction tx.
func setTimeouts(ctx context.Context, tx *sql.Tx, lock, statement time.Duration) error {
	_, err := tx.ExecContext(ctx, `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)`, ms(lock), ms(statement))
	return err
}

// ms writes d as a value of lock_timeout.
func ms(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }
