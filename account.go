package openpca

import (
	"context"
	"strings"
	"time"
)

// Account owns CAs; its 12-digit id is in their ARNs.
type Account struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// ValidAccountID reports whether id is an account id: 12 digits, as AWS's.
func ValidAccountID(id string) bool {
	return len(id) == 12 && strings.Trim(id, "0123456789") == ""
}

// AccessKey is a credential of an account: requests signed with its secret
// act for the account. The secret is kept sealed with the master key.
type AccessKey struct {
	ID           string
	AccountID    string
	SealedSecret []byte
	CreatedAt    time.Time
	RevokedAt    time.Time // zero while the key is active
	// Policies limit what the key may do, as IAM identity policies do. A
	// key without any may do everything in its account.
	Policies []KeyPolicy
}

// KeyPolicy is a policy attached to an access key: a document of its own,
// or one of the server's managed policies, by name.
type KeyPolicy struct {
	Name    string `json:"name"`
	Managed bool   `json:"managed,omitempty"`
	// Document is the policy's JSON; "" for a managed policy.
	Document string `json:"document,omitempty"`
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
	// UpdateKeyPolicies replaces the policies of a key with what update
	// makes of the key as stored, in one transaction: two operators'
	// changes at once each see the other's (one lost the other's when
	// both read, then wrote). An error of update changes nothing; the
	// key is ErrNotFound if it does not exist. update may run more than
	// once, when the transaction is run again.
	UpdateKeyPolicies(ctx context.Context, id string, update func(*AccessKey) ([]KeyPolicy, error)) ([]KeyPolicy, error)
}
