// Package sqlite opens the embedded store: one SQLite database file in WAL
// mode, through the pure-Go modernc.org/sqlite driver. Writes go through
// one connection, as SQLite allows one writer at a time, and its write
// transactions run one at a time, which keeps the store's invariants
// without row locks; reads use a pool of their own beside the writer.
package sqlite

import (
	"cmp"
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
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
	sqlitedriver "modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

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
	walCheckInterval   = 10 * time.Millisecond  // how often the log's file size is looked at
	// restartWait bounds how long a restarting checkpoint waits for
	// readers still on the log, holding up writers meanwhile; past it, the
	// next tick tries again.
	restartWait = 200 * time.Millisecond
	busyTimeout = 10 * time.Second // how long a connection waits for a lock another holds
)

// DefaultRestartAt is the size of the write-ahead log at which it is
// checkpointed in full and written again from its beginning. Restarting
// holds writers up while it copies what is left of the log and waits for
// the readers still on it, 1 to 4 ms under load here. The log's file
// passes this size by what walCheckInterval of writes put in it, and
// stays under 64 MiB.
const DefaultRestartAt = 48 << 20

// Options tune a database; the zero value takes the defaults.
type Options struct {
	// Logger receives what goes wrong in the background (checkpoints of
	// the write-ahead log); nil discards it.
	Logger *slog.Logger
	// RestartAt is the size of the write-ahead log at which it is
	// checkpointed in full and written again from its beginning; 0 means
	// DefaultRestartAt.
	RestartAt int64
	// MinFreeSpace is the free space on the database's disk below which
	// the store is not ready; 0 means DefaultMinFreeSpace.
	MinFreeSpace int64
	// Schema is what to do with a database of an earlier version
	// (default: bring it up to date).
	Schema sqlstore.Schema
	// Bind binds access keys' secrets to their accounts, as an upgrade
	// from a version before 2026-12 must (sqlstore.Config.Bind).
	Bind sqlstore.Binder
}

// DefaultMinFreeSpace is the free space on the database's disk below
// which the store is not ready for writes. A readiness write alone does
// not find a full disk: it fits in the write-ahead log's file, which is
// written again from its beginning, while the issuances of the same
// seconds fail to grow the database (a server with no space left said
// ready for seconds at a time). 64 MiB holds a log's restart (48 MiB)
// and the database's growth meanwhile.
const DefaultMinFreeSpace = 64 << 20

// full reports SQLite's SQLITE_FULL: the disk is full.
func full(err error) bool {
	e, ok := errors.AsType[*sqlitedriver.Error](err)
	return ok && e.Code()&0xff == sqlite3.SQLITE_FULL
}

// freeSpace checks that the disk of the folder dir has min bytes free
// for the database's user.
func freeSpace(dir string, min int64) func(context.Context) error {
	return func(context.Context) error {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return fmt.Errorf("the free space of %s: %w", dir, err)
		}
		// Bavail leaves out the blocks kept for root: a server run as
		// root is not ready a little early. Not how much: the log says
		// the reason each time it changes.
		if int64(st.Bavail)*blockSize(&st) < min {
			return fmt.Errorf("the disk of %s has less than the %d MiB free the database needs to take writes", dir, min>>20)
		}
		return nil
	}
}

// errGone says that the database's file was removed or replaced while
// open: SQLite goes on writing to the file it has open, which has no name
// any more, and the next start would open another (or make a new, empty
// one), without what was committed meanwhile.
var errGone = errors.New("sqlite: the database's file was removed or replaced while open")

// stillThere checks that path still names the file opened (and that its
// write-ahead log, which SQLite keeps while the database is open, is
// still there), before each commit and in Ready: a commit to a file
// removed, or renamed over, is lost for the next start. A stat, a
// microsecond or two, per transaction.
func stillThere(path string, opened os.FileInfo) func() error {
	return func() error {
		fi, err := os.Lstat(path)
		if err != nil {
			return fmt.Errorf("%w: %w", errGone, err)
		}
		if !os.SameFile(fi, opened) {
			return fmt.Errorf("%w: %s is another file now", errGone, path)
		}
		if _, err := os.Lstat(path + "-wal"); err != nil {
			return fmt.Errorf("%w: its write-ahead log: %w", errGone, err)
		}
		return nil
	}
}

// Open opens (creating if needed) the database at path and brings its
// schema up to date.
func Open(ctx context.Context, path string, opts Options) (*sqlstore.DB, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RestartAt == 0 {
		opts.RestartAt = DefaultRestartAt
	}
	if opts.MinFreeSpace == 0 {
		opts.MinFreeSpace = DefaultMinFreeSpace
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
	opened, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if made, err := copiedBackup(ctx, path); err != nil || made != "" {
		return nil, cmp.Or(err, fmt.Errorf("%s is a backup (made %s by openpca backup), copied into place: put a backup in place with openpca restore --from <the backup> into a data folder without a database, which checks it, disables its active CAs and numbers their CRLs past those published since", path, made))
	}
	pragmas := url.Values{}
	for _, p := range []string{fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()), "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(ON)"} {
		pragmas.Add("_pragma", p)
	}
	// mode=rw: restrictFiles made the file; a connection opened later
	// (the checkpointer's, a reader database/sql opens again) must not
	// make a new, empty database under the name if the file was removed,
	// beside the old one's write-ahead log and shared memory, which it
	// would then share with the connections still on the old file.
	base := sqliteuri.File(path) + "?mode=rw&" + pragmas.Encode()
	// The writer never checkpoints on its own (see checkpointer). It
	// zeroes what it deletes or overwrites (secure_delete): a CA's sealed
	// key, resealed with a new master key or purged with its CA, stayed in
	// the file, readable with the old master key. What it zeroes is in
	// pages it writes anyway, but for pages it frees whole: issuance frees
	// none.
	//
	// journal_size_limit: a log restarted past twice RestartAt (it grew
	// while a long reader, a backup's, kept it from starting over) has its
	// file cut back to that at the next commit, rather than kept at its
	// largest, and reused, until the server stops. A log of its usual size
	// is never cut (see checkpointer).
	write, err := sql.Open("sqlite", base+fmt.Sprintf("&_txlock=immediate&_pragma=wal_autocheckpoint(0)&_pragma=secure_delete(ON)&_pragma=journal_size_limit(%d)", 2*opts.RestartAt))
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
	c := &checkpointer{write: write, passive: checkpoint, wal: path + "-wal", opts: opts}
	d := dialect()
	d.Scrub = c.wantScrub
	d.Unreachable = func(err error) bool { return errors.Is(err, errGone) }
	db, err := sqlstore.Open(ctx, sqlstore.Config{
		Dialect:  d,
		Write:    write,
		Read:     read,
		Scan:     scan,
		Metrics:  c,
		MaxBatch: maxBatch,
		Ready:    freeSpace(filepath.Dir(path), opts.MinFreeSpace),
		Schema:   opts.Schema,
		Bind:     opts.Bind,
		Check:    stillThere(path, opened),
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
	go c.run(stop, stopped)
	return db, nil
}

// dialect is SQLite's, with its migrations.
func dialect() sqlstore.Dialect {
	m, _ := fs.Sub(migrations, "migrations")
	return sqlstore.Dialect{Name: "sqlite", Migrations: m, Full: full}
}

// restrictFiles makes the database at path, creating it if needed, and
// its -wal and -shm files readable by their owner alone: they hold the CAs'
// records and sealed keys. SQLite gives the -wal and -shm files the mode
// of the database file, so a new database's are 0600 too, whatever the
// umask; files of older versions are tightened here.
//
// A file that is a link is refused, not followed: an operator's command,
// run as root on the folder of the server's user, would otherwise change
// the mode of (or make) whatever file that user pointed it at.
func restrictFiles(path string) error {
	for i, p := range []string{path, path + "-wal", path + "-shm"} {
		flags := os.O_RDWR | unix.O_NOFOLLOW | unix.O_NONBLOCK
		if i == 0 {
			flags |= os.O_CREATE
		}
		f, err := os.OpenFile(p, flags, 0o600)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if errors.Is(err, unix.ELOOP) {
			return fmt.Errorf("%s is a link: the database's files are opened by name, and a link would lead elsewhere", p)
		}
		if err != nil {
			return err
		}
		err = f.Chmod(0o600)
		if fi, statErr := f.Stat(); err == nil && (statErr != nil || !fi.Mode().IsRegular()) {
			err = errors.Join(statErr, fmt.Errorf("%s is not a regular file", p))
		}
		if err := errors.Join(err, f.Close()); err != nil {
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
// full, and only a log copied in full starts over. So once the log holds
// RestartAt, a restarting checkpoint on the writer's own connection,
// between two group commits, copies what is left (little, after the
// passive ones) and waits briefly for the readers still on the log; the
// next commit then writes the log from its beginning.
//
// The log's file keeps its size, and its old frames, whose salt no longer
// matches, are overwritten. Truncating the file as well (TRUNCATE rather
// than RESTART) held writers up for 20 ms here, against 1 to 4 ms, while
// the file system freed its blocks and then allocated them again.
//
// Only a checkpoint tells how much the log holds, and passive ones cost 1%
// of the CPU under load every 100 ms but 6% every 10 ms. So in between,
// the file's size is looked at every 10 ms: the log grows its file only
// when it holds more than it ever did, and a file grown past RestartAt is
// checkpointed at once.
type checkpointer struct {
	write, passive *sql.DB
	wal            string
	opts           Options
	fileSize       int64 // the log's, when last looked at
	frameSize      int64 // a page and its frame header, once known
	failing        bool
	// A restart that gave up on a reader still on the log held the writer
	// restartWait: the next is not tried before retryAt, and each that
	// gives up doubles backoff, up to maxRestartBackoff.
	backoff time.Duration
	retryAt time.Time
	// Scrubs asked for (wantScrub), and the last of them a truncation of
	// the log has done.
	scrubsAsked atomic.Int64
	scrubbed    int64
	// What /metrics shows: the log file's size, and how its checkpoints
	// went.
	walBytes, restarts, restartsBusy, failures atomic.Int64
}

// wantScrub asks for the log to be emptied (a TRUNCATE checkpoint), which
// run does at its next tick, and again each scrubRetry while readers on
// the log make it give up.
func (c *checkpointer) wantScrub() { c.scrubsAsked.Add(1) }

// scrubRetry is how often run tries again to empty the log for a scrub:
// each try may hold the writer restartWait.
const scrubRetry = time.Second

func (c *checkpointer) run(stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	t := time.NewTicker(walCheckInterval)
	defer t.Stop()
	lastPassive := time.Now()
	var lastScrub time.Time
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			if asked := c.scrubsAsked.Load(); asked > c.scrubbed && now.Sub(lastScrub) >= scrubRetry {
				lastScrub = now
				busy, err := c.full(context.Background(), "TRUNCATE")
				if err == nil && !busy {
					c.scrubbed = asked
				}
				c.report(err)
				continue
			}
			if c.grewPastRestart() || now.Sub(lastPassive) >= checkpointInterval {
				c.report(c.checkpoint())
				lastPassive = now
			}
		}
	}
}

// grewPastRestart tells whether the log's file has grown since it was last
// looked at and is now RestartAt or more.
func (c *checkpointer) grewPastRestart() bool {
	fi, err := os.Stat(c.wal)
	if err != nil {
		return false // not made yet, or removed by the last connection's close
	}
	grew := fi.Size() > c.fileSize
	c.fileSize = fi.Size()
	c.walBytes.Store(fi.Size())
	return grew && fi.Size() >= c.opts.RestartAt
}

// checkpoint copies the log into the database beside readers and writers,
// and restarts the log if it holds RestartAt.
func (c *checkpointer) checkpoint() error {
	if c.frameSize == 0 {
		var page int64
		if err := c.passive.QueryRow(`PRAGMA page_size`).Scan(&page); err != nil {
			return err
		}
		c.frameSize = page + walFrameHeader
	}
	var busy, frames, copied int64
	if err := c.passive.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
		return err
	}
	if frames*c.frameSize < c.opts.RestartAt {
		return nil
	}
	return c.restart()
}

// walFrameHeader is the size of the header before each page in the log
// (sqlite.org/fileformat2.html, "WAL File Format").
const walFrameHeader = 24

// restart checkpoints the log in full, on the writer's connection, and
// waits restartWait at most for the readers still on it. A reader still
// on the log makes the checkpoint give up: the next tick tries again.
//
// A long reader (a backup) makes every try give up, each after holding the
// writer restartWait: tried again at every tick, or each time the log's
// file grew, writers were held up most of the time while it read (12,000
// issuances took 280 s beside one reader, against a few seconds). Tries
// that give up are spaced out, twice as far each time, up to
// maxRestartBackoff.
func (c *checkpointer) restart() error {
	now := time.Now()
	if now.Before(c.retryAt) {
		return nil
	}
	busy, err := c.full(context.Background(), "RESTART")
	switch {
	case err != nil:
	case busy:
		c.restartsBusy.Add(1)
		c.backoff = min(max(2*c.backoff, checkpointInterval), maxRestartBackoff)
		c.retryAt = time.Now().Add(c.backoff)
	default:
		c.restarts.Add(1)
		c.backoff, c.retryAt = 0, time.Time{}
	}
	return err
}

// maxRestartBackoff bounds how long a restart that gave up on readers
// waits before it tries again.
const maxRestartBackoff = 5 * time.Second

// full runs a checkpoint of mode RESTART or TRUNCATE on the writer's
// connection, and reports whether readers still on the log made it give
// up. TRUNCATE also empties the log's file, where the old pages of what
// was deleted or overwritten stayed (secure_delete zeroes them in the
// database alone).
func (c *checkpointer) full(ctx context.Context, mode string) (busy bool, err error) {
	conn, err := c.write.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, restartWait.Milliseconds())); err != nil {
		return false, err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf(`PRAGMA busy_timeout = %d`, busyTimeout.Milliseconds()))
	var gaveUp, frames, copied int
	if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&gaveUp, &frames, &copied); err != nil {
		return false, err
	}
	return gaveUp != 0, nil
}

// report logs when checkpoints start failing and when they work again,
// not at every attempt.
func (c *checkpointer) report(err error) {
	if err != nil {
		c.failures.Add(1)
	}
	switch {
	case err != nil && !c.failing:
		c.opts.Logger.Error("checkpointing the SQLite write-ahead log failed; it grows until a checkpoint works", "error", err)
	case err == nil && c.failing:
		c.opts.Logger.Info("checkpointing the SQLite write-ahead log works again")
	}
	c.failing = err != nil
}

var (
	walBytesDesc = prometheus.NewDesc("openpca_sqlite_wal_bytes",
		"Size of SQLite's write-ahead log file, looked at every 10 ms. It stays near 48 MiB under load; more says its checkpoints do not keep up.", nil, nil)
	walRestartsDesc = prometheus.NewDesc("openpca_sqlite_wal_restarts_total",
		"Times the write-ahead log was checkpointed in full and written again from its beginning.", nil, nil)
	walRestartsBusyDesc = prometheus.NewDesc("openpca_sqlite_wal_restarts_busy_total",
		"Times a restart of the write-ahead log gave up, after 200 ms, on readers still on it; the next tick tries again.", nil, nil)
	checkpointFailuresDesc = prometheus.NewDesc("openpca_sqlite_checkpoint_failures_total",
		"Checkpoints of the write-ahead log that failed; the server's log says why.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *checkpointer) Describe(ch chan<- *prometheus.Desc) {
	ch <- walBytesDesc
	ch <- walRestartsDesc
	ch <- walRestartsBusyDesc
	ch <- checkpointFailuresDesc
}

// Collect implements prometheus.Collector.
func (c *checkpointer) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(walBytesDesc, prometheus.GaugeValue, float64(c.walBytes.Load()))
	ch <- prometheus.MustNewConstMetric(walRestartsDesc, prometheus.CounterValue, float64(c.restarts.Load()))
	ch <- prometheus.MustNewConstMetric(walRestartsBusyDesc, prometheus.CounterValue, float64(c.restartsBusy.Load()))
	ch <- prometheus.MustNewConstMetric(checkpointFailuresDesc, prometheus.CounterValue, float64(c.failures.Load()))
}
