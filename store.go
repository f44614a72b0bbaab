package openpca

import (
	"context"
	"time"
)

// Store keeps the server's records. Package sqlstore implements it on the
// embedded SQLite database (package sqlite) and on PostgreSQL (package
// postgres), which serves several nodes. Implementations return
// ErrNotFound and ErrConflict as they are, so callers can test for them.
type Store interface {
	CAStore
	CertificateStore
	AuditStore
	AccountStore
	SettingStore
	CRLStore
	OCSPStore
	BucketStore
	PermissionStore
	ResealStore
	WitnessStore
	ConsoleStore
	OperatorLog
	Close() error
}

// SealedValue is a value the store keeps, sealed with the master key, or
// holding such a value.
type SealedValue struct {
	// Kind says what the value is: SealedCAKey (a CA's key in the software
	// store, ID its ARN, the associated data it is sealed with),
	// SealedAccessKey (an access key's secret, ID the key's id, Account
	// its account, both of which it is bound to), or SealedSetting (a
	// setting, ID its name: whether and how it holds a sealed value is
	// its owner's to say).
	Kind, ID, Account string
	Value             []byte
}

// Kinds of SealedValue.
const (
	SealedCAKey     = "ca-key"
	SealedAccessKey = "access-key"
	SealedSetting   = "setting"
)

// ResealStore rewrites what the master key seals, when it changes.
type ResealStore interface {
	// Reseal calls fn with every sealed value the store keeps (and every
	// setting but the store's own), and stores what fn returns in its place, all in one
	// transaction: every value is rewritten, or none. guard, unless nil,
	// runs once every value is rewritten, before the transaction
	// commits: its error undoes the rewriting.
	Reseal(ctx context.Context, fn func(*SealedValue) ([]byte, error), guard func(context.Context) error) error
}

// CAPermission is what CreatePermission gave an AWS service principal
// (acm.amazonaws.com) on a CA. No such service stands behind this server,
// so a permission grants nothing here; it is kept so that the tools that
// manage permissions find them as they left them.
type CAPermission struct {
	CAID          string
	Principal     string
	SourceAccount string
	Actions       []ActionType
	CreatedAt     time.Time
}

// PermissionStore keeps the permissions of CAs.
type PermissionStore interface {
	// CreatePermission stores p; ErrConflict if the CA already gave its
	// principal a permission for the source account, ErrLimitExceeded if
	// the CA has limit permissions already.
	CreatePermission(ctx context.Context, p *CAPermission, limit int) error
	// ListPermissions returns up to limit permissions of a CA, ordered by
	// principal and source account, after the pair of the cursor.
	ListPermissions(ctx context.Context, caID string, after PermissionCursor, limit int) ([]*CAPermission, error)
	// DeletePermission removes a permission; ErrNotFound if there is none.
	DeletePermission(ctx context.Context, caID, principal, sourceAccount string) error
}

// PermissionCursor is a position in a CA's permissions.
type PermissionCursor struct {
	Principal, SourceAccount string
}

// SettingStore keeps server-wide values that every server sharing the store
// must agree on, such as a check of the master key.
type SettingStore interface {
	// InitSetting stores value under name unless a value is stored there
	// already, and returns the value stored: the first writer wins.
	InitSetting(ctx context.Context, name string, value []byte) ([]byte, error)
	// Setting returns the value stored under name, nil for none.
	Setting(ctx context.Context, name string) ([]byte, error)
}

// CAStore keeps certificate authorities.
type CAStore interface {
	// CreateCA stores a new CA, and its first key use (ca.CSR's signing)
	// as entry 0 of its key-use log. When token is set and the same account used
	// the same token for the same operation at or after token.Since, nothing
	// is stored and the CA created then is returned instead. If the account
	// already has limit CAs (deleted ones count until their restoration
	// period ends at token.Now), it returns ErrLimitExceeded.
	CreateCA(ctx context.Context, ca *CA, csrUse *KeyUse, token IdempotencyToken, limit int) (*CA, error)

	// FindCA returns the CA with id owned by accountID, or ErrNotFound.
	FindCA(ctx context.Context, accountID, id string) (*CA, error)

	// FindCAByKeyID returns the CA, of any account, whose key has the
	// KeyID, or ErrNotFound: an OCSP request names its issuer so.
	FindCAByKeyID(ctx context.Context, keyID string) (*CA, error)

	// ListCAs returns up to limit CAs of accountID in creation order,
	// starting after the cursor (the zero cursor starts at the first).
	ListCAs(ctx context.Context, accountID string, after CACursor, limit int) ([]*CA, error)

	// ListSharedCAs is ListCAs for the CAs of other accounts whose policy
	// names accountID (CA.SharedWith).
	ListSharedCAs(ctx context.Context, accountID string, after CACursor, limit int) ([]*CA, error)

	// UpdateCA writes ca (its status, configuration, certificate, tags and
	// policy) if the stored record still has ca.Version, and then
	// increments ca.Version. It returns ErrConflict if another update came
	// first, and ErrLimitExceeded if ca's policy grew past what its
	// account's CAs' policies may hold all together
	// (MaxAccountPolicySize). A change of ca's certificate or chain is
	// written only with imported, its IMPORT record (ImportUse), appended
	// to ca's log in the same transaction; imported is nil otherwise.
	UpdateCA(ctx context.Context, ca *CA, imported *KeyUse) error

	// LastImport returns the CA of accountID and caID, as FindCA does,
	// with the size of its log and the last IMPORT entry of it, read
	// together: an import is in all three or none.
	LastImport(ctx context.Context, accountID, caID string) (*LastImport, error)

	// AccountCAs counts the CAs of an account that count towards its
	// limit at now: every one but those deleted for good.
	AccountCAs(ctx context.Context, accountID string, now time.Time) (int, error)

	// CAPolicies calls fn with the ARN and the resource policy of every
	// CA that has one, in creation order.
	CAPolicies(ctx context.Context, fn func(arn, policy string)) error

	// CountCAs counts the CAs of every account by their status at now, as
	// CA.StatusAt gives it, and the key store that keeps their keys.
	CountCAs(ctx context.Context, now time.Time) (map[CAKind]int, error)

	// PurgeCAs removes the CAs deleted for good at now (see CA.Gone), with
	// their certificates, logs, policies and permissions, keeps what their
	// key stores need to destroy their keys (KeysToDestroy), and returns
	// them: with an error too, those it removed before it.
	PurgeCAs(ctx context.Context, now time.Time) ([]*CA, error)

	// KeysToDestroy returns the CAs whose keys are to be destroyed and
	// are not yet known to be: the CAs purged, and those whose keys were
	// made (RecordKeyMade) more than KeyMadeGrace before now and never
	// stored; their ids, ARNs, key stores, key handles, key ids and
	// Destruction (the CA's when it was purged, the record's). One
	// whose key a stored CA holds (its id, or its key store and handle:
	// a record written outside the server) has KeepKey set, and its key
	// is not to be destroyed.
	KeysToDestroy(ctx context.Context, now time.Time) ([]*CA, error)

	// KeyDestroyed records that the key of a purged CA, or of one never
	// stored, is destroyed.
	KeyDestroyed(ctx context.Context, caID string) error

	// RecordKeyMade records, at, that a key store made ca's key (or is
	// about to: KeyNamer), with ca.Destruction, before the CA is stored:
	// a server that stops in between, or whose request fails and cannot
	// destroy the key then, leaves no key behind unknown. Recording the
	// CA again updates its key handle, key id and Destruction, unless it
	// comes without a Destruction and the first came with one. CreateCA
	// forgets the record; for a CA whose key is not in the software
	// store, CreateCA fails with ErrKeyGivenUp if the record is gone
	// (KeysToDestroy took it).
	RecordKeyMade(ctx context.Context, ca *CA, at time.Time) error
}

// KeyMadeGrace is how long a key made for a CA may wait for its CA to be
// stored before it is destroyed. A creation takes seconds; one that takes
// longer than this fails (ErrKeyGivenUp).
const KeyMadeGrace = time.Hour

// CAKind is what CountCAs counts CAs by.
type CAKind struct {
	Status   CertificateAuthorityStatus
	KeyStore string
}

// CACursor is a position in the creation order of an account's CAs.
type CACursor struct {
	CreatedAt time.Time
	ID        string
}

// IdempotencyToken makes a create operation safe to retry: the same token
// from the same account within the window returns what the first call made.
type IdempotencyToken struct {
	// AccountID is the caller's account, whose tokens these are. For a CA
	// shared with other accounts it is not the CA's: each account's tokens
	// are its own, and one account's token never returns what another's
	// request made.
	AccountID string
	Operation string
	Token     string    // empty: no idempotency
	Now       time.Time // when this request was made
	Since     time.Time // tokens used before this have expired
}

// Sentinel store errors. They carry a code, but services usually replace
// them with a message that names what was not found.
var (
	ErrNotFound       = &Error{Code: CodeResourceNotFound, Message: "The resource was not found."}
	ErrConflict       = &Error{Code: CodeConcurrentModification, Message: "The resource was changed by another request; retry."}
	ErrLimitExceeded  = &Error{Code: CodeLimitExceeded, Message: "A quota was reached."}
	ErrAlreadyRevoked = &Error{Code: CodeRequestAlreadyProcessed, Message: "The certificate is already revoked."}
	ErrCAState        = &Error{Code: CodeInvalidState, Message: "The certificate authority is not in a valid state for this request."}
	// ErrKeyGivenUp is CreateCA's error for a CA whose key a purge took
	// as never stored (see RecordKeyMade).
	ErrKeyGivenUp = &Error{Code: CodeServiceUnavailable, Message: "The certificate authority took too long to create, and its key was given up: try again."}
)

// KeySealer seals private keys with a key that lives outside the store, so
// that a copy of the store alone reveals no private key. The associated data
// binds a sealed key to its owner: a key opens only with the data it was
// sealed with.
type KeySealer interface {
	Seal(plaintext, associatedData []byte) ([]byte, error)
	Open(sealed, associatedData []byte) ([]byte, error)
}
