package authority

import (
	"context"
	"fmt"
	"strings"

	"github.com/openpca/openpca"
)

// KeyStore is a store CA keys can be kept in, with the key storage
// security standard the operator declares it meets ("" for none: the
// software store meets none).
type KeyStore struct {
	openpca.KeyStore
	Standard openpca.KeyStorageSecurityStandard
}

// meets reports whether a store declared to meet have meets want: FIPS
// 140-2 level 3 meets level 2, and each standard meets itself.
func meets(have, want openpca.KeyStorageSecurityStandard) bool {
	return have == want || have == openpca.KeyStorageSecurityStandardFips1402Level3OrHigher && want == openpca.KeyStorageSecurityStandardFips1402Level2OrHigher
}

// keyStoreFor chooses the store of a new CA's key, and the standard the CA
// reports. A request that names no standard (AWS's default) gets the
// default store, and the standard that store is declared to meet, if any.
// One that names a standard gets the first store declared to meet it, and
// reports it as asked; if no store meets it, it is refused, unless the
// operator allows the claim.
func (s *Service) keyStoreFor(want openpca.KeyStorageSecurityStandard) (KeyStore, openpca.KeyStorageSecurityStandard, error) {
	def := s.keyStores[0]
	if want == "" {
		return def, def.Standard, nil
	}
	for _, ks := range s.keyStores {
		if meets(ks.Standard, want) && (ks.Hardware() || !s.requireHardware) {
			return ks, want, nil // true, and what the request said
		}
	}
	if s.allowUnmet {
		return def, want, nil
	}
	var declared []string
	for _, ks := range s.keyStores {
		d := string(ks.Standard)
		if d == "" {
			d = "none"
		}
		declared = append(declared, ks.Name()+": "+d)
	}
	return KeyStore{}, "", openpca.Errorf(openpca.CodeInvalidArgs,
		"KeyStorageSecurityStandard %s: no key store of this server is declared to meet it (%s). Keys kept in software meet no FIPS level; "+
			"omit the field to use the server's default store.", want, strings.Join(declared, ", "))
}

// keyStore returns the store that keeps ca's key.
func (s *Service) keyStore(ca *openpca.CA) (KeyStore, error) {
	for _, ks := range s.keyStores {
		if ks.Name() == ca.KeyStore {
			return ks, nil
		}
	}
	return KeyStore{}, &openpca.Error{Code: openpca.CodeServiceUnavailable,
		Message: fmt.Sprintf("The key of %s is kept in the %s key store, which this server is not configured with.", ca.ARN, ca.KeyStore)}
}

// DestroyKeys removes the keys of CAs deleted for good from their stores.
// A key that cannot be removed is logged, with what finds it, for the
// operator to remove by hand.
func (s *Service) DestroyKeys(ctx context.Context, cas []*openpca.CA) {
	for _, ca := range cas {
		s.signers.Delete(ca.ID)
		ks, err := s.keyStore(ca)
		if err == nil {
			err = ks.DestroyKey(ctx, ca)
		}
		if err != nil {
			s.logger.ErrorContext(ctx, "removing the key of a CA deleted for good", "ca", ca.ARN, "key_store", ca.KeyStore, "key_handle", string(ca.KeyHandle), "error", err)
		}
	}
}
