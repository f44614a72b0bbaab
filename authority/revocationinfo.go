package authority

import (
	"crypto/x509"
	"encoding/asn1"

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
// enabled, each unless the certificate already carries its own.
func (s *Service) addRevocationInfo(ca *openpca.CA, t *x509.Certificate) {
	has := func(oid asn1.ObjectIdentifier) bool {
		for _, e := range t.ExtraExtensions {
			if e.Id.Equal(oid) {
				return true
			}
		}
		return false
	}
	if cfg := ca.CRL(); cfg != nil && !crl.OmitDistributionPoint(cfg) && len(t.CRLDistributionPoints) == 0 && !has(oidCRLDistributionPoints) {
		t.CRLDistributionPoints = []string{crl.URL(s.objects, ca, cfg)}
	}
	if o := ca.OCSP(); o != nil && len(t.OCSPServer) == 0 && !has(oidAuthorityInfoAccess) {
		t.OCSPServer = []string{s.ocspURL(o)}
	}
}

// wakeCRLs tells the CRL publisher that a CA may want a new CRL.
func (s *Service) wakeCRLs() {
	if s.crls != nil {
		s.crls.Wake()
	}
}
