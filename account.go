package openpca

import (
	"context"
	"time"
)

// Account owns CAs; its 12-digit id is in their ARNs.
type Account struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// AccessKey is a credential of an account: requests signed with its secret
// act for the account. The secret is kept sealed with the master key.
type AccessKey struct {
	ID           string
	AccountID    string
	SealedSecret []byte
	CreatedAt    time.Time
	RevokedAt    time.Time // zero while the key is active
	// ReadOnly keys may only read (openpca.Authorize).
	ReadOnly bool
}

// AccountStore keeps accounts and their access keys.
type AccountStore interface {
	// CreateAccount stores a new account; ErrConflict if the id is taken.
	CreateAccount(ctx context.Context, a *Account) error
	// FindAccount returns an account, or ErrNotFound.
	FindAccount(ctx context.Context, id string) (*Account, error)
	// ListAccounts returns every account, by id.
	ListAccounts(ctx context.Context) ([]*Account, error)
	// PutAccessKey stores a key, replacing one with the same id, except
	// that a revoked key stays revoked; the account must exist
	// (ErrNotFound otherwise).
	PutAccessKey(ctx context.Context, k *AccessKey) error
	// FindAccessKey returns a key, revoked or not, or ErrNotFound.
	FindAccessKey(ctx context.Context, id string) (*AccessKey, error)
	// ListAccessKeys returns the keys of an account, or of every account
	// for "", by creation.
	ListAccessKeys(ctx context.Context, accountID string) ([]*AccessKey, error)
	// RevokeAccessKey revokes a key at at; ErrNotFound if it does not exist.
	RevokeAccessKey(ctx context.Context, id string, at time.Time) error
}
