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
	"github.com/openpca/openpca/template"
)

// shortLivedMaxValidity is the longest validity a CA in
// SHORT_LIVED_CERTIFICATE mode issues.
const shortLivedMaxValidity = 7 * 24 * time.Hour

// serialAttempts bounds how often issuance draws a new serial number when
// the store finds the drawn one taken.
const serialAttempts = 3

// IssueTemplateARN is the template an IssueCertificate in partition
// makes its certificate with: the one it names, else the default.
func IssueTemplateARN(named, partition string) string {
	if named != "" {
		return named
	}
	return template.InPartition(template.DefaultARN, partition)
}

// IssueConditions are the condition values an IssueCertificate adds:
// acm-pca:TemplateArn is the template the certificate is made with, the
// default one when the request names none.
func IssueConditions(templateARN string) map[string][]string {
	return conditions{keyTemplateArn: {templateARN}}
}

// IssueCertificate signs a certificate for a CSR with a template. Only an
// ACTIVE CA issues, except that a ROOT CA waiting for its certificate, or
// whose certificate has expired, issues its certificate itself,
// self-signed, with a root template: AWS lets an EXPIRED CA's certificate
// be updated, and a root's can come from nowhere else.
//
// The certificate is recorded, with the use of the key, before its ARN is
// returned; if the record cannot be written the certificate is discarded
// and the request fails.
func (s *Service) IssueCertificate(ctx context.Context, in *openpca.IssueCertificateRequest) (*openpca.IssueCertificateResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	// A template's ARN names the partition of the CA's region, as AWS's
	// do: arn:aws-us-gov:acm-pca:::template/... in us-gov-west-1.
	partition := openpca.Partition(s.region)
	templateARN := IssueTemplateARN(in.TemplateArn, partition)
	ca, err := s.findCA(ctx, in.CertificateAuthorityArn, IssueConditions(templateARN))
	if err != nil {
		return nil, err
	}
	tmpl, ok := template.Lookup(templateARN)
	if !ok {
		return nil, openpca.Errorf(openpca.CodeInvalidArgs, "TemplateArn %s is not a template this server knows; see the AWS Private CA template list.", templateARN)
	}
	if templateARN != template.InPartition(tmpl.ARN, partition) {
		return nil, openpca.Errorf(openpca.CodeInvalidArgs, "TemplateArn %s is not in the partition of %s: use %s.", templateARN, ca.ARN, template.InPartition(tmpl.ARN, partition))
	}
	issued := s.now().UTC()
	statuses := []openpca.CertificateAuthorityStatus{openpca.CertificateAuthorityStatusActive}
	st := ca.StatusAt(issued)
	switch {
	case tmpl.Root && st == openpca.CertificateAuthorityStatusExpired:
		statuses = []openpca.CertificateAuthorityStatus{st}
	case tmpl.Root:
		statuses = append(statuses, openpca.CertificateAuthorityStatusPendingCertificate)
	}
	if !slices.Contains(statuses, st) {
		return nil, invalidState("The certificate authority is not in a valid state for issuing certificates: %s is %s.", ca.ARN, st)
	}
	if tmpl.Root && ca.Type != openpca.CertificateAuthorityTypeRoot {
		return nil, openpca.Errorf(openpca.CodeInvalidArgs, "Template %s makes a root CA's self-signed certificate; %s is a SUBORDINATE certificate authority.", tmpl.Name, ca.ARN)
	}
	// "Short-lived certificates must be the last CA in the certificate
	// hierarchy" (AWS's CA modes): such a CA signs no CA below it.
	if tmpl.CA && !tmpl.Root && ca.UsageMode == openpca.CertificateAuthorityUsageModeShortLivedCertificate {
		return nil, openpca.Errorf(openpca.CodeValidation, "%s issues short-lived certificates only, and is the last CA of its hierarchy: template %s makes a CA certificate.", ca.ARN, tmpl.Name)
	}
	sigAlg, err := pki.SignatureAlgorithm(ca.Config.KeyAlgorithm, in.SigningAlgorithm)
	if err != nil {
		return nil, openpca.Errorf(openpca.CodeInvalidArgs, "SigningAlgorithm: %v.", err)
	}
	csr, err := parseCSR(in.Csr)
	if err != nil {
		return nil, openpca.Errorf(openpca.CodeMalformedCSR, "The CSR is malformed: %v.", err)
	}

	var token openpca.IdempotencyToken
	if in.IdempotencyToken != "" {
		token = openpca.IdempotencyToken{AccountID: c.AccountID, Operation: "IssueCertificate:" + ca.ID, Token: in.IdempotencyToken, Now: issued, Since: issued.Add(-IdempotencyWindow)}
		serial, err := s.store.FindIdempotent(ctx, token)
		if err == nil {
			return &openpca.IssueCertificateResponse{CertificateArn: openpca.CertificateARN(ca.ARN, serial)}, nil
		}
		if !errors.Is(err, openpca.ErrNotFound) {
			return nil, err
		}
	}

	signer, err := s.keys.Signer(ctx, ca)
	if err != nil {
		return nil, err
	}
	var is *issuer // nil: self-signed
	var parent *x509.Certificate
	if tmpl.Root {
		if !publicKeysEqual(csr.PublicKey, signer.Public()) {
			return nil, openpca.Errorf(openpca.CodeInvalidArgs, "Template %s makes the self-signed certificate of %s: the CSR must be the CA's own, from GetCertificateAuthorityCsr.", tmpl.Name, ca.ARN)
		}
	} else if is, err = s.keys.issuer(ca); err != nil {
		return nil, err
	} else {
		parent = is.cert
	}
	nb, na, err := s.validity(ca, parent, in, issued)
	if err != nil {
		return nil, err
	}
	if err := checkPathLen(tmpl, is); err != nil {
		return nil, err
	}

	for attempt := 1; ; attempt++ {
		cert, err := s.sign(ca, tmpl, csr, in.ApiPassthrough, is, signer, sigAlg, nb, na)
		if err != nil {
			return nil, err
		}
		cert.CAID, cert.AccountID, cert.IssuedAt, cert.TemplateARN = ca.ID, ca.AccountID, issued, templateARN
		cert.ARN = openpca.CertificateARN(ca.ARN, cert.Serial)
		cert.RequestedBy, cert.RequestID = c.Principal, openpca.RequestIDFrom(ctx)
		stored, err := s.store.RecordIssuance(ctx, &openpca.Issuance{Certificate: cert, Use: openpca.IssueUse(ca.ARN, cert), Token: token, Statuses: statuses})
		switch {
		case errors.Is(err, openpca.ErrConflict) && attempt < serialAttempts:
			continue // the serial is taken: draw another
		case errors.Is(err, openpca.ErrCAState):
			return nil, invalidState("The certificate authority is not in a valid state for issuing certificates: %s changed state during the request.", ca.ARN)
		case err != nil:
			return nil, err
		}
		s.issued.Add(stored.ARN, stored)
		return &openpca.IssueCertificateResponse{CertificateArn: stored.ARN}, nil
	}
}

// sign builds the certificate a template asks for and signs it. A
// certificate the CA issues (not its own self-signed one) says where its
// revocation is published.
func (s *Service) sign(ca *openpca.CA, tmpl *template.Template, csr *x509.CertificateRequest, api *openpca.ApiPassthrough, is *issuer,
	signer crypto.Signer, sigAlg x509.SignatureAlgorithm, nb, na time.Time) (*openpca.Certificate, error) {
	serial, err := pki.NewSerial(s.now())
	if err != nil {
		return nil, err
	}
	certTmpl, err := tmpl.Build(template.Request{CSR: csr, API: api, Serial: serial, NotBefore: nb, NotAfter: na, SignatureAlgorithm: sigAlg})
	if template.ErrNoName(err) {
		return nil, openpca.Errorf(openpca.CodeMalformedCSR, "The CSR must provide a subject name or a subject alternative name: %v.", err)
	}
	// AWS's "Certificate request validation": an extension it cannot
	// read is a MalformedCSRException, from the CSR or the API.
	if template.ErrMalformed(err) {
		return nil, openpca.Errorf(openpca.CodeMalformedCSR, "The certificate cannot be issued: %v.", err)
	}
	if template.ErrCSR(err) {
		return nil, openpca.Errorf(openpca.CodeMalformedCSR, "The CSR cannot be signed: %v.", err)
	}
	// A subject alternative name entry that is blank or has a control
	// character is a MalformedCSRException whether the CSR or the API
	// passthrough gives it, as AWS answers it.
	if _, ok := errors.AsType[*pki.EntryError](err); ok {
		return nil, openpca.Errorf(openpca.CodeMalformedCSR, "The certificate cannot be issued: %v.", err)
	}
	if err != nil {
		return nil, openpca.Errorf(openpca.CodeInvalidArgs, "%v.", err)
	}
	parent := certTmpl
	if is != nil {
		parent = is.cert
		// Go leaves the AKI out when subject and issuer are equal.
		certTmpl.AuthorityKeyId = is.cert.SubjectKeyId
		s.addRevocationInfo(ca, certTmpl)
	}
	der, err := pki.CreateCertificate(certTmpl, parent, csr.PublicKey, signer)
	if err = wrongSignature(signer, err); signingFailed(err) {
		return nil, err // the key store's: it could not sign, or signed wrongly
	}
	if err != nil {
		return nil, openpca.Errorf(openpca.CodeInvalidArgs, "The certificate cannot be made: %v.", err)
	}
	// What a CSR or the API passes through goes into the certificate as
	// it comes: one that parsers refuse (a key usage that is none, a
	// critical extension that does not parse) is not issued, and its
	// signature never leaves.
	// A CA whose certificate or chain constrains names issues none
	// outside them (AWS enforces name constraints too); the certificate
	// is checked as a relying party would check it, and one that fails
	// is not issued either.
	constrained := is != nil && is.constrains()
	if tmpl.UsesCSR() || tmpl.UsesAPI() || constrained {
		cert, err := pki.ParseCertificate(der)
		switch {
		case err != nil && tmpl.UsesAPI():
			return nil, openpca.Errorf(openpca.CodeInvalidArgs, "ApiPassthrough.Extensions, or the CSR's extensions, make a certificate that does not parse: %v.", err)
		case err != nil:
			return nil, openpca.Errorf(openpca.CodeMalformedCSR, "The CSR's extensions make a certificate that does not parse: %v.", err)
		case constrained:
			if err := is.checkNames(cert, s.now()); err != nil {
				return nil, openpca.Errorf(openpca.CodeInvalidArgs, "The certificate would break the name constraints of the certificate of %s or of its chain: %v.", ca.ARN, err)
			}
		}
	}
	subject, err := pki.FormatSubject(certTmpl.RawSubject)
	if err != nil {
		return nil, err
	}
	var names string
	for _, e := range certTmpl.ExtraExtensions {
		if e.Id.Equal(pki.OIDSubjectAltName) {
			names = pki.AltNames(e.Value)
		}
	}
	return &openpca.Certificate{Serial: pki.SerialHex(serial), DER: der, Subject: subject, Names: names, NotBefore: nb, NotAfter: na}, nil
}

// validity computes the validity period a request asks for and checks it
// against the CA's.
func (s *Service) validity(ca *openpca.CA, parent *x509.Certificate, in *openpca.IssueCertificateRequest, issued time.Time) (nb, na time.Time, err error) {
	if na, err = notAfter(in.Validity, issued); err == nil {
		nb, err = notBefore(in.ValidityNotBefore, issued)
	}
	if err != nil {
		return nb, na, openpca.Errorf(openpca.CodeInvalidArgs, "%v.", err)
	}
	if !na.After(issued) {
		return nb, na, openpca.Errorf(openpca.CodeInvalidArgs, "Validity ends at %s, which is not after the time of issuance.", na.Format(time.RFC3339))
	}
	if !na.After(nb) {
		return nb, na, openpca.Errorf(openpca.CodeInvalidArgs, "ValidityNotBefore %s is not before the end of validity %s.", nb.Format(time.RFC3339), na.Format(time.RFC3339))
	}
	// AWS refuses a validity beyond the CA's with a ValidationException.
	if parent != nil && na.After(parent.NotAfter) {
		return nb, na, openpca.Errorf(openpca.CodeValidation, "The certificate validity specified exceeds the certificate authority validity: it would end at %s, after %s ends at %s.",
			na.Format(time.RFC3339), ca.ARN, parent.NotAfter.UTC().Format(time.RFC3339))
	}
	// Our own rule (AWS documents none): a start asked for before the CA's
	// own makes a certificate a verifier of the whole path at that time
	// refuses, and one checked alone (a signature on code or a document)
	// seem older than its CA. The default start, an hour back, may be.
	if parent != nil && in.ValidityNotBefore != nil && nb.Before(parent.NotBefore) {
		return nb, na, openpca.Errorf(openpca.CodeValidation, "ValidityNotBefore %s is before the certificate of %s is valid, from %s.",
			nb.Format(time.RFC3339), ca.ARN, parent.NotBefore.UTC().Format(time.RFC3339))
	}
	// A root CA's own certificate (no parent yet) is not held to its
	// mode: AWS performs no validity checks on root CA certificates.
	if ca.UsageMode == openpca.CertificateAuthorityUsageModeShortLivedCertificate && parent != nil {
		if na.Sub(issued) > shortLivedMaxValidity {
			return nb, na, openpca.Errorf(openpca.CodeValidation, "%s issues short-lived certificates only: their validity is at most 7 days.", ca.ARN)
		}
		// Nor may a start further back than the default stretch one.
		if nb.Before(issued.Add(-time.Hour)) {
			return nb, na, openpca.Errorf(openpca.CodeValidation, "%s issues short-lived certificates only: ValidityNotBefore may be at most an hour before issuance.", ca.ARN)
		}
	}
	return nb, na, nil
}

// checkPathLen refuses a CA certificate deeper than a path length of the
// issuing CA's certificate or chain allows (RFC 5280, 4.2.1.9): a
// certificate d levels above the issuing CA, of path length p, allows the
// new CA certificate a path length of at most p-d-1.
func checkPathLen(tmpl *template.Template, is *issuer) error {
	if !tmpl.CA || is == nil {
		return nil
	}
	for d, c := range append([]*x509.Certificate{is.cert}, is.chain...) {
		if c.MaxPathLen < 0 || c.MaxPathLen == 0 && !c.MaxPathLenZero {
			continue // no limit
		}
		if allowed := c.MaxPathLen - d - 1; tmpl.PathLen > allowed {
			what := "the issuing CA's certificate"
			if d > 0 {
				what = fmt.Sprintf("certificate %d of its chain", d)
			}
			return openpca.Errorf(openpca.CodeInvalidArgs, "Template %s makes a CA certificate with path length %d, but %s, of path length %d, allows at most %d CA level(s) below the issuing CA.",
				tmpl.Name, tmpl.PathLen, what, c.MaxPathLen, max(allowed+1, 0))
		}
	}
	return nil
}

// GetCertificate returns a certificate the CA issued, revoked or not, with
// the chain above it: the issuing CA's certificate first, the root last.
// A self-signed root certificate has no chain.
func (s *Service) GetCertificate(ctx context.Context, in *openpca.GetCertificateRequest) (*openpca.GetCertificateResponse, error) {
	ca, err := s.findCA(ctx, in.CertificateAuthorityArn, nil)
	if err != nil {
		return nil, err
	}
	p, err := openpca.ParseCertificateARN(in.CertificateArn)
	if err != nil {
		return nil, err
	}
	if p.CAID != ca.ID || p.AccountID != ca.AccountID || p.Region != s.region {
		return nil, openpca.Errorf(openpca.CodeResourceNotFound, "The certificate %s was not issued by %s.", in.CertificateArn, ca.ARN)
	}
	if st := ca.StatusAt(s.now()); st == openpca.CertificateAuthorityStatusDeleted || st == openpca.CertificateAuthorityStatusFailed {
		return nil, invalidState("The certificate authority %s is not in the correct state to have issued certificates: it is %s.", ca.ARN, st)
	}
	// A client fetches a certificate just after it is issued, most often
	// from the server that issued it.
	cert, ok := s.issued.Get(in.CertificateArn)
	if !ok {
		cert, err = s.store.FindCertificate(ctx, ca.ID, p.CertificateSerial)
		if errors.Is(err, openpca.ErrNotFound) {
			return nil, openpca.Errorf(openpca.CodeResourceNotFound, "Could not find certificate %s.", in.CertificateArn)
		}
		if err != nil {
			return nil, err
		}
	}
	out := &openpca.GetCertificateResponse{Certificate: pemString("CERTIFICATE", cert.DER)}
	if !selfSigned(cert) && len(ca.Certificate) > 0 {
		out.CertificateChain = pemString("CERTIFICATE", ca.Certificate)
		if len(ca.CertificateChain) > 0 {
			out.CertificateChain += "\n" + strings.TrimSpace(string(ca.CertificateChain))
		}
	}
	return out, nil
}

// RevokeCertificate revokes a certificate the CA issued. An ACTIVE or
// DISABLED CA revokes; a root CA's own self-signed certificate cannot be
// revoked.
func (s *Service) RevokeCertificate(ctx context.Context, in *openpca.RevokeCertificateRequest) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	ca, err := s.findCA(ctx, in.CertificateAuthorityArn, nil)
	if err != nil {
		return err
	}
	at := s.now().UTC()
	statuses := []openpca.CertificateAuthorityStatus{openpca.CertificateAuthorityStatusActive, openpca.CertificateAuthorityStatusDisabled}
	if st := ca.StatusAt(at); !slices.Contains(statuses, st) {
		return invalidState("The certificate authority is not in a valid state for revoking certificates: %s is %s.", ca.ARN, st)
	}
	serial, err := pki.ParseSerial(in.CertificateSerial)
	if err != nil {
		return openpca.Errorf(openpca.CodeInvalidRequest, "CertificateSerial: %v.", err)
	}
	cert, err := s.store.FindCertificate(ctx, ca.ID, serial)
	if errors.Is(err, openpca.ErrNotFound) {
		return openpca.Errorf(openpca.CodeResourceNotFound, "%s has issued no certificate with serial %s.", ca.ARN, in.CertificateSerial)
	}
	if err != nil {
		return err
	}
	if selfSigned(cert) {
		return openpca.Errorf(openpca.CodeInvalidRequest, "You cannot revoke a root CA self-signed certificate (serial %s of %s).", in.CertificateSerial, ca.ARN)
	}
	// "The RevokeCertificate API cannot be used to revoke any expired
	// certificate, including a CA certificate" (AWS's CA status guide).
	if at.After(cert.NotAfter) {
		return openpca.Errorf(openpca.CodeInvalidRequest, "The certificate with serial %s expired at %s; an expired certificate cannot be revoked.",
			in.CertificateSerial, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	err = s.store.RecordRevocation(ctx, &openpca.Revocation{
		CAID: ca.ID, Serial: serial, At: at, Reason: in.RevocationReason, Statuses: statuses,
		Use: openpca.RevokeUse(ca.ARN, cert, at, in.RevocationReason, c.Principal, openpca.RequestIDFrom(ctx)),
	})
	switch {
	case errors.Is(err, openpca.ErrAlreadyRevoked):
		return openpca.Errorf(openpca.CodeRequestAlreadyProcessed, "The certificate with serial %s is already revoked.", in.CertificateSerial)
	case errors.Is(err, openpca.ErrCAState):
		return invalidState("The certificate authority is not in a valid state for revoking certificates: %s changed state during the request.", ca.ARN)
	case err != nil:
		return err
	}
	s.logger.InfoContext(ctx, "certificate revoked", "ca", ca.ARN, "serial", serial, "reason", in.RevocationReason)
	s.wakeCRLs()
	return nil
}

// parseCSR parses and verifies a PEM certificate signing request.
func parseCSR(b []byte) (*x509.CertificateRequest, error) {
	block, rest := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("it is not PEM")
	}
	if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("the PEM block is a %q, not a CERTIFICATE REQUEST", block.Type)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("there is data after the CSR")
	}
	csr, err := pki.ParseCSR(block.Bytes)
	if err != nil {
		return nil, err
	}
	// The keys the server certifies are those it makes for CAs.
	if pki.KeyAlgorithmOf(csr.PublicKey) == "" {
		return nil, fmt.Errorf("its key is not one this server certifies: RSA of 2048, 3072 or 4096 bits, EC on P-256, P-384 or P-521, ML-DSA or SM2")
	}
	switch csr.SignatureAlgorithm {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		return nil, fmt.Errorf("it is signed with %v, which proves nothing any more", csr.SignatureAlgorithm)
	}
	// Its alternative names, which Go parses without such a check: AWS
	// refuses "a SAN entry that's empty, that contains only whitespace, or
	// that contains a control character" (DNS names, email addresses,
	// URIs and directory names alike).
	for _, e := range csr.Extensions {
		if e.Id.Equal(pki.OIDSubjectAltName) {
			if err := pki.CheckAltNames(e.Value); err != nil {
				return nil, err
			}
		}
	}
	return csr, nil
}

// selfSigned reports whether a CA issued c to itself: the root templates,
// and only they, make self-signed certificates.
func selfSigned(c *openpca.Certificate) bool {
	t, ok := template.Lookup(c.TemplateARN)
	return ok && t.Root
}
