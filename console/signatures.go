package console

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/openpca/openpca/pki"
)

// signatures remembers which CA's key signed which CA's certificate. The
// CA page puts each CA under its parent at each load (hierarchy): an
// account of 200 CAs with P-521 keys spent 0.4 to 0.6 s of CPU on each
// load, 1.5 cores within its request rate. The outcome is the
// certificates' alone, and they change seldom (an import, a renewal): a
// pair is remembered by both certificates' hashes, for every account that
// sees them.
type signatures struct {
	checked *lru.Cache[[2][sha256.Size]byte, bool]
	check   func(c, parent *x509.Certificate) error
}

// maxSignatures bounds the pairs remembered: 3 to 4 MB of them.
const maxSignatures = 16 << 10

func newSignatures() *signatures {
	checked, _ := lru.New[[2][sha256.Size]byte, bool](maxSignatures)
	return &signatures{checked: checked, check: pki.CheckSignatureFrom}
}

var errNotSignedBy = errors.New("the certificate is not signed by the parent's key")

// verify is check, remembered.
func (s *signatures) verify(c, parent *x509.Certificate) error {
	key := [2][sha256.Size]byte{sha256.Sum256(c.Raw), sha256.Sum256(parent.Raw)}
	signed, ok := s.checked.Get(key)
	if !ok {
		signed = s.check(c, parent) == nil
		s.checked.Add(key, signed)
	}
	if !signed {
		return errNotSignedBy
	}
	return nil
}
