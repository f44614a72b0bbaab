package openpca

import (
	"context"
	"errors"
	"time"
)

// Bucket is a bucket of the object store that belongs to an account: only
// that account's CAs write audit reports and CRLs to it. A bucket that no
// account has been given belongs to the default account, so that a server
// with one account needs no bucket records at all.
type Bucket struct {
	Name      string
	AccountID string
	CreatedAt time.Time
}

// BucketStore keeps which account owns which bucket.
type BucketStore interface {
	// PutBucket records that a bucket belongs to an account. It returns
	// ErrNotFound if the account does not exist and ErrConflict if another
	// account owns the bucket; giving an account its own bucket again
	// changes nothing.
	PutBucket(ctx context.Context, b *Bucket) error
	// FindBucket returns a bucket's record, or ErrNotFound.
	FindBucket(ctx context.Context, name string) (*Bucket, error)
	// ListBuckets returns every bucket's record, by name.
	ListBuckets(ctx context.Context) ([]*Bucket, error)
	// DeleteBucket forgets a bucket's owner (it then belongs to the
	// default account); ErrNotFound if it had none.
	DeleteBucket(ctx context.Context, name string) error
}

// BucketOwner is the account that owns bucket: the one its record names,
// or defaultAccount if it has none.
func BucketOwner(ctx context.Context, store interface {
	FindBucket(ctx context.Context, name string) (*Bucket, error)
}, bucket, defaultAccount string) (string, error) {
	b, err := store.FindBucket(ctx, bucket)
	switch {
	case err == nil:
		return b.AccountID, nil
	case errors.Is(err, ErrNotFound):
		return defaultAccount, nil
	}
	return "", err
}
