package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/openpca/openpca"
)

// Settings that say which master key the database is sealed with, which
// the server keeps (package app), and Reseal and the transactions that
// store a sealed value read.
const (
	// MasterKeyCheck names the setting that holds a value sealed with the
	// master key, which only that key (or one that opens what it sealed)
	// opens.
	MasterKeyCheck = "master-key-check"
	// RetiredMasterKeys names the setting that lists, by fingerprint
	// (seal.Fingerprint), one to a line, the master keys that rotations
	// replaced: a server or command given one as its master key is
	// refused, even with the new key as a previous one (a node of a
	// cluster restarted with the settings of a rolling rotation's second
	// step, say), since what it sealed would open with no key a server is
	// left with; and so is a value sealed with one (checkSealing).
	RetiredMasterKeys = "retired-master-keys"
)

// SealsWith tells the store the fingerprint (seal.Fingerprint) of the
// master key that the values it is given to store are sealed with (CA
// keys in software, access keys' secrets), before it is given one: a
// store refuses them once a rotation has retired that key (checkSealing).
func (db *DB) SealsWith(fingerprint string) { db.sealing = fingerprint }

// checkSealing runs first in a transaction that stores a sealed value: it
// refuses the value if the master key it was sealed with (SealsWith) was
// retired. It reads the master key's check locked for share, which a
// rotation (Reseal) locks for update before anything else: a transaction
// that stores while a rotation runs waits for it to end, and then finds
// its key retired; a rotation waits for one under way, and then reseals
// what it stored. A server still sealing with the old key, because it
// skipped a step of a rolling rotation or was not seen by the rotation,
// fails such requests rather than store what no key would open once the
// old one is dropped.
func (db *DB) checkSealing(ctx context.Context, tx *sql.Tx) error {
	var v []byte
	err := db.waitingLocks(ctx, tx, func() error {
		return db.txQueryRow(ctx, tx, `SELECT value FROM settings WHERE name = ?{FOR_SHARE}`, MasterKeyCheck).Scan(&v)
	})
	if err == nil {
		err = db.txQueryRow(ctx, tx, `SELECT value FROM settings WHERE name = ?`, RetiredMasterKeys).Scan(&v)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if db.sealing != "" && slices.Contains(strings.Fields(string(v)), db.sealing) {
		return &openpca.Error{Code: openpca.CodeServiceUnavailable, Message: "This server's master key was retired; retry, for another server.",
			Cause: fmt.Errorf("the master key this server seals with (fingerprint %s) was retired by a rotation: restart the server with the new master key", db.sealing)}
	}
	return nil
}

// waitingLocks runs fn, the reading of the master key's check, waiting
// for locks as long as a rotation of the master key may hold it
// (Dialect.WaitLocks), and then puts back the wait of before: what reads
// the check, which a rotation holds locked for its whole transaction,
// waits for the rotation to end (a server or command starting, a sealed
// value stored), as a rotation waits for those under way, rather than
// give up at the session's lock_timeout, which bounds the waits of a
// batch of writes. What follows in the transaction waits as others do:
// a rotation kept waiting for a CA's row (a frozen server's) would queue
// every CA's writes behind its lock of their table.
func (db *DB) waitingLocks(ctx context.Context, tx *sql.Tx, fn func() error) error {
	if db.dialect.WaitLocks == nil {
		return fn()
	}
	restore, err := db.dialect.WaitLocks(ctx, tx)
	if err != nil {
		return err
	}
	// A row not found leaves the transaction going on, as its callers do.
	if err = fn(); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err // the transaction is rolled back
	}
	return errors.Join(err, restore())
}

// Reseal implements openpca.ResealStore. A CA whose key is rewritten gets a
// new version, so that no cached record keeps the old one. Every setting
// is locked for the transaction but Ready's, which a group commit's batch
// writes: its readiness would wait for the reseal, and the batch's other
// writes with it, or wait for each other, holding a CA's row the reseal
// wants.
func (db *DB) Reseal(ctx context.Context, fn func(*openpca.SealedValue) ([]byte, error), guard func(context.Context) error) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		// Before anything else (see checkSealing), waiting for the
		// transactions under way that store a sealed value as long as
		// they wait for it.
		var check []byte
		if err := db.waitingLocks(ctx, tx, func() error {
			return db.txQueryRow(ctx, tx, `SELECT value FROM settings WHERE name = ?{FOR_UPDATE}`, MasterKeyCheck).Scan(&check)
		}); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// Where write transactions run at once, the CAs are locked
		// whole before their rows: a group commit's batch locks its CAs'
		// rows for share one after another, in no order the rotation's
		// scan could share, and the two would deadlock. Plain reads go
		// on.
		if db.dialect.ForUpdate != "" {
			if _, err := tx.ExecContext(ctx, `LOCK TABLE certificate_authorities IN EXCLUSIVE MODE`); err != nil {
				return err
			}
		}
		for _, q := range []struct {
			kind, read, write string
		}{
			{openpca.SealedCAKey, `SELECT arn, account_id, key_handle FROM certificate_authorities WHERE key_store = 'software'{FOR_UPDATE}`,
				`UPDATE certificate_authorities SET key_handle = ?, version = version + 1 WHERE arn = ?`},
			{openpca.SealedAccessKey, `SELECT id, account_id, sealed_secret FROM access_keys{FOR_UPDATE}`, `UPDATE access_keys SET sealed_secret = ? WHERE id = ?`},
			{openpca.SealedSetting, `SELECT name, '', value FROM settings WHERE name <> '` + readinessProbe + `'{FOR_UPDATE}`, `UPDATE settings SET value = ? WHERE name = ?`},
		} {
			var values []*openpca.SealedValue
			rows, err := tx.QueryContext(ctx, db.rewrite(q.read))
			if err != nil {
				return err
			}
			for rows.Next() {
				v := &openpca.SealedValue{Kind: q.kind}
				if err := rows.Scan(&v.ID, &v.Account, &v.Value); err != nil {
					rows.Close()
					return err
				}
				values = append(values, v)
			}
			// A scan cut short (a lock's wait ended, a read failed) reseals
			// nothing: the rest would stay sealed with the retired key.
			if err := rows.Err(); err != nil {
				rows.Close()
				return err
			}
			if err := rows.Close(); err != nil {
				return err
			}
			for _, v := range values {
				resealed, err := fn(v)
				if err != nil {
					// Named, for the operator to look at: a row changed by
					// hand (an access key moved to another account) stops
					// every rotation.
					return fmt.Errorf("%s %s: %w", v.Kind, v.ID, err)
				}
				if bytes.Equal(resealed, v.Value) {
					continue
				}
				if _, err := db.txExec(ctx, tx, q.write, resealed, v.ID); err != nil {
					return err
				}
			}
		}
		if guard != nil {
			return guard(ctx)
		}
		return nil
	})
	if err == nil {
		db.cas.clear()
		db.scrub()
	}
	return db.wrap("resealing", err)
}

// scrub asks the dialect's Scrub, if it has one.
func (db *DB) scrub() {
	if db.dialect.Scrub != nil {
		db.dialect.Scrub()
	}
}
