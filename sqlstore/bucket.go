package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/openpca/openpca"
)

// PutBucket implements openpca.BucketStore.
func (db *DB) PutBucket(ctx context.Context, b *openpca.Bucket) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := db.txQueryRow(ctx, tx, `SELECT 1 FROM accounts WHERE id = ?{FOR_SHARE}`, b.AccountID).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return openpca.ErrNotFound
		} else if err != nil {
			return err
		}
		if _, err := db.txExec(ctx, tx, `INSERT INTO buckets (name, account_id, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`,
			b.Name, b.AccountID, b.CreatedAt.UnixMicro()); err != nil {
			return err
		}
		var owner string
		if err := db.txQueryRow(ctx, tx, `SELECT account_id FROM buckets WHERE name = ?`, b.Name).Scan(&owner); err != nil {
			return err
		}
		if owner != b.AccountID {
			return openpca.ErrConflict
		}
		return nil
	})
	return db.wrap("storing bucket", err)
}

func scanBucket(s rowScanner) (*openpca.Bucket, error) {
	var b openpca.Bucket
	var created int64
	if err := s.Scan(&b.Name, &b.AccountID, &created); err != nil {
		return nil, err
	}
	b.CreatedAt = time.UnixMicro(created).UTC()
	return &b, nil
}

// FindBucket implements openpca.BucketStore.
func (db *DB) FindBucket(ctx context.Context, name string) (*openpca.Bucket, error) {
	b, err := scanBucket(db.queryRow(ctx, `SELECT name, account_id, created_at FROM buckets WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, openpca.ErrNotFound
	}
	return b, db.wrap("reading bucket", err)
}

// ListBuckets implements openpca.BucketStore.
func (db *DB) ListBuckets(ctx context.Context) ([]*openpca.Bucket, error) {
	rows, err := db.query(ctx, `SELECT name, account_id, created_at FROM buckets ORDER BY name`)
	if err != nil {
		return nil, db.wrap("listing buckets", err)
	}
	defer rows.Close()
	var list []*openpca.Bucket
	for rows.Next() {
		b, err := scanBucket(rows)
		if err != nil {
			return nil, db.wrap("listing buckets", err)
		}
		list = append(list, b)
	}
	return list, db.wrap("listing buckets", rows.Err())
}

// DeleteBucket implements openpca.BucketStore.
func (db *DB) DeleteBucket(ctx context.Context, name string) error {
	res, err := db.exec(ctx, `DELETE FROM buckets WHERE name = ?`, name)
	if err != nil {
		return db.wrap("deleting bucket", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return db.wrap("deleting bucket", err)
	} else if n == 0 {
		return openpca.ErrNotFound
	}
	return nil
}
