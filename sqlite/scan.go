package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"modernc.org/libc"
	lib "modernc.org/sqlite/lib"

	"github.com/openpca/openpca/sqlstore"
)

// scanner runs the store's costliest reads (an audit report reads every
// row of a CA's log; every request reads its access key) on connections of
// its own, through SQLite's C interface as modernc.org/sqlite translates
// it rather than through database/sql.
//
// Why: database/sql and the driver cost more than SQLite's own work on a
// scan. Each column of each row goes through sqlite3_column_type and one
// or two more calls, each taking the connection's mutex (the driver opens
// every connection SQLITE_OPEN_FULLMUTEX), then through a driver.Value and
// database/sql's conversion. Reading the certificates of 1M log entries
// took 1.85 s that way and 0.47 s here. These connections are opened
// SQLITE_OPEN_NOMUTEX, which is safe because each is used by one goroutine
// at a time, and read-only.
type scanner struct {
	path  string
	slots chan struct{} // one per connection in use: at most readers
	mu    sync.Mutex
	idle  []*scanConn
	done  bool
}

func newScanner(path string) *scanner {
	return &scanner{path: path, slots: make(chan struct{}, readers)}
}

// scanConn is a connection of the scanner with the statements it has
// prepared. Each is used by one goroutine at a time.
type scanConn struct {
	tls   *libc.TLS
	db    uintptr
	stmts map[string]uintptr
}

// Scan implements sqlstore.Scanner. A scan is meant to be short (the store
// reads a long range in chunks), and the context is looked at before it
// starts and while it waits for a connection, not during it. Its statement
// is reset when it ends, which ends its read transaction: a reader left on
// the write-ahead log would keep the log from starting over.
func (s *scanner) Scan(ctx context.Context, query string, args []any, fn func(sqlstore.Row) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := s.get(ctx)
	if err != nil {
		return err
	}
	defer s.put(c)
	stmt, err := c.prepare(query)
	if err != nil {
		return err
	}
	var texts []uintptr // bound text arguments, freed once the statement lets go of them
	defer func() {
		lib.Xsqlite3_reset(c.tls, stmt)
		lib.Xsqlite3_clear_bindings(c.tls, stmt)
		for _, p := range texts {
			libc.Xfree(c.tls, p)
		}
	}()
	for i, a := range args {
		var rc int32
		switch a := a.(type) {
		case int64:
			rc = lib.Xsqlite3_bind_int64(c.tls, stmt, int32(i+1), a)
		case string:
			p, err := libc.CString(a)
			if err != nil {
				return err
			}
			texts = append(texts, p)
			rc = lib.Xsqlite3_bind_text(c.tls, stmt, int32(i+1), p, int32(len(a)), 0)
		default:
			return fmt.Errorf("sqlite: scan argument %d is a %T", i+1, a)
		}
		if rc != lib.SQLITE_OK {
			return c.err(rc)
		}
	}
	row := scanRow{c.tls, stmt}
	for {
		switch rc := lib.Xsqlite3_step(c.tls, stmt); rc {
		case lib.SQLITE_ROW:
			if err := fn(row); err != nil {
				return err
			}
		case lib.SQLITE_DONE:
			return nil
		default:
			return c.err(rc)
		}
	}
}

// get waits for a slot, then takes an idle connection or opens one: at
// most readers are open, so that reads under load wait for one rather
// than open and close connections, which costs more than most reads.
func (s *scanner) get(ctx context.Context) (*scanConn, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		<-s.slots
		return nil, errors.New("sqlite: the database is closed")
	}
	if n := len(s.idle); n > 0 {
		c := s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		return c, nil
	}
	s.mu.Unlock()
	c, err := openScanConn(s.path)
	if err != nil {
		<-s.slots
	}
	return c, err
}

// put keeps c for the next read, or closes it once the scanner is closed.
func (s *scanner) put(c *scanConn) {
	s.mu.Lock()
	if !s.done {
		s.idle = append(s.idle, c)
		c = nil
	}
	s.mu.Unlock()
	if c != nil {
		c.close()
	}
	<-s.slots
}

// close closes the idle connections; those in use close when put back.
func (s *scanner) close() {
	s.mu.Lock()
	idle := s.idle
	s.idle, s.done = nil, true
	s.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

func openScanConn(path string) (*scanConn, error) {
	c := &scanConn{tls: libc.NewTLS(), stmts: make(map[string]uintptr)}
	if err := c.open(path); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// scanCacheKiB bounds each scan connection's page cache. Their reads are
// an audit report's, once through a CA's log, and the access keys', a few
// pages: SQLite's default of 2,000 KiB held four connections' worth of
// pages read once, in modernc.org/memory's allocator, which rounds each
// allocation up to a power of two (a 4 KiB page with SQLite's header
// takes 8 KiB). A million-certificate report peaked at 19 MiB less
// anonymous memory with 256 KiB (73 against 92 MiB, two runs each, no
// slower), and issuance at 16 clients moved within noise.
const scanCacheKiB = 256

func (c *scanConn) open(path string) error {
	name, err := libc.CString(path)
	if err != nil {
		return err
	}
	defer libc.Xfree(c.tls, name)
	out := libc.Xmalloc(c.tls, 8)
	if out == 0 {
		return errors.New("sqlite: out of memory")
	}
	defer libc.Xfree(c.tls, out)
	// Even when it fails, sqlite3_open_v2 may make a handle, which close
	// closes.
	rc := lib.Xsqlite3_open_v2(c.tls, name, out, lib.SQLITE_OPEN_READONLY|lib.SQLITE_OPEN_NOMUTEX, 0)
	c.db = libc.AtomicLoadPUintptr(out)
	if rc != lib.SQLITE_OK {
		return c.err(rc)
	}
	lib.Xsqlite3_busy_timeout(c.tls, c.db, int32(busyTimeout.Milliseconds()))
	pragma, err := libc.CString(fmt.Sprintf("PRAGMA cache_size=-%d", scanCacheKiB))
	if err != nil {
		return err
	}
	defer libc.Xfree(c.tls, pragma)
	if rc := lib.Xsqlite3_exec(c.tls, c.db, pragma, 0, 0, 0); rc != lib.SQLITE_OK {
		return c.err(rc)
	}
	return nil
}

// prepare returns query prepared on c, preparing it on first use.
func (c *scanConn) prepare(query string) (uintptr, error) {
	if stmt, ok := c.stmts[query]; ok {
		return stmt, nil
	}
	q, err := libc.CString(query)
	if err != nil {
		return 0, err
	}
	defer libc.Xfree(c.tls, q)
	out := libc.Xmalloc(c.tls, 8)
	if out == 0 {
		return 0, errors.New("sqlite: out of memory")
	}
	defer libc.Xfree(c.tls, out)
	if rc := lib.Xsqlite3_prepare_v3(c.tls, c.db, q, -1, lib.SQLITE_PREPARE_PERSISTENT, out, 0); rc != lib.SQLITE_OK {
		return 0, c.err(rc)
	}
	stmt := libc.AtomicLoadPUintptr(out)
	c.stmts[query] = stmt
	return stmt, nil
}

// err is the error of a call that returned rc.
func (c *scanConn) err(rc int32) error {
	if c.db == 0 {
		return fmt.Errorf("sqlite: %s (%d)", libc.GoString(lib.Xsqlite3_errstr(c.tls, rc)), rc)
	}
	return fmt.Errorf("sqlite: %s (%d)", libc.GoString(lib.Xsqlite3_errmsg(c.tls, c.db)), rc)
}

func (c *scanConn) close() {
	for _, stmt := range c.stmts {
		lib.Xsqlite3_finalize(c.tls, stmt)
	}
	if c.db != 0 {
		lib.Xsqlite3_close_v2(c.tls, c.db)
	}
	c.tls.Close()
}

// scanRow reads the row a statement is on. Text copies; Bytes does not.
type scanRow struct {
	tls  *libc.TLS
	stmt uintptr
}

func (r scanRow) Int64(col int) int64 {
	return lib.Xsqlite3_column_int64(r.tls, r.stmt, int32(col))
}

func (r scanRow) Text(col int) string {
	p := lib.Xsqlite3_column_text(r.tls, r.stmt, int32(col))
	if p == 0 {
		return ""
	}
	return string(libc.GoBytes(p, int(lib.Xsqlite3_column_bytes(r.tls, r.stmt, int32(col)))))
}

func (r scanRow) Bytes(col int) []byte {
	p := lib.Xsqlite3_column_blob(r.tls, r.stmt, int32(col))
	if p == 0 {
		return nil
	}
	return libc.GoBytes(p, int(lib.Xsqlite3_column_bytes(r.tls, r.stmt, int32(col))))
}

func (r scanRow) IsNull(col int) bool {
	return lib.Xsqlite3_column_type(r.tls, r.stmt, int32(col)) == lib.SQLITE_NULL
}
