package pki

import (
	"crypto/x509/pkix"
	"testing"

	"github.com/openpca/openpca"
)

// TestCheckKeyUsage: a key usage extension sets one of the usages RFC 5280
// defines at least, for any key; for an ML-DSA key (RFC 9881, section 5),
// one of digitalSignature, nonRepudiation, keyCertSign and cRLSign, and
// none of the usages that encipher or agree.
func TestCheckKeyUsage(t *testing.T) {
	for _, c := range []struct {
		name           string
		value          []byte
		mldsa, classic bool // taken for an ML-DSA key, for an EC key
	}{
		{"digitalSignature", []byte{3, 2, 7, 0x80}, true, true},
		{"keyCertSign and cRLSign", []byte{3, 2, 1, 0x06}, true, true},
		{"nonRepudiation", []byte{3, 2, 6, 0x40}, true, true},
		{"decipherOnly", []byte{3, 3, 7, 0, 0x80}, false, true},
		{"no bit at all", []byte{3, 1, 0}, false, false},
		{"a byte of no bit", []byte{3, 2, 0, 0}, false, false},
		{"only an undefined bit", []byte{3, 3, 5, 0, 0x20}, false, false},
		{"keyEncipherment", []byte{3, 2, 5, 0xa0}, false, true},
		{"keyAgreement alone", []byte{3, 2, 3, 0x08}, false, true},
		{"no BIT STRING", []byte{4, 1, 0}, false, false},
	} {
		for alg, ok := range map[openpca.KeyAlgorithm]bool{openpca.KeyAlgorithmMlDsa65: c.mldsa, openpca.KeyAlgorithmEcPrime256v1: c.classic} {
			if err := CheckKeyUsage(alg, pkix.Extension{Value: c.value}); (err == nil) != ok {
				t.Errorf("%s, %s key: %v, want taken %v", c.name, alg, err, ok)
			}
		}
	}
}
