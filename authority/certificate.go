package authority

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/pki"
)

// GetCertificateAuthorityCsr returns the CSR made when the CA was created,
// PEM-encoded. It stays available after activation, for renewals.
func (s *Service) GetCertificateAuthorityCsr(ctx context.Context, in *openpca.GetCertificateAuthorityCsrRequest) (*openpca.GetCertificateAuthorityCsrResponse, error) {
	ca, err := s.findCA(ctx, in.CertificateAuthorityArn, nil)
	if err != nil {
		return nil, err
	}
	switch st := ca.StatusAt(s.now()); st {
	case openpca.CertificateAuthorityStatusCreating:
		return nil, openpca.Errorf(openpca.CodeRequestInProgress, "The CSR of %s is being created; try again shortly.", ca.ARN)
	case openpca.CertificateAuthorityStatusDeleted, openpca.CertificateAuthorityStatusFailed:
		return nil, invalidState("The certificate authority %s is not in the correct state to have a certificate signing request: it is %s.", ca.ARN, st)
	}
	return &openpca.GetCertificateAuthorityCsrResponse{Csr: pemString("CERTIFICATE REQUEST", ca.CSR)}, nil
}

// GetCertificateAuthorityCertificate returns the CA's certificate and,
// for a subordinate CA, the chain above it (issuer first, root last).
func (s *Service) GetCertificateAuthorityCertificate(ctx context.Context, in *openpca.GetCertificateAuthorityCertificateRequest) (*openpca.GetCertificateAuthorityCertificateResponse, error) {
	ca, err := s.findCA(ctx, in.CertificateAuthorityArn, nil)
	if err != nil {
		return nil, err
	}
	// AWS's message for both cases speaks of a certificate signing request.
	switch st := ca.StatusAt(s.now()); {
	case st == openpca.CertificateAuthorityStatusDeleted, st == openpca.CertificateAuthorityStatusFailed:
		return nil, invalidState("The certificate authority %s is not in the correct state to have a certificate signing request: it is %s.", ca.ARN, st)
	case len(ca.Certificate) == 0:
		return nil, invalidState("The certificate authority %s is not in the correct state to have a certificate signing request: it is %s and has no certificate yet; import one with ImportCertificateAuthorityCertificate.", ca.ARN, st)
	}
	return &openpca.GetCertificateAuthorityCertificateResponse{
		Certificate:      pemString("CERTIFICATE", ca.Certificate),
		CertificateChain: strings.TrimSpace(string(ca.CertificateChain)),
	}, nil
}

// ImportCertificateAuthorityCertificate installs the CA's certificate: a
// self-signed one for a root CA, or one signed by the first certificate of
// the chain for a subordinate CA. A PENDING_CERTIFICATE CA becomes ACTIVE.
// Importing again renews the certificate and keeps the status, so an
// EXPIRED CA returns to the ACTIVE or DISABLED it had.
func (s *Service) ImportCertificateAuthorityCertificate(ctx context.Context, in *openpca.ImportCertificateAuthorityCertificateRequest) error {
	// Parsed before, refused only once the caller may import at all.
	// What is stored is handed out in chains: it must read elsewhere too.
	cert, certErr := parseOneCertificate(in.Certificate)
	if certErr == nil {
		certErr = pki.CheckCertificateElements(cert.Raw)
	}
	chain, chainErr := parseChain(in.CertificateChain)
	for i := 0; chainErr == nil && i < len(chain); i++ {
		if err := pki.CheckCertificateElements(chain[i].Raw); err != nil {
			chainErr = fmt.Errorf("PEM block %d: %v", i+1, err)
		}
	}
	var now time.Time
	ca, err := s.updateLoggedCA(ctx, in.CertificateAuthorityArn, nil, func(ca *openpca.CA) error {
		if certErr != nil {
			return openpca.Errorf(openpca.CodeMalformedCertificate, "The certificate is malformed: %v.", certErr)
		}
		if chainErr != nil {
			return openpca.Errorf(openpca.CodeMalformedCertificate, "The certificate chain is malformed: %v.", chainErr)
		}
		if err := checkChainSize(chain); err != nil {
			return err
		}
		now = s.now()
		// AWS's table of CA states: a DISABLED CA's certificate cannot
		// be updated (one that expired while DISABLED can, and stays so).
		st := ca.StatusAt(now)
		switch st {
		case openpca.CertificateAuthorityStatusPendingCertificate, openpca.CertificateAuthorityStatusActive, openpca.CertificateAuthorityStatusExpired:
		default:
			return invalidState("The certificate authority %s is %s; a certificate can be imported only while it is PENDING_CERTIFICATE, ACTIVE or EXPIRED.", ca.ARN, st)
		}
		csr, err := pki.ParseCSR(ca.CSR)
		if err != nil {
			return err
		}
		if certKey, err := pki.ParsePublicKey(cert.RawSubjectPublicKeyInfo); err != nil || !publicKeysEqual(certKey, csr.PublicKey) {
			return openpca.Errorf(openpca.CodeCertificateMismatch, "The certificate's public key does not match the private key of %s: sign the CSR from GetCertificateAuthorityCsr.", ca.ARN)
		}
		if err := checkCACertificate(ca.Type, cert, chain, now); err != nil {
			return err
		}
		if err := checkCRLSign(ca, cert, ca.Revocation, openpca.CodeInvalidRequest); err != nil {
			return err
		}
		// A certificate issued before names the CA's subject as its
		// issuer, which CRLs and OCSP answers must keep naming (our rule;
		// AWS documents none).
		if old, err := pki.ParseCertificate(ca.Certificate); err == nil {
			if !bytes.Equal(old.RawSubject, cert.RawSubject) {
				return openpca.Errorf(openpca.CodeCertificateMismatch, "The certificate's subject (%s) is not that of the certificate of %s (%s), which the certificates it issued name as their issuer: a renewed certificate keeps the subject.",
					cert.Subject, ca.ARN, old.Subject)
			}
			// Nor may its key identifier change, which those certificates
			// name as their authority key identifier: OpenSSL then found
			// neither the old certificate the issuer of the CA's new CRLs,
			// nor the new one the issuer of the old certificates.
			oldID, err1 := keyIdentifier(old)
			newID, err2 := keyIdentifier(cert)
			if err := errors.Join(err1, err2); err != nil {
				return openpca.Errorf(openpca.CodeMalformedCertificate, "The certificate's key identifier: %v.", err)
			}
			if !bytes.Equal(oldID, newID) {
				return openpca.Errorf(openpca.CodeCertificateMismatch, "The certificate's subject key identifier (%X) is not that of the certificate of %s (%X), which the certificates it issued name as their authority key identifier: a renewed certificate keeps it.",
					newID, ca.ARN, oldID)
			}
		}
		ca.Certificate = cert.Raw
		ca.CertificateChain = nil
		if len(chain) > 0 {
			var b bytes.Buffer
			for _, c := range chain {
				pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
			}
			ca.CertificateChain = b.Bytes()
		}
		ca.Serial = cert.SerialNumber.String() // Describe shows it in decimal, as AWS does
		ca.NotBefore, ca.NotAfter = cert.NotBefore.UTC(), cert.NotAfter.UTC()
		switch {
		case ca.Status == openpca.CertificateAuthorityStatusPendingCertificate:
			ca.SetStatus(openpca.CertificateAuthorityStatusActive, now.UTC())
		case st == openpca.CertificateAuthorityStatusExpired:
			ca.SetStatus(ca.Status, now.UTC()) // EXPIRED, back to what it was
		}
		return nil
	}, func(ca *openpca.CA) (*openpca.KeyUse, error) {
		c, err := caller(ctx)
		if err != nil {
			return nil, err
		}
		return openpca.ImportUse(ca, c.Principal, openpca.RequestIDFrom(ctx), now)
	})
	if err == nil {
		s.logger.InfoContext(ctx, "certificate authority certificate imported", "ca", ca.ARN, "serial", ca.Serial, "not_after", ca.NotAfter, "status", ca.Status)
		s.wakeCRLs()
	}
	return err
}

// checkKeyUsageOf refuses a key usage c's key cannot have (see
// pki.CheckKeyUsage).
func checkKeyUsageOf(c *x509.Certificate) error {
	pub, err := pki.ParsePublicKey(c.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil // the key is checked against the CA's elsewhere
	}
	for _, e := range c.Extensions {
		if e.Id.Equal(pki.OIDKeyUsage) {
			return pki.CheckKeyUsage(pki.KeyAlgorithmOf(pub), e)
		}
	}
	return nil
}

// checkCACertificate enforces what AWS Private CA requires of an imported CA
// certificate and its chain. A field the certificate must not carry is a
// MalformedCertificateException, a chain that does not lead from the
// certificate to a root is an InvalidRequestException, and a certificate
// that breaks its issuer's constraints is a CertificateMismatchException.
func checkCACertificate(caType openpca.CertificateAuthorityType, cert *x509.Certificate, chain []*x509.Certificate, now time.Time) error {
	invalid := func(format string, args ...any) error {
		return openpca.Errorf(openpca.CodeInvalidRequest, format, args...)
	}
	for i, c := range append([]*x509.Certificate{cert}, chain...) {
		what := "The certificate"
		if i > 0 {
			what = fmt.Sprintf("Certificate %d of the chain", i)
		}
		if !c.BasicConstraintsValid || !c.IsCA {
			return openpca.Errorf(openpca.CodeMalformedCertificate, "%s is not a CA certificate: it needs critical basic constraints with CA:TRUE.", what)
		}
		if !pki.KeyUsageAllows(c, x509.KeyUsageCertSign) {
			return openpca.Errorf(openpca.CodeMalformedCertificate, "%s is not a CA certificate: its key usage does not include keyCertSign.", what)
		}
		if err := pki.CheckCriticalExtensions(c); err != nil {
			return openpca.Errorf(openpca.CodeMalformedCertificate, "%s: %v.", what, err)
		}
		if i == 0 {
			// The CA's own certificate, of a key it holds, is held to what
			// the certificates it signs are (its chain is another PKI's).
			if err := checkKeyUsageOf(c); err != nil {
				return openpca.Errorf(openpca.CodeMalformedCertificate, "%s: %v.", what, err)
			}
		}
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			return invalid("%s is not valid now: it is valid from %s to %s.", what, c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	selfSigned := bytes.Equal(cert.RawIssuer, cert.RawSubject) && pki.CheckSignatureFrom(cert, cert) == nil
	if caType == openpca.CertificateAuthorityTypeRoot {
		// Its name constraints bind what it signs: they must read.
		if _, _, err := readPath([]*x509.Certificate{cert}); err != nil {
			return openpca.Errorf(openpca.CodeMalformedCertificate, "The certificate: %v.", err)
		}
		if !selfSigned {
			return invalid("Only a self-signed certificate can be imported for a root certificate authority.")
		}
		if len(chain) > 0 {
			return invalid("A root certificate authority takes no certificate chain.")
		}
		return nil
	}
	if selfSigned {
		return invalid("A self-signed certificate cannot be imported for a subordinate certificate authority.")
	}
	if len(chain) == 0 {
		return invalid("A subordinate certificate authority needs the certificate chain of its issuer, issuer first and root last.")
	}
	for _, c := range chain {
		if c.Equal(cert) {
			return invalid("The certificate chain must not contain the certificate being imported.")
		}
	}
	prev := cert
	for i, c := range chain {
		if err := pki.CheckSignatureFrom(prev, c); err != nil || !bytes.Equal(prev.RawIssuer, c.RawSubject) {
			return invalid("Certificate %d of the chain did not sign the certificate before it: the chain must start with the issuer and end with the root.", i+1)
		}
		// The certificate will issue certificates of its own, so c's path
		// length must allow it and every CA certificate between them.
		if c.MaxPathLen >= 0 && (c.MaxPathLen > 0 || c.MaxPathLenZero) && c.MaxPathLen < i+1 {
			return openpca.Errorf(openpca.CodeCertificateMismatch, "Certificate %d of the chain allows a path length of %d, too short for a certificate authority %d level(s) below it.",
				i+1, c.MaxPathLen, i+1)
		}
		if prev.NotAfter.After(c.NotAfter) {
			return openpca.Errorf(openpca.CodeCertificateMismatch, "The certificate before certificate %d of the chain is valid until %s, after its issuer (%s).",
				i+1, prev.NotAfter.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
		}
		prev = c
	}
	root := chain[len(chain)-1]
	if !bytes.Equal(root.RawIssuer, root.RawSubject) || pki.CheckSignatureFrom(root, root) != nil {
		return invalid("The last certificate of the chain must be a self-signed root certificate.")
	}
	path := append([]*x509.Certificate{cert}, chain...)
	verify, dirs, err := readPath(path)
	if err != nil {
		return openpca.Errorf(openpca.CodeMalformedCertificate, "The certificate or its chain: %v.", err)
	}
	// Directory-name constraints, those of email addresses on the
	// subject's (as OpenSSL reads them), and the constraints on alternative
	// names that Go's verifier reads otherwise than clients do
	// (checkAltNames) bind the certificates below, but for self-issued ones
	// (RFC 5280, 6.1.3): each certificate here is one a leaf's path passes
	// through. Go's verifier checks none of these.
	budget := pki.MaxNameComparisons
	for k, c := range path[:len(path)-1] {
		if bytes.Equal(c.RawSubject, c.RawIssuer) {
			continue
		}
		if err := checkSubjectEmails(c, path[k+1:], &budget); err != nil {
			return openpca.Errorf(openpca.CodeCertificateMismatch, "The certificate does not comply with the certificates that signed it: %v.", err)
		}
		if err := checkAltNames(c, path[k+1:], &budget); err != nil {
			return openpca.Errorf(openpca.CodeCertificateMismatch, "The certificate does not comply with the certificates that signed it: %v.", err)
		}
	}
	for j, dc := range dirs {
		if dc == nil {
			continue
		}
		for _, c := range path[:j] {
			if bytes.Equal(c.RawSubject, c.RawIssuer) {
				continue
			}
			if err := dc.Check(c, &budget); err != nil {
				return openpca.Errorf(openpca.CodeCertificateMismatch, "The certificate does not comply with the certificates that signed it: %v.", err)
			}
		}
	}
	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(verify[len(verify)-1])
	for _, c := range verify[1 : len(verify)-1] {
		intermediates.AddCert(c)
	}
	// Signatures and order are checked above; what Verify adds is the
	// issuers' constraints: path length, name constraints, key usage. It
	// knows no ML-DSA or SM2 signature, so a chain with one has only the
	// checks above (our limit, in the README).
	if slices.ContainsFunc(path, pki.ForeignSignature) {
		return nil
	}
	leaf := *verify[0]
	leaf.IPAddresses = withUnmapped(leaf.IPAddresses)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return openpca.Errorf(openpca.CodeCertificateMismatch, "The certificate does not comply with the certificates that signed it: %v.", err)
	}
	return nil
}

// checkCRLSign refuses a CA certificate whose key usage does not allow
// signing CRLs, for a CA whose configuration rc publishes them: no CRL
// would ever be published, and the certificates it issues would name one.
func checkCRLSign(ca *openpca.CA, cert *x509.Certificate, rc *openpca.RevocationConfiguration, code string) error {
	if rc == nil || rc.CrlConfiguration == nil || rc.CrlConfiguration.Enabled == nil || !*rc.CrlConfiguration.Enabled || pki.KeyUsageAllows(cert, x509.KeyUsageCRLSign) {
		return nil
	}
	return openpca.Errorf(code, "The certificate of %s does not allow signing CRLs (its key usage has no cRLSign), and the certificate authority publishes CRLs: disable them, or import a certificate whose key usage includes cRLSign.", ca.ARN)
}

// Bounds of an imported chain (our choice; the model allows 2 MiB): every
// answer of GetCertificate and GetCertificateAuthorityCertificate carries
// the chain, and every issuance checks its names against the chain's
// constraints. A chain of one 2 MiB certificate, asked for by 200 clients
// at once, took a server to 1.2 GB. Real paths are a few certificates of
// a few KiB; AWS's own hierarchies are five levels at most.
const (
	maxChainCertificates = 10
	maxChainCertificate  = 32 << 10 // DER bytes, as the model bounds the CA's own certificate's PEM
)

// checkChainSize refuses a chain past those bounds.
func checkChainSize(chain []*x509.Certificate) error {
	if len(chain) > maxChainCertificates {
		return openpca.Errorf(openpca.CodeInvalidRequest, "The certificate chain has %d certificates; at most %d are taken.", len(chain), maxChainCertificates)
	}
	for i, c := range chain {
		if len(c.Raw) > maxChainCertificate {
			return openpca.Errorf(openpca.CodeInvalidRequest, "Certificate %d of the chain is %d bytes; at most %d are taken.", i+1, len(c.Raw), maxChainCertificate)
		}
	}
	return nil
}

// parseOneCertificate parses a PEM blob holding exactly one certificate.
func parseOneCertificate(b []byte) (*x509.Certificate, error) {
	certs, err := parsePEMCertificates(b)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("expected one PEM certificate, found %d", len(certs))
	}
	return certs[0], nil
}

// parseChain parses a PEM chain, which may be empty.
func parseChain(b []byte) ([]*x509.Certificate, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	return parsePEMCertificates(b)
}

func parsePEMCertificates(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := b
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is a %q, not a CERTIFICATE", len(certs)+1, block.Type)
		}
		c, err := pki.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %v", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("it is not PEM: found data outside PEM blocks")
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("it contains no PEM certificate")
	}
	return certs, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

func pemString(typ string, der []byte) string {
	return strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})))
}
