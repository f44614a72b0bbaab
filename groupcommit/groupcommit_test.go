package groupcommit_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/openpca/openpca/groupcommit"
)

func setup(t *testing.T) (*sql.DB, *groupcommit.Committer) {
	t.Helper()
	return setupWith(t, filepath.Join(t.TempDir(), "gc.db"), 0)
}

func setupWith(t *testing.T, path string, timeout time.Duration) (*sql.DB, *groupcommit.Committer) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(60000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE t (k INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	c, err := groupcommit.New(context.Background(), db, 64, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return db, c
}

func insert(k int) groupcommit.Write {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO t (k) VALUES (?)`, k)
		return err
	}
}

func keys(t *testing.T, db *sql.DB) map[int]bool {
	t.Helper()
	rows, err := db.Query(`SELECT k FROM t`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[int]bool{}
	for rows.Next() {
		var k int
		rows.Scan(&k)
		m[k] = true
	}
	return m
}

// TestBatchesAndIsolatesFailures runs many concurrent writes, some of
// which fail: every other write commits, the failed ones leave nothing,
// and writes share transactions.
func TestBatchesAndIsolatesFailures(t *testing.T) {
	db, c := setup(t)
	const n = 400
	fail := errors.New("refused")
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if i%7 == 0 {
				errs[i] = c.Do(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
					// Write, then fail: the write must be undone.
					if err := insert(-i-1)(ctx, tx); err != nil {
						return err
					}
					return fail
				})
				return
			}
			errs[i] = c.Do(t.Context(), insert(i))
		})
	}
	wg.Wait()
	got := keys(t, db)
	for i, err := range errs {
		switch {
		case i%7 == 0 && !errors.Is(err, fail):
			t.Errorf("write %d: %v, want its own error", i, err)
		case i%7 == 0 && got[-i-1]:
			t.Errorf("failed write %d left its row", i)
		case i%7 != 0 && (err != nil || !got[i]):
			t.Errorf("write %d: %v, row present %v", i, err, got[i])
		}
	}
	if s := c.Stats(); s.Writes != n || s.Batches >= n {
		t.Errorf("stats %+v: %d writes should share fewer than %d transactions", s, n, n)
	}
}

// TestFailingTransaction: a write that breaks a constraint fails alone.
func TestConstraintFailure(t *testing.T) {
	db, c := setup(t)
	if err := c.Do(t.Context(), insert(1)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range 10 {
		wg.Go(func() { errs[i] = c.Do(t.Context(), insert(1+i)) }) // i == 0 duplicates key 1
	}
	wg.Wait()
	if errs[0] == nil {
		t.Error("a duplicate key was accepted")
	}
	for i := 1; i < 10; i++ {
		if errs[i] != nil {
			t.Errorf("write %d failed beside the bad one: %v", i, errs[i])
		}
	}
	if len(keys(t, db)) != 10 {
		t.Errorf("%d rows, want 10", len(keys(t, db)))
	}
}

func TestCanceledAndClosed(t *testing.T) {
	db, c := setup(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Do(ctx, insert(5)); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled write: %v", err)
	}
	c.Close()
	if err := c.Do(t.Context(), insert(6)); !errors.Is(err, groupcommit.ErrClosed) {
		t.Errorf("write after Close: %v", err)
	}
	if len(keys(t, db)) != 0 {
		t.Error("a canceled or late write was committed")
	}
}

// TestHungDatabase holds the database's write lock from elsewhere, as a
// hung database would: the batch fails with DeadlineExceeded once its
// time is up, rather than holding its writers for good; a writer whose
// request ends meanwhile stops waiting; and once the lock is released,
// writes commit again.
func TestHungDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gc.db")
	db, c := setupWith(t, path, 300*time.Millisecond)
	other, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(`INSERT INTO t (k) VALUES (-1)`); err != nil { // takes the write lock
		t.Fatal(err)
	}
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = c.Do(t.Context(), insert(i)) })
	}
	ctx, cancel := context.WithCancel(t.Context())
	abandoned := make(chan error, 1)
	go func() { abandoned <- c.Do(ctx, insert(10)) }()
	cancel()
	if err := <-abandoned; !errors.Is(err, context.Canceled) {
		t.Errorf("a writer whose request ended: %v", err)
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, groupcommit.ErrTimedOut) {
			t.Errorf("write %d under a held lock: %v, want DeadlineExceeded", i, err)
		}
	}
	lock.Rollback()
	if err := c.Do(t.Context(), insert(20)); err != nil {
		t.Fatalf("a write once the lock is released: %v", err)
	}
	if got := keys(t, db); len(got) != 1 || !got[20] {
		t.Errorf("rows %v, want only the last write's", got)
	}
}

// TestBatcher writes each batch with one multi-row INSERT: batches form
// under concurrency, and a batch that fails on one bad item (a duplicate
// key) runs again item by item, so that only the bad item fails.
func TestBatcher(t *testing.T) {
	db, _ := setup(t)
	var sizes []int // only the batcher's goroutine appends
	b := groupcommit.NewBatcher(db, 64, 0, func(ctx context.Context, tx *sql.Tx, ks []int) ([]error, error) {
		sizes = append(sizes, len(ks))
		q, args := `INSERT INTO t (k) VALUES (?)`+strings.Repeat(`, (?)`, len(ks)-1), make([]any, len(ks))
		for i, k := range ks {
			args[i] = k
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return nil, err
		}
		return make([]error, len(ks)), nil
	})
	if err := b.Do(t.Context(), 7); err != nil {
		t.Fatal(err)
	}
	const n = 300
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = b.Do(t.Context(), i) }) // 7 is taken
	}
	wg.Wait()
	b.Close()
	for i, err := range errs {
		if (err != nil) != (i == 7) {
			t.Errorf("item %d: %v", i, err)
		}
	}
	if got := len(keys(t, db)); got != n {
		t.Errorf("%d rows, want %d", got, n)
	}
	if s := b.Stats(); s.Batches >= n || slices.Max(sizes) == 1 {
		t.Errorf("stats %+v, batch sizes %v: items should share transactions", s, sizes)
	}
}

// TestStatsCountWriteReturned: a write is in the Batcher's Stats by the
// time it returns (they were counted after the callers heard, and a test
// reading them then missed the last batch).
func TestStatsCountWriteReturned(t *testing.T) {
	db, _ := setup(t)
	b := groupcommit.NewBatcher(db, 64, 0, func(ctx context.Context, tx *sql.Tx, ks []int) ([]error, error) {
		return make([]error, len(ks)), nil
	})
	defer b.Close()
	for i := range uint64(2000) {
		if err := b.Do(t.Context(), int(i)); err != nil {
			t.Fatal(err)
		}
		if s := b.Stats(); s.Writes != i+1 {
			t.Fatalf("write %d returned, and the stats count %d", i+1, s.Writes)
		}
	}
}

// TestContendedKeyFailsAtOnce: once a write of a key waited out a lock
// (the error SetContended's function reports), the writes of the same key
// after it in its batch, or in its batch's writes run again alone, fail
// at once with that error, rather than each wait as long again and hold
// the batch's other writes; those of other keys commit. It is the
// Committer's writes (in savepoints) and the Batcher's (run again alone
// once their batch failed; with none run again at all when the batch's
// error names the key, a KeyError).
func TestContendedKeyFailsAtOnce(t *testing.T) {
	errLocked := errors.New("lock timeout")
	contended := func(err error) bool { return errors.Is(err, errLocked) }
	batcher := func(batchErr func(items []string) error) func(db *sql.DB, calls map[string]int, mu *sync.Mutex, release <-chan struct{}) func(string) error {
		return func(db *sql.DB, calls map[string]int, mu *sync.Mutex, release <-chan struct{}) func(string) error {
			b := groupcommit.NewBatcher(db, 64, 0, func(_ context.Context, _ *sql.Tx, items []string) ([]error, error) {
				if items[0] == "0" {
					<-release
					return make([]error, len(items)), nil
				}
				if len(items) > 1 {
					return nil, batchErr(items) // each runs again alone
				}
				mu.Lock()
				defer mu.Unlock()
				calls[items[0]]++
				if items[0] == "a" {
					return nil, errLocked
				}
				return make([]error, 1), nil
			})
			t.Cleanup(b.Close)
			b.SetContended(func(s string) string { return s }, contended)
			go b.Do(t.Context(), "0")
			return func(key string) error { return b.Do(t.Context(), key) }
		}
	}
	for _, tc := range []struct {
		name   string
		start  func(db *sql.DB, calls map[string]int, mu *sync.Mutex, release <-chan struct{}) func(key string) error
		aCalls int // the contended key's writes run
	}{
		{"committer", func(db *sql.DB, calls map[string]int, mu *sync.Mutex, release <-chan struct{}) func(string) error {
			c, err := groupcommit.New(context.Background(), db, 64, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			c.SetContended(contended)
			go c.DoFor(t.Context(), "0", func(context.Context, *sql.Tx) error { <-release; return nil })
			return func(key string) error {
				return c.DoFor(t.Context(), key, func(context.Context, *sql.Tx) error {
					mu.Lock()
					defer mu.Unlock()
					calls[key]++
					if key == "a" {
						return errLocked
					}
					return nil
				})
			}
		}, 1},
		{"batcher", batcher(func([]string) error { return errors.New("the batch failed") }), 1},
		{"batcher, the batch's error naming the key", batcher(func([]string) error { return &groupcommit.KeyError{Key: "a", Err: errLocked} }), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := setup(t)
			var mu sync.Mutex
			calls := map[string]int{}
			release := make(chan struct{})
			do := tc.start(db, calls, &mu, release)
			time.Sleep(50 * time.Millisecond) // the blocking batch first
			keys := []string{"a", "b", "a", "b", "a"}
			errs := make([]error, len(keys))
			var wg sync.WaitGroup
			for i, k := range keys {
				wg.Go(func() { errs[i] = do(k) })
			}
			time.Sleep(200 * time.Millisecond) // queued behind it, as one batch
			close(release)
			wg.Wait()
			for i, k := range keys {
				if (k == "a") != errors.Is(errs[i], errLocked) || k == "b" && errs[i] != nil {
					t.Errorf("write %d of key %s: %v", i, k, errs[i])
				}
			}
			if calls["a"] != tc.aCalls || calls["b"] != 2 {
				t.Errorf("writes run: %v; want the contended key's %d times", calls, tc.aCalls)
			}
		})
	}
}
