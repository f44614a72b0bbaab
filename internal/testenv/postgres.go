package testenv

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// Postgres is a throwaway PostgreSQL cluster on 127.0.0.1, in a temporary
// folder, run as the postgres user when the tests run as root (initdb
// refuses root).
type Postgres struct {
	dir  string
	bin  string
	port int
	as   string // user to run the server as; "" for the current one
	dbs  atomic.Int64
}

// postgres is the cluster of this test process: RunWithPostgres allows
// one, and the first test that asks NewPostgresDB for a database starts it.
// A process that never asks starts none: a fuzz worker, which the fuzzing
// coordinator may kill, leaves no server behind holding its pipes open.
var postgres struct {
	allowed bool
	once    sync.Once
	pg      *Postgres
	err     error
}

// RunWithPostgres runs the tests of m with a cluster, started when a test
// first needs it, stops the cluster and returns m's exit code. Call it
// from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.RunWithPostgres(m)) }
func RunWithPostgres(m *testing.M) int {
	postgres.allowed = true
	code := m.Run()
	if postgres.pg != nil {
		postgres.pg.Stop()
	}
	return code
}

// pgBinDir finds the PostgreSQL server binaries of the machine, the
// newest version if there are several.
func pgBinDir() (string, error) {
	if d := os.Getenv("OPENPCA_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi < vj
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin: install the postgresql package (scripts/test needs it)")
}

// StartPostgres makes a cluster in a temporary folder and starts it.
func StartPostgres() (_ *Postgres, err error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "openpca-pg-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	pg := &Postgres{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		pg.as = "postgres"
	}
	data := filepath.Join(dir, "data")
	if out, err := pg.run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// A port found free is not reserved: another process may take it
	// before the server binds it, and the server then fails to start.
	// Pick another.
	for attempt := 1; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		pg.port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		out, err := pg.run("pg_ctl", "-D", data, "-w", "-l", filepath.Join(dir, "log"), "-o", pg.options(), "start")
		if err == nil {
			return pg, nil
		}
		if attempt == 5 {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			return nil, fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
		}
	}
}

func (pg *Postgres) run(name string, args ...string) ([]byte, error) {
	return pg.command(name, args...).CombinedOutput()
}

// command is one of the cluster's programs, run as the cluster's user.
func (pg *Postgres) command(name string, args ...string) *exec.Cmd {
	if pg.as != "" {
		return exec.Command("runuser", append([]string{"-u", pg.as, "--", filepath.Join(pg.bin, name)}, args...)...)
	}
	return exec.Command(filepath.Join(pg.bin, name), args...)
}

// Stop stops the cluster and removes its folder.
func (pg *Postgres) Stop() {
	pg.run("pg_ctl", "-D", filepath.Join(pg.dir, "data"), "-m", "immediate", "stop")
	os.RemoveAll(pg.dir)
}

// DSN is the address of database name.
func (pg *Postgres) DSN(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.port, name)
}

// NewDB creates an empty database and returns its address.
func (pg *Postgres) NewDB() (string, error) {
	name := fmt.Sprintf("openpca_test_%d", pg.dbs.Add(1))
	db, err := sql.Open("pgx", pg.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(context.Background(), "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	return pg.DSN(name), nil
}

// NewPostgresDB returns the address of a new, empty database in the
// cluster of RunWithPostgres.
func NewPostgresDB(t testing.TB) string {
	t.Helper()
	if !postgres.allowed {
		t.Fatal("no PostgreSQL cluster: the package's TestMain must call testenv.RunWithPostgres")
	}
	postgres.once.Do(func() { postgres.pg, postgres.err = StartPostgres() })
	if postgres.err != nil {
		t.Fatalf("starting PostgreSQL: %v", postgres.err)
	}
	dsn, err := postgres.pg.NewDB()
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// A RelayedDB is a new database of the cluster of RunWithPostgres that
// servers reach through a Relay, so that a test can take it away from them
// and bring it back.
type RelayedDB struct {
	// DSN is the database's address through the relay, for servers.
	DSN   string
	dsn   string // the database's own address
	host  string // the cluster's, behind the relay
	relay *Relay
}

// NewRelayedPostgresDB returns a new database of the cluster of
// RunWithPostgres, behind a Relay.
func NewRelayedPostgresDB(t testing.TB) *RelayedDB {
	t.Helper()
	dsn := NewPostgresDB(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := &RelayedDB{dsn: dsn, host: u.Host, relay: NewRelay(t)}
	db.relay.To(db.host)
	u.Host = db.relay.Addr()
	db.DSN = u.String()
	return db
}

// Away takes the database away, as a failover or a network cut would:
// new connections are refused, and those open are ended.
func (db *RelayedDB) Away(t testing.TB) {
	t.Helper()
	db.relay.Cut()
	admin, err := sql.Open("pgx", db.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
}

// Back brings the database back after Away.
func (db *RelayedDB) Back() { db.relay.To(db.host) }

// RestorePostgresDB backs up the database at dsn as an operator would,
// with pg_dump, restores the dump into a new database of the cluster
// with pg_restore, and returns the new one's address.
func RestorePostgresDB(t testing.TB, dsn string) string {
	t.Helper()
	to := NewPostgresDB(t)
	var stderr bytes.Buffer
	dumper := postgres.pg.command("pg_dump", "--format", "custom", "--dbname", dsn)
	dumper.Stderr = &stderr
	dump, err := dumper.Output()
	if err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, stderr.Bytes())
	}
	restore := postgres.pg.command("pg_restore", "--exit-on-error", "--dbname", to)
	restore.Stdin = bytes.NewReader(dump)
	if out, err := restore.CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	return to
}

// Crash stops the cluster as a crash of PostgreSQL would leave it
// (pg_ctl stop -m immediate: no checkpoint, what is not in the
// write-ahead log on disk is lost), keeping its files for Start.
func (pg *Postgres) Crash() error {
	out, err := pg.run("pg_ctl", "-D", filepath.Join(pg.dir, "data"), "-m", "immediate", "-w", "stop")
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

// options are the cluster's settings: prepared transactions are allowed,
// for tests of what a restored dump may leave.
func (pg *Postgres) options() string {
	return fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -c unix_socket_directories=%s -c max_connections=300 -c shared_buffers=128MB -c max_prepared_transactions=4", pg.port, pg.dir)
}

// Start starts a cluster that Crash stopped, on its port, and waits for it
// to take connections (after its recovery).
func (pg *Postgres) Start() error {
	out, err := pg.run("pg_ctl", "-D", filepath.Join(pg.dir, "data"), "-w", "-l", filepath.Join(pg.dir, "log"), "-o", pg.options(), "start")
	if err != nil {
		return fmt.Errorf("pg_ctl start: %v\n%s", err, out)
	}
	return nil
}

// NewOwnPostgres starts a cluster of the test's own, which it may crash
// and start again (Crash, Start) beside the other tests' cluster; it
// stops when the test ends.
func NewOwnPostgres(t testing.TB) *Postgres {
	t.Helper()
	pg, err := StartPostgres()
	if err != nil {
		t.Fatalf("starting PostgreSQL: %v", err)
	}
	t.Cleanup(pg.Stop)
	return pg
}

// Snapshot stops the cluster cleanly, keeps a copy of its files, and
// starts it again: the state a standby that stopped receiving the log
// here (or a backup taken here) would have.
func (pg *Postgres) Snapshot() error {
	data := filepath.Join(pg.dir, "data")
	if out, err := pg.run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	os.RemoveAll(data + ".snapshot")
	if out, err := exec.Command("cp", "-a", data, data+".snapshot").CombinedOutput(); err != nil {
		return fmt.Errorf("cp: %v\n%s", err, out)
	}
	return pg.Start()
}

// FailOver crashes the cluster and starts, on its port, the copy Snapshot
// kept, as a failover to a standby that lacks what was written since (or
// a crash that lost the log's tail) would leave the database.
func (pg *Postgres) FailOver() error {
	if err := pg.Crash(); err != nil {
		return err
	}
	data := filepath.Join(pg.dir, "data")
	if err := os.RemoveAll(data); err != nil {
		return err
	}
	if err := os.Rename(data+".snapshot", data); err != nil {
		return err
	}
	return pg.Start()
}
