package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/openpca/openpca"
)

// CreateAccount implements openpca.AccountStore.
func (db *DB) CreateAccount(ctx context.Context, a *openpca.Account) error {
	res, err := db.exec(ctx, `INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		a.ID, a.Name, a.CreatedAt.UnixMicro())
	if err != nil {
		return db.wrap("creating account", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return db.wrap("creating account", err)
	} else if n == 0 {
		return openpca.ErrConflict
	}
	return nil
}

func scanAccount(s rowScanner) (*openpca.Account, error) {
	var a openpca.Account
	var created int64
	if err := s.Scan(&a.ID, &a.Name, &created); err != nil {
		return nil, err
	}
	a.CreatedAt = time.UnixMicro(created).UTC()
	return &a, nil
}

// FindAccount implements openpca.AccountStore.
func (db *DB) FindAccount(ctx context.Context, id string) (*openpca.Account, error) {
	a, err := scanAccount(db.queryRow(ctx, `SELECT id, name, created_at FROM accounts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, openpca.ErrNotFound
	}
	return a, db.wrap("reading account", err)
}

// ListAccounts implements openpca.AccountStore.
func (db *DB) ListAccounts(ctx context.Context) ([]*openpca.Account, error) {
	rows, err := db.query(ctx, `SELECT id, name, created_at FROM accounts ORDER BY id`)
	if err != nil {
		return nil, db.wrap("listing accounts", err)
	}
	defer rows.Close()
	var list []*openpca.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, db.wrap("listing accounts", err)
		}
		list = append(list, a)
	}
	return list, db.wrap("listing accounts", rows.Err())
}

// PutAccessKey implements openpca.AccountStore.
func (db *DB) PutAccessKey(ctx context.Context, k *openpca.AccessKey) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.checkSealing(ctx, tx); err != nil {
			return err
		}
		var one int
		if err := db.txQueryRow(ctx, tx, `SELECT 1 FROM accounts WHERE id = ?{FOR_SHARE}`, k.AccountID).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return openpca.ErrNotFound
		} else if err != nil {
			return err
		}
		policies, err := encodePolicies(k.Policies)
		if err != nil {
			return err
		}
		_, err = db.txExec(ctx, tx, `INSERT INTO access_keys (id, account_id, sealed_secret, created_at, revoked_at, policies) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET account_id = excluded.account_id, sealed_secret = excluded.sealed_secret,
				revoked_at = COALESCE(access_keys.revoked_at, excluded.revoked_at), policies = excluded.policies`,
			k.ID, k.AccountID, k.SealedSecret, k.CreatedAt.UnixMicro(), micros(k.RevokedAt), policies)
		return err
	})
	return db.wrap("storing access key", err)
}

const accessKeyColumns = `id, account_id, sealed_secret, created_at, revoked_at, policies`

func scanAccessKey(s rowScanner) (*openpca.AccessKey, error) {
	var k openpca.AccessKey
	var created int64
	var revoked sql.NullInt64
	var policies string
	if err := s.Scan(&k.ID, &k.AccountID, &k.SealedSecret, &created, &revoked, &policies); err != nil {
		return nil, err
	}
	k.CreatedAt, k.RevokedAt = time.UnixMicro(created).UTC(), fromMicros(revoked)
	// Most keys have none, and every request reads its key.
	if policies == "[]" {
		return &k, nil
	}
	if err := json.Unmarshal([]byte(policies), &k.Policies); err != nil {
		return nil, fmt.Errorf("the policies of access key %s: %w", k.ID, err)
	}
	if len(k.Policies) == 0 {
		k.Policies = nil
	}
	return &k, nil
}

// encodePolicies writes a key's policies as they are stored: a JSON list.
func encodePolicies(policies []openpca.KeyPolicy) (string, error) {
	if policies == nil {
		policies = []openpca.KeyPolicy{}
	}
	b, err := json.Marshal(policies)
	return string(b), err
}

// UpdateKeyPolicies implements openpca.AccountStore.
func (db *DB) UpdateKeyPolicies(ctx context.Context, id string, update func(*openpca.AccessKey) ([]openpca.KeyPolicy, error)) ([]openpca.KeyPolicy, error) {
	var policies []openpca.KeyPolicy
	var refused error // update's, passed on as it is
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		k, err := scanAccessKey(db.txQueryRow(ctx, tx, `SELECT `+accessKeyColumns+` FROM access_keys WHERE id = ?{FOR_UPDATE}`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return openpca.ErrNotFound
		}
		if err != nil {
			return err
		}
		if policies, refused = update(k); refused != nil {
			return refused
		}
		doc, err := encodePolicies(policies)
		if err != nil {
			return err
		}
		_, err = db.txExec(ctx, tx, `UPDATE access_keys SET policies = ? WHERE id = ?`, doc, id)
		return err
	})
	switch {
	case refused != nil:
		return nil, refused
	case errors.Is(err, openpca.ErrNotFound):
		return nil, err
	case err != nil:
		return nil, db.wrap("setting a key's policies", err)
	}
	return policies, nil
}

// FindAccessKey implements openpca.AccountStore.
func (db *DB) FindAccessKey(ctx context.Context, id string) (*openpca.AccessKey, error) {
	k, err := scanAccessKey(db.readRow(ctx, `SELECT `+accessKeyColumns+` FROM access_keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, openpca.ErrNotFound
	}
	return k, db.wrap("reading access key", err)
}

// ListAccessKeys implements openpca.AccountStore.
func (db *DB) ListAccessKeys(ctx context.Context, accountID string) ([]*openpca.AccessKey, error) {
	rows, err := db.query(ctx, `SELECT `+accessKeyColumns+` FROM access_keys WHERE ? = '' OR account_id = ? ORDER BY created_at, id`, accountID, accountID)
	if err != nil {
		return nil, db.wrap("listing access keys", err)
	}
	defer rows.Close()
	var list []*openpca.AccessKey
	for rows.Next() {
		k, err := scanAccessKey(rows)
		if err != nil {
			return nil, db.wrap("listing access keys", err)
		}
		list = append(list, k)
	}
	return list, db.wrap("listing access keys", rows.Err())
}

// RevokeAccessKey implements openpca.AccountStore.
func (db *DB) RevokeAccessKey(ctx context.Context, id string, at time.Time) error {
	res, err := db.exec(ctx, `UPDATE access_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, at.UnixMicro(), id)
	if err != nil {
		return db.wrap("revoking access key", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return db.wrap("revoking access key", err)
	} else if n == 0 {
		return openpca.ErrNotFound
	}
	return nil
}

// bindAccessKeys binds every access key's secret, which versions before
// 2026-12 sealed bound to the key's id alone, to its account too
// (Binder): whoever could write the database could move a key of theirs
// to any account, and sign its requests. It runs as the migration does,
// once, and takes each key's account as the database has it then. A
// master key that does not open the database's check binds nothing: the
// migration fails. A secret that does not open so (sealed with no master
// key given, which no server opened either; or bound already, the
// migration made to run again by its record taken out) is left as it is.
func (db *DB) bindAccessKeys(ctx context.Context, tx *sql.Tx) error {
	type key struct {
		id, account string
		sealed      []byte
	}
	var keys []key
	rows, err := db.txQuery(ctx, tx, `SELECT id, account_id, sealed_secret FROM access_keys`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.id, &k.account, &k.sealed); err != nil {
			rows.Close()
			return err
		}
		keys = append(keys, k)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	if db.bind == nil {
		return errors.New("binding access keys' secrets to their accounts needs the master key, which this command was not given")
	}
	var check []byte
	if err := db.txQueryRow(ctx, tx, `SELECT value FROM settings WHERE name = ?`, MasterKeyCheck).Scan(&check); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	bind, err := db.bind(check)
	if err != nil {
		return err
	}
	for _, k := range keys {
		bound, err := bind(k.account, k.id, k.sealed)
		if err != nil {
			continue
		}
		if _, err := db.txExec(ctx, tx, `UPDATE access_keys SET sealed_secret = ? WHERE id = ?`, bound, k.id); err != nil {
			return err
		}
	}
	return nil
}
