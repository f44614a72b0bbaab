package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openpca/openpca/internal/sqliteuri"
	"github.com/openpca/openpca/sqlstore"
)

// partialSuffix marks the file a backup or a restore writes before it is
// complete; one that a crash left is removed by the next to the same path.
const partialSuffix = ".partial-"

// Backup writes a consistent copy of the database at path to the new file
// to, while servers and commands go on using it: SQLite's VACUUM INTO,
// from one read transaction, so that the copy is the database as one
// commit left it, compacted, without the write-ahead log. The copy is
// readable by its owner alone, complete and durable before it appears
// under its name, and checked once it is. Backup refuses to replace a
// file.
//
// The read transaction holds the write-ahead log back from starting over
// while it runs (seconds for millions of certificates), so that the log's
// file may grow past its usual bound until then.
func Backup(ctx context.Context, path, to string) (sqlstore.Summary, error) {
	if _, err := os.Lstat(to); err == nil {
		return sqlstore.Summary{}, fmt.Errorf("%s exists: a backup never replaces a file", to)
	}
	if err := removePartials(to); err != nil {
		return sqlstore.Summary{}, err
	}
	tmp, cleanup, err := partial(to)
	if err != nil {
		return sqlstore.Summary{}, err
	}
	defer cleanup()
	db, err := sql.Open("sqlite", sqliteuri.File(path)+fmt.Sprintf("?mode=rw&_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()))
	if err != nil {
		return sqlstore.Summary{}, err
	}
	defer db.Close()
	// (query_only would refuse VACUUM INTO, which writes only its file.)
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE name = 'schema_migrations'`).Scan(&tables); err != nil {
		return sqlstore.Summary{}, fmt.Errorf("reading %s: %w", path, err)
	}
	if tables == 0 {
		return sqlstore.Summary{}, fmt.Errorf("%s is not an OpenPCA database", path)
	}
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		return sqlstore.Summary{}, fmt.Errorf("backing up %s: %w", path, err)
	}
	if err := markBackup(ctx, tmp, time.Now()); err != nil {
		return sqlstore.Summary{}, fmt.Errorf("backing up %s: %w", path, err)
	}
	return place(ctx, tmp, to)
}

// backupSetting marks a backup, as Backup writes it, with when it was
// made; Restore takes the mark off, and Open refuses a database that has
// it. A backup copied over a server's database (as SQLite's files are
// often restored) was served as it was: none of restore's checks, its
// active CAs signing again, CRLs under numbers published since, without
// the revocations since.
const backupSetting = "backup"

// markBackup marks the backup at path as made at, unless its database is
// of a version before settings.
func markBackup(ctx context.Context, path string, at time.Time) error {
	db, err := sql.Open("sqlite", sqliteuri.File(path)+"?mode=rw")
	if err != nil {
		return err
	}
	defer db.Close()
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE name = 'settings'`).Scan(&tables); err != nil || tables == 0 {
		return err
	}
	_, err = db.ExecContext(ctx, `INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)`, backupSetting, []byte(at.UTC().Format(time.RFC3339)))
	return err
}

// copiedBackup returns when the database at path was backed up, if it is
// a backup not restored: "" if not. It looks before anything opens the
// database to use it, which would turn it to WAL mode, and the backup,
// copied back, into one restore refuses as a server's. A database in WAL
// mode is a server's, whatever it holds: one an earlier version restored
// from a marked backup, and served, kept the mark. Any that holds more
// than tables and indexes is refused (tablesAndIndexes).
func copiedBackup(ctx context.Context, path string) (string, error) {
	db, err := sql.Open("sqlite", sqliteuri.File(path)+"?mode=ro")
	if err != nil {
		return "", err
	}
	defer db.Close()
	if err := tablesAndIndexes(ctx, db, path); err != nil {
		return "", err
	}
	if wal, err := walMode(path); err != nil || wal {
		return "", nil // a new database's empty file, or a server's
	}
	return backupMade(ctx, db)
}

// tablesAndIndexes refuses a database, at path, that holds anything but
// tables and indexes, as OpenPCA's migrations make: a trigger put in a
// backup would run at the changes servers make to the restored database
// (undoing a revocation, say), and a view read in a table's place could
// keep a query going for good. Restore checks a backup so, and Open each
// database: a backup copied into place, its mark taken out, is not
// known for one.
func tablesAndIndexes(ctx context.Context, db *sql.DB, path string) error {
	var other string
	switch err := db.QueryRowContext(ctx, `SELECT type || ' ' || name FROM sqlite_schema WHERE type NOT IN ('table', 'index') LIMIT 1`).Scan(&other); {
	case err == nil:
		return fmt.Errorf("%s is not an OpenPCA database as it was made: it holds the %s, and OpenPCA makes no triggers or views", path, other)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s is not an OpenPCA database: %w", path, err)
	}
	return nil
}

// backupMade returns when the database of db was backed up, if it is a
// backup not restored: "" if not.
func backupMade(ctx context.Context, db *sql.DB) (string, error) {
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE name = 'settings'`).Scan(&tables); err != nil || tables == 0 {
		return "", err
	}
	var at []byte
	err := db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, backupSetting).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return string(at), err
}

// Restore puts the backup from, checked, in place as the database at path,
// which must not exist: a restore makes a new data folder, and never
// replaces a database or mixes a backup with another's write-ahead log.
//
// The copy is brought up to this version (its access keys' secrets bound
// by bind, if it is of a version before 2026-12), checked by check (if not
// nil), and settled before it is put in place (sqlstore.DB.SettleRestored,
// which says why): the restored CAs number their next CRLs from
// crlNumberFloor on, at least, and those active in the backup are
// disabled, unless how.KeepStatus.
func Restore(ctx context.Context, from, path string, crlNumberFloor int64, now time.Time, how sqlstore.Settling, check func(context.Context, *sqlstore.DB) error, bind sqlstore.Binder) (sqlstore.Summary, error) {
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		if _, err := os.Lstat(p); err == nil {
			return sqlstore.Summary{}, fmt.Errorf("%s exists: restore into a data folder that has no database", p)
		}
	}
	if _, err := Check(ctx, from); err != nil {
		return sqlstore.Summary{}, err
	}
	if err := removePartials(path); err != nil {
		return sqlstore.Summary{}, err
	}
	// Non-blocking: a named pipe put in the backup's place since it was
	// checked would hold the open for its writer; it is refused below.
	src, err := os.OpenFile(from, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return sqlstore.Summary{}, err
	}
	defer src.Close()
	size, err := databaseSize(src, from)
	if err != nil {
		return sqlstore.Summary{}, err
	}
	tmp, cleanup, err := partial(path)
	if err != nil {
		return sqlstore.Summary{}, err
	}
	defer cleanup()
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return sqlstore.Summary{}, err
	}
	// Its pages alone: a backup grown since its size was read (a sparse
	// gigabyte) is not written out.
	_, err = io.Copy(dst, io.LimitReader(src, size))
	if err := errors.Join(err, dst.Close()); err != nil {
		return sqlstore.Summary{}, err
	}
	// The copy is checked again, as the backup was: the backup, on
	// storage others may write, may have changed since (a view put in,
	// that a migration would read for good).
	if fi, err := os.Stat(tmp); err != nil || fi.Size() != size {
		return sqlstore.Summary{}, cmp.Or(err, fmt.Errorf("%s changed while it was restored", from))
	}
	if _, err := Check(ctx, tmp); err != nil {
		return sqlstore.Summary{}, fmt.Errorf("%s changed while it was restored: %w", from, err)
	}
	settled, err := settle(ctx, tmp, crlNumberFloor, now, how, check, bind)
	if err != nil {
		return sqlstore.Summary{}, err
	}
	sum, err := place(ctx, tmp, path)
	sum.Restored = settled
	return sum, err
}

// partial returns where to write a file that will be the database at
// path once complete: in a folder of its own beside path, which only its
// owner can enter (VACUUM INTO makes its file with the umask's mode), and
// what removes that folder. The folder is locked while it is in use, so
// that another backup to the same path leaves it alone (removePartials).
func partial(path string) (string, func(), error) {
	// Another backup's removePartials may take the new folder's lock
	// before this one does, and remove it: then make another.
	for range 10 {
		dir, err := os.MkdirTemp(filepath.Dir(path), filepath.Base(path)+partialSuffix+"*")
		if err != nil {
			return "", nil, err
		}
		lock, err := lockPartial(dir)
		if err != nil {
			return "", nil, err
		}
		if lock != nil {
			return filepath.Join(dir, "db"), func() {
				os.RemoveAll(dir)
				lock.Close()
			}, nil
		}
	}
	return "", nil, fmt.Errorf("%s: the folders for its copy were removed as they were made", path)
}

// lockPartial takes the lock of the partial folder dir; it returns nil
// and no error if another holds it, or removed the folder meanwhile. On a
// file system without locks (NFS without its lock daemon), the folder is
// returned unlocked: backups to one name at once there may remove each
// other's copies, as they could before folders were locked.
func lockPartial(dir string) (*os.File, error) {
	// A folder, not a link or a named pipe put in its place (open would
	// wait for the pipe's writer, for good).
	lock, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// Held: EWOULDBLOCK, or EACCES as some network file systems say it.
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); errors.Is(err, unix.EWOULDBLOCK) || errors.Is(err, unix.EACCES) {
		lock.Close()
		return nil, nil
	}
	// The one whose lock was released may have removed the folder.
	held, err := lock.Stat()
	if err != nil {
		lock.Close()
		return nil, err
	}
	if now, err := os.Lstat(dir); err != nil || !os.SameFile(held, now) {
		lock.Close()
		return nil, nil
	}
	return lock, nil
}

// settle brings the restored copy at path up to this version's schema
// (binding its access keys' secrets with bind), checks it with check, if
// any, and settles it (sqlstore.DB.SettleRestored), before it is put in
// place: a server never finds a restored database that is not. It stays
// in rollback mode, as a backup is, so that place checks it as one.
func settle(ctx context.Context, path string, crlNumberFloor int64, now time.Time, how sqlstore.Settling, check func(context.Context, *sqlstore.DB) error, bind sqlstore.Binder) (sqlstore.Restored, error) {
	store, db, err := openCopy(ctx, path, bind)
	if err != nil {
		return sqlstore.Restored{}, err
	}
	if err := sameSchema(ctx, db); err != nil {
		return sqlstore.Restored{}, errors.Join(err, store.Close())
	}
	if check != nil {
		if err := check(ctx, store); err != nil {
			return sqlstore.Restored{}, errors.Join(err, store.Close())
		}
	}
	r, err := store.SettleRestored(ctx, crlNumberFloor, now, how, nil)
	if err == nil {
		_, err = db.ExecContext(ctx, `DELETE FROM settings WHERE name = ?`, backupSetting)
	}
	return r, errors.Join(err, store.Close())
}

// openCopy opens the database file at path in rollback mode, as a backup
// is, and brings its schema up to this version's (making one if it has
// none).
func openCopy(ctx context.Context, path string, bind sqlstore.Binder) (*sqlstore.DB, *sql.DB, error) {
	db, err := sql.Open("sqlite", sqliteuri.File(path)+"?mode=rwc&_txlock=immediate&_pragma=foreign_keys(ON)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, nil, err
	}
	db.SetMaxOpenConns(1)
	// Long reads (checking the logs) go to SQLite itself, as a server's do.
	scan := newScanner(path)
	store, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: dialect(), Write: db, Read: db, Scan: scan, MaxBatch: maxBatch, Bind: bind,
		Close: func() error { scan.close(); return db.Close() }})
	if err != nil {
		scan.close()
		db.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return store, db, nil
}

// sameSchema checks that the restored copy db, migrated, has the schema
// of a new database of this version, object for object: a backup whose
// schema was changed (an index dropped or added, a table's constraints
// taken out, planner statistics put in) is refused, since servers trust
// the schema to keep what the rows may hold, and to answer in bounded
// time.
func sameSchema(ctx context.Context, db *sql.DB) error {
	dir, err := os.MkdirTemp("", "openpca-schema-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fresh, freshDB, err := openCopy(ctx, filepath.Join(dir, "db"), nil)
	if err != nil {
		return err
	}
	want, err := schemaOf(ctx, freshDB)
	if err != nil {
		return errors.Join(err, fresh.Close())
	}
	wantLayout, err := layoutOf(ctx, freshDB)
	if err := errors.Join(err, fresh.Close()); err != nil {
		return err
	}
	have, err := schemaOf(ctx, db)
	if err != nil {
		return err
	}
	diffs := sqlstore.SchemaDiffs(have, want)
	if len(diffs) > 0 {
		return fmt.Errorf("the backup's schema is not OpenPCA's: it %s", strings.Join(diffs[:min(len(diffs), 5)], "; it "))
	}
	// The file's layout is in its header, not its schema, and a copy
	// keeps it: a page size or vacuum mode of the backup's own would be
	// every server's on it (a page of 64 KiB read for each row, or each
	// deletion moving pages).
	haveLayout, err := layoutOf(ctx, db)
	if err != nil {
		return err
	}
	if haveLayout != wantLayout {
		return fmt.Errorf("the backup's file is not laid out as OpenPCA makes one: %s, not %s", haveLayout, wantLayout)
	}
	// The operator log's counter (AUTOINCREMENT) is at its last row, as
	// no row of it is ever removed: one set to its end by hand would
	// make every operator command's record fail, the log switched off.
	var off int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_sequence
		WHERE name <> 'operator_actions' OR seq IS NOT (SELECT MAX(seq) FROM operator_actions)`).Scan(&off); err != nil {
		return err
	}
	if off > 0 {
		return errors.New("the backup's counter of the operator log (sqlite_sequence) is not at its last entry: it was changed by hand")
	}
	return nil
}

// layoutOf says how the file of db is laid out: its page size and vacuum
// mode.
func layoutOf(ctx context.Context, db *sql.DB) (string, error) {
	var pageSize, autoVacuum int
	if err := db.QueryRowContext(ctx, `SELECT page_size, auto_vacuum FROM pragma_page_size, pragma_auto_vacuum`).Scan(&pageSize, &autoVacuum); err != nil {
		return "", err
	}
	return fmt.Sprintf("pages of %d bytes, auto_vacuum %d", pageSize, autoVacuum), nil
}

// schemaOf returns the objects of the schema of db, by type and name:
// their table and the SQL that made them.
func schemaOf(ctx context.Context, db *sql.DB) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_schema`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	objects := map[string]string{}
	for rows.Next() {
		var typ, name, table, def string
		if err := rows.Scan(&typ, &name, &table, &def); err != nil {
			return nil, err
		}
		objects[typ+" "+name] = table + "\n" + def
	}
	return objects, rows.Err()
}

// place makes the complete file tmp durable, checks it, and links it at
// path, which it must not replace, durably.
func place(ctx context.Context, tmp, path string) (sqlstore.Summary, error) {
	f, err := os.OpenFile(tmp, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return sqlstore.Summary{}, err
	}
	// Through the file: by name, a link put in its place would be
	// followed.
	err = f.Chmod(0o600)
	if err == nil {
		err = f.Sync()
	}
	if err := errors.Join(err, f.Close()); err != nil {
		return sqlstore.Summary{}, err
	}
	sum, err := Check(ctx, tmp)
	if err != nil {
		return sum, err
	}
	// A link, unlike a rename, fails rather than replace a file made
	// meanwhile.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return sum, fmt.Errorf("%s was made meanwhile, by another backup or restore to it: its copy is left as it is", path)
		}
		return sum, fmt.Errorf("%w (a folder without hard links, as on FAT, takes no backup: write it elsewhere, then copy it)", err)
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return sum, err
	}
	err = dir.Sync()
	return sum, errors.Join(err, dir.Close())
}

// Check opens the database file at path read-only, with no write-ahead
// log, checks that it is an OpenPCA database that SQLite finds sound, and
// says what it holds.
func Check(ctx context.Context, path string) (sqlstore.Summary, error) {
	var sum sqlstore.Summary
	fi, err := os.Stat(path)
	if err != nil {
		return sum, err
	}
	// SQLite would wait in open for a named pipe's writer, for good, or
	// say only "disk I/O error" of a folder.
	if !fi.Mode().IsRegular() {
		return sum, fmt.Errorf("%s is not a file (%s)", path, fi.Mode().Type())
	}
	// immutable: nothing else writes it, so SQLite needs no lock, and
	// makes no -wal or -shm file beside it.
	db, err := sql.Open("sqlite", sqliteuri.File(path)+"?mode=ro&immutable=1")
	if err != nil {
		return sum, err
	}
	defer db.Close()
	// What else differs is found once the copy is migrated (sameSchema).
	if err := tablesAndIndexes(ctx, db, path); err != nil {
		return sum, err
	}
	var version int64
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return sum, fmt.Errorf("%s is not an OpenPCA database: %w", path, err)
	}
	// A database in WAL mode is a server's own, whose latest commits may
	// be in its -wal file, which immutable reading leaves out; a backup is
	// in rollback mode, as VACUUM INTO writes it. The header's bytes 18
	// and 19 say which (2 for WAL).
	if wal, err := walMode(path); err != nil || wal {
		return sum, errors.Join(err, fmt.Errorf("%s is a server's database (in WAL mode), not a backup: make one of it with openpca backup --data-dir <its folder>", path))
	}
	rows, err := db.QueryContext(ctx, `PRAGMA quick_check`)
	if err != nil {
		return sum, fmt.Errorf("checking %s: %w", path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return sum, err
		}
		if line != "ok" && len(problems) < 10 {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return sum, fmt.Errorf("checking %s: %w", path, err)
	}
	if len(problems) > 0 {
		return sum, fmt.Errorf("%s is damaged: %v", path, problems)
	}
	if sum, err = sqlstore.ReadSummary(ctx, db); err != nil {
		return sum, fmt.Errorf("reading %s: %w", path, err)
	}
	return sum, nil
}

// databaseSize returns the size of the database file f, named name, as
// its header says it, which must be the file's: a regular file whose
// size is its pages', as openpca backup writes it. A file of a few pages
// and gigabytes of bytes after them (a sparse file, which a copy would
// write out whole) is refused, as is one that is not a regular file.
func databaseSize(f *os.File, name string) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a file (%s)", name, fi.Mode().Type())
	}
	var header [100]byte
	if _, err := f.ReadAt(header[:], 0); err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	pageSize := int64(binary.BigEndian.Uint16(header[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	// The header's page count holds when its version-valid-for number is
	// the change counter, as SQLite since 3.7.0 writes it.
	pages := int64(binary.BigEndian.Uint32(header[28:32]))
	if binary.BigEndian.Uint32(header[92:96]) != binary.BigEndian.Uint32(header[24:28]) || pages*pageSize != fi.Size() {
		return 0, fmt.Errorf("%s is %d bytes, not the %d pages of %d bytes its header says: not a backup as openpca backup writes it", name, fi.Size(), pages, pageSize)
	}
	return fi.Size(), nil
}

// walMode reports whether the database file at path is in WAL mode.
func walMode(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var header [20]byte
	if _, err := io.ReadFull(f, header[:]); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return header[18] == 2 || header[19] == 2, nil
}

// removePartials removes what backups or restores left beside path when
// a crash cut them short, whatever name they were to: a nightly backup's
// changes each night, and its copies, each the whole database, were
// otherwise left for good. Only a folder named as partial folders are
// (partialName), of this process's user, that holds no more than a
// copy's files goes, and not one of a backup or restore still running, which
// holds its folder's lock. Those of path's own name must go; others are
// left if they cannot be removed.
func removePartials(path string) error {
	dir := filepath.Dir(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() || !partialName.MatchString(e.Name()) {
			continue
		}
		left := filepath.Join(dir, e.Name())
		if !onlyCopy(left) {
			continue
		}
		if err := removeUnlocked(left); err != nil && strings.HasPrefix(e.Name(), filepath.Base(path)+partialSuffix) {
			return err
		}
	}
	return nil
}

// partialName matches the names of the folders partial makes.
var partialName = regexp.MustCompile(`^.+` + regexp.QuoteMeta(partialSuffix) + `[0-9]+$`)

// onlyCopy reports whether the folder dir is this process's user's, and
// holds nothing but the files a copy is made of.
func onlyCopy(dir string) bool {
	if !ours(dir) {
		return false
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.Name() != "db" && e.Name() != "db-journal" || !e.Type().IsRegular() {
			return false
		}
	}
	return true
}

// ours reports whether the folder at path, not followed if a link, is
// this process's user's.
func ours(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == uint32(os.Geteuid())
}

// Partials returns the folders beside path in which a backup or a restore
// to path writes its copy, or left it when cut short.
func Partials(path string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), filepath.Base(path)+partialSuffix) {
			dirs = append(dirs, filepath.Join(filepath.Dir(path), e.Name()))
		}
	}
	return dirs, nil
}

// removeUnlocked removes the partial folder dir unless a backup or a
// restore holds its lock.
func removeUnlocked(dir string) error {
	lock, err := lockPartial(dir)
	if lock == nil {
		return err
	}
	defer lock.Close()
	return os.RemoveAll(dir)
}
