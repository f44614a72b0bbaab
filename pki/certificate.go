package pki

import (
	"crypto/x509"
	"fmt"
	"math/big"
	"strings"
)

// FormatSerial writes a serial number as lowercase hex bytes joined by
// colons, as AWS Private CA shows serials.
func FormatSerial(n *big.Int) string {
	b := n.Bytes()
	if len(b) == 0 {
		b = []byte{0}
	}
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02x", x)
	}
	return strings.Join(parts, ":")
}

// Extensions that AWS Private CA accepts as critical in an imported CA
// certificate or chain; any other critical extension is refused.
var allowedCritical = map[string]bool{
	"2.5.29.35":          true, // authority key identifier
	"2.5.29.19":          true, // basic constraints
	"2.5.29.32":          true, // certificate policies
	"2.5.29.37":          true, // extended key usage
	"2.5.29.54":          true, // inhibit anyPolicy
	"2.5.29.18":          true, // issuer alternative name
	"2.5.29.15":          true, // key usage
	"2.5.29.30":          true, // name constraints
	"2.5.29.33":          true, // policy mappings
	"2.5.29.17":          true, // subject alternative name
	"2.5.29.9":           true, // subject directory attributes
	"2.5.29.14":          true, // subject key identifier
	"1.3.6.1.5.5.7.1.11": true, // subject information access
}

// CheckCriticalExtensions refuses a CA certificate whose basic constraints
// are not critical, or which marks critical an extension AWS Private CA does
// not allow to be.
func CheckCriticalExtensions(c *x509.Certificate) error {
	for _, e := range c.Extensions {
		if e.Id.Equal(OIDBasicConstraints) && !e.Critical {
			return fmt.Errorf("its basic constraints extension must be critical")
		}
		if e.Critical && !allowedCritical[e.Id.String()] {
			return fmt.Errorf("extension %s must not be critical", e.Id)
		}
	}
	return nil
}

// KeyUsageAllows reports whether a certificate's key usage allows usage.
// A certificate without the extension allows every usage (RFC 5280,
// 4.2.1.3), which Go's crypto/x509, reading KeyUsage 0, takes as none.
func KeyUsageAllows(c *x509.Certificate, usage x509.KeyUsage) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(OIDKeyUsage) {
			return c.KeyUsage&usage == usage
		}
	}
	return true
}
