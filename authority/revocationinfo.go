package authority

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/crl"
)

// ocspURL is where relying parties ask for the status of a CA's
// certificates: this server's /ocsp, under the CNAME if set (which must
// lead to this server).
func (s *Service) ocspURL(cfg *openpca.OcspConfiguration) string {
	base := s.publicURL
	if cfg.OcspCustomCname != "" {
		base = "http://" + cfg.OcspCustomCname
	}
	return base + "/ocsp"
}

// Extension OIDs the revocation extensions check for.
var (
	oidCRLDistributionPoints = asn1.ObjectIdentifier{2, 5, 29, 31}
	oidFreshestCRL           = asn1.ObjectIdentifier{2, 5, 29, 46}
	oidAuthorityInfoAccess   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}
	oidAccessOCSP            = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1}
)

// addRevocationInfo tells relying parties of a certificate the CA issues
// where to learn of its revocation: the CRL distribution point if the CA
// publishes CRLs (unless omitted), and the OCSP responder if OCSP is
// enabled. Each replaces whatever the CSR or the API passed through for
// it, as a template's values take priority in AWS's templates: a
// certificate that sent relying parties elsewhere could not be revoked
// for them. For the same reason, a CA that gives its certificates'
// status one way keeps no other way passed through: one that publishes
// CRLs alone, no OCSP responder; one that answers OCSP alone, no CRL
// distribution point (no CRL of its key is published for one to hold);
// and either, no delta CRL (freshest CRL), which it never makes. (One
// whose CRLs omit the extension keeps the distribution point passed
// through, as AWS documents: that is how such a CA names where its CRLs
// are copied.) A CA that does neither leaves them all.
func (s *Service) addRevocationInfo(ca *openpca.CA, t *x509.Certificate) {
	without := func(oid asn1.ObjectIdentifier) {
		t.ExtraExtensions = slices.DeleteFunc(t.ExtraExtensions, func(e pkix.Extension) bool { return e.Id.Equal(oid) })
	}
	cfg, o := ca.CRL(), ca.OCSP()
	if cfg == nil && o == nil {
		return
	}
	without(oidFreshestCRL)
	switch {
	case cfg == nil:
		without(oidCRLDistributionPoints)
	case !crl.OmitDistributionPoint(cfg):
		without(oidCRLDistributionPoints)
		t.CRLDistributionPoints = []string{crl.URL(s.objects, ca, cfg)}
	}
	if o != nil {
		without(oidAuthorityInfoAccess)
		t.OCSPServer, t.IssuingCertificateURL = []string{s.ocspURL(o)}, nil
		return
	}
	for i, e := range t.ExtraExtensions {
		if e.Id.Equal(oidAuthorityInfoAccess) {
			t.ExtraExtensions[i].Value = withoutOCSP(e.Value)
		}
	}
	t.ExtraExtensions = slices.DeleteFunc(t.ExtraExtensions, func(e pkix.Extension) bool { return e.Id.Equal(oidAuthorityInfoAccess) && e.Value == nil })
}

// withoutOCSP returns the value of an authority information access
// extension without its OCSP responders, nil if none is left or it is
// malformed (then it goes, as a certificate that does not parse would).
func withoutOCSP(value []byte) []byte {
	in := cryptobyte.String(value)
	var descriptions cryptobyte.String
	if !in.ReadASN1(&descriptions, cbasn1.SEQUENCE) || !in.Empty() {
		return nil
	}
	var kept cryptobyte.Builder
	n := 0
	kept.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for !descriptions.Empty() {
			var description, element, inner cryptobyte.String
			var method asn1.ObjectIdentifier
			if !descriptions.ReadASN1Element(&description, cbasn1.SEQUENCE) {
				n = -1
				return
			}
			element = description
			if !element.ReadASN1(&inner, cbasn1.SEQUENCE) || !inner.ReadASN1ObjectIdentifier(&method) {
				n = -1
				return
			}
			if !method.Equal(oidAccessOCSP) {
				b.AddBytes(description)
				n++
			}
		}
	})
	out, err := kept.Bytes()
	if err != nil || n <= 0 {
		return nil
	}
	return out
}

// wakeCRLs tells the CRL publisher that a CA may want a new CRL.
func (s *Service) wakeCRLs() {
	if s.crls != nil {
		s.crls.Wake()
	}
}
