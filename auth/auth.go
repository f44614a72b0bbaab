// Package auth authenticates API requests: access keys belong to accounts,
// their secrets are sealed with the master key, and requests are signed
// with AWS Signature Version 4.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/awsjson"
	"github.com/openpca/openpca/policy"
	"github.com/openpca/openpca/sigv4"
)

// Keys gives access keys' secrets to the signature verifier, reading each
// key from the store at every request, so that a revocation takes effect at
// once.
type Keys struct {
	Store  openpca.AccountStore
	Sealer openpca.KeySealer
}

// AssociatedData binds a sealed secret to its key id and its account: a
// key's row moved to another account, by whoever can write the database
// but not read the master key, opens no secret there. The account's
// length comes first, so that no other pair of names gives the same bytes.
func AssociatedData(accountID, keyID string) []byte {
	return fmt.Appendf(nil, "access-key/%d:%s:%s", len(accountID), accountID, keyID)
}

// UnboundAssociatedData is what versions before 2026-12 bound a sealed
// secret to: its key id alone. Only the upgrade that binds the secrets to
// their accounts (sqlstore.Binder) opens a secret with it.
func UnboundAssociatedData(keyID string) []byte { return []byte("access-key:" + keyID) }

// Secret implements sigv4.KeyStore. The key it finds is kept for the
// request's authenticator, if ctx has a place for it (see found).
func (k Keys) Secret(ctx context.Context, id string) (string, error) {
	// No key has such an id, and a request without a secret must not
	// reach the store with it: PostgreSQL refuses a string that is not
	// UTF-8, or holds a NUL, with an error, which was an internal failure,
	// logged at ERROR, per request anyone could send.
	if !utf8.ValidString(id) || strings.ContainsRune(id, 0) {
		return "", sigv4.ErrUnknownKey
	}
	key, err := k.Store.FindAccessKey(ctx, id)
	if errors.Is(err, openpca.ErrNotFound) {
		return "", sigv4.ErrUnknownKey
	}
	if err != nil {
		return "", err
	}
	if !key.RevokedAt.IsZero() {
		return "", sigv4.ErrUnknownKey
	}
	secret, err := k.Sealer.Open(key.SealedSecret, AssociatedData(key.AccountID, id))
	if err != nil {
		// Most likely the database was rotated to another master key by
		// a rotation that did not see this server: its clients retry,
		// and reach another, rather than take a 500 for a fault of ours.
		return "", &openpca.Error{Code: openpca.CodeServiceUnavailable, Message: "This server cannot check the request's signature now; retry, for another server.",
			Cause: fmt.Errorf("%w: access key %s of account %s (was the database's master key rotated without this server? restart it with the new key; or was the key's row moved to this account by hand?): %w", ErrSecretUnopened, id, key.AccountID, err)}
	}
	if f, ok := ctx.Value(foundKey{}).(*found); ok {
		f.key = key
	}
	return string(secret), nil
}

// found is where Secret leaves the key a request is signed with, so that
// the authenticator reads it once per request, not twice.
type found struct{ key *openpca.AccessKey }

type foundKey struct{}

// Authenticator verifies SigV4 signatures and makes the signing key's
// account the caller, with the key's policies.
type Authenticator struct {
	Verifier *sigv4.Verifier
	Store    openpca.AccountStore

	parsed policy.Cache
}

// Authenticate implements awsjson.Authenticator: the headers are checked
// first, and the signature over the body after.
func (a *Authenticator) Authenticate(r *http.Request) (awsjson.BodyCheck, error) {
	f := new(found)
	signed, err := a.Verifier.Begin(r.WithContext(context.WithValue(r.Context(), foundKey{}, f)))
	if err != nil {
		return nil, err
	}
	return func(body []byte) (openpca.Caller, error) {
		keyID, err := signed.Verify(body)
		if err != nil {
			return openpca.Caller{}, err
		}
		key := f.key
		if key == nil || key.ID != keyID { // a KeyStore other than Keys
			if key, err = a.Store.FindAccessKey(r.Context(), keyID); err != nil {
				return openpca.Caller{}, err
			}
		}
		return a.callerOf(key)
	}, nil
}

// callerOf is the caller of requests signed with key. A key whose
// policies do not read is denied, with its account and id, which the
// request did prove, for the request log.
func (a *Authenticator) callerOf(key *openpca.AccessKey) (openpca.Caller, error) {
	policies, err := resolve(&a.parsed, key.Policies)
	if err != nil {
		// Attached policies were checked; one that no longer reads
		// (written by hand in the database, or by an earlier version)
		// denies everything.
		return openpca.Caller{AccountID: key.AccountID, Principal: key.ID}, openpca.Errorf(openpca.CodeAccessDenied, "User: %s is not authorized to perform any action: %v.", key.ID, err)
	}
	return openpca.Caller{AccountID: key.AccountID, Principal: key.ID, Policies: policies}, nil
}

// SignIn checks an access key's secret, as the web console's sign-in
// does, and returns the key's caller. A wrong secret, an unknown key and a
// revoked one are all ErrSignIn, so that the answer tells an attacker
// nothing.
func (a *Authenticator) SignIn(ctx context.Context, keyID, secret string) (openpca.Caller, error) {
	caller, want, err := a.Session(ctx, keyID)
	switch {
	case errors.Is(err, ErrSignIn):
		return openpca.Caller{}, ErrSignIn
	case want == "": // the store failed, or the secret did not open
		return openpca.Caller{}, err
	case subtle.ConstantTimeCompare([]byte(want), []byte(secret)) != 1:
		// Before a policy that no longer reads, which would tell that
		// the key exists.
		return openpca.Caller{}, ErrSignIn
	}
	return caller, err
}

// ErrSignIn refuses a sign-in.
var ErrSignIn = errors.New("auth: the access key or its secret is wrong")

// ErrSecretUnopened is an access key's secret that does not open with the
// server's master key: a failure with that key alone.
var ErrSecretUnopened = errors.New("auth: the access key's secret does not open with this server's master key")

// Session returns the caller of an access key that is still valid, as a
// request signed with it would have, and its secret, from one read of
// the key: ErrSignIn once it is revoked. The secret opens only for the
// key's account (AssociatedData): a key's row moved to another account
// is a failure (ErrSecretUnopened), not that account's caller.
func (a *Authenticator) Session(ctx context.Context, keyID string) (openpca.Caller, string, error) {
	f := &found{}
	secret, err := a.Verifier.Keys.Secret(context.WithValue(ctx, foundKey{}, f), keyID)
	if errors.Is(err, sigv4.ErrUnknownKey) {
		return openpca.Caller{}, "", ErrSignIn
	}
	if err != nil {
		return openpca.Caller{}, "", err
	}
	if f.key == nil || f.key.ID != keyID { // a KeyStore other than Keys
		return openpca.Caller{}, "", errors.New("auth: the verifier's key store tells no key of a secret")
	}
	caller, err := a.callerOf(f.key)
	return caller, secret, err
}

// ResolvePolicies parses a key's policies: its own documents, and the
// managed policies it names. A key without policies resolves to nil.
func ResolvePolicies(attached []openpca.KeyPolicy) ([]policy.Named, error) {
	return resolve(new(policy.Cache), attached)
}

func resolve(c *policy.Cache, attached []openpca.KeyPolicy) ([]policy.Named, error) {
	if len(attached) == 0 {
		return nil, nil
	}
	out := make([]policy.Named, 0, len(attached))
	for _, kp := range attached {
		if kp.Managed {
			p, ok := policy.Managed(kp.Name)
			if !ok {
				return nil, fmt.Errorf("there is no managed policy %s", kp.Name)
			}
			out = append(out, policy.Named{Name: kp.Name, Policy: p})
			continue
		}
		p, err := c.Parse(kp.Document, policy.Identity)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", kp.Name, err)
		}
		out = append(out, policy.Named{Name: kp.Name, Policy: p})
	}
	return out, nil
}

// NewAccessKey makes a key for an account: an id of "OPCA" and 16
// characters of base32, and a secret of 30 random bytes in base64 (40
// characters), shaped like AWS's. It returns the key, its secret sealed
// in it, and the secret itself, to be shown once.
func NewAccessKey(sealer openpca.KeySealer, accountID string, now time.Time) (*openpca.AccessKey, string, error) {
	id := make([]byte, 10)
	secret := make([]byte, 30)
	if _, err := rand.Read(id); err != nil {
		return nil, "", err
	}
	if _, err := rand.Read(secret); err != nil {
		return nil, "", err
	}
	key := &openpca.AccessKey{ID: "OPCA" + base32.StdEncoding.EncodeToString(id), AccountID: accountID, CreatedAt: now}
	s := base64.StdEncoding.EncodeToString(secret)
	return key, s, Seal(sealer, key, s)
}

// Seal seals a secret into a key.
func Seal(sealer openpca.KeySealer, key *openpca.AccessKey, secret string) error {
	sealed, err := sealer.Seal([]byte(secret), AssociatedData(key.AccountID, key.ID))
	if err != nil {
		return err
	}
	key.SealedSecret = sealed
	return nil
}

// NewAccountID makes a random 12-digit account id.
func NewAccountID() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	if b[0] == '0' {
		b[0] = '1'
	}
	return string(b), nil
}

// Bootstrap makes sure the default account exists and has a key. A key
// given (from OPENPCA_ROOT_ACCESS_KEY_ID and OPENPCA_ROOT_SECRET_ACCESS_KEY)
// is stored, replacing an older secret of that id but nothing else about
// it: a key the operator revoked stays revoked, and Bootstrap refuses to
// go on with it, and one made read-only stays so. Without a key given, if
// the account has never had a key (a first start), Bootstrap makes one and
// returns its secret, which the caller shows once; otherwise it returns
// an active key of the account, or nil if it has none, and "".
func Bootstrap(ctx context.Context, store openpca.AccountStore, sealer openpca.KeySealer, accountID, keyID, secret string, now time.Time) (*openpca.AccessKey, string, error) {
	if err := store.CreateAccount(ctx, &openpca.Account{ID: accountID, Name: "default", CreatedAt: now}); err != nil && !errors.Is(err, openpca.ErrConflict) {
		return nil, "", err
	}
	if keyID != "" || secret != "" {
		if keyID == "" || secret == "" {
			return nil, "", errors.New("auth: set both the root access key id and its secret, or neither")
		}
		key := &openpca.AccessKey{ID: keyID, AccountID: accountID, CreatedAt: now}
		old, err := store.FindAccessKey(ctx, keyID)
		switch {
		case err == nil && old.AccountID != accountID:
			return nil, "", fmt.Errorf("auth: access key %s belongs to account %s, not the default account %s", keyID, old.AccountID, accountID)
		case err == nil && !old.RevokedAt.IsZero():
			return nil, "", fmt.Errorf("auth: the root access key %s was revoked at %s; it stays revoked: remove it from OPENPCA_ROOT_ACCESS_KEY_ID (or --root-access-key-id) and use another key",
				keyID, old.RevokedAt.Format(time.RFC3339))
		case err == nil:
			// Stored already: a start writes nothing it need not, so that
			// a server restarted on a full disk can come up (and say it is
			// not ready), as it does after a crash; after a clean stop,
			// SQLite must make its write-ahead log's files again, and
			// cannot.
			if cur, err := sealer.Open(old.SealedSecret, AssociatedData(old.AccountID, keyID)); err == nil && subtle.ConstantTimeCompare(cur, []byte(secret)) == 1 {
				return old, "", nil
			}
			key = old
		case !errors.Is(err, openpca.ErrNotFound):
			return nil, "", err
		}
		if err := Seal(sealer, key, secret); err != nil {
			return nil, "", err
		}
		return key, "", store.PutAccessKey(ctx, key)
	}
	keys, err := store.ListAccessKeys(ctx, accountID)
	if err != nil {
		return nil, "", err
	}
	// Only the first start makes a key: an operator who revoked the
	// default account's keys meant it to have none, and a key made at
	// each start would undo that.
	if len(keys) > 0 {
		for _, k := range keys {
			if k.RevokedAt.IsZero() {
				return k, "", nil
			}
		}
		return nil, "", nil
	}
	key, newSecret, err := NewAccessKey(sealer, accountID, now)
	if err != nil {
		return nil, "", err
	}
	return key, newSecret, store.PutAccessKey(ctx, key)
}
