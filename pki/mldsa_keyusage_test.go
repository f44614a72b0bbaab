package pki

import (
	"crypto/x509/pkix"
	"testing"

	"github.com/openpca/openpca"
)

// RFC 9881, section 5: the key usage extension of a certificate of an
// ML-DSA key has at least one of digitalSignature, nonRepudiation,
// keyCertSign and cRLSign, and none of the usages that encipher or agree.
func TestCheckKeyUsageMLDSARequiresASigningUsage(t *testing.T) {
	for _, c := range []struct {
		name  string
		value []byte
		ok    bool
	}{
		{"digitalSignature", []byte{3, 2, 7, 0x80}, true},
		{"keyCertSign and cRLSign", []byte{3, 2, 1, 0x06}, true},
		{"nonRepudiation", []byte{3, 2, 6, 0x40}, true},
		{"no bit at all", []byte{3, 1, 0}, false},
		{"only an undefined bit", []byte{3, 3, 6, 0, 0x40}, false},
		{"keyEncipherment", []byte{3, 2, 5, 0xa0}, false},
	} {
		err := CheckKeyUsage(openpca.KeyAlgorithmMlDsa65, pkix.Extension{Value: c.value})
		if (err == nil) != c.ok {
			t.Errorf("%s: CheckKeyUsage = %v, want ok %v", c.name, err, c.ok)
		}
	}
	// Other keys are not held to it here.
	if err := CheckKeyUsage(openpca.KeyAlgorithmEcPrime256v1, pkix.Extension{Value: []byte{3, 1, 0}}); err != nil {
		t.Errorf("EC key, empty usage: %v", err)
	}
}
