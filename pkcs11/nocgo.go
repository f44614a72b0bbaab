//go:build !cgo

package pkcs11

import (
	"crypto"
	"errors"

	"github.com/openpca/openpca"
)

// Config says which token to use.
type Config struct {
	Module, TokenLabel, PIN string
	MaxSessions             int
}

// Store is a PKCS#11 key store, which this build cannot open.
type Store struct{ openpca.KeyStore }

// Name of the store in CA records.
const Name = "pkcs11"

var errNoCgo = errors.New("pkcs11: this openpca was built without cgo, and PKCS#11 tokens need a cgo build (CGO_ENABLED=1 and a C compiler)")

// Open says that PKCS#11 needs a cgo build.
func Open(Config) (*Store, error) { return nil, errNoCgo }

// Close closes nothing.
func (*Store) Close() error { return nil }

// Ed25519 says that PKCS#11 needs a cgo build.
func (*Store) Ed25519(string, bool) (crypto.Signer, error) { return nil, errNoCgo }
