package authority

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"slices"

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
	oidAuthorityInfoAccess   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}
)

// addRevocationInfo tells relying parties of a certificate the CA issues
// where to learn of its revocation: the CRL distribution point if the CA
// publishes CRLs (unless omitted), and the OCSP responder if OCSP is
// enabled. Each replaces whatever the CSR or the API passed through for
// it, as a template's values take priority in AWS's templates: a
// certificate that sent relying parties elsewhere could not be revoked
// for them. A CA that publishes neither leaves those passed through.
func (s *Service) addRevocationInfo(ca *openpca.CA, t *x509.Certificate) {
	without := func(oid asn1.ObjectIdentifier) {
		t.ExtraExtensions = slices.DeleteFunc(t.ExtraExtensions, func(e pkix.Extension) bool { return e.Id.Equal(oid) })
	}
	if cfg := ca.CRL(); cfg != nil && !crl.OmitDistributionPoint(cfg) {
		without(oidCRLDistributionPoints)
		t.CRLDistributionPoints = []string{crl.URL(s.objects, ca, cfg)}
	}
	if o := ca.OCSP(); o != nil {
		without(oidAuthorityInfoAccess)
		t.OCSPServer, t.IssuingCertificateURL = []string{s.ocspURL(o)}, nil
	}
}

// wakeCRLs tells the CRL publisher that a CA may want a new CRL.
func (s *Service) wakeCRLs() {
	if s.crls != nil {
		s.crls.Wake()
	}
}
