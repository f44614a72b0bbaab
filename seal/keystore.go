package seal

import (
	"context"
	"crypto"
	"fmt"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/pki"
)

// KeyStore is the software key store of CA keys: each key, PKCS #8, sealed
// with the master key and bound to its CA's ARN, kept in the CA's record.
// A key is as safe as the master key, and opened in the server's memory to
// sign: it meets no FIPS level.
type KeyStore struct {
	sealer openpca.KeySealer
}

var _ openpca.KeyStore = (*KeyStore)(nil)

// NewKeyStore returns the software key store sealing with sealer.
func NewKeyStore(sealer openpca.KeySealer) *KeyStore { return &KeyStore{sealer: sealer} }

// SoftwareStore names the software store in CA records.
const SoftwareStore = "software"

// Name implements openpca.KeyStore.
func (*KeyStore) Name() string { return SoftwareStore }

// Hardware implements openpca.KeyStore: keys are opened in memory.
func (*KeyStore) Hardware() bool { return false }

// GenerateKey implements openpca.KeyStore.
func (k *KeyStore) GenerateKey(_ context.Context, ca *openpca.CA, alg openpca.KeyAlgorithm) ([]byte, crypto.Signer, error) {
	key, err := pki.GenerateKey(alg)
	if err != nil {
		return nil, nil, openpca.Errorf(openpca.CodeInvalidArgs, "%v.", err)
	}
	der, err := pki.MarshalPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	sealed, err := k.sealer.Seal(der, []byte(ca.ARN))
	if err != nil {
		return nil, nil, err
	}
	return sealed, key, nil
}

// Signer implements openpca.KeyStore.
func (k *KeyStore) Signer(_ context.Context, ca *openpca.CA) (crypto.Signer, error) {
	der, err := k.sealer.Open(ca.KeyHandle, []byte(ca.ARN))
	if err != nil {
		// Most likely sealed by a server given a new master key before
		// this one was (a rolling rotation's second step skipped), as an
		// access key's secret may be: clients retry, and reach another
		// server, rather than take a 500 for a fault of ours.
		return nil, &openpca.Error{Code: openpca.CodeServiceUnavailable, Message: "This server cannot open the CA's key now; retry, for another server.",
			Cause: fmt.Errorf("opening the key of %s (was it sealed by a server given a master key this one lacks? restart this one with it, as the README's rotation says): %w", ca.ARN, err)}
	}
	return pki.ParsePrivateKey(der)
}

// DestroyKey implements openpca.KeyStore: the sealed key goes with the
// CA's record.
func (*KeyStore) DestroyKey(context.Context, *openpca.CA) error { return nil }
