package authority

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"math/big"
)

// standIns is a path that Go's verifier can check in place of one it
// cannot (a CA with an ML-DSA or SM2 key, or a chain with their
// signatures): each certificate copied with what the name checks read
// (its subject, validity, basic constraints, key usages and name
// constraints), signed with a throwaway P-256 key by its issuer's copy.
// The names a CA's certificate passes and refuses are the same for its
// copy, which is what checkNames needs; the signatures it leaves to the
// relying party's verifier.
type standIns struct {
	path []*x509.Certificate // the copies, in the order of the path
	key  *ecdsa.PrivateKey   // of the first, which signs copies of what the CA signs
}

// newStandIns copies path (a CA's certificate, then the chain above it,
// the root last).
func newStandIns(path []*x509.Certificate) (*standIns, error) {
	s := &standIns{path: make([]*x509.Certificate, len(path))}
	var parent *x509.Certificate
	for i := len(path) - 1; i >= 0; i-- {
		c, key, err := standIn(path[i], parent, s.key)
		if err != nil {
			return nil, fmt.Errorf("a stand-in for %s: %w", path[i].Subject, err)
		}
		s.path[i], parent, s.key = c, c, key
	}
	return s, nil
}

// leaf copies a certificate the CA signed.
func (s *standIns) leaf(c *x509.Certificate) (*x509.Certificate, error) {
	copied, _, err := standIn(c, s.path[0], s.key)
	return copied, err
}

// standIn copies c, signed by parent's key, or by its own key if parent
// is nil (a root).
func standIn(c, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), RawSubject: c.RawSubject, NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		KeyUsage: c.KeyUsage, ExtKeyUsage: c.ExtKeyUsage, UnknownExtKeyUsage: c.UnknownExtKeyUsage,
		BasicConstraintsValid: c.BasicConstraintsValid, IsCA: c.IsCA, MaxPathLen: c.MaxPathLen, MaxPathLenZero: c.MaxPathLenZero,
		DNSNames: c.DNSNames, EmailAddresses: c.EmailAddresses, IPAddresses: c.IPAddresses, URIs: c.URIs,
		PermittedDNSDomainsCritical: c.PermittedDNSDomainsCritical,
		PermittedDNSDomains:         c.PermittedDNSDomains, ExcludedDNSDomains: c.ExcludedDNSDomains,
		PermittedIPRanges: c.PermittedIPRanges, ExcludedIPRanges: c.ExcludedIPRanges,
		PermittedEmailAddresses: c.PermittedEmailAddresses, ExcludedEmailAddresses: c.ExcludedEmailAddresses,
		PermittedURIDomains: c.PermittedURIDomains, ExcludedURIDomains: c.ExcludedURIDomains,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, nil, err
	}
	copied, err := x509.ParseCertificate(der)
	return copied, key, err
}
