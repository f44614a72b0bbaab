package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openpca/openpca"
)

// InitSetting implements openpca.SettingStore. The value is read locked
// for share: while a transaction that locks or rewrites it runs (a
// rotation of the master key, which locks its check first, and rewrites
// it), the read waits for it to end, and reads what it left. Any other
// setting may hold a sealed value (the audit log's key), stored only as
// checkSealing allows: one stored while a rotation runs would be left
// sealed with the key it retires.
func (db *DB) InitSetting(ctx context.Context, name string, value []byte) ([]byte, error) {
	var stored []byte
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		init := func() error {
			if _, err := tx.ExecContext(ctx, db.rewrite(`INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`), name, value); err != nil {
				return err
			}
			return tx.QueryRowContext(ctx, db.rewrite(`SELECT value FROM settings WHERE name = ?{FOR_SHARE}`), name).Scan(&stored)
		}
		if name == MasterKeyCheck {
			return db.waitingLocks(ctx, tx, init)
		}
		if err := db.checkSealing(ctx, tx); err != nil {
			return err
		}
		return init()
	})
	return stored, db.wrap("initializing setting "+name, err)
}

// Setting implements openpca.SettingStore.
func (db *DB) Setting(ctx context.Context, name string) ([]byte, error) {
	var stored []byte
	err := db.read.QueryRowContext(ctx, db.rewrite(`SELECT value FROM settings WHERE name = ?`), name).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return stored, db.wrap("reading setting "+name, err)
}

// readinessProbe names the setting Ready writes.
const readinessProbe = "readiness-probe"

// readyEvery is how often Ready writes to find out; between two writes
// it answers what the last found.
const readyEvery = time.Second

// readiness is the outcome of Ready's last write, and the last write
// refused for want of disk space.
type readiness struct {
	mu   sync.Mutex
	at   time.Time
	err  error
	full atomic.Pointer[fullWrite]
}

// fullWrite is a write refused for want of disk space.
type fullWrite struct {
	at  time.Time
	err error
}

// fullFor is how long after a write refused for want of disk space the
// store is not ready: Ready's own small write may still fit (PostgreSQL's
// did, while issuances failed), and a load balancer that sends requests
// elsewhere meanwhile lets space be made.
const fullFor = 10 * time.Second

// Ready reports whether the store makes writes durable now: it checks
// what the database needs (Config.Ready) and makes a write, through the
// group commit as every write, at most once per readyEvery. A disk that
// is full, a database that is gone or hangs, fail it.
func (db *DB) Ready(ctx context.Context) error {
	r := &db.readiness
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.at.IsZero() && time.Since(r.at) < readyEvery {
		return r.err
	}
	if full := r.full.Load(); full != nil && time.Since(full.at) < fullFor {
		r.at, r.err = time.Now(), fmt.Errorf("a write was refused for want of disk space within the last %v: %w", fullFor, full.err)
		return r.err
	}
	var err error
	if db.check != nil {
		err = db.check()
	}
	if err == nil && db.ready != nil {
		err = db.ready(ctx)
	}
	if err == nil {
		err = db.commits.Do(ctx, func(ctx context.Context, tx *sql.Tx) error {
			_, err := db.txExec(ctx, tx, `INSERT INTO settings (name, value) VALUES (?, ?)
				ON CONFLICT (name) DO UPDATE SET value = excluded.value`, readinessProbe, []byte(time.Now().UTC().Format(time.RFC3339Nano)))
			return err
		})
		err = db.wrap("writing", err)
	}
	// A check its caller gave up on says nothing of the store, and is
	// not kept for the others who ask. One past its deadline is: a
	// database that hangs is not ready.
	if errors.Is(ctx.Err(), context.Canceled) {
		return err
	}
	r.at, r.err = time.Now(), err
	return err
}

// RegionHeld reports whether the database has no CA, or one whose ARN
// names region (a server's --region, which Config.Validate holds to
// letters, digits and hyphens: no LIKE pattern's characters). LIKE finds
// the candidates, which SQLite compares without regard to case, and
// their ARNs say.
func (db *DB) RegionHeld(ctx context.Context, region string) (bool, error) {
	var some bool
	if err := db.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM certificate_authorities)`).Scan(&some); err != nil {
		return false, db.wrap("looking for CAs", err)
	}
	if !some {
		return true, nil
	}
	rows, err := db.query(ctx, `SELECT arn FROM certificate_authorities WHERE arn LIKE ? LIMIT 100`, "arn:%:acm-pca:"+region+":%")
	if err != nil {
		return false, db.wrap("looking for the CAs of a region", err)
	}
	defer rows.Close()
	for rows.Next() {
		var arn string
		if err := rows.Scan(&arn); err != nil {
			return false, db.wrap("looking for the CAs of a region", err)
		}
		if p, err := openpca.ParseCAARN(arn); err == nil && p.Region == region {
			return true, nil
		}
	}
	return false, db.wrap("looking for the CAs of a region", rows.Err())
}
