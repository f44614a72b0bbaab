package postgres_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/storetest"
	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/postgres"
	"github.com/openpca/openpca/sqlstore"
)

func TestMain(m *testing.M) { os.Exit(testenv.RunWithPostgres(m)) }

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) openpca.Store {
		db, err := postgres.Open(t.Context(), testenv.NewPostgresDB(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

// TestConcurrentMigrations opens one database from several servers at
// once: the schema is migrated once, and every server works.
func TestConcurrentMigrations(t *testing.T) {
	dsn := testenv.NewPostgresDB(t)
	migrations, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			db, err := postgres.Open(t.Context(), dsn, postgres.Options{})
			if err != nil {
				errs[i] = err
				return
			}
			if v, err := db.SchemaVersion(t.Context()); err != nil || v != len(migrations) {
				t.Errorf("schema version %d, %v; want %d", v, err, len(migrations))
			}
			errs[i] = db.Close()
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestCertificatesMigrate opens a database of the version that kept each
// certificate's DER and fields in one wide row beside its issuance's whole
// record: after the migration, the certificate reads back the same, its
// log entry keeps its record, and the log's tree still holds.
func TestCertificatesMigrate(t *testing.T) {
	dsn := testenv.NewPostgresDB(t)
	raw := oldDatabase(t, dsn, 8) // up to 0008, the last with wide certificates
	o := storetest.NewOldCertificate(t)
	ca, c := o.CA, o.Certificate
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO certificate_authorities (id, account_id, arn, type, status, created_at, last_state_change_at, config, key_storage, usage_mode,
			key_handle, csr, tags, version) VALUES ($1, $2, $3, 'ROOT', 'ACTIVE', 0, 0, '{}', '', 'GENERAL_PURPOSE', '\x00', '\x00', '[]', 1)`,
			[]any{ca.ID, ca.AccountID, ca.ARN}},
		{`INSERT INTO key_use_logs (ca_id, size) VALUES ($1, 2)`, []any{ca.ID}},
		{`INSERT INTO key_uses (ca_id, seq, kind, at, serial, record, hashes) VALUES ($1, 0, $2, 0, '', $3, $4), ($5, 1, $6, $7, $8, $9, $10)`,
			[]any{ca.ID, o.CSR.Kind, o.CSR.Record, o.Hashes[0], ca.ID, o.Issue.Kind, c.IssuedAt.UnixMicro(), c.Serial, o.Issue.Record, o.Hashes[1]}},
		{`INSERT INTO certificates (ca_id, serial, account_id, arn, certificate, subject, not_before, not_after, issued_at, template_arn,
			requested_by, request_id, issue_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1)`,
			[]any{ca.ID, c.Serial, c.AccountID, c.ARN, c.DER, c.Subject, c.NotBefore.UnixMicro(), c.NotAfter.UnixMicro(), c.IssuedAt.UnixMicro(),
				c.TemplateARN, c.RequestedBy, c.RequestID}},
	} {
		if _, err := raw.Exec(q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	db, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	o.Check(t, db)
}

// TestEarlierImportsLogged: see storetest.EarlierImports.
func TestEarlierImportsLogged(t *testing.T) {
	dsn := testenv.NewPostgresDB(t)
	open := func(t *testing.T) *sqlstore.DB {
		db, err := postgres.Open(t.Context(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	exec := func(q string, args ...any) {
		if _, err := raw.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	storetest.EarlierImports(t, open, func(held, pending, purged string, chain []byte) {
		exec(`UPDATE certificate_authorities SET certificate = '\x01', certificate_chain = $1, not_before = 1000000, not_after = 2000000 WHERE id IN ($2, $3)`, chain, held, purged)
		exec(`UPDATE certificate_authorities SET status = 'DELETED', restorable_until = 0 WHERE id = $1`, purged)
		exec(`DELETE FROM schema_migrations WHERE version = 26`)
		exec(`DROP INDEX key_uses_imports`)
	}, func(held string) {
		exec(`UPDATE certificate_authorities SET certificate = '\x02' WHERE id = $1`, held)
	})
}

// TestBoundAccessKeys: see storetest.BoundAccessKeys.
func TestBoundAccessKeys(t *testing.T) {
	dsn := testenv.NewPostgresDB(t)
	storetest.BoundAccessKeys(t, func(t *testing.T, bind sqlstore.Binder) (*sqlstore.DB, error) {
		return postgres.Open(t.Context(), dsn, postgres.Options{Bind: bind})
	}, func() {
		raw, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, err := raw.Exec(`DELETE FROM schema_migrations WHERE version = 29`); err != nil {
			t.Fatal(err)
		}
	})
}

// oldDatabase gives the database at dsn the first n migrations, as a
// server of that version left it, and returns a connection to it.
func oldDatabase(t *testing.T, dsn string, n int) *sql.DB {
	t.Helper()
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	names, _ := filepath.Glob("migrations/*.sql")
	sort.Strings(names)
	if _, err := raw.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i, name := range names[:n] {
		body, _ := os.ReadFile(name)
		if _, err := raw.Exec(string(body)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := raw.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)`, i+1); err != nil {
			t.Fatal(err)
		}
	}
	return raw
}

// TestMigrationsAllOrNone: an upgrade whose late migration fails leaves
// the schema as it was, none of its migrations applied, for the servers of
// that version; once what failed it is gone, it applies whole.
func TestMigrationsAllOrNone(t *testing.T) {
	dsn := testenv.NewPostgresDB(t)
	raw := oldDatabase(t, dsn, 9)
	names, _ := filepath.Glob("migrations/*.sql")
	// A late migration makes an index of this name.
	if _, err := raw.Exec(`CREATE TABLE console_sessions_by_key (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	_, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err == nil || !strings.Contains(err.Error(), "_console_sessions_by_key.sql") {
		t.Fatalf("an upgrade whose late migration fails: %v", err)
	}
	var version int
	var witnessing sql.NullString
	if err := raw.QueryRow(`SELECT (SELECT MAX(version) FROM schema_migrations), to_regclass('witnessing')`).Scan(&version, &witnessing); err != nil {
		t.Fatal(err)
	}
	if version != 9 || witnessing.Valid {
		t.Errorf("after the failed upgrade: version %d, table witnessing %v; want 9, and none of 0010", version, witnessing.Valid)
	}
	if _, err := raw.Exec(`DROP TABLE console_sessions_by_key`); err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.SchemaVersion(t.Context()); err != nil || v != len(names) {
		t.Errorf("schema version %d, %v; want %d", v, err, len(names))
	}
}

// TestMigrationWaitsBeforeWork: a server migrating beside a long read of
// OpenPCA's tables (a pg_dump's) waits for it before it applies anything,
// says so, and lets the reads of running servers through meanwhile; it
// neither locks nor waits for a table of another application in the
// schema.
func TestMigrationWaitsBeforeWork(t *testing.T) {
	ctx := t.Context()
	dsn := testenv.NewPostgresDB(t)
	raw := oldDatabase(t, dsn, 12) // migration 21 indexes console_sessions
	if _, err := raw.ExecContext(ctx, `CREATE TABLE other_application (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	other, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback()
	if _, err := other.ExecContext(ctx, `LOCK TABLE other_application IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	dump, err := raw.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dump.Rollback()
	if _, err := dump.ExecContext(ctx, `LOCK TABLE console_sessions, key_uses IN ACCESS SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	var log testenv.SyncBuffer
	opened := make(chan error, 1)
	go func() {
		db, err := postgres.Open(ctx, dsn, postgres.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
		if err == nil {
			db.Close()
		}
		opened <- err
	}()
	for deadline := time.Now().Add(time.Minute); !strings.Contains(log.String(), "waiting to migrate the schema"); time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-opened:
			t.Fatalf("migrated beside a pg_dump's transaction: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no word of the wait for the pg_dump's transaction: %q", log.String())
		}
	}
	// Reads of the tables go on, the waiting lock ahead of them for a
	// try at most (lastLockTry), across several of its tries: of the
	// tables the pg_dump holds, and of the others (which a migration
	// keeping the tables it got, try after try, would hold).
	for i := range 30 {
		read, cancel := context.WithTimeout(ctx, 2*time.Second)
		var n, version int
		err := raw.QueryRowContext(read, `SELECT (SELECT COUNT(*) FROM accounts) + (SELECT COUNT(*) FROM console_sessions) + (SELECT COUNT(*) FROM key_uses), (SELECT MAX(version) FROM schema_migrations)`).Scan(&n, &version)
		cancel()
		if err != nil {
			t.Fatalf("read %d of the tables while the migration waits: %v", i, err)
		}
		if version != 12 {
			t.Fatalf("the schema has migration %d while the migration waits", version)
		}
		time.Sleep(100 * time.Millisecond)
	}
	dump.Rollback()
	select {
	case err := <-opened:
		if err != nil {
			t.Fatalf("a start after the pg_dump's transaction: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("no start a minute after the pg_dump's transaction, beside another application's")
	}
	var version int
	if err := raw.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&version); err != nil || version <= 12 {
		t.Fatalf("migration %d after the start (%v)", version, err)
	}
}

// TestOwnTables: the tables a migration locks (ownTables) are those the
// migrations make, every one: a table the pattern missed would be
// altered by a migration that had not waited for its readers.
func TestOwnTables(t *testing.T) {
	ctx := t.Context()
	dsn := testenv.NewPostgresDB(t)
	store, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rows, err := raw.QueryContext(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename`)
	if err != nil {
		t.Fatal(err)
	}
	var made []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		made = append(made, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	own, err := postgres.OwnTables()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(own, made) {
		t.Errorf("the tables a migration locks: %q\nthe tables the migrations made: %q", own, made)
	}
}

// TestLockTables: a migration locks its tables at a savepoint it keeps
// from one try to the next, rather than one more nested savepoint each
// try (each a subtransaction the migration then runs in), and gives it
// back once the tables are locked; it locks the tables of its schema
// alone, not those of the same name elsewhere on the search_path; and its
// transaction is not idle while it pauses.
func TestLockTables(t *testing.T) {
	ctx := t.Context()
	raw, err := sql.Open("pgx", testenv.NewPostgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range []string{`CREATE SCHEMA openpca`, `CREATE TABLE openpca.accounts (x INTEGER)`, `CREATE TABLE public.accounts (x INTEGER)`, `CREATE TABLE public.certificates (x INTEGER)`} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	locks := func(q string) int {
		t.Helper()
		var n int
		if err := raw.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_locks WHERE relation = 'openpca.accounts'::regclass AND mode = 'AccessExclusiveLock' AND `+q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Another application's transaction holds the public tables, and a
	// pg_dump's OpenPCA's, until the migration has failed a try.
	other, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback()
	if _, err := other.ExecContext(ctx, `LOCK TABLE public.accounts, public.certificates IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	dump, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dump.Rollback()
	if _, err := dump.ExecContext(ctx, `LOCK TABLE openpca.accounts IN ACCESS SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	// Its pauses are longer than a transaction may be idle here.
	for _, q := range []string{`SET LOCAL search_path = openpca, public`, `SET LOCAL idle_in_transaction_session_timeout = '500ms'`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	locked := make(chan error, 1)
	go func() { locked <- postgres.LockTables(ctx, tx, []string{"accounts", "certificates"}) }()
	for _, wait := range []struct {
		what    string
		waiting int
	}{{"a try", 1}, {"the try's end", 0}} {
		for deadline := time.Now().Add(time.Minute); locks(`NOT granted`) != wait.waiting; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no sign of %s after a minute", wait.what)
			}
		}
	}
	dump.Rollback()
	select {
	case err := <-locked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the tables not locked a minute after the pg_dump's transaction, beside another application's")
	}
	if locks(`granted`) != 1 {
		t.Error("the migration holds no lock of its table")
	}
	var timeout string
	if err := tx.QueryRowContext(ctx, `SHOW lock_timeout`).Scan(&timeout); err != nil || timeout != "10s" {
		t.Errorf("lock_timeout once the tables are locked: %q, %v; want 10s", timeout, err)
	}
	_, err = tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT lock_tables`)
	if pe, ok := errors.AsType[*pgconn.PgError](err); !ok || pe.Code != "3B001" {
		t.Errorf("a savepoint of the tries is left to the migration (rolled back to: %v)", err)
	}
}

// TestLockTablesOutlastsTransactions: transactions each longer than a
// migration's first tries, overlapping so that one is always there (an old
// server's reports, say), cannot keep the migration from locking its tables:
// its tries grow until one outlasts them.
func TestLockTablesOutlastsTransactions(t *testing.T) {
	ctx := t.Context()
	raw, err := sql.Open("pgx", testenv.NewPostgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(ctx, `CREATE TABLE accounts (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	const hold = 300 * time.Millisecond // three first tries
	reads, stop := context.WithCancel(ctx)
	var readers sync.WaitGroup
	for i := range 2 {
		readers.Go(func() {
			time.Sleep(time.Duration(i) * hold / 2)
			for reads.Err() == nil {
				tx, err := raw.BeginTx(reads, nil)
				if err != nil {
					return
				}
				if _, err := tx.ExecContext(reads, `LOCK TABLE accounts IN ACCESS SHARE MODE`); err == nil {
					time.Sleep(hold)
				}
				tx.Rollback()
			}
		})
	}
	defer readers.Wait()
	defer stop()
	// Both readers hold the table, the later for a first try at least.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		var holders int
		if err := raw.QueryRowContext(ctx, `SELECT COUNT(DISTINCT pid) FROM pg_locks WHERE relation = 'accounts'::regclass AND granted`).Scan(&holders); err != nil {
			t.Fatal(err)
		}
		if holders == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the readers never both held the table")
		}
	}
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	locked := make(chan error, 1)
	go func() { locked <- postgres.LockTables(ctx, tx, []string{"accounts"}) }()
	select {
	case err := <-locked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("the table not locked after a minute beside transactions of %v each", hold)
	}
}

// TestMigrationUnderStatementTimeout: a database whose statement_timeout
// is shorter than the migration's pauses (and than its migrations might
// take) is migrated all the same, once a transaction on its tables (a
// pg_dump's) ends.
func TestMigrationUnderStatementTimeout(t *testing.T) {
	ctx := t.Context()
	dsn := testenv.NewPostgresDB(t)
	raw := oldDatabase(t, dsn, 12)
	if _, err := raw.ExecContext(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET statement_timeout = %L', current_database(), '1s'); END $$`); err != nil {
		t.Fatal(err)
	}
	dump, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dump.Rollback()
	if _, err := dump.ExecContext(ctx, `LOCK TABLE console_sessions IN ACCESS SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(3*time.Second, func() { dump.Rollback() })
	db, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatalf("migrating under a statement_timeout of 1s: %v", err)
	}
	db.Close()
}

// TestMigrationWaitsForLock: a server starting while another holds the
// migration lock (migrating a large database, say, or a restore settling
// it) says that it waits, again at each bound of its wait, and starts once
// the lock is free, leaving none held.
func TestMigrationWaitsForLock(t *testing.T) {
	ctx := t.Context()
	dsn := testenv.NewPostgresDB(t)
	holder, err := postgres.OpenDB(dsn, "holder")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	conn, err := holder.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, postgres.MigrationLock); err != nil {
		t.Fatal(err)
	}
	var log testenv.SyncBuffer
	opts := postgres.WithLockWait(postgres.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))}, 50*time.Millisecond)
	opened := make(chan error, 1)
	go func() {
		db, err := postgres.Open(ctx, dsn, opts)
		if err == nil {
			db.Close()
		}
		opened <- err
	}()
	for deadline := time.Now().Add(time.Minute); strings.Count(log.String(), "waiting for a lock to read or migrate the schema") < 2; time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-opened:
			t.Fatalf("opened beside the lock's holder: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no word of the wait after a minute: %q", log.String())
		}
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, postgres.MigrationLock); err != nil {
		t.Fatal(err)
	}
	if err := <-opened; err != nil {
		t.Fatal(err)
	}
	var held int
	if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory'`).Scan(&held); err != nil || held != 0 {
		t.Errorf("%d advisory locks held once the server started, %v", held, err)
	}
}

// TestCARowsLockInOrder: a revocation, and a CRL's record, take a CA's
// rows in the order every write takes them (the CA's, the log's, the
// CRL's, the certificate's), so that no two on two servers wait for each
// other. A transaction holds a row, as another write does (an update of
// the CA, a group commit that wrote an idempotent issuance); the write
// waits for it, and has taken nothing the transaction then needs.
func TestCARowsLockInOrder(t *testing.T) {
	type write func(ctx context.Context, store *sqlstore.DB, r *openpca.Revocation) error
	revoke := func(ctx context.Context, store *sqlstore.DB, r *openpca.Revocation) error {
		return store.RecordRevocation(ctx, r)
	}
	caOf := func(ctx context.Context, store *sqlstore.DB, r *openpca.Revocation) (*openpca.CA, error) {
		var record openpca.KeyUseRecord
		if err := json.Unmarshal(r.Use.Record, &record); err != nil {
			return nil, err
		}
		return store.FindCA(ctx, record.Account, r.CAID)
	}
	recordCRL := func(ctx context.Context, store *sqlstore.DB, r *openpca.Revocation) error {
		job, err := store.ClaimCRL(ctx, "a", time.Now(), time.Minute)
		if err != nil {
			return err
		}
		ca, err := caOf(ctx, store, r)
		if err != nil {
			return err
		}
		return store.RecordCRL(ctx, job, "a", openpca.CRLUse(ca, job.Number+1, time.Now(), time.Now().Add(time.Hour), &openpca.CRLEntries{}, []byte("crl")), 0, []openpca.CertificateAuthorityStatus{openpca.CertificateAuthorityStatusActive})
	}
	// An issuance with the token "T", which another server is sent too.
	issue := func(ctx context.Context, store *sqlstore.DB, r *openpca.Revocation) error {
		ca, err := caOf(ctx, store, r)
		if err != nil {
			return err
		}
		is := storetest.NewIssuance(ca)
		is.Token = openpca.IdempotencyToken{AccountID: ca.AccountID, Operation: "IssueCertificate:" + ca.ID, Token: "T", Now: time.Now(), Since: time.Now().Add(-time.Minute)}
		_, err = store.RecordIssuance(ctx, is)
		return err
	}
	for _, tc := range []struct {
		name          string
		write         write
		first, second string // the transaction's statements, with the CA's id and the certificate's serial
	}{
		{"an idempotent issuance's token after the log", issue, `UPDATE key_use_logs SET size = size WHERE ca_id = $1`,
			`INSERT INTO idempotency_tokens (account_id, operation, token, created_at, result)
				SELECT account_id, 'IssueCertificate:' || id, 'T', 0, '' FROM certificate_authorities WHERE id = $1 ON CONFLICT DO NOTHING`},
		{"a revocation after the log", revoke, `UPDATE key_use_logs SET size = size WHERE ca_id = $1`, `UPDATE crl_publications SET wanted = wanted WHERE ca_id = $1`},
		{"a revocation's certificate after the log", revoke, `UPDATE key_use_logs SET size = size WHERE ca_id = $1`,
			`SELECT 1 FROM certificates WHERE ca_id = $1 AND serial = $2 FOR UPDATE`},
		{"a revocation after the CA updated", revoke, `SELECT 1 FROM certificate_authorities WHERE id = $1 FOR UPDATE`, `UPDATE crl_publications SET wanted = wanted WHERE ca_id = $1`},
		{"a CRL after the log", recordCRL, `UPDATE key_use_logs SET size = size WHERE ca_id = $1`, `UPDATE crl_publications SET wanted = wanted WHERE ca_id = $1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			dsn := testenv.NewPostgresDB(t)
			store, err := postgres.Open(ctx, dsn, postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			r := storetest.RevocationOfCRLCA(t, store)
			raw, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			tx, err := raw.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			args := func(q string) []any {
				if strings.Contains(q, "$2") {
					return []any{r.CAID, r.Serial}
				}
				return []any{r.CAID}
			}
			if _, err := tx.Exec(tc.first, args(tc.first)...); err != nil {
				t.Fatal(err)
			}
			written := make(chan error, 1)
			go func() { written <- tc.write(ctx, store, r) }()
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				var waiting int
				if err := raw.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
					t.Fatal(err)
				}
				if waiting > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the write never waited for the row")
				}
			}
			// Shorter than PostgreSQL's deadlock_timeout (1 s): were the
			// row the write's already, this would fail before either
			// found the deadlock.
			if _, err := tx.Exec(`SET LOCAL lock_timeout = '300ms'`); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(tc.second, args(tc.second)...); err != nil {
				t.Fatalf("the second row, with the first held: %v (the write took it first)", err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if err := <-written; err != nil {
				t.Errorf("the write: %v", err)
			}
		})
	}
}

// TestStuckServer: a server stopped within a transaction (frozen, or cut
// off) holds the CA's rows; PostgreSQL ends its session once it has been
// idle in it for the timeout, and the other servers' writes for the CA go
// on. Each session gets the timeout and TCP keepalives, unless something
// else set them: the address, PGOPTIONS, the role, the server.
func TestStuckServer(t *testing.T) {
	ctx := t.Context()
	dsn := testenv.NewPostgresDB(t)
	store, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	r := storetest.RevocationOfCRLCA(t, store)

	open := func(params string) *sql.DB {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		if params != "" {
			params = sep + params
		}
		db, err := postgres.OpenDB(dsn+params, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	show := func(db *sql.DB, name string) string {
		var v string
		if err := db.QueryRowContext(ctx, "SHOW "+name).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct{ params, want string }{
		{"", "15s"},
		{"idle_in_transaction_session_timeout=20s", "20s"},
		{"options=-c%20idle_in_transaction_session_timeout%3D25s", "25s"},
	} {
		if got := show(open(tc.params), "idle_in_transaction_session_timeout"); got != tc.want {
			t.Errorf("with %q: idle_in_transaction_session_timeout is %s, want %s", tc.params, got, tc.want)
		}
	}
	if got := show(open(""), "tcp_keepalives_idle"); got != "15" {
		t.Errorf("tcp_keepalives_idle is %s, want 15", got)
	}

	// The stuck server, with a timeout of its address's.
	stuck := open("idle_in_transaction_session_timeout=1s")
	tx, err := stuck.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`UPDATE key_use_logs SET size = size WHERE ca_id = $1`, r.CAID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := store.RecordRevocation(ctx, r); err != nil {
		t.Fatalf("the revocation beside a stuck server: %v", err)
	}
	if waited := time.Since(start); waited < 500*time.Millisecond {
		t.Errorf("the revocation waited %v: the stuck server's lock did not hold it", waited)
	}
	if err := tx.Commit(); err == nil {
		t.Error("the stuck server's transaction was not ended")
	}
}

// TestRefusedByPostgreSQL: a connection that PostgreSQL itself refused is
// decided by its code. A database that does not exist (a wrong password
// alike) is no outage: clients are not told to retry it. A role out of
// connections is one for now.
func TestRefusedByPostgreSQL(t *testing.T) {
	dsn := testenv.NewPostgresDB(t)
	db, err := postgres.OpenDB(dsn, "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Roles are the cluster's: one of this database's name.
	role := "no_connections_" + dsn[strings.LastIndex(dsn, "/")+1:strings.Index(dsn, "?")]
	if _, err := db.ExecContext(t.Context(), `CREATE ROLE `+role+` LOGIN CONNECTION LIMIT 0`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dsn   string
		unreachable bool
	}{
		{"a database that does not exist", strings.Replace(dsn, "/openpca_test_", "/no_such_", 1), false},
		{"a role out of connections", strings.Replace(dsn, "//postgres@", "//"+role+"@", 1), true},
	} {
		_, err := pgconn.Connect(t.Context(), tc.dsn)
		if _, ok := errors.AsType[*pgconn.ConnectError](err); !ok {
			t.Fatalf("%s: %v, not a connection's error", tc.name, err)
		}
		if got := postgres.Unreachable(err); got != tc.unreachable {
			t.Errorf("%s (%v): unreachable %v, want %v", tc.name, err, got, tc.unreachable)
		}
	}
}

// TestGuardSettling: a settling's own sessions are not others; a
// server's are, whether it runs before the check or in the transaction;
// and a server that starts while the settling's transaction runs waits
// for it to end.
func TestGuardSettling(t *testing.T) {
	ctx := t.Context()
	dsn := testenv.NewPostgresDB(t)
	server, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	settling := postgres.CommandSession("restore")
	if postgres.CommandSession("restore") == settling {
		t.Error("two settlings have one name")
	}
	if _, err := server.SchemaVersion(ctx); err != nil { // it holds a session
		t.Fatal(err)
	}
	var others *postgres.SessionsError
	if err := postgres.OtherSessions(ctx, dsn, settling); !errors.As(err, &others) || !strings.Contains(err.Error(), "openpca from 127.0.0.1") {
		t.Fatalf("beside a server: %v", err)
	}
	server.Close()
	// PostgreSQL ends the closed sessions in its own time.
	for deadline := time.Now().Add(time.Minute); postgres.OtherSessions(ctx, dsn, settling) != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a closed server's sessions are still listed after a minute")
		}
	}

	// The settling's name goes over one the address gives.
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	own, err := postgres.OpenDB(dsn+sep+"application_name=mine", settling)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	own.SetMaxIdleConns(4)
	// Idle sessions of its own are not others.
	var conns []*sql.Conn
	for range 3 {
		c, err := own.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Close()
	}
	if err := postgres.OtherSessions(ctx, dsn, settling); err != nil {
		t.Fatalf("with only its own sessions: %v", err)
	}

	guarded := func() (*sql.Tx, error) {
		tx, err := own.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tx, postgres.GuardSettling(ctx, tx)
	}
	tx, err := guarded()
	if err != nil {
		t.Fatalf("with only its own sessions, in the transaction: %v", err)
	}
	type opened struct {
		db  *sqlstore.DB
		err error
	}
	started := make(chan opened, 1)
	go func() {
		db, err := postgres.Open(ctx, dsn, postgres.Options{})
		started <- opened{db, err}
	}()
	// The server starting waits for the settling's lock.
	for waiting := false; !waiting; {
		select {
		case o := <-started:
			t.Fatalf("a server started while the settling's transaction ran: %v", o.err)
		case <-time.After(10 * time.Millisecond):
		}
		probe, err := postgres.OpenDB(dsn, "")
		if err != nil {
			t.Fatal(err)
		}
		err = probe.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = current_database()
			AND application_name = 'openpca' AND pid <> pg_backend_pid() AND wait_event_type = 'Lock')`).Scan(&waiting)
		probe.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	o := <-started
	if o.err != nil {
		t.Fatal(o.err)
	}
	defer o.db.Close()
	// Now it runs, and a settling is refused in the transaction too.
	tx, err = guarded()
	tx.Rollback()
	if !errors.As(err, &others) || len(others.Sessions) == 0 {
		t.Fatalf("beside a server, in the transaction: %v", err)
	}
}

// TestSealingWaitsForReseal: a rotation of the master key locks the
// key's check before anything else, and what reads it waits, longer than
// the sessions' lock_timeout: a server starting (InitSetting) reads what
// the rotation left, not the check of before, and a sealed value stored
// meanwhile (an access key's secret, a CA's key, the audit log's key)
// waits, to be refused once its key is retired, rather than be stored
// after the rotation read the table, sealed with a key that servers drop.
func TestSealingWaitsForReseal(t *testing.T) {
	ctx := t.Context()
	dsn := testenv.NewPostgresDB(t)
	open := func(session string) *sqlstore.DB {
		db, err := postgres.Open(ctx, dsn, postgres.Options{Session: session})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	rotating, starting, sealing, keeping := open(postgres.CommandSession("rotate")), open("starting"), open("sealing"), open("keeping")
	sealing.SealsWith("old")
	keeping.SealsWith("old")
	for _, s := range []struct{ name, value string }{{sqlstore.MasterKeyCheck, "old"}, {sqlstore.RetiredMasterKeys, ""}} {
		if _, err := rotating.InitSetting(ctx, s.name, []byte(s.value)); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	if err := rotating.CreateAccount(ctx, &openpca.Account{ID: "111122223333", Name: "a", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := rotating.PutAccessKey(ctx, &openpca.AccessKey{ID: "OPCAKEY1", AccountID: "111122223333", SealedSecret: []byte("old"), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	type result struct {
		check []byte
		err   error
	}
	read, stored, kept := make(chan result, 1), make(chan result, 1), make(chan result, 1)
	waiting := func(session string) bool {
		probe, err := postgres.OpenDB(dsn, "")
		if err != nil {
			t.Fatal(err)
		}
		defer probe.Close()
		var yes bool
		if err := probe.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = current_database()
			AND application_name = $1 AND wait_event_type = 'Lock')`, session).Scan(&yes); err != nil {
			t.Fatal(err)
		}
		return yes
	}
	err := rotating.Reseal(ctx, func(v *openpca.SealedValue) ([]byte, error) {
		switch v.ID {
		case "OPCAKEY1":
			// The first value: the rotation has read no setting yet.
			go func() {
				v, err := starting.InitSetting(ctx, sqlstore.MasterKeyCheck, []byte("first"))
				read <- result{v, err}
			}()
			go func() {
				stored <- result{nil, sealing.PutAccessKey(ctx, &openpca.AccessKey{ID: "OPCAKEY2", AccountID: "111122223333", SealedSecret: []byte("old"), CreatedAt: t0})}
			}()
			go func() {
				v, err := keeping.InitSetting(ctx, "audit-key", []byte("old"))
				kept <- result{v, err}
			}()
			for deadline := time.Now().Add(time.Minute); !waiting("starting") || !waiting("sealing") || !waiting("keeping"); time.Sleep(10 * time.Millisecond) {
				select {
				case r := <-read:
					return nil, fmt.Errorf("a server starting read %q while the rotation ran", r.check)
				case r := <-stored:
					return nil, fmt.Errorf("an access key was stored while the rotation ran: %v", r.err)
				case r := <-kept:
					return nil, fmt.Errorf("a sealed setting was stored while the rotation ran: %q, %v", r.check, r.err)
				default:
				}
				if time.Now().After(deadline) {
					return nil, errors.New("no wait after a minute")
				}
			}
			// Longer than the sessions' lock_timeout, which bounds a
			// batch's waits: these wait for the rotation all the same.
			time.Sleep(2500 * time.Millisecond)
			return []byte("new"), nil
		case sqlstore.MasterKeyCheck:
			return []byte("new"), nil
		case sqlstore.RetiredMasterKeys:
			return []byte("old\n"), nil
		}
		return v.Value, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := <-read; r.err != nil || string(r.check) != "new" {
		t.Errorf("a server starting read %q, %v once the rotation committed; want new", r.check, r.err)
	}
	if r := <-stored; !strings.Contains(fmt.Sprint(r.err), "was retired by a rotation") {
		t.Errorf("an access key sealed with the retired key, once the rotation committed: %v", r.err)
	}
	if r := <-kept; !strings.Contains(fmt.Sprint(r.err), "was retired by a rotation") {
		t.Errorf("a setting sealed with the retired key, once the rotation committed: %q, %v", r.check, r.err)
	}
}

// TestReadyDuringReseal: a rotation of the master key, which locks what it
// reseals for its transaction, leaves the readiness probe's row alone: a
// server's probe, and the batch of writes it shares, do not wait for the
// rotation, nor wait with it for each other's rows.
func TestReadyDuringReseal(t *testing.T) {
	ctx := t.Context()
	dsn := testenv.NewPostgresDB(t)
	open := func() *sqlstore.DB {
		db, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	rotating, serving, other := open(), open(), open()
	// The probe's row is there to lock; serving's next probe writes it.
	if err := other.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	err := rotating.Reseal(ctx, func(v *openpca.SealedValue) ([]byte, error) { return v.Value, nil }, func(context.Context) error {
		wait, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := serving.Ready(wait); err != nil {
			return fmt.Errorf("the probe while the reseal runs: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSessionsEarliest: OtherSessions says when the first of the sessions
// it finds began, by the database's clock (Clock), which tells a session
// from before a moment (a server using the database) from one since.
func TestSessionsEarliest(t *testing.T) {
	ctx := t.Context()
	dsn := testenv.NewPostgresDB(t)
	own := postgres.CommandSession("restore")
	session := func() *sql.DB {
		db, err := postgres.OpenDB(dsn, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		return db
	}
	earliest := func() time.Time {
		t.Helper()
		var e *postgres.SessionsError
		if err := postgres.OtherSessions(ctx, dsn, own); !errors.As(err, &e) {
			t.Fatalf("beside a session: %v", err)
		}
		return e.Earliest
	}
	first := session()
	defer first.Close()
	mark, err := postgres.Clock(ctx, dsn, own)
	if err != nil {
		t.Fatal(err)
	}
	later := session()
	defer later.Close()
	if got := earliest(); !got.Before(mark) {
		t.Errorf("with a session from before %v, the earliest began at %v", mark, got)
	}
	first.Close()
	for deadline := time.Now().Add(time.Minute); earliest().Before(mark); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a closed session is still listed after a minute")
		}
	}
}

// TestClockOffset: the store measures how far the database's clock is
// ahead of the one it is given, which servers sharing the database are
// warned by when their own is off.
func TestClockOffset(t *testing.T) {
	db, err := postgres.Open(t.Context(), testenv.NewPostgresDB(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, skew := range []time.Duration{0, -time.Hour, 90 * time.Second} {
		offset, uncertainty, ok, err := db.ClockOffset(t.Context(), func() time.Time { return time.Now().Add(skew) })
		// The database runs on this machine, by its clock: the offset is
		// the skew given, reversed, within the measure's uncertainty and
		// a margin for the two clocks' readings (the database's rounded
		// to a microsecond).
		if err != nil || !ok || (offset+skew).Abs() > uncertainty+10*time.Millisecond || uncertainty > time.Second {
			t.Errorf("a clock %v ahead: the database is %v ahead ± %v (%v, %v), want %v", skew, offset, uncertainty, ok, err, -skew)
		}
	}
}

// TestResealWaitsForSealing: a rotation waits for a transaction under way
// that stores a sealed value (it holds the master key's check for share)
// longer than the sessions' lock_timeout: it failed at 2 s.
func TestResealWaitsForSealing(t *testing.T) {
	store, tx := storeBeside(t, `SELECT value FROM settings WHERE name = '`+sqlstore.MasterKeyCheck+`' FOR SHARE`)
	go func() {
		time.Sleep(2500 * time.Millisecond)
		tx.Commit()
	}()
	if err := store.Reseal(t.Context(), func(v *openpca.SealedValue) ([]byte, error) { return v.Value, nil }, nil); err != nil {
		t.Errorf("a rotation beside a sealing transaction of 2.5 s: %v", err)
	}
}

// TestResealGivesUpOnFrozenCAs: a rotation waits long for the master
// key's check only: for the CAs' table, which a frozen server's batch may
// hold, it waits as a batch does, and fails, rather than queue every CA's
// writes behind its lock of the table until that server's session ends.
func TestResealGivesUpOnFrozenCAs(t *testing.T) {
	store, _ := storeBeside(t, `LOCK TABLE certificate_authorities IN ROW EXCLUSIVE MODE`)
	wait, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err := store.Reseal(wait, func(v *openpca.SealedValue) ([]byte, error) { return v.Value, nil }, nil)
	if pe, ok := errors.AsType[*pgconn.PgError](err); !ok || pe.Code != "55P03" {
		t.Errorf("a rotation beside a frozen batch's lock: %v; want the lock_timeout's", err)
	}
}

// storeBeside returns a store on a new database whose master key's check
// is set, and the transaction, on another connection, that ran lock.
func storeBeside(t *testing.T, lock string) (*sqlstore.DB, *sql.Tx) {
	t.Helper()
	ctx := t.Context()
	dsn := testenv.NewPostgresDB(t)
	store, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.InitSetting(ctx, sqlstore.MasterKeyCheck, []byte("old")); err != nil {
		t.Fatal(err)
	}
	holder, err := postgres.OpenDB(dsn, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Close() })
	tx, err := holder.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	if _, err := tx.ExecContext(ctx, lock); err != nil {
		t.Fatal(err)
	}
	return store, tx
}
