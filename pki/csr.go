package pki

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"

	"github.com/openpca/openpca"
)

// CreateCSR builds and signs the certificate signing request of a CA: its
// configured subject, critical basic constraints with CA:TRUE (as AWS's CA
// CSRs have), and the extensions of CsrExtensions.
func CreateCSR(key crypto.Signer, cfg *openpca.CertificateAuthorityConfiguration) ([]byte, error) {
	sigAlg, err := SignatureAlgorithm(cfg.KeyAlgorithm, cfg.SigningAlgorithm)
	if err != nil {
		return nil, err
	}
	subject, err := MarshalSubject(cfg.Subject)
	if err != nil {
		return nil, err
	}
	exts := []pkix.Extension{BasicConstraintsExtension(true, -1, true)}
	if e := cfg.CsrExtensions; e != nil {
		if e.KeyUsage != nil {
			ext, err := KeyUsageExtension(e.KeyUsage)
			if err != nil {
				return nil, fmt.Errorf("CsrExtensions: %w", err)
			}
			exts = append(exts, ext)
		}
		if len(e.SubjectInformationAccess) > 0 {
			ext, err := SubjectInformationAccessExtension(e.SubjectInformationAccess)
			if err != nil {
				return nil, fmt.Errorf("CsrExtensions.SubjectInformationAccess: %w", err)
			}
			exts = append(exts, ext)
		}
	}
	return CreateCertificateRequest(key, &x509.CertificateRequest{
		RawSubject:         subject,
		SignatureAlgorithm: sigAlg,
		ExtraExtensions:    exts,
	})
}
