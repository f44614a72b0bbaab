package openpca

import (
	"context"
	"crypto"
)

// KeyStore keeps the private keys of CAs and signs with them: the sealed
// software store (package seal), a PKCS#11 token (package pkcs11) or a
// key management service (package kms). Each CA records the store its key
// is in, so that it keeps signing whatever the server's default becomes.
type KeyStore interface {
	// Name names the store in CA records: software, pkcs11 or kms.
	Name() string
	// Hardware reports whether keys never leave the store: a token or a
	// key management service, rather than the server's memory.
	Hardware() bool
	// GenerateKey makes a new key pair of alg for CA ca inside the store.
	// It returns the handle the CA keeps to find the key again (a sealed
	// key, a token object's id, a key's ARN) and a signer of the new key.
	// A store that cannot hold keys of alg returns an *Error with
	// CodeInvalidArgs. A handle returned with an error is of a key made
	// that the store could not destroy: the caller records it, for a
	// purge to destroy.
	GenerateKey(ctx context.Context, ca *CA, alg KeyAlgorithm) (handle []byte, signer crypto.Signer, err error)
	// Signer returns a signer of the key of ca, which ca.KeyHandle names.
	// Its signatures are made in the store. When the store cannot sign,
	// they fail closed, with an *Error: CodeServiceUnavailable for a store
	// that cannot be reached now (a token removed, a service down), which
	// clients retry, and CodeInvalidState for a key the store refuses to
	// use (disabled, or deleted).
	Signer(ctx context.Context, ca *CA) (crypto.Signer, error)
	// DestroyKey removes the key of a CA deleted for good; a key
	// management service schedules its deletion. A key the store does not
	// hold (destroyed already) is ErrNotFound.
	DestroyKey(ctx context.Context, ca *CA) error
}

// KeyNamer is a KeyStore that knows the handle of a CA's key before it
// makes the key: a token's object id. Such a key is recorded before it is
// made (CAStore.RecordKeyMade), so that a server that stops while the
// store makes it, or a store that fails after making it, leaves no key
// that no record names. A key store that learns its handle only once the
// key exists (a KMS key's ARN) records it then.
type KeyNamer interface {
	// KeyHandle returns the handle GenerateKey will give ca's key.
	KeyHandle(ca *CA) []byte
}

// RemoteKeyStore is a KeyStore that makes its keys on another machine (a
// key management service), with none of the server's processors: its CA
// creations wait on the network, not for a processor of the server.
type RemoteKeyStore interface {
	KeyStore
	// MakesKeysElsewhere marks the store.
	MakesKeysElsewhere()
}
